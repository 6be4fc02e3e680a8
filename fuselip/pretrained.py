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
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from fuselip import vocab
from fuselip.checkpoint import CheckpointError
from fuselip.config import EncoderConfig
from fuselip.model import FuseLIP
from fuselip.tokenizers.titok_official import HEAD_DIM, OfficialTiTok, OfficialTiTokConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")  # FuseLIP releases: the second; TiTok's: either, the
                                                             # safetensors first (no pickle at all)
OFFLINE_ENV = "HF_HUB_OFFLINE"

RELEASES = ("chs20/FuseLIP-S-CC3M-MM", "chs20/FuseLIP-B-CC3M-MM", "chs20/FuseLIP-S-CC12M-MM", "chs20/FuseLIP-B-CC12M-MM")


@dataclass(frozen=True)
class TokenizerFacts:
    """What a FuseLIP release's config.json does not say about its tokenizer, known from the tokenizer's release."""
    l2_codes: bool
    legacy: bool


TOKENIZERS = {
    "yucornetto/tokenizer_titok_s128_imagenet": TokenizerFacts(l2_codes=True, legacy=True),
    "yucornetto/tokenizer_titok_bl128_vq8k_imagenet": TokenizerFacts(l2_codes=False, legacy=False),
}
# the reference's transformer sizes, used when a config.json has no "text_config"
TRANSFORMER_SIZES = {"small": dict(width=384, heads=6, layers=12), "base": dict(width=512, heads=8, layers=12)}
# TiTok's ViT sizes by name (width, blocks, heads); loading reads the sizes off the weights, these make random ones
TITOK_SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}


class PretrainedError(CheckpointError):
    """A released model that cannot be found or does not fit its config; the message is one line."""


# ---------------------------------------------------------------------------------------------
# key names: official <-> ours

BLOCK_RENAMES = (("attn.in_proj_weight", "qkv.weight"), ("attn.in_proj_bias", "qkv.bias"),
                 ("attn.out_proj.", "proj."), ("mlp.c_fc.", "fc."), ("mlp.c_proj.", "fc_out."))
HEAD_RENAMES = (("mask_prediction_head.dense.", "mmm_dense."), ("mask_prediction_head.layer_norm.", "mmm_ln."),
                ("mask_prediction_head.bias", "mmm_bias"))
TIED_KEY = "mask_prediction_head.decoder.weight"
TOKENIZER_PREFIX = ("image_tokenizer.model.", "tokenizer.")
FUSELIP_BLOCK = (re.compile(r"^transformer\.resblocks\.(\d+)\.(.*)$"), re.compile(r"^blocks\.(\d+)\.(.*)$"))
TITOK_BLOCK = re.compile(r"^((?:encoder|decoder)\.transformer\.\d+\.)(.*)$")


def _rename_block(rest: str, official_to_ours: bool) -> str:
    """A name inside one transformer block: `attn.in_proj_weight` <-> `qkv.weight`, …"""
    for official, ours in BLOCK_RENAMES:
        src, dst = (official, ours) if official_to_ours else (ours, official)
        if rest.startswith(src):
            return dst + rest[len(src):]
    return rest


def titok_key(key: str, official_to_ours: bool = True) -> str:
    """A TiTok key (no prefix), official <-> ours: only the names inside a block differ."""
    m = TITOK_BLOCK.match(key)
    return m.group(1) + _rename_block(m.group(2), official_to_ours) if m else key


def to_ours(key: str) -> str:
    """An official FuseLIP state-dict key -> ours."""
    if key.startswith(TOKENIZER_PREFIX[0]):
        return TOKENIZER_PREFIX[1] + titok_key(key[len(TOKENIZER_PREFIX[0]):])
    if m := FUSELIP_BLOCK[0].match(key):
        return f"blocks.{m.group(1)}.{_rename_block(m.group(2), True)}"
    for official, ours in HEAD_RENAMES:
        if key.startswith(official):
            return ours + key[len(official):]
    return key  # token_embedding, positional_embedding, ln_final, logit_scale, logit_bias


def to_official(key: str) -> str:
    """One of our ReleasedFuseLIP keys -> the official name (the inverse of `to_ours`)."""
    if key.startswith(TOKENIZER_PREFIX[1]):
        return TOKENIZER_PREFIX[0] + titok_key(key[len(TOKENIZER_PREFIX[1]):], official_to_ours=False)
    if m := FUSELIP_BLOCK[1].match(key):
        return f"transformer.resblocks.{m.group(1)}.{_rename_block(m.group(2), False)}"
    for official, ours in HEAD_RENAMES:
        if key.startswith(ours):
            return official + key[len(ours):]
    return key


# ---------------------------------------------------------------------------------------------
# finding the files


def locate(name_or_path: str | os.PathLike, weights: Sequence[str] | None = None, download: bool = False,
           cache_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(config.json, weights file) of a release: from a folder, else from the Hugging Face cache (or the hub when
    `download`). `weights`: the candidate file names, the first one found wins."""
    candidates = list(weights or WEIGHTS_FILES)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        found = [path / name for name in candidates if (path / name).is_file()]
        if not (path / CONFIG_FILE).is_file() or not found:
            has = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
            raise PretrainedError(f"{path}: a released model folder needs {CONFIG_FILE} and one of "
                                  f"{', '.join(candidates)}; it has {has}")
        return path / CONFIG_FILE, found[0]
    name = str(name_or_path)
    if path.exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+", name) or name.startswith("."):
        raise PretrainedError(f"{name}: no such folder, and not a Hugging Face model name (owner/name)")
    return _from_hub(name, candidates, download, cache_dir)


def _from_hub(name: str, candidates: list[str], download: bool, cache_dir) -> tuple[Path, Path]:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise PretrainedError(f"{name}: reading the Hugging Face cache needs huggingface_hub: "
                              f"pip install 'fuselip[hub]' (or pass a folder)") from None
    how = (f"on a machine with internet run `python -m fuselip.pretrained --download {name}` (or pass the folder "
           f"holding {CONFIG_FILE} + {' or '.join(candidates)})")
    if download and os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "on", "yes", "true"):
        raise PretrainedError(f"{name}: download asked for, but {OFFLINE_ENV} is set: unset it, or {how}")

    def fetch(filename: str) -> Path:
        return Path(hf_hub_download(name, filename, cache_dir=cache_dir, local_files_only=not download))

    where = f"the Hugging Face cache ({cache_dir or _default_cache()})"
    try:
        config = fetch(CONFIG_FILE)
    except Exception as e:  # LocalEntryNotFoundError, RepositoryNotFoundError, network errors, …
        if not download:
            raise PretrainedError(f"{name} is not in {where} and downloading was not asked for; {how}") from None
        raise PretrainedError(f"{name}: could not download {CONFIG_FILE} ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    for filename in candidates:
        try:
            return config, fetch(filename)
        except Exception:
            continue
    raise PretrainedError(f"{name}: {where} has its {CONFIG_FILE} but none of {', '.join(candidates)}"
                          + ("" if download else f"; {how}"))


def _default_cache() -> str:
    try:
        from huggingface_hub import constants
        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"


def read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PretrainedError(f"{path}: unreadable config ({e})") from None
    if not isinstance(config, dict):
        raise PretrainedError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from pytorch_model.bin (torch.load, weights_only: no code runs) or model.safetensors."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PretrainedError(f"{path}: not a readable weights file ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint wraps the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedError(f"{path}: expected a state dict (names -> tensors)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


# ---------------------------------------------------------------------------------------------
# checking a state dict against the model it should fill


def check_keys(expected: dict[str, tuple], found: dict[str, torch.Tensor], where: str) -> None:
    """`expected`: official key -> shape. Raises on the first missing key, then the first unexpected one, then the
    first shape that differs, in one line that names the key (and both shapes)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    more = lambda items: f" (and {len(items) - 1} more)" if len(items) > 1 else ""  # noqa: E731
    if missing:
        raise PretrainedError(f"{where}: missing key {missing[0]!r} (shape {tuple(expected[missing[0]])}){more(missing)}")
    if unexpected:
        raise PretrainedError(f"{where}: unexpected key {unexpected[0]!r} (shape {tuple(found[unexpected[0]].shape)})"
                              f"{more(unexpected)}")
    wrong = [k for k in expected if tuple(found[k].shape) != tuple(expected[k])]
    if wrong:
        k = wrong[0]
        raise PretrainedError(f"{where}: key {k!r} has shape {tuple(found[k].shape)} in the file, the config implies "
                              f"{tuple(expected[k])}{more(wrong)}")


# ---------------------------------------------------------------------------------------------
# the official TiTok


def _block_count(state: dict, prefix: str) -> int:
    indices = {int(m.group(1)) for k in state for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    return max(indices) + 1 if indices else 0


def _titok_config(state: dict, name: str, facts: TokenizerFacts, where: str, **decoder) -> OfficialTiTokConfig:
    """The encoder's sizes, read off its weights (official names, no prefix)."""
    for key in ("latent_tokens", "encoder.patch_embed.weight", "encoder.positional_embedding",
                "quantize.embedding.weight"):
        if key not in state:
            raise PretrainedError(f"{where}: missing key {key!r}: not an official TiTok encoder")
    tokens, width = state["latent_tokens"].shape
    patch = state["encoder.patch_embed.weight"].shape[-1]
    grid = round((state["encoder.positional_embedding"].shape[0] - 1) ** 0.5)
    codebook, code_dim = state["quantize.embedding.weight"].shape
    heads = max(1, width // HEAD_DIM)
    if width % heads:
        raise PretrainedError(f"{where}: TiTok width {width} does not split into {heads} heads of {HEAD_DIM}")
    return OfficialTiTokConfig(name=name, image_size=grid * patch, patch_size=patch, width=width,
                               layers=_block_count(state, "encoder.transformer."), heads=heads,
                               num_latent_tokens=tokens, code_dim=code_dim, codebook_size=codebook,
                               l2_codes=facts.l2_codes, legacy=facts.legacy, **decoder)


def build_titok(config: OfficialTiTokConfig, state: dict[str, torch.Tensor], where: str) -> OfficialTiTok:
    """An OfficialTiTok filled with `state` (official names, no prefix), after checking every key and shape."""
    titok = OfficialTiTok(config)
    expected = {titok_key(k, official_to_ours=False): v.shape for k, v in titok.state_dict().items()}
    check_keys(expected, state, where)
    titok.load_state_dict({titok_key(k): v for k, v in state.items()})
    return titok.requires_grad_(False).eval()


def load_tokenizer_release(config: dict, weights: Path, name: str, bf16: bool = False) -> OfficialTiTok:
    """A tokenizer release (yucornetto/tokenizer_titok_*): config.json is TiTok's own training config, which gives the
    flags (l2 codes, legacy reshape, vector quantisation); the sizes are read off the weights, as for FuseLIP."""
    where = str(weights)
    vq = config["model"]["vq_model"] if isinstance(config["model"].get("vq_model"), dict) else {}
    if vq.get("quantize_mode", "vq") != "vq":
        raise PretrainedError(f"{where}: quantize_mode {vq['quantize_mode']!r}: only a vector-quantised TiTok (vq) "
                              "has codes")
    state = read_weights(weights)
    state = {k: v for k, v in state.items() if not k.startswith("pixel_encoder.")}  # MaskGIT's encoder: never used
    facts = TokenizerFacts(l2_codes=bool(vq.get("use_l2_norm", False)), legacy=bool(vq.get("is_legacy", True)))
    decoder = {}
    if "decoder.latent_token_positional_embedding" in state:  # the decoder's own weights are in the file
        width = state["decoder.latent_token_positional_embedding"].shape[1]
        decoder = dict(decoder_width=width, decoder_layers=_block_count(state, "decoder.transformer."),
                       decoder_heads=max(1, width // HEAD_DIM),
                       pixel_decoder=facts.legacy and any(k.startswith("pixel_decoder.") for k in state))
    titok_config = _titok_config(state, name, facts, where, **decoder)
    titok_config.encode_bf16 = bf16
    return build_titok(titok_config, state, where)


# ---------------------------------------------------------------------------------------------
# the released FuseLIP


class ReleasedFuseLIP(FuseLIP):
    """A released FuseLIP: our FuseLIP with the official TiTok and the reference's input handling (module docstring).
    Saving it in this project's checkpoint format is not supported: load it from its release again."""

    pad_id_is_padding = True

    def __init__(self, encoder: EncoderConfig, tokenizer: OfficialTiTok, source: str = ""):
        super().__init__(encoder, tokenizer)
        self.source = source
        self.token_seen.fill_(True)  # every row of a released table was trained: nothing to compact or warn about

    @torch.no_grad()
    def encode(self, images: Sequence | None = None, texts: Sequence[str | None] | None = None,
               batch_size: int = 64) -> torch.Tensor:
        """As FuseLIP.encode (the encode API); images are squashed to 256×256 first, as the reference does."""
        if images is not None:
            images = [self.tokenizer.prepare(image) if image is not None else None for image in images]
        return super().encode(images, texts, batch_size)

    def config_dict(self) -> dict:
        raise CheckpointError(f"a released FuseLIP ({self.source or 'load_pretrained'}) is not saved in this project's "
                              "checkpoint format: load it again with fuselip.pretrained.load_pretrained")

    def describe(self) -> str:
        """One line: where it came from and its sizes."""
        total = sum(p.numel() for p in self.parameters())
        titok = sum(p.numel() for p in self.tokenizer.parameters())
        c, t = self.config, self.tokenizer.config
        return (f"{self.source}: {total / 1e6:.1f} M parameters (encoder {(total - titok) / 1e6:.1f} M: width {c.width}, "
                f"{c.layers} layers, {c.heads} heads; TiTok {titok / 1e6:.1f} M: {t.width} wide, {t.layers} blocks, "
                f"{self.tokenizer.num_tokens} tokens of {t.image_size} px, {t.codebook_size} codes of {t.code_dim} "
                f"dimensions, {'legacy' if t.legacy else 'no legacy'} reshape)")


def _encoder_config(config: dict, where: str) -> EncoderConfig:
    """EncoderConfig from a release's config.json (its `text_config`, else its `transformer_size`)."""
    if config.get("use_eoi"):
        raise PretrainedError(f"{where}: use_eoi=true (an end-of-image token) is not a layout of the released models "
                              "and not one this project's vocabulary has")
    if not config.get("mask_pad", False):
        raise PretrainedError(f"{where}: mask_pad=false: that model attends to padding, which this project's encoder "
                              "never does (the released models have mask_pad=true)")
    if not config.get("mlm_probability", 0) > 0:
        raise PretrainedError(f"{where}: mlm_probability=0: without the [MASK] id the image ids start at 49408, not "
                              f"{vocab.IMAGE_OFFSET} as in this project's vocabulary (and the released models)")
    text = config.get("text_config") or TRANSFORMER_SIZES.get(config.get("transformer_size", ""))
    if not text:
        raise PretrainedError(f"{where}: neither a text_config nor a known transformer_size "
                              f"({', '.join(TRANSFORMER_SIZES)}); got {config.get('transformer_size')!r}")
    try:
        return EncoderConfig(width=int(text["width"]), layers=int(text["layers"]), heads=int(text["heads"]),
                             mlp_ratio=float(text.get("mlp_ratio", 4.0)),
                             context_length=int(config.get("context_length") or text.get("context_length") or 180),
                             mmm_probability=float(config["mlm_probability"]))
    except (KeyError, TypeError, ValueError) as e:
        raise PretrainedError(f"{where}: text_config is incomplete ({e})") from None


def load_fuselip_release(config: dict, weights: Path, source: str, bf16: bool = False) -> ReleasedFuseLIP:
    where = str(weights)
    name = config.get("image_tokenizer", "")
    if name not in TOKENIZERS:
        raise PretrainedError(f"{where}: image_tokenizer {name!r} is not one of the released models' tokenizers "
                              f"({', '.join(TOKENIZERS)})")
    encoder = _encoder_config(config, where)
    state = read_weights(weights)
    prefix = TOKENIZER_PREFIX[0]
    titok_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    titok_config = _titok_config(titok_state, name, TOKENIZERS[name], where + f" ({prefix}*)")
    titok_config.encode_bf16 = bf16
    model = ReleasedFuseLIP(encoder, OfficialTiTok(titok_config), source)
    text = config.get("text_config") or {}
    if "vocab_size" in text and int(text["vocab_size"]) != model.vocab_size:
        raise PretrainedError(f"{where}: text_config.vocab_size {text['vocab_size']} != 49,409 text ids + "
                              f"{titok_config.codebook_size} image codes = {model.vocab_size}")

    ours = model.state_dict()
    expected = {to_official(k): v.shape for k, v in ours.items() if k != "token_seen"}
    expected[TIED_KEY] = ours["token_embedding.weight"].shape
    check_keys(expected, state, where)
    if not torch.equal(state[TIED_KEY], state["token_embedding.weight"]):
        raise PretrainedError(f"{where}: {TIED_KEY} differs from token_embedding.weight; the MMM head's output matrix "
                              "is tied to the token embedding in FuseLIP")
    mapped = {to_ours(k): v for k, v in state.items() if k != TIED_KEY}
    mapped["token_seen"] = ours["token_seen"]
    model.load_state_dict(mapped)
    return model.requires_grad_(False).eval()


def load_pretrained(name_or_path: str | os.PathLike, download: bool = False, cache_dir: str | os.PathLike | None = None,
                    bf16: bool = False, device: str | torch.device | None = None):
    """A released FuseLIP (-> ReleasedFuseLIP) or official TiTok tokenizer (-> OfficialTiTok), by folder or name.

    download: fetch a name missing from the Hugging Face cache (never done otherwise).
    bf16: run the image tokenizer's encoder under bf16 autocast on CPU (about twice as fast; the code lookup stays
    float32, but a code can differ from the reference's float32 code where two codebook entries are nearly tied).
    """
    config_path, weights = locate(name_or_path, download=download, cache_dir=cache_dir)
    config = read_config(config_path)
    source = str(name_or_path)
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
# a release-format folder with random weights (timing, tests): never a substitute for the real weights


def release_config(size: str, tokenizer: str, encoder: EncoderConfig, vocab_size: int) -> dict:
    """A config.json in the layout the reference writes (its FuseCLIP.get_config)."""
    return {"model_name": "fuse-clip-titok", "mask_pad": True, "image_tokenizer": tokenizer, "use_eoi": False,
            "context_length": encoder.context_length, "transformer_size": size, "mlm_probability": 0.1,
            "rand_repl_probability": 0.0,
            "text_config": {"context_length": encoder.context_length, "vocab_size": vocab_size, "width": encoder.width,
                            "heads": encoder.heads, "layers": encoder.layers, "mlp_ratio": encoder.mlp_ratio,
                            "ls_init_value": None, "no_causal_mask": True, "pad_id": vocab.PAD, "proj_bias": False,
                            "output_tokens": False, "pool_type": "eot"}}


def write_random_release(folder: str | os.PathLike, size: str = "base", seed: int = 0) -> Path:
    """Writes a FuseLIP-S ("small") or -B ("base") shaped release (config.json + pytorch_model.bin, random weights,
    ~0.4 / 0.6 GB) into `folder`. For timing only: its embeddings mean nothing."""
    if size not in TRANSFORMER_SIZES:
        raise ValueError(f"size must be one of {', '.join(TRANSFORMER_SIZES)}, got {size!r}")
    name = next(n for n, f in TOKENIZERS.items() if f.legacy == (size == "small"))
    width, layers, heads = TITOK_SIZES[size]
    titok = OfficialTiTokConfig(name=name, width=width, layers=layers, heads=heads,
                                code_dim=12 if size == "small" else 64, codebook_size=4096 if size == "small" else 8192,
                                l2_codes=size == "small", legacy=size == "small")
    encoder = EncoderConfig(**TRANSFORMER_SIZES[size], context_length=180)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        tokenizer = OfficialTiTok(titok)
        for param in tokenizer.parameters():  # open_clip-like scales: LayerNorms 1/0, everything else N(0, 0.02)
            torch.nn.init.normal_(param, std=0.02)
        for module in tokenizer.modules():
            if isinstance(module, torch.nn.LayerNorm):
                torch.nn.init.ones_(module.weight)
                torch.nn.init.zeros_(module.bias)
        model = ReleasedFuseLIP(encoder, tokenizer)
    state = {to_official(k): v for k, v in model.state_dict().items() if k != "token_seen"}
    state[TIED_KEY] = state["token_embedding.weight"]  # tied: saved once, as torch.save keeps shared storage
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = release_config(size, name, encoder, model.vocab_size)
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    torch.save(state, folder / "pytorch_model.bin")
    return folder


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
