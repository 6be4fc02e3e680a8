"""The images a tokenizer trains and validates on, generated once and cached as .npy files.

Generating scenes is slower than training on them on a small CPU, so a run draws its batches from a fixed
pool (`data.tokenizer_images` images of the train split, both worlds mixed by `data.world_weights`), cached
under a name derived from every setting that changes its pixels. A user's CSV / image folder (data.csv,
data.image_folder) is appended to the pool.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from fuselip.config import DataConfig, to_dict
from fuselip.data.files import read_user_data
from fuselip.data.tasks import sample_images
from fuselip.tokenizers.evaluation import VAL_SEED, world_images

CACHE_DIR = Path("runs/cache")


def _cached(name: str, key: dict, make, cache_dir: Path | None) -> np.ndarray:
    if cache_dir is None:
        return make()
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"{name}-{digest}.npy"
    if path.exists():
        return np.load(path)
    array = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy")
    with os.fdopen(fd, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)
    return array


def train_pool(data: DataConfig, cache_dir: Path | None = CACHE_DIR) -> np.ndarray:
    """(M, S, S, 3) uint8: `data.tokenizer_images` world images (+ the user's images, if any)."""
    key = {k: v for k, v in to_dict(data).items() if k not in ("csv", "image_folder", "val_items", "train_pairs")}
    pool = _cached("tokenizer-train", key, lambda: sample_images(data, "train", data.tokenizer_images, data.seed),
                   cache_dir)
    if data.csv or data.image_folder:
        user = read_user_data(data.csv, data.image_folder, data.image_size)
        print(f"user images: {len(user.images)} added to the pool ({len(user.skipped)} skipped)")
        if user.images:
            pool = np.concatenate([pool, np.stack(user.images)])
    return pool


def val_images(data: DataConfig, cache_dir: Path | None = CACHE_DIR) -> dict[str, np.ndarray]:
    """{world: (n, S, S, 3)} validation images (split "val") per world."""
    n, size = data.tokenizer_val_images, data.image_size
    return {w: _cached(f"tokenizer-val-{w}", {"n": n, "size": size, "seed": VAL_SEED},
                       lambda w=w: world_images(w, "val", n, VAL_SEED, size), cache_dir)
            for w in data.worlds}


def train_and_val(data: DataConfig, log=print) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A run's training pool and validation images (train_pool, val_images), with one line on what is ready."""
    t0 = time.time()
    images, val = train_pool(data), val_images(data)
    log(f"image pool {images.shape} and validation {', '.join(f'{w}: {len(v)}' for w, v in val.items())} "
        f"ready in {time.time() - t0:.0f} s")
    return images, val
