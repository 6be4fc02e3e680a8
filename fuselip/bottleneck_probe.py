"""The bottleneck's mechanism: how much of the scene a linear read-out recovers from the image vector.

Images alone are embedded (a late-fusion model's image-tower vector, or `model.encode(images)` for any model) and,
for every cell, linear read-outs (fuselip/linear_probes.py) of the colour and class of its object and of whether it
holds one are fitted on the same number of rows at every object count (fuselip/bottleneck.py says why).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from fuselip import evaluate as ev
from fuselip.contract import Encoder, ImageTower, eval_mode
from fuselip.data.tasks import make_rng, make_world
from fuselip.data.world import Obj, Scene, check_counts
from fuselip.images import preprocess
from fuselip.linear_probes import linear_probe_multiclass, majority_chance
from fuselip.vit import attention_backend

PROBE_OBJECTS = tuple(range(1, 10))
PROBE_ROWS = 1000                        # rows per read-out (per cell), at every count: 750 fit, 250 scored
PROBES = ("colour", "class", "occupied")
PROBE_TITLES = {"colour": "colour of the object in each cell", "class": "class of the object in each cell",
                "occupied": "is the cell occupied (balanced)"}
CLASS_NAMES = {"shapes": "shape", "emoji": "category"}   # what `class` reads in each world (World.class_label)


def image_vectors(model: Encoder, images: Sequence[np.ndarray], features: str = "auto",
                  batch_size: int = ev.ENCODE_BATCH) -> torch.Tensor:
    """(N, D) float32 vectors of images alone.
    features: "tower" = a late-fusion model's image-tower vector (`encode_pixels`: the one vector of the image that
    its fusion reads), "encode" = `model.encode(images)` (any model; FuseLIP: the image and the empty text, pooled
    at eot), "auto" = "tower" where the model has one, else "encode"."""
    tower = model if resolve_features(model, features) == "tower" and isinstance(model, ImageTower) else None
    out = []
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = list(images[start:start + batch_size])
            if tower is None:
                out.append(torch.as_tensor(model.encode(images=batch)).float().cpu())
                continue
            pixels = torch.from_numpy(np.stack([preprocess(im, tower.image_size) for im in batch]))
            device = next(tower.parameters()).device if isinstance(tower, torch.nn.Module) else torch.device("cpu")
            with attention_backend(device):
                out.append(tower.encode_pixels(pixels.to(device)).float().cpu())  # (B, E)
    return torch.cat(out) if out else torch.zeros(0, 0)


def resolve_features(model: object, features: str) -> str:
    """"tower" or "encode" (`image_vectors`): "auto" is "tower" for a model with an image tower (`ImageTower`)."""
    if features not in ("auto", "tower", "encode"):
        raise ValueError(f"features must be auto, tower or encode, got {features!r}")
    if features == "auto":
        return "tower" if isinstance(model, ImageTower) else "encode"
    if features == "tower" and not isinstance(model, ImageTower):
        raise ValueError(f"{type(model).__name__} has no separate image tower (early fusion reads image tokens "
                         f"with the text); probe it with features='encode'")
    return features


def probe_scene_count(k: int, rows: int) -> int:
    """About how many scenes of k objects `probe_world` draws: every cell must be occupied in `rows` of them (the
    colour and class read-outs) and, below 9, empty in rows/2 (the occupancy read-out)."""
    need = 9 * rows / k
    if k < 9:
        need = max(need, 9 * (rows // 2) / (9 - k))
    return math.ceil(need)


def probe_world(model, world_name: str, k: int, *, rows: int = PROBE_ROWS, split: str = "test", seed: int = 0,
                features: str = "auto", image_size: int = 64, batch_size: int = ev.ENCODE_BATCH) -> dict:
    """The read-outs of one world at k objects: {probe: {"top1", "chance", "rows", "cells"}, "scenes": n}, each
    probe's numbers the mean over the 9 cells (one read-out per cell, fitted and scored on its own rows). Scenes
    are drawn (a stream of its own per world, count, split and seed) until every cell is occupied in `rows` of them
    and, below 9 objects, empty in rows/2, so every read-out has the same number of rows at every count."""
    world = make_world(world_name, image_size, (k,))
    rng = make_rng("probe", seed, split, world_name, k, image_size)
    need_empty = rows // 2 if k < 9 else 0
    occupied_count, empty_count = np.zeros(9, int), np.zeros(9, int)
    scenes: list[Scene] = []
    vectors: list[torch.Tensor] = []
    while occupied_count.min() < rows or empty_count.min() < need_empty:
        if len(scenes) > 50 * probe_scene_count(k, rows):
            raise RuntimeError(f"probe: could not fill every cell's rows at {k} objects")
        batch = [world.sample_scene(rng, split) for _ in range(batch_size)]  # rendered and embedded, not kept
        vectors.append(image_vectors(model, [world.render(s) for s in batch], features, batch_size))
        scenes += batch
        for s in batch:
            cells = [o.cell for o in s.objects]
            occupied_count[cells] += 1
        empty_count = len(scenes) - occupied_count
    n = len(scenes)
    x = torch.cat(vectors)  # (n, D)
    at = [{o.cell: o for o in s.objects} for s in scenes]
    readers: dict[str, Callable[[Obj], str]] = {"class": world.class_label}
    if world.colours():
        readers["colour"] = lambda o: o.colour
    out: dict = {"scenes": n}
    per_probe: dict[str, list[tuple[float, float, int]]] = {}
    for cell in range(9):
        occupied = [i for i, objects in enumerate(at) if cell in objects][:rows]
        for name, read in readers.items():
            if len(occupied) < 8:
                continue
            names = [read(at[i][cell]) for i in occupied]
            vocabulary = {v: j for j, v in enumerate(sorted(set(names)))}
            labels = torch.tensor([vocabulary[v] for v in names])
            per_probe.setdefault(name, []).append((linear_probe_multiclass(x[occupied], labels),
                                                   majority_chance(labels), len(occupied)))
        empty = [i for i, objects in enumerate(at) if cell not in objects]
        half = min(rows // 2, len(empty), len(occupied))
        if half >= 4:
            # interleaved, so that the fitted and the scored rows are both half occupied
            index = [i for pair in zip(occupied[:half], empty[:half]) for i in pair]
            labels = torch.tensor([cell in at[i] for i in index])
            per_probe.setdefault("occupied", []).append((ev.linear_probe_accuracy(x[index], labels),
                                                         majority_chance(labels.long()), len(index)))
    for name, values in per_probe.items():
        out[name] = {"top1": sum(v[0] for v in values) / len(values), "chance": sum(v[1] for v in values) / len(values),
                     "rows": min(v[2] for v in values), "cells": len(values)}
    return out


def probe_by_objects(model, objects: Sequence[int] = PROBE_OBJECTS, *, worlds: Sequence[str] | None = None,
                     rows: int = PROBE_ROWS, split: str = "test", seed: int = 0, features: str = "auto",
                     image_size: int | None = None, batch_size: int = ev.ENCODE_BATCH,
                     progress: Callable[[str], None] | None = None) -> dict:
    """`probe_world` for every world and object count (see the module docstring)."""
    objects = check_counts(objects)
    image_size = image_size or ev.model_image_size(model)
    worlds = tuple(worlds) if worlds is not None else ev.default_worlds()
    by_world: dict[str, dict[str, dict]] = {}
    out = {"objects": list(objects), "split": split, "seed": seed, "rows": rows,
           "features": resolve_features(model, features), "image_size": image_size, "worlds": by_world}
    for world in worlds:
        for k in objects:
            if progress:
                progress(f"probe {world} · {k} objects · {probe_scene_count(k, rows)} scenes")
            by_world.setdefault(world, {})[str(k)] = probe_world(
                model, world, k, rows=rows, split=split, seed=seed, features=features, image_size=image_size,
                batch_size=batch_size)
    return out


def probe_markdown(probe: dict) -> str:
    """A row per (world, read-out), a column per object count: "top-1 (chance)" in %."""
    counts = probe["objects"]
    lines = [f"| read-out ({probe['features']} vector) | " + " | ".join(f"{k} obj." for k in counts) + " |",
             "|---|" + "---:|" * len(counts)]
    for world, by_k in probe["worlds"].items():
        for name in PROBES:
            cells = []
            for k in counts:
                entry = by_k.get(str(k), {}).get(name)
                cells.append("–" if entry is None else f"{entry['top1']:.1f} ({entry['chance']:.1f})")
            if any(c != "–" for c in cells):
                label = CLASS_NAMES.get(world, "class") if name == "class" else name
                lines.append(f"| {world}: {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

