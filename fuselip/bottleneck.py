"""The late-fusion bottleneck, measured: accuracy against the number of objects in a scene (issue 26).

Late fusion squeezes the whole image into ONE vector before it reads the question, so it loses whatever the
question will need that the vector did not keep; early fusion reads the question while it looks at the image
tokens. The more a scene holds, the more one vector must keep. Three measurements, for any model with the
encode API, on scenes of exactly k objects (k = 1..9, one per cell; fuselip.data.tasks, `objects=(k,)`):

- `evaluate_by_objects`: the benchmark suite (fuselip.evaluate) once per count, every task with its chance level
  at that count (the candidate lists grow with k: crop and position rank the scene's other objects too).
- `probe_by_objects`: the mechanism. Images alone are embedded (a late-fusion model's image-tower vector, the
  one vector its fusion ever sees of the image; or `model.encode(images)` for any model), and linear read-outs
  are fitted on them (fuselip/linear_probes.py: linear_probe_accuracy, and `linear_probe_multiclass`, its multiclass
  form): for every cell, the colour and the class of the object in it ("what is where"), and whether it holds an
  object. Every read-out is fitted on the same number of rows at every count, so the curve measures the vector, not
  the amount of data; the chance level is the most frequent class of the training rows.
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

Modules: bottleneck_eval (the benchmark per count, its tables), bottleneck_probe (the read-outs), bottleneck_figure;
this one is the command line and re-exports them all.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from fuselip import evaluate as ev
from fuselip.baselines import effective_parameters
from fuselip.bottleneck_eval import (DEFAULT_OBJECTS, TASKS, chance_levels, evaluate_by_objects, gaps_markdown,
                                     to_markdown, value_at)
from fuselip.bottleneck_figure import FIGURE_TASKS, bottleneck_figure
from fuselip.bottleneck_probe import (CLASS_NAMES, PROBE_OBJECTS, PROBE_ROWS, PROBE_TITLES, PROBES, image_vectors,
                                      probe_by_objects, probe_markdown, probe_scene_count, probe_world,
                                      resolve_features)
from fuselip.checkpoint import load_model, write_json_atomic
from fuselip.contract import Compactable, Configured
from fuselip.data.world import parse_counts
from fuselip.linear_probes import linear_probe_multiclass, majority_chance

__all__ = [
    "main", "parse_objects", "model_record",
    "DEFAULT_OBJECTS", "TASKS", "chance_levels", "evaluate_by_objects", "value_at", "to_markdown", "gaps_markdown",
    "PROBE_OBJECTS", "PROBE_ROWS", "PROBES", "PROBE_TITLES", "CLASS_NAMES", "image_vectors", "resolve_features",
    "probe_scene_count", "probe_world", "probe_by_objects", "probe_markdown", "linear_probe_multiclass",
    "majority_chance",
    "FIGURE_TASKS", "bottleneck_figure",
]


def parse_objects(text: str) -> tuple[int, ...]:
    """"1,3,5,7,9" or "1-9" or "2-4,9" -> sorted distinct counts (each 1..9; fuselip.data.world.parse_counts)."""
    return parse_counts(text)


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


def model_record(path: str | Path, model: torch.nn.Module, seconds: float) -> dict:
    """What a results file says of its model: the checkpoint, its kind (else its class), the parameters that data
    can reach (a model with a token table, fuselip.baselines.effective_parameters; else None) and the time taken."""
    return {"checkpoint": str(path),
            "kind": model.checkpoint_kind if isinstance(model, Configured) else type(model).__name__,
            "parameters": effective_parameters(model) if isinstance(model, Compactable) else None,
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
