"""Time to accuracy: CPU minutes until FuseLIP-tiny first reaches 80 % TGIT on ShapesWorld, default recipe vs anchor.

FuseLIP-tiny is trained from scratch with the `tiny` preset (the default recipe) on every core given
(`--threads`, default 2), through the real engine (fuselip.engine.Trainer: collate -> forward_pairs -> SigLIP + MMM
-> backward -> AdamW). Every `--check-minutes` of training it is validated on ShapesWorld TGIT (`--items` validation
items, the five kinds alike); it stops when TGIT first reaches `--target` (80) or after `--max-minutes`.
Minutes are training time: data generation, image tokenisation and the validations themselves are not counted
(they are printed beside it).

The anchor, in the same run: the recipe the suite shipped before the recipe study (ANCHOR_OVERRIDES on the same
preset), trained for the same number of minutes and validated at the same moments. The ratio line compares the
two at equal minutes.

    python benchmarks/time_to_accuracy.py [--max-minutes 45] [--check-minutes 2] [--items 250] [--no-anchor]

Last line: `minutes_to_tgit80=X` (training minutes of the default recipe; `>M` if not reached in --max-minutes).
Measure alone on the machine: the figure is a speed.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuselip import evaluate as ev  # noqa: E402
from fuselip.config import RunConfig, from_dict, load_preset, to_dict  # noqa: E402
from fuselip.data.tasks import sample_pairs  # noqa: E402
from fuselip.engine import Trainer  # noqa: E402
from fuselip.model import build_fuselip  # noqa: E402

# today's shipped recipe, as overrides of the tiny preset (what the recipe study changed, set back)
ANCHOR_OVERRIDES: dict[str, dict] = {"data": {"tgit_groups": "sampled"}}


def recipe(anchor: bool) -> RunConfig:
    cfg = load_preset("fuselip", "tiny")
    if not anchor:
        return cfg
    data = to_dict(cfg)
    for section, values in ANCHOR_OVERRIDES.items():
        data[section].update(values)
    return from_dict(RunConfig, data)


def tgit_source(n_items: int, seed: int, image_size: int):
    items = list(ev.benchmark_items("val", n_items, seed, image_size)("shapes", "tgit"))
    return lambda world, task: items


def race(cfg: RunConfig, threads: int, target: float, check_s: float, max_s: float, n_items: int,
         label: str) -> list[tuple[float, float]]:
    """Trains until ShapesWorld TGIT >= target or max_s training seconds; returns [(train minutes, tgit %)]."""
    cfg.train.threads = threads
    torch.manual_seed(cfg.train.seed)
    t0 = time.perf_counter()
    model = build_fuselip(cfg)
    pairs = sample_pairs(cfg.data, "train", cfg.data.train_pairs, cfg.data.seed)
    source = tgit_source(n_items, cfg.data.seed, cfg.data.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, cfg, pairs, out_dir=tmp, progress=False)
        trainer.prepare()  # tokenises every image once (not training time)
        print(f"{label}: {len(pairs)} pairs and their image tokens in {time.perf_counter() - t0:.0f}s", flush=True)
        points, train_s, next_check = [], 0.0, check_s
        while True:
            start = time.perf_counter()
            trainer.backward(trainer.next_batch(), trainer.step)
            trainer.optimizer_step(trainer.step)
            trainer.step += 1
            train_s += time.perf_counter() - start
            if train_s >= next_check or train_s >= max_s or trainer.step >= cfg.train.steps:
                model.eval()
                with torch.no_grad():
                    tgit = ev.evaluate(model, source, worlds=("shapes",), tasks=("tgit",))["mean"]["tgit"]
                model.train()
                points.append((train_s / 60, tgit))
                print(f"{label}: {train_s / 60:5.1f} min, step {trainer.step}, "
                      f"{trainer.step * cfg.train.batch_size} pairs: ShapesWorld TGIT {tgit:.1f}", flush=True)
                next_check += check_s
                if tgit >= target or train_s >= max_s or trainer.step >= cfg.train.steps:
                    return points


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=80.0, help="ShapesWorld TGIT top-1 to reach (%%)")
    parser.add_argument("--max-minutes", type=float, default=45.0, help="give up after this many training minutes")
    parser.add_argument("--check-minutes", type=float, default=2.0, help="training minutes between validations")
    parser.add_argument("--items", type=int, default=250, help="ShapesWorld TGIT validation items")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-anchor", action="store_true", help="skip the anchor (today's shipped recipe)")
    args = parser.parse_args(argv)

    ours = race(recipe(anchor=False), args.threads, args.target, args.check_minutes * 60, args.max_minutes * 60,
                args.items, "default recipe")
    reached = [m for m, tgit in ours if tgit >= args.target]
    minutes = reached[0] if reached else None
    if not args.no_anchor:
        budget = (minutes or args.max_minutes) * 60
        anchor = race(recipe(anchor=True), args.threads, float("inf"), args.check_minutes * 60, budget,
                      args.items, "anchor (shipped recipe)")
        ours_last, anchor_last = ours[-1][1], anchor[-1][1]
        print(f"at {anchor[-1][0]:.1f} training minutes: ShapesWorld TGIT default recipe {ours_last:.1f} vs anchor "
              f"{anchor_last:.1f}; ratio {ours_last / max(anchor_last, 1e-9):.2f}")
    print(f"minutes_to_tgit80={minutes:.1f}" if minutes is not None else f"minutes_to_tgit80=>{args.max_minutes:g}")


if __name__ == "__main__":
    main()
