"""Discrete image tokenizers: an image becomes N integer codes, and codes become an image again.

    build_tokenizer(TokenizerConfig) -> GridTokenizer (2-D VQ-VAE) | PatchTokenizer (k-means codes of pixel patches)
                                      | TiTokTokenizer (1-D, TiTok-style; trained on a grid's proxy codes
                                        when tokenizer.proxy_checkpoint is set)
    tok.encode(x (B, 3, S, S) in [0, 1]) -> (B, N) codes;  tok.decode(codes) -> images;  tok(x) -> (recon, codes, losses)

Both are checkpoint kinds ("tokenizer-grid", "tokenizer-titok"), so `fuselip.load_model(folder)` loads them.
"""
from fuselip.config import TokenizerConfig
from fuselip.tokenizers.base import ImageTokenizer
from fuselip.tokenizers.grid import GridTokenizer
from fuselip.tokenizers.patch import PatchTokenizer
from fuselip.tokenizers.influence import influence_maps
from fuselip.tokenizers.quantizer import VectorQuantizer, codebook_stats
from fuselip.tokenizers.titok import TiTokTokenizer

KINDS = {"grid": GridTokenizer, "patch": PatchTokenizer, "titok": TiTokTokenizer}


def build_tokenizer(config: TokenizerConfig) -> ImageTokenizer:
    if config.kind not in KINDS:
        raise ValueError(f"unknown tokenizer kind {config.kind!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[config.kind](config)


__all__ = ["build_tokenizer", "ImageTokenizer", "GridTokenizer", "PatchTokenizer", "TiTokTokenizer", "VectorQuantizer",
           "codebook_stats", "influence_maps", "KINDS"]
