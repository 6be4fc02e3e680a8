"""Text tokenizer: open_clip's CLIP BPE `SimpleTokenizer`, without sot/eot (vocab.py adds those)."""
from __future__ import annotations

import functools

from open_clip.tokenizer import SimpleTokenizer

# BPE runs on at most this many characters per token we keep; a 10,000-character text is cut first.
CHARS_PER_TOKEN_BOUND = 16


@functools.lru_cache(maxsize=1)
def _simple_tokenizer() -> SimpleTokenizer:
    return SimpleTokenizer()


class TextTokenizer:
    """`encode(text) -> list[int]` of BPE ids (no sot/eot), memoised because worlds repeat phrases."""

    def __init__(self, max_tokens: int = 256):
        self.max_tokens = max_tokens
        self._encode = functools.lru_cache(maxsize=65536)(self._encode_uncached)

    def _encode_uncached(self, text: str) -> tuple[int, ...]:
        text = text[: self.max_tokens * CHARS_PER_TOKEN_BOUND]
        return tuple(_simple_tokenizer().encode(text)[: self.max_tokens])

    def encode(self, text: str | None) -> list[int]:
        if text is None:
            return []
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return list(self._encode(text))

    def decode(self, ids) -> str:
        return _simple_tokenizer().decode([int(i) for i in ids])

    def token_strings(self, ids) -> list[str]:
        """One readable string per BPE id (for attention plots)."""
        decoder = _simple_tokenizer().decoder
        return [decoder[int(i)].replace("</w>", "") for i in ids]


@functools.lru_cache(maxsize=1)
def default_tokenizer() -> TextTokenizer:
    return TextTokenizer()
