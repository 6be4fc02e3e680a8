"""Discrete image tokenizers: an image becomes N integer codes, and codes become an image again.

    build_tokenizer(TokenizerConfig) -> GridTokenizer (2-D VQ-VAE) | PatchTokenizer (k-means codes of pixel patches)
                                      | TiTokTokenizer (1-D, TiTok-style; trained on a grid's proxy codes
                                        when tokenizer.proxy_checkpoint is set)
    tok.encode(x (B, 3, S, S) in [0, 1]) -> (B, N) codes;  tok.decode(codes) -> images;  tok(x) -> (recon, codes, losses)
    load_tokenizer(setting, TokenizerConfig) -> the tokenizer a run's `tokenizer_checkpoint` names (or "untrained")

Both are checkpoint kinds ("tokenizer-grid", "tokenizer-titok"), so `fuselip.load_model(folder)` loads them.
"""
from fuselip.checkpoint import checkpoint_candidates, find_checkpoint, load_model_as
from fuselip.config import ConfigError, TokenizerConfig
from fuselip.tokenizers.base import ImageTokenizer
from fuselip.tokenizers.grid import GridTokenizer
from fuselip.tokenizers.patch import PatchTokenizer
from fuselip.tokenizers.influence import influence_maps
from fuselip.tokenizers.quantizer import VectorQuantizer, codebook_stats
from fuselip.tokenizers.titok import TiTokTokenizer

KINDS = {"grid": GridTokenizer, "patch": PatchTokenizer, "titok": TiTokTokenizer}
UNTRAINED_TOKENIZER = "untrained"  # the tokenizer_checkpoint that asks for a fresh, untrained tokenizer


def build_tokenizer(config: TokenizerConfig) -> ImageTokenizer:
    if config.kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {config.kind!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[config.kind](config)


def load_tokenizer(setting: str, config: TokenizerConfig) -> ImageTokenizer:
    """The frozen image tokenizer that a run's `tokenizer_checkpoint` setting names: a checkpoint folder (a relative
    path is looked up in the current folder, then at the repository root, where the presets' paths point), or
    "untrained" for a fresh tokenizer built from `config` (tests, smoke runs, stand-ins). A folder that is not there
    is a ConfigError, never a silent untrained tokenizer."""
    if setting == UNTRAINED_TOKENIZER:
        return build_tokenizer(config)
    folder = find_checkpoint(setting) if setting else None
    if folder is None:
        looked = " nor at ".join(str(f.resolve()) for f in checkpoint_candidates(setting))
        where = f"no checkpoint folder at {looked}" if setting else "names no checkpoint"
        raise ConfigError(f"tokenizer_checkpoint={setting!r}: {where}; name a tokenizer checkpoint folder "
                          f"(e.g. checkpoints/tokenizer-grid-tiny) or {UNTRAINED_TOKENIZER!r} for an untrained "
                          "tokenizer")
    return load_model_as(folder, ImageTokenizer)


__all__ = ["build_tokenizer", "load_tokenizer", "UNTRAINED_TOKENIZER", "ImageTokenizer", "GridTokenizer",
           "PatchTokenizer", "TiTokTokenizer", "VectorQuantizer", "codebook_stats", "influence_maps", "KINDS"]
