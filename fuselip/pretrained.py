"""The released FuseLIP models and their TiTok tokenizers, loaded into this project's code.

    model = load_pretrained("chs20/FuseLIP-B-CC3M-MM")      # a folder, or a name found in the Hugging Face cache
    model.encode(images=[photo], texts=["rotate 90 degrees clockwise"])        # (1, 512), as every model here

Releases (shared/PAPER.md, "The released models and the reference code, in detail"):
    chs20/FuseLIP-S-CC3M-MM  chs20/FuseLIP-S-CC12M-MM   width 384, 6 heads, 12 layers, TiTok-S-128 (4,096 codes)
    chs20/FuseLIP-B-CC3M-MM  chs20/FuseLIP-B-CC12M-MM   width 512, 8 heads, 12 layers, TiTok-BL-128-VQ8k (8,192)
each a `config.json` + `pytorch_model.bin` (a plain state dict; read with torch.load(weights_only=True), so no code in
the file ever runs). The tokenizers' own releases (`yucornetto/tokenizer_titok_s128_imagenet`,
`yucornetto/tokenizer_titok_bl128_vq8k_imagenet`: config.json + model.safetensors or pytorch_model.bin, decoder
included) load through the same `load_pretrained` and return a fuselip.tokenizers.titok_official.OfficialTiTok.

Where the files come from: a folder path is read as it is. A name ("owner/model") is looked up in the local Hugging
Face cache only; nothing is downloaded unless asked (`download=True`, or `python -m fuselip.pretrained --download
NAME`). A name that is not cached gives a one-line error saying how to fetch it on a machine with internet.

The mapping (`to_ours` / `to_official`) renames keys, it never changes numbers:
    transformer.resblocks.{i}.attn.in_proj_weight -> blocks.{i}.qkv.weight     (also .out_proj -> .proj,
    .mlp.c_fc -> .fc, .mlp.c_proj -> .fc_out; the same inside TiTok's `transformer.{i}`)
    mask_prediction_head.dense / .layer_norm / .bias -> mmm_dense / mmm_ln / mmm_bias
    mask_prediction_head.decoder.weight: the tied token embedding, checked equal and dropped
    image_tokenizer.model.* -> tokenizer.*  (the official TiTok's own names)
Every tensor must be there with the shape the config implies; otherwise the error names the first offending key
(missing, unexpected, or its two shapes).

What a released model does differently from this project's own FuseLIP (fuselip/model.py), as the reference does:
images are squashed to 256×256 (no centre crop) and tokenized by the official TiTok (fuselip/tokenizers/
titok_official.py), and every id 0 is padding: the BPE token "!" (id 0) inside a text is hidden from attention too
(`pad_id_is_padding`). tests/test_pretrained.py checks ids and embeddings against the reference implementation.

Modules: pretrained_files (finding and reading the files), pretrained_keys (key names, the key check),
pretrained_titok (the official TiTok, a tokenizer's release), pretrained_fuselip (ReleasedFuseLIP),
pretrained_random (a random-weight release for timing); this one loads either kind and is the command line.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import torch

from fuselip.pretrained_files import (CONFIG_FILE, OFFLINE_ENV, WEIGHTS_FILES, PretrainedError, locate, read_config,
                                      read_weights)
from fuselip.pretrained_fuselip import TRANSFORMER_SIZES, ReleasedFuseLIP, load_fuselip_release
from fuselip.pretrained_keys import (BLOCK_RENAMES, FUSELIP_BLOCK, HEAD_RENAMES, TIED_KEY, TITOK_BLOCK,
                                     TOKENIZER_PREFIX, check_keys, titok_key, to_official, to_ours)
from fuselip.pretrained_random import TITOK_SIZES, release_config, write_random_release
from fuselip.pretrained_titok import TOKENIZERS, TokenizerFacts, build_titok, load_tokenizer_release
from fuselip.tokenizers.titok_official import OfficialTiTok

__all__ = [
    "load_pretrained", "release_kind", "RELEASES", "sample_picture", "sample_embedding_norm", "main",
    "CONFIG_FILE", "WEIGHTS_FILES", "OFFLINE_ENV", "PretrainedError", "locate", "read_config", "read_weights",
    "BLOCK_RENAMES", "HEAD_RENAMES", "TIED_KEY", "TOKENIZER_PREFIX", "FUSELIP_BLOCK", "TITOK_BLOCK", "titok_key",
    "to_ours", "to_official", "check_keys",
    "TokenizerFacts", "TOKENIZERS", "build_titok", "load_tokenizer_release",
    "TRANSFORMER_SIZES", "ReleasedFuseLIP", "load_fuselip_release",
    "TITOK_SIZES", "release_config", "write_random_release",
]

RELEASES = ("chs20/FuseLIP-S-CC3M-MM", "chs20/FuseLIP-B-CC3M-MM", "chs20/FuseLIP-S-CC12M-MM", "chs20/FuseLIP-B-CC12M-MM")


def load_pretrained(name_or_path: str | os.PathLike, download: bool = False, cache_dir: str | os.PathLike | None = None,
                    bf16: bool = False, device: str | torch.device | None = None) -> ReleasedFuseLIP | OfficialTiTok:
    """A released FuseLIP (-> ReleasedFuseLIP) or official TiTok tokenizer (-> OfficialTiTok), by folder or name.

    download: fetch a name missing from the Hugging Face cache (never done otherwise).
    bf16: run the image tokenizer's encoder under bf16 autocast on CPU (about twice as fast; the code lookup stays
    float32, but a code can differ from the reference's float32 code where two codebook entries are nearly tied).
    """
    config_path, weights = locate(name_or_path, download=download, cache_dir=cache_dir)
    config = read_config(config_path)
    source = str(name_or_path)
    model: ReleasedFuseLIP | OfficialTiTok
    if "model_name" in config or "image_tokenizer" in config:
        model = load_fuselip_release(config, weights, source, bf16=bf16)
    elif isinstance(config.get("model"), dict) and "vq_model" in config["model"]:
        model = load_tokenizer_release(config, weights, source, bf16=bf16)
    else:
        raise PretrainedError(f"{config_path}: neither a FuseLIP release config (model_name, image_tokenizer) nor a "
                              f"TiTok one (model.vq_model); keys: {', '.join(sorted(config))}")
    return model.to(device) if device is not None else model


def release_kind(name_or_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str | None:
    """"fuselip" or "tokenizer" from a release's config.json alone (no weights read, nothing downloaded); None when
    the config cannot be found or read."""
    try:
        config = read_config(locate(name_or_path, cache_dir=cache_dir)[0])
    except PretrainedError:  # not there (yet): the known names still say what they are
        name = str(name_or_path)
        return "fuselip" if name in RELEASES else "tokenizer" if name in TOKENIZERS else None
    if "model_name" in config or "image_tokenizer" in config:
        return "fuselip"
    return "tokenizer" if isinstance(config.get("model"), dict) and "vq_model" in config["model"] else None


# ---------------------------------------------------------------------------------------------
# command line


def sample_picture():
    """A (200, 300, 3) colour ramp: something to encode when no image is at hand."""
    import numpy as np
    rows, cols = np.mgrid[0:200, 0:300]
    return np.stack([cols * 255 // 299, rows * 255 // 199, np.full_like(rows, 128)], axis=-1).astype(np.uint8)


def sample_embedding_norm(model) -> float:
    """The norm of one fused embedding of the sample picture and a short instruction (should be 1)."""
    return float(model.encode(images=[sample_picture()], texts=["rotate 90 degrees clockwise"])[0].norm())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuselip.pretrained", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--check", metavar="PATH_OR_NAME", help="load a release and print its size and a sample "
                                                               "embedding norm")
    group.add_argument("--download", metavar="NAME", help="fetch a release into the Hugging Face cache: "
                                                          f"{', '.join(RELEASES + tuple(TOKENIZERS))}")
    group.add_argument("--write-random", nargs=2, metavar=("SIZE", "FOLDER"),
                       help="write a release-format folder with random weights (SIZE: small or base), for timing")
    parser.add_argument("--cache-dir", default=None, help="Hugging Face cache folder (default: its usual place)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if args.write_random:
            print(write_random_release(args.write_random[1], args.write_random[0]))
            return 0
        target = args.check or args.download
        model = load_pretrained(target, download=bool(args.download), cache_dir=args.cache_dir)
    except (PretrainedError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if isinstance(model, ReleasedFuseLIP):
        print(model.describe())
        print(f"sample embedding norm (image + text): {sample_embedding_norm(model):.6f}")
    else:
        total = sum(p.numel() for p in model.parameters())
        codes = model.tokenize([sample_picture()])[0]
        print(f"{total / 1e6:.1f} M parameters; {model.extra_repr()}")
        print(f"sample picture: {len(codes)} codes, {len(set(codes.tolist()))} distinct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
