"""Pairs -> padded id tensors, with image tokens computed once per image (never once per step).

The reference implementation runs the frozen image tokenizer on every image at every training step. Here a
`TokenCache` maps each image's content hash (fuselip.data.types.image_key) to its codes: the engine
tokenises the whole training set once up front (`add_pairs`, batches of 256), and can keep the result on disk
(`cache_file` names it by the tokenizer's weights and the data config; safetensors, no pickle).

`collate_pairs` returns, for B pairs:
    left_ids  (B, Tl) long   `[img…, sot, text…, eot, pad…]` per left side (fuselip/vocab.py)
    right_ids (B, Tr) long
    right_key (B,) int64     content hash of each right side (equal content -> equal key)
    right_dup (B, B) bool    right_key[i] == right_key[j]: identical targets count as positives of each other
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fuselip import vocab
from fuselip.contract import Tokenizer, saved_tensors
from fuselip.data.types import Pair, Side, image_key
from fuselip.images import preprocess, to_tensor
from fuselip.text import default_tokenizer

BULK_BATCH = 256  # images per tokenizer call when pre-tokenising


def _as_array(image, size: int) -> np.ndarray:
    """Any image-like object -> (size, size, 3) uint8 (skips the work when it already is one)."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape == (size, size, 3):
        return image
    return preprocess(image, size)


def tokenizer_fingerprint(tokenizer: Tokenizer) -> str:
    """Hash of a tokenizer's config and weights (its export where it has one, fuselip.contract.saved_tensors): the
    on-disk cache is valid only for these exact weights."""
    h = hashlib.sha256(json.dumps(tokenizer.config_dict(), sort_keys=True).encode())
    tensors = saved_tensors(tokenizer)
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().flatten().clone().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class TokenCache:
    """image content hash -> (N,) codes of the frozen tokenizer."""

    def __init__(self, tokenizer: Tokenizer, batch_size: int = BULK_BATCH):
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.size = tokenizer.config.image_size
        self.codes: dict[bytes, np.ndarray] = {}
        self._fingerprint = tokenizer_fingerprint(tokenizer)  # of the weights the cached codes come from

    def __len__(self) -> int:
        return len(self.codes)

    def fingerprint(self) -> str:
        return self._fingerprint

    def is_valid(self) -> bool:
        """False once the tokenizer's weights differ from those the cache was built with."""
        return tokenizer_fingerprint(self.tokenizer) == self._fingerprint

    def add(self, images: Sequence, progress: bool = False) -> list[bytes]:
        """Tokenises every image not yet cached (in batches); returns the keys of all `images`."""
        arrays = [_as_array(image, self.size) for image in images]
        keys = [image_key(a) for a in arrays]
        todo: dict[bytes, np.ndarray] = {}
        for key, array in zip(keys, arrays):
            if key not in self.codes and key not in todo:
                todo[key] = array
        if todo:
            items = list(todo.items())
            starts = range(0, len(items), self.batch_size)
            if progress:
                from tqdm import tqdm
                starts = tqdm(starts, desc="tokenising images", unit="batch", leave=False)
            for start in starts:
                chunk = items[start:start + self.batch_size]
                codes = self.tokenizer.encode(to_tensor([a for _, a in chunk])).cpu().numpy().astype(np.int32)
                for (key, _), row in zip(chunk, codes):
                    self.codes[key] = row
        return keys

    def lookup(self, images: Sequence) -> list[np.ndarray]:
        """Codes for each image (tokenising the ones not cached yet)."""
        return [self.codes[k] for k in self.add(images)]

    def add_pairs(self, pairs: Sequence[Pair], progress: bool = False) -> None:
        """Bulk pre-tokenisation of every image on either side of `pairs`."""
        images = [side.image for p in pairs for side in (p.left, p.right) if side.image is not None]
        self.add(images, progress=progress)

    # ---- on disk
    def save(self, path: str | Path) -> None:
        keys = sorted(self.codes)
        n_tokens = len(self.codes[keys[0]]) if keys else 0
        tensors = {"keys": torch.from_numpy(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), -1).copy())
                   if keys else torch.zeros(0, 16, dtype=torch.uint8),
                   "codes": torch.from_numpy(np.stack([self.codes[k] for k in keys]))
                   if keys else torch.zeros(0, n_tokens, dtype=torch.int32)}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata={"tokenizer": self.fingerprint()})
        tmp.replace(path)

    def load(self, path: str | Path) -> bool:
        """Adds the entries of a cache file written for this exact tokenizer; False if absent or stale."""
        from safetensors import safe_open
        path = Path(path)
        if not path.exists():
            return False
        with safe_open(str(path), "pt") as f:
            if (f.metadata() or {}).get("tokenizer") != self.fingerprint():
                return False
        tensors = load_file(str(path))
        for key, row in zip(tensors["keys"].numpy(), tensors["codes"].numpy()):
            self.codes[key.tobytes()] = row
        return True


# DataConfig fields added after token caches were first written: hashed only when set, so that a config that
# leaves them at their default keeps the cache file it always had (an unset field changes no pixel)
HASHED_WHEN_SET = ("objects",)


def cache_file(root: str | Path, cache: TokenCache, data_config) -> Path:
    """Where the token cache of a (tokenizer, data config) pair lives: both hashes are in the name."""
    data = dict(data_config if isinstance(data_config, dict) else __import__("dataclasses").asdict(data_config))
    for key in HASHED_WHEN_SET:
        if not data.get(key, True):
            del data[key]
    data_hash = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    return Path(root) / f"image-tokens-{cache.fingerprint()[:12]}-{data_hash.hexdigest()[:12]}.safetensors"


# ---------------------------------------------------------------------------------------------
# sides -> id sequences


def side_sequences(images: Sequence, texts: Sequence[str | None], cache: TokenCache,
                   context_length: int) -> list[list[int]]:
    """Per sample (image or None, text or None) -> `[img…, sot, text…, eot]` id lists."""
    with_image = [i for i, image in enumerate(images) if image is not None]
    codes = dict(zip(with_image, cache.lookup([images[i] for i in with_image])))
    text_tokenizer = default_tokenizer()
    return [vocab.build_sequence(codes.get(i), text_tokenizer.encode(text) if text else [], context_length)
            for i, text in enumerate(texts)]


def content_key(side: Side) -> int:
    """64-bit signed hash of a side's content (image pixels + text)."""
    return int.from_bytes(hashlib.blake2b(side.key(), digest_size=8).digest(), "little", signed=True)


def collate_pairs(pairs: Sequence[Pair], cache: TokenCache, context_length: int) -> dict[str, torch.Tensor]:
    if not pairs:
        raise ValueError("collate_pairs needs at least one pair")
    left = side_sequences([p.left.image for p in pairs], [p.left.text for p in pairs], cache, context_length)
    right = side_sequences([p.right.image for p in pairs], [p.right.text for p in pairs], cache, context_length)
    right_key = torch.tensor([content_key(p.right) for p in pairs], dtype=torch.long)  # (B,)
    return {"left_ids": vocab.pad_sequences(left),                                     # (B, Tl)
            "right_ids": vocab.pad_sequences(right),                                   # (B, Tr)
            "right_key": right_key,
            "right_dup": right_key[:, None] == right_key[None, :]}                     # (B, B)


def training_ids(pairs: Sequence[Pair], cache: TokenCache, context_length: int) -> torch.Tensor:
    """Every id that the sequences of `pairs` contain (sorted, unique). Images must already be cached."""
    ids: set[int] = {vocab.SOT, vocab.EOT}
    text_tokenizer = default_tokenizer()
    texts = {side.text for p in pairs for side in (p.left, p.right) if side.text}
    for text in texts:
        ids.update(text_tokenizer.encode(text)[:context_length])
    codes = cache.lookup([side.image for p in pairs for side in (p.left, p.right) if side.image is not None])
    if codes:
        ids.update((np.unique(np.concatenate(codes)) + vocab.IMAGE_OFFSET).tolist())
    return torch.tensor(sorted(ids), dtype=torch.long)
