"""A released FuseLIP (chs20/FuseLIP-*): ReleasedFuseLIP, this project's FuseLIP with the official TiTok and the
reference's input handling (fuselip/pretrained.py says what differs), built from a release's config.json and
weights after checking every key and shape.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from fuselip import vocab
from fuselip.checkpoint import CheckpointError
from fuselip.config import FuseLIPConfig
from fuselip.model import FuseLIP
from fuselip.pretrained_files import PretrainedError, read_weights
from fuselip.pretrained_keys import TIED_KEY, TOKENIZER_PREFIX, check_keys, to_official, to_ours
from fuselip.pretrained_titok import TOKENIZERS, titok_config_from_weights
from fuselip.tokenizers.titok_official import OfficialTiTok

# the reference's transformer sizes, used when a config.json has no "text_config"
TRANSFORMER_SIZES = {"small": dict(width=384, heads=6, layers=12), "base": dict(width=512, heads=8, layers=12)}


class ReleasedFuseLIP(FuseLIP):
    """A released FuseLIP: our FuseLIP with the official TiTok and the reference's input handling (module docstring).
    Saving it in this project's checkpoint format is not supported: load it from its release again."""

    pad_id_is_padding = True
    tokenizer: OfficialTiTok  # FuseLIP's any `Tokenizer`, here always the released TiTok (its config, parameters)

    def __init__(self, encoder: FuseLIPConfig, tokenizer: OfficialTiTok, source: str = ""):
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


def _encoder_config(config: dict, where: str) -> FuseLIPConfig:
    """FuseLIPConfig from a release's config.json (its `text_config`, else its `transformer_size`)."""
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
        return FuseLIPConfig(width=int(text["width"]), layers=int(text["layers"]), heads=int(text["heads"]),
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
    titok_config = titok_config_from_weights(titok_state, name, TOKENIZERS[name], where + f" ({prefix}*)")
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

