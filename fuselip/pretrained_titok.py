"""The official TiTok of a release: its sizes read off the weights, filled and checked key by key; and a tokenizer's
own release (yucornetto/tokenizer_titok_*), loaded as a fuselip.tokenizers.titok_official.OfficialTiTok.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from fuselip.pretrained_files import PretrainedError, read_weights
from fuselip.pretrained_keys import check_keys, titok_key
from fuselip.tokenizers.titok_official import HEAD_DIM, OfficialTiTok, OfficialTiTokConfig


@dataclass(frozen=True)
class TokenizerFacts:
    """What a FuseLIP release's config.json does not say about its tokenizer, known from the tokenizer's release."""
    l2_codes: bool
    legacy: bool


TOKENIZERS = {
    "yucornetto/tokenizer_titok_s128_imagenet": TokenizerFacts(l2_codes=True, legacy=True),
    "yucornetto/tokenizer_titok_bl128_vq8k_imagenet": TokenizerFacts(l2_codes=False, legacy=False),
}


def _block_count(state: dict, prefix: str) -> int:
    indices = {int(m.group(1)) for k in state for m in [re.match(re.escape(prefix) + r"(\d+)\.", k)] if m}
    return max(indices) + 1 if indices else 0


def titok_config_from_weights(state: dict, name: str, facts: TokenizerFacts, where: str,
                              **decoder) -> OfficialTiTokConfig:
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
    titok_config = titok_config_from_weights(state, name, facts, where, **decoder)
    titok_config.encode_bf16 = bf16
    return build_titok(titok_config, state, where)

