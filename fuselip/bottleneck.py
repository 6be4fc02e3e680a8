"""The late-fusion bottleneck, measured: accuracy against the number of objects in a scene (issue 26).

Late fusion squeezes the whole image into ONE vector before it reads the question, so it loses whatever the
question will need that the vector did not keep; early fusion reads the question while it looks at the image
tokens. The more a scene holds, the more one vector must keep. Three measurements, for any model with the
encode API, on scenes of exactly k objects (k = 1..9, one per cell; fuselip.data.tasks, `objects=(k,)`):

- `evaluate_by_objects`: the benchmark suite (fuselip.evaluate) once per count, every task with its chance level
  at that count (the candidate lists grow with k: crop and position rank the scene's other objects too).
- `probe_by_objects`: the mechanism. Images alone are embedded (a late-fusion model's image-tower vector, the
  one vector its fusion ever sees of the image; or `model.encode(images)` for any model), and linear read-outs
  are fitted on them (fuselip.evaluate.linear_probe_accuracy, and `linear_probe_multiclass`, its multiclass form):
  for every cell, the colour and the class of the object in it ("what is where"), and whether it holds an object.
  Every read-out is fitted on the same number of rows at every count, so the curve measures the vector, not the
  amount of data; the chance level is the most frequent class of the training rows.
- `bottleneck_figure`: accuracy against objects per scene, one line per model, one panel per task (and per probe),
  chance levels dashed (docs/bottleneck.png), drawn from the JSON files the two above write.

    python -m fuselip.bottleneck evaluate --checkpoint DIR --objects 1,3,5,7,9 --n-items 2000 --out A.json
    python -m fuselip.bottleneck probe --checkpoint DIR --objects 1-9 --out PA.json
    python -m fuselip.bottleneck figure --results A.json B.json --probes PA.json PB.json --out docs/bottleneck.png
    python -m fuselip.bottleneck gaps --results A.json B.json C.json --early A

(`train/evaluate.py --checkpoint DIR --objects 1,3,5,7,9` runs `evaluate_by_objects` too.) The results files:
    evaluate: {"objects", "split", "seed", "n_items", "position_twins", "image_size", "model",
               "by_objects": {"k": fuselip.evaluate results, every task entry with "chance" (and per kind)}}
    probe:    {"objects", "split", "seed", "rows", "features", "image_size", "model",
               "worlds": {world: {"k": {probe: {"top1", "chance", "rows", "cells"}, "scenes": n}}}}
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from fuselip import evaluate as ev
from fuselip.baselines import effective_parameters
from fuselip.checkpoint import load_model, write_json_atomic
from fuselip.data.tasks import make_rng, make_world
from fuselip.data.types import EvalItem
from fuselip.data.world import check_counts, parse_counts
from fuselip.images import preprocess
from fuselip.vit import attention_backend

DEFAULT_OBJECTS = (1, 3, 5, 7, 9)        # the test strata of the study (every count is allowed: 1..9)
PROBE_OBJECTS = tuple(range(1, 10))
TASKS = ("caption", "vqa", "crop", "position", "tgit", "edit")   # classify is one object whatever the count
FIGURE_TASKS = ("tgit", "vqa", "position", "position_twin", "crop", "edit", "retrieval", "caption")
PROBE_ROWS = 1000                        # rows per read-out (per cell), at every count: 750 fit, 250 scored
PROBES = ("colour", "class", "occupied")
PROBE_TITLES = {"colour": "colour of the object in each cell", "class": "class of the object in each cell",
                "occupied": "is the cell occupied (balanced)"}
CLASS_NAMES = {"shapes": "shape", "emoji": "category"}   # what `class` reads in each world (World.class_label)


def parse_objects(text: str) -> tuple[int, ...]:
    """"1,3,5,7,9" or "1-9" or "2-4,9" -> sorted distinct counts (each 1..9; fuselip.data.world.parse_counts)."""
    return parse_counts(text)


# ---------------------------------------------------------------------------------------------
# the benchmark per object count, with chance levels


def chance_levels(task: str, items: Sequence[EvalItem]) -> dict[str, dict]:
    """{task: {"chance", "kinds"}} (+ the rows derived from it: retrieval, position_twin), percent: the top-1 of a
    model that ranks the candidates at random on these items (fuselip.evaluate.task_chance and its kin), aggregated
    as the task's top1 is (the mean over kinds where there are kinds)."""
    def flat(entry: dict) -> dict:
        return {"chance": entry["top1"], "kinds": {k: v["top1"] for k, v in entry["kinds"].items()}}
    out = {task: flat(ev.task_chance(items))}
    if task == ev.TWIN_SOURCE:
        out[ev.TWIN] = flat(ev.twin_chance(items))
    if task == ev.RETRIEVAL_SOURCE:
        out[ev.RETRIEVAL] = flat(ev.retrieval_chance(items))
    return out


def evaluate_by_objects(model, objects: Sequence[int] = DEFAULT_OBJECTS, *, worlds: Sequence[str] | None = None,
                        tasks: Sequence[str] = TASKS, split: str = "test", n_items: int = 2000, seed: int = 0,
                        image_size: int | None = None, batch_size: int = ev.ENCODE_BATCH,
                        position_twins: str | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """fuselip.evaluate.evaluate on each object count's test set (n_items per count, world and task; a task the
    count makes impossible, position at k = 1, is absent), every task entry with its "chance" level."""
    objects = check_counts(objects)
    image_size = image_size or ev.model_image_size(model)
    worlds = tuple(worlds) if worlds is not None else ev.default_worlds()
    out = {"objects": list(objects), "split": split, "seed": seed, "n_items": n_items,
           "position_twins": ev.benchmark_twins(position_twins), "image_size": image_size, "by_objects": {}}
    for k in objects:
        source = ev.benchmark_items(split, n_items, seed, image_size, position_twins, objects=(k,))
        chances: dict[str, dict[str, dict]] = {}

        def counted(world: str, task: str, source=source, chances=chances):
            items = source(world, task)
            chances.setdefault(world, {}).update(chance_levels(task, items))
            return items
        say = (lambda msg, k=k: progress(f"{k} objects · {msg}")) if progress else None
        results = ev.evaluate(model, counted, worlds=worlds, tasks=tasks, split=split, n_items=n_items, seed=seed,
                              image_size=image_size, batch_size=batch_size, progress=say)
        for world, per_task in results["worlds"].items():
            for task, entry in per_task.items():
                level = chances.get(world, {}).get(task)
                if level is not None:
                    entry["chance"] = level["chance"]
                    for kind, sub in entry["kinds"].items():
                        if kind in level["kinds"]:
                            sub["chance"] = level["kinds"][kind]
        results["mean_chance"] = _world_mean(results, "chance")
        out["by_objects"][str(k)] = results
    return out


def _world_mean(results: dict, key: str) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for per_task in results["worlds"].values():
        for task, entry in per_task.items():
            if key in entry:
                values.setdefault(task, []).append(entry[key])
    return {task: sum(v) / len(v) for task, v in values.items()}


def value_at(results: dict, k: int, task: str, world: str = "mean", key: str = "top1") -> float:
    """One number of an `evaluate_by_objects` result (nan where the task has no items at that count)."""
    entry = results["by_objects"].get(str(k))
    if entry is None:
        return float("nan")
    if world == "mean":
        source = entry["mean"] if key == "top1" else entry.get("mean_chance", {})
        return source.get(task, float("nan"))
    return entry["worlds"].get(world, {}).get(task, {}).get(key, float("nan"))


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.1f}"


def to_markdown(results: dict, world: str = "mean", tasks: Sequence[str] | None = None) -> str:
    """A row per task, a column per object count: "top-1 (chance)" in %."""
    counts = results["objects"]
    tasks = tasks or _tasks_in(results)
    lines = [f"| task ({world}) | " + " | ".join(f"{k} obj." for k in counts) + " |",
             "|---|" + "---:|" * len(counts)]
    for task in tasks:
        cells = [f"{_fmt(value_at(results, k, task, world))} ({_fmt(value_at(results, k, task, world, 'chance'))})"
                 for k in counts]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _tasks_in(*results: dict) -> list[str]:
    tasks: list[str] = []
    for r in results:
        for entry in r["by_objects"].values():
            tasks += [t for t in entry["mean"] if t not in tasks]
    return tasks


def gaps_markdown(by_model: dict[str, dict], early: str, world: str = "mean",
                  tasks: Sequence[str] | None = None) -> str:
    """Per task: `early` − the best other model at the smallest and at the largest object count they share (and
    at each count in between), the numbers the results report quotes."""
    if early not in by_model:
        raise ValueError(f"--early {early!r} is none of the models: {', '.join(by_model)}")
    late = [n for n in by_model if n != early]
    if not late:
        raise ValueError("the gap needs at least one late-fusion model next to the early one")
    counts = sorted(set.intersection(*(set(r["objects"]) for r in by_model.values())))
    tasks = tasks or _tasks_in(*by_model.values())
    lines = [f"| task ({world}) | " + " | ".join(f"{k} obj." for k in counts) + " | change |",
             "|---|" + "---:|" * (len(counts) + 1)]
    for task in tasks:
        row = []
        for k in counts:
            best = max((value_at(by_model[n], k, task, world) for n in late), key=lambda v: -1e9 if v != v else v)
            row.append(value_at(by_model[early], k, task, world) - best)
        valid = [v for v in row if v == v]
        change = valid[-1] - valid[0] if len(valid) >= 2 else float("nan")
        lines.append(f"| {task} | " + " | ".join("–" if v != v else f"{v:+.1f}" for v in row)
                     + f" | {'–' if change != change else f'{change:+.1f}'} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the probe: how much of the scene a linear read-out recovers from the image vector


def linear_probe_multiclass(features: torch.Tensor, labels: torch.Tensor,
                            train_fraction: float = ev.PROBE_TRAIN_FRACTION, ridge: float = ev.PROBE_RIDGE) -> float:
    """Held-out accuracy (%) of a linear read-out of a class (labels (N,) int) from features (N, D).

    The multiclass form of fuselip.evaluate.linear_probe_accuracy: the same standardisation, bias column, ridge
    and split (fit on the first `train_fraction` rows, score on the rest), with one-hot targets and the arg-max
    as the answer (for two classes it is the same read-out). Closed form, so deterministic."""
    x, n_train = ev.probe_design(features, labels, train_fraction)                  # (N, D + 1)
    labels = labels.long()
    classes = int(labels.max()) + 1
    y = torch.nn.functional.one_hot(labels, classes).double()                        # (N, C)
    a, b = x[:n_train], y[:n_train]
    w = torch.linalg.solve(a.T @ a + ridge * torch.eye(a.shape[1], dtype=x.dtype), a.T @ b)  # (D + 1, C)
    predicted = (x[n_train:] @ w).argmax(dim=1)
    return 100.0 * float((predicted == labels[n_train:]).double().mean())


def majority_chance(labels: torch.Tensor, train_fraction: float = ev.PROBE_TRAIN_FRACTION) -> float:
    """Accuracy (%) on the scored rows of always answering the most frequent class of the fitted rows."""
    n_train = int(labels.shape[0] * train_fraction)
    values, counts = labels[:n_train].unique(return_counts=True)
    return 100.0 * float((labels[n_train:] == values[counts.argmax()]).double().mean())


def image_vectors(model, images: Sequence[np.ndarray], features: str = "auto",
                  batch_size: int = ev.ENCODE_BATCH) -> torch.Tensor:
    """(N, D) float32 vectors of images alone.
    features: "tower" = a late-fusion model's image-tower vector (`encode_pixels`: the one vector of the image that
    its fusion reads), "encode" = `model.encode(images)` (any model; FuseLIP: the image and the empty text, pooled
    at eot), "auto" = "tower" where the model has one, else "encode"."""
    features = resolve_features(model, features)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    out = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                batch = list(images[start:start + batch_size])
                if features == "encode":
                    out.append(torch.as_tensor(model.encode(images=batch)).float().cpu())
                    continue
                pixels = torch.from_numpy(np.stack([preprocess(im, model.image_size) for im in batch]))
                device = next(model.parameters()).device
                with attention_backend(device):
                    out.append(model.encode_pixels(pixels.to(device)).float().cpu())  # (B, E)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return torch.cat(out) if out else torch.zeros(0, 0)


def resolve_features(model, features: str) -> str:
    if features not in ("auto", "tower", "encode"):
        raise ValueError(f"features must be auto, tower or encode, got {features!r}")
    if features == "auto":
        return "tower" if hasattr(model, "encode_pixels") else "encode"
    if features == "tower" and not hasattr(model, "encode_pixels"):
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
    scenes, vectors = [], []
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
    readers = {"class": world.class_label}
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
    out = {"objects": list(objects), "split": split, "seed": seed, "rows": rows,
           "features": resolve_features(model, features), "image_size": image_size, "worlds": {}}
    for world in worlds:
        for k in objects:
            if progress:
                progress(f"probe {world} · {k} objects · {probe_scene_count(k, rows)} scenes")
            out["worlds"].setdefault(world, {})[str(k)] = probe_world(
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


# ---------------------------------------------------------------------------------------------
# the figure


def bottleneck_figure(results: dict[str, dict], probes: dict[str, dict] | None = None, world: str = "mean",
                      tasks: Sequence[str] = FIGURE_TASKS, columns: int = 4,
                      title: str = "Accuracy against objects per scene"):
    """One panel per task (accuracy against objects per scene, one line per model, the chance level dashed), then
    one panel per (world, read-out) of the probes if given. results / probes: {model name: JSON of
    evaluate_by_objects / probe_by_objects}; world: "mean" (over worlds) or a world name."""
    import matplotlib.pyplot as plt
    tasks = [t for t in tasks if any(t in _tasks_in(r) for r in results.values())]
    probe_worlds = list(dict.fromkeys(w for probe in (probes or {}).values() for w in probe["worlds"]))
    probe_worlds.sort(key=lambda w: (ev.default_worlds() + (w,)).index(w))  # the suite's world order (JSON sorts)
    probe_panels = [(w, name) for w in probe_worlds for name in PROBES
                    if any(name in entry for probe in (probes or {}).values()
                           for entry in probe["worlds"].get(w, {}).values())]
    if not tasks and not probe_panels:
        raise ValueError("nothing to draw: the results hold none of the tasks and no probe was given")
    columns = min(columns, max(len(tasks), len(probe_panels)))
    gap = -len(tasks) % columns  # the probes start a row of their own
    panels = [("task", t) for t in tasks] + [("blank", None)] * (gap if probe_panels else 0) + \
             [("probe", p) for p in probe_panels]
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.9 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(dict.fromkeys(list(results) + list(probes or {})))
    style = {name: colours[i % len(colours)] for i, name in enumerate(names)}
    for ax, (what, panel) in zip(axes.flat, panels):
        if what == "blank":
            ax.axis("off")
            continue
        if what == "task":
            chance = None
            for name, r in results.items():
                counts = r["objects"]
                ys = [value_at(r, k, panel, world) for k in counts]
                ax.plot(counts, ys, marker="o", markersize=3, color=style[name], label=name)
                chance = chance or (counts, [value_at(r, k, panel, world, "chance") for k in counts])
            ax.set_title(f"{panel} ({world})", fontsize=9)
        else:
            w, name = panel
            chance = None
            for model_name, probe in (probes or {}).items():
                by_k = probe["worlds"].get(w, {})
                counts = [k for k in probe["objects"] if name in by_k.get(str(k), {})]
                ax.plot(counts, [by_k[str(k)][name]["top1"] for k in counts], marker="o", markersize=3,
                        color=style[model_name], label=model_name)
                chance = chance or (counts, [by_k[str(k)][name]["chance"] for k in counts])
            label = CLASS_NAMES.get(w, "class") if name == "class" else name
            ax.set_title(f"probe · {w}: {PROBE_TITLES[name].replace('class', label)}", fontsize=8)
        if chance and any(c == c for c in chance[1]):
            ax.plot(*chance, color="grey", linestyle="--", linewidth=1, label="chance")
        ax.set_ylim(0, 100)
        ax.set_xticks(range(1, 10))
        ax.set_xlabel("objects per scene", fontsize=8)
        ax.set_ylabel("top-1 (%)" if what == "task" else "read-out accuracy (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(5, len(labels)), frameon=False, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05 + 0.03 * ((len(labels) - 1) // 5), 1, 0.97))
    return fig


# ---------------------------------------------------------------------------------------------
# the command line


def _load_json(path: str | Path) -> dict:
    with open(path) as f:
        return json.load(f)


def _named(paths: Sequence[str], names: Sequence[str] | None) -> dict[str, dict]:
    names = list(names) if names else [Path(p).stem for p in paths]
    if len(names) != len(paths):
        raise SystemExit(f"--names has {len(names)} entries for {len(paths)} files")
    return {name: _load_json(p) for name, p in zip(names, paths)}


def model_record(path: str | Path, model, seconds: float) -> dict:
    return {"checkpoint": str(path), "kind": getattr(model, "checkpoint_kind", type(model).__name__),
            "parameters": effective_parameters(model) if hasattr(model, "token_seen") else None,
            "seconds": round(seconds, 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fuselip.bottleneck", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    evaluate = sub.add_parser("evaluate", help="the benchmark per object count (one checkpoint)")
    probe = sub.add_parser("probe", help="linear read-outs of the scene from the image vector (one checkpoint)")
    for p, default in ((evaluate, DEFAULT_OBJECTS), (probe, PROBE_OBJECTS)):
        p.add_argument("--checkpoint", required=True, help="checkpoint folder")
        p.add_argument("--objects", type=parse_objects, default=default,
                       help=f"object counts, e.g. 1,3,5,7,9 or 1-9 (default {','.join(map(str, default))})")
        p.add_argument("--worlds", nargs="+", default=list(ev.default_worlds()))
        p.add_argument("--split", default="test", choices=["train", "val", "test"])
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--batch-size", type=int, default=ev.ENCODE_BATCH)
        p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
        p.add_argument("--out", required=True, help="results JSON")
        p.add_argument("--verbose", action="store_true")
    evaluate.add_argument("--n-items", type=int, default=2000, help="items per count, world and task")
    evaluate.add_argument("--tasks", nargs="+", default=list(TASKS))
    evaluate.add_argument("--position-twins", default=None, help="default: the benchmark's")
    probe.add_argument("--rows", type=int, default=PROBE_ROWS, help="rows per read-out (per cell) at every count")
    probe.add_argument("--features", default="auto", choices=["auto", "tower", "encode"],
                       help="tower: a late-fusion model's image vector; encode: model.encode(images); auto: tower "
                            "where there is one")
    figure = sub.add_parser("figure", help="docs/bottleneck.png from results (and probe) files")
    figure.add_argument("--results", nargs="+", default=[], help="evaluate JSON files, one per model")
    figure.add_argument("--names", nargs="+", help="model names for --results (default: file names)")
    figure.add_argument("--probes", nargs="+", default=[], help="probe JSON files, one per model")
    figure.add_argument("--probe-names", nargs="+", help="model names for --probes (default: --names or file names)")
    figure.add_argument("--world", default="mean", help="mean (over worlds) or a world")
    figure.add_argument("--tasks", nargs="+", default=list(FIGURE_TASKS))
    figure.add_argument("--out", default="docs/bottleneck.png")
    gaps = sub.add_parser("gaps", help="early − best late fusion per task and object count (markdown)")
    gaps.add_argument("--results", nargs="+", required=True)
    gaps.add_argument("--names", nargs="+")
    gaps.add_argument("--early", required=True, help="the early-fusion model's name (a --names entry or file name)")
    gaps.add_argument("--world", default="mean")
    args = parser.parse_args(argv)

    if args.command in ("evaluate", "probe"):
        if args.threads:
            torch.set_num_threads(args.threads)
        model = load_model(args.checkpoint)
        progress = (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)) if args.verbose else None
        start = time.perf_counter()
        if args.command == "evaluate":
            results = evaluate_by_objects(model, args.objects, worlds=args.worlds, tasks=args.tasks, split=args.split,
                                          n_items=args.n_items, seed=args.seed, batch_size=args.batch_size,
                                          position_twins=args.position_twins, progress=progress)
        else:
            results = probe_by_objects(model, args.objects, worlds=args.worlds, rows=args.rows, split=args.split,
                                       seed=args.seed, features=args.features, batch_size=args.batch_size,
                                       progress=progress)
        results["model"] = model_record(args.checkpoint, model, time.perf_counter() - start)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(args.out), results)
        if args.command == "evaluate":
            for world in ["mean"] + list(args.worlds):
                print(to_markdown(results, world) + "\n")
        else:
            print(probe_markdown(results))
        return
    if args.command == "figure":
        results = _named(args.results, args.names)
        probes = _named(args.probes, args.probe_names or (args.names if args.names and len(args.names) ==
                                                          len(args.probes) else None))
        fig = bottleneck_figure(results, probes or None, world=args.world, tasks=args.tasks)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out, dpi=120, metadata={"Software": None})  # the same data give the same bytes
        print(f"wrote {args.out}")
        return
    results = _named(args.results, args.names)
    print(gaps_markdown(results, args.early, args.world))


if __name__ == "__main__":
    main()
