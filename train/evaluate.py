"""Benchmark any checkpoint with the encode API on every task of both worlds (fuselip.evaluate).

    python train/evaluate.py --checkpoint checkpoints/fuselip-tiny [--seed N] [--n-items N] --out results.json
    python train/evaluate.py --compare checkpoints/fuselip-tiny checkpoints/siglip-mlf-tiny results.json …

`--checkpoint` evaluates one model on the test split (a fresh test set for every `--seed`: the worlds are
deterministic functions of the seed), writes the nested results to `--out` and prints a markdown table.
`--update-metrics` also stores them in the checkpoint's metrics.json (key "benchmark"), together with a
small fixed slice ("benchmark_slice") that tests/test_evaluate.py re-measures on every shipped checkpoint.
`--compare` takes checkpoint folders (evaluated now) and/or results JSON files and prints the models side by
side (mean over worlds, then one table per world with --per-world).
`--objects 1,3,5,7,9` (with --checkpoint) evaluates on test sets of exactly that many objects per scene instead,
one per count (fuselip.bottleneck.evaluate_by_objects: the late-fusion bottleneck study), every task with its chance
level, and prints a table per world with a column per count; its JSON is what `python -m fuselip.bottleneck
figure` draws.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuselip import evaluate as ev  # noqa: E402
from fuselip.baselines import effective_parameters  # noqa: E402
from fuselip.checkpoint import METRICS_FILE, load_model, write_json_atomic  # noqa: E402
from fuselip.data.tasks import POSITION_TWINS  # noqa: E402

BENCHMARK_TWINS = ev.benchmark_twins()  # the position test set that metrics.json and the README report
DEFAULT_ITEMS = 500  # items per (world, task): ±2.2 points standard error at 50 %, less near 0 or 100 %


def evaluate_checkpoint(path: str | Path, args: argparse.Namespace, n_items: int | None = None) -> dict:
    model = load_model(path)
    start = time.perf_counter()
    progress = (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)) if args.verbose else None
    results = ev.evaluate(model, split=args.split, n_items=n_items or args.n_items, seed=args.seed,
                          worlds=args.worlds, tasks=args.tasks, image_size=ev.model_image_size(model),
                          batch_size=args.batch_size, progress=progress,
                          position_twins=getattr(args, "position_twins", BENCHMARK_TWINS))
    results["model"] = {"checkpoint": str(path), "kind": model.checkpoint_kind,
                        "parameters": effective_parameters(model) if hasattr(model, "token_seen") else None,
                        "eval_seconds": round(time.perf_counter() - start, 1)}
    if getattr(args, "binding", False):
        results["position_binding"] = ev.position_binding(model, split=args.split, n_items=n_items or args.n_items,
                                                          seed=args.seed, worlds=list(results["worlds"]),
                                                          image_size=ev.model_image_size(model))
    return results


def load_results(path: str | Path, args: argparse.Namespace) -> dict:
    """A results JSON file as is, or a checkpoint folder evaluated now."""
    path = Path(path)
    if path.is_file():
        with open(path) as f:
            return json.load(f)
    print(f"evaluating {path} …", file=sys.stderr, flush=True)
    return evaluate_checkpoint(path, args)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--checkpoint", help="checkpoint folder (config.json + model.safetensors)")
    what.add_argument("--compare", nargs="+", metavar="DIR_OR_JSON", help="checkpoints and/or results files")
    parser.add_argument("--names", nargs="+", help="column names for --compare (default: folder/file names)")
    parser.add_argument("--seed", type=int, default=0, help="test-set seed: another seed = a fresh test set")
    parser.add_argument("--n-items", type=int, default=DEFAULT_ITEMS, help="items per (world, task)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--worlds", nargs="+", default=list(ev.default_worlds()))
    parser.add_argument("--tasks", nargs="+", default=None, help="default: every task")
    parser.add_argument("--batch-size", type=int, default=ev.ENCODE_BATCH, help="sides per encode call")
    parser.add_argument("--out", default="", help="write the results (JSON) here")
    parser.add_argument("--update-metrics", action="store_true",
                        help="store the results (+ a fixed slice) in the checkpoint's metrics.json")
    parser.add_argument("--slice-items", type=int, default=ev.SLICE_ITEMS,
                        help="items per (world, task) of the slice stored by --update-metrics")
    parser.add_argument("--no-kinds", action="store_true", help="tables without the per-kind rows")
    parser.add_argument("--per-world", action="store_true", help="--compare: also one table per world")
    parser.add_argument("--delta", action="store_true",
                        help="--compare: add a column last − first and print the largest task difference "
                             "(e.g. one checkpoint on two test seeds: python train/evaluate.py --compare "
                             "seed0.json seed1.json --delta)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads (0: torch's default; 1 is faster on a machine busy with other jobs)")
    parser.add_argument("--verbose", action="store_true", help="print progress to stderr")
    parser.add_argument("--position-twins", default=BENCHMARK_TWINS, choices=list(POSITION_TWINS),
                        help="what the position task's twins differ in (fuselip.data.tasks.twin_attribute): "
                             f"appearance (the benchmark, {BENCHMARK_TWINS!r}: colour where a world has colours, "
                             "the query naming the shape only; in EmojiWorld two emoji of one category, the query "
                             "naming the category), colour (colour, else size: the benchmark of the v3 set in "
                             "docs/results/v3/) or size (the twins share the class phrase; the v2 set)")
    parser.add_argument("--objects", default="",
                        help="--checkpoint: evaluate per object count instead, e.g. 1,3,5,7,9 or 1-9 (scenes of "
                             "exactly k objects, one test set per k; fuselip.bottleneck; default tasks: "
                             "caption, vqa, crop, position, tgit, edit)")
    parser.add_argument("--binding", action="store_true",
                        help="--checkpoint: also the position diagnostic (fuselip.evaluate.position_binding): "
                             "cosine of the 'left' and 'right' queries, 2-way 'what size is the X on the left?', "
                             "linear probes of the target twin's size from its crop and from the query "
                             "(always on the size twins)")
    args = parser.parse_args(argv)
    if args.update_metrics and args.position_twins != BENCHMARK_TWINS:
        parser.error(f"--update-metrics stores the benchmark, whose position twins are {BENCHMARK_TWINS!r}: "
                     "drop --position-twins or --update-metrics")
    if args.objects and (not args.checkpoint or args.update_metrics or args.binding):
        parser.error("--objects evaluates one --checkpoint per object count; it cannot be combined with --compare, "
                     "--update-metrics or --binding")
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)

    if args.objects:
        return evaluate_by_objects(args)
    if args.checkpoint:
        results = evaluate_checkpoint(args.checkpoint, args)
        for world, b in results.get("position_binding", {}).items():
            print(f"position binding, {world}: left/right query cosine {b['left_right_cosine']:.3f}, "
                  f"size question top-1 {b['size_question_top1']:.1f} %, target size probed from the crop "
                  f"{b['crop_size_probe']:.1f} % / from the query {b['query_size_probe']:.1f} % (n={b['n']})")
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(Path(args.out), results)
        if args.update_metrics:
            update_metrics(args.checkpoint, results, args)
        print(ev.to_markdown(results, kinds=not args.no_kinds))
        return results

    names = args.names or [Path(p).stem if Path(p).is_file() else Path(p).name for p in args.compare]
    if len(names) != len(args.compare):
        parser.error(f"--names has {len(names)} entries for {len(args.compare)} models")
    by_model = {name: load_results(path, args) for name, path in zip(names, args.compare)}
    print(ev.compare(by_model, kinds=not args.no_kinds, delta=args.delta))
    if args.per_world:
        worlds = list(dict.fromkeys(w for r in by_model.values() for w in r["worlds"]))
        for world in worlds:
            print()
            print(ev.compare(by_model, world=world, kinds=not args.no_kinds, delta=args.delta))
    if args.delta and len(by_model) >= 2:
        results = list(by_model.values())
        delta, where = ev.max_delta(results[0], results[-1])
        print(f"\nlargest task difference {names[0]} -> {names[-1]}: {delta:.1f} points ({where})")
    if args.out:
        write_json_atomic(Path(args.out), by_model)
    return by_model


def evaluate_by_objects(args: argparse.Namespace) -> dict:
    """--objects: the benchmark per object count (fuselip.bottleneck), written to --out, a table per world."""
    from fuselip import bottleneck
    try:
        objects = bottleneck.parse_objects(args.objects)
    except ValueError as e:
        raise SystemExit(f"--objects: {e}") from None
    model = load_model(args.checkpoint)
    progress = (lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)) if args.verbose else None
    start = time.perf_counter()
    results = bottleneck.evaluate_by_objects(model, objects, worlds=args.worlds, tasks=args.tasks or bottleneck.TASKS,
                                             split=args.split, n_items=args.n_items, seed=args.seed,
                                             batch_size=args.batch_size, position_twins=args.position_twins,
                                             progress=progress)
    results["model"] = bottleneck.model_record(args.checkpoint, model, time.perf_counter() - start)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(args.out), results)
    for world in ["mean"] + list(results["by_objects"][str(objects[0])]["worlds"]):
        print(bottleneck.to_markdown(results, world) + "\n")
    return results


def update_metrics(checkpoint: str | Path, results: dict, args: argparse.Namespace) -> None:
    """metrics.json gets "benchmark" (these results) and "benchmark_slice" (a small fixed re-measurable slice)."""
    path = Path(checkpoint) / METRICS_FILE
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics["benchmark"] = results
    metrics["benchmark_slice"] = ev.measure_slice(load_model(checkpoint), split=results["split"],
                                                  seed=results["seed"], worlds=list(results["worlds"]),
                                                  n_items=args.slice_items,
                                                  position_twins=results.get("position_twins"))
    write_json_atomic(path, metrics)


if __name__ == "__main__":
    main()
