"""The names of a release's weights: official <-> ours (`to_ours`, `to_official`, `titok_key`), and the check that a
state dict holds every key the model needs, at its shape (`check_keys`). Renaming never changes a number.
"""
from __future__ import annotations

import re

import torch

from fuselip.pretrained_files import PretrainedError

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

