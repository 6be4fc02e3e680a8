"""A release-format folder with random weights (timing, tests): never a substitute for the real weights.

`write_random_release` writes a FuseLIP-S or -B shaped config.json + pytorch_model.bin that fuselip.pretrained
loads like a real release (`python -m fuselip.pretrained --write-random SIZE FOLDER`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from fuselip import vocab
from fuselip.config import FuseLIPConfig
from fuselip.pretrained_files import CONFIG_FILE
from fuselip.pretrained_fuselip import TRANSFORMER_SIZES, ReleasedFuseLIP
from fuselip.pretrained_keys import TIED_KEY, to_official
from fuselip.pretrained_titok import TOKENIZERS
from fuselip.tokenizers.titok_official import OfficialTiTok, OfficialTiTokConfig

# TiTok's ViT sizes by name (width, blocks, heads); loading reads the sizes off the weights, these make random ones
TITOK_SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}


def release_config(size: str, tokenizer: str, encoder: FuseLIPConfig, vocab_size: int) -> dict:
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
    sizes = TRANSFORMER_SIZES[size]
    encoder = FuseLIPConfig(width=sizes["width"], layers=sizes["layers"], heads=sizes["heads"], context_length=180)
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

