"""How fast ShapesWorld training pairs are generated on one core (target: >= 2,000 pairs/s).

Ours: `fuselip.data.tasks.sample_pairs` with the default task mix (DataConfig().task_weights), ShapesWorld
only, 64 px, after a warm-up that fills the sprite caches (a training run generates 150 k pairs, so the
steady state is what counts).
Anchor, in the same run: the plainest possible renderer, PIL drawing ONE anti-aliasing-free ellipse per
64-px image (no scene, no text, no task), for as many images as our pairs contain. The ratio says how
many "plain single-shape images" one full pair costs.

    python benchmarks/data_throughput.py [--pairs 20000]

The last line is `pairs_per_s=N`.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

from fuselip.config import DataConfig
from fuselip.data.tasks import sample_pairs


def anchor_images(n: int, size: int, seed: int = 0) -> float:
    """Seconds to draw n images of one random ellipse each with PIL and turn them into numpy arrays."""
    rng = np.random.default_rng(seed)
    boxes = rng.integers(0, size // 2, size=(n, 2))
    start = time.perf_counter()
    for x, y in boxes:
        image = Image.new("RGB", (size, size), (255, 255, 255))
        ImageDraw.Draw(image).ellipse((int(x), int(y), int(x) + size // 3, int(y) + size // 3), fill=(220, 38, 38))
        np.asarray(image)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    data = DataConfig(worlds=["shapes"], world_weights=[1.0])
    print(f"task mix: {data.task_weights}, group_size {data.group_size}, {data.image_size} px")

    sample_pairs(data, "train", 3_000, seed=args.seed + 1)  # warm-up: sprite caches
    start = time.perf_counter()
    pairs = sample_pairs(data, "train", args.pairs, seed=args.seed)
    ours = time.perf_counter() - start
    n_images = sum((p.left.image is not None) + (p.right.image is not None) for p in pairs)

    anchor = anchor_images(n_images, data.image_size)
    pairs_per_s = args.pairs / ours
    print(f"ours:   {args.pairs} pairs ({n_images} images) in {ours:.2f} s = {pairs_per_s:.0f} pairs/s")
    print(f"anchor: {n_images} PIL single-ellipse images in {anchor:.2f} s = {n_images / anchor:.0f} images/s")
    print(f"ratio: one pair costs {ours / args.pairs / (anchor / n_images):.2f} anchor images "
          f"(ours/anchor time for the same number of images: {ours / anchor:.2f})")
    print(f"pairs_per_s={pairs_per_s:.0f}")


if __name__ == "__main__":
    main()
