"""The recipe study of FuseLIP-tiny: each factor changed alone from a base recipe, measured as learning curves.

    python train/study.py --list                          # the runs and what each changes
    python train/study.py base tgit-full --parallel 2     # train them (1 thread each when 2 run at once)
    python train/study.py tgit-full --steps 1500          # a longer run of a promising factor
    python train/study.py --rotations checkpoints/fuselip-tiny  # how far off its rotations are
    python train/study.py --dose shapes tgit --out fig.png  # accuracy against the task pairs a world has seen

Every run is `train/train_fuselip.py --preset tiny` with the study's budget (`--steps` of batch 128, one epoch of
fresh pairs, validation on `--val-items` items per task and world every `--val-every` steps) plus the run's own
overrides, in runs/study/<steps>/<run>/ (resumable: an interrupted run continues with the same command). When a
run ends its learning curve (step, pairs seen, training seconds, every validation metric), the overrides and the
exact command are written to docs/results/study/<steps>/<run>.json; `python -m fuselip.plots curves` draws them.
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "study"

# run name -> (what it changes, the overrides on top of the base recipe)
STUDY: dict[str, tuple[str, list[str]]] = {
    "base": ("the shipped recipe", []),
    # TGIT hard-negative groups
    "tgit-full": ("TGIT groups hold every evaluation candidate of their kind as a target",
                  ["--data.tgit_groups=full"]),
    "tgit-reference": ("TGIT groups as the reference code builds them", ["--data.tgit_groups=reference"]),
    # the reference code's training differences
    "mmm-sides": ("MMM loss: one mean per side (the reference)", ["--encoder.mmm_reduction=sides"]),
    "wd-1": ("weight decay 1.0 (the reference, CC3M)", ["--train.weight_decay=1.0"]),
    "dup-negatives": ("identical right sides count as negatives (the reference)",
                      ["--train.duplicates=negative"]),
    # image tokens
    "tokens-patch": ("k-means codes of non-overlapping 8x8 pixel patches (1024 codes) instead of the VQ-VAE grid",
                     ["--preset", "tiny-patch", "--tokenizer_checkpoint=runs/tokenizer-patch-tiny"]),
    "tokens-patch-512": ("k-means patch codes, 512 codes",
                         ["--preset", "tiny-patch", "--tokenizer_checkpoint=runs/tokenizer-patch-tiny-512"]),
    # optimisation
    "mmm-off": ("no masked multimodal modelling (SigLIP alone)", ["--encoder.mmm_probability=0.0"]),
    "lr-2e-3": ("learning rate 2e-3", ["--train.lr=0.002"]),
    "lr-5e-4": ("learning rate 5e-4", ["--train.lr=0.0005"]),
    "warmup-25": ("warm-up 25 steps", ["--train.warmup_steps=25"]),
    "batch-64": ("batch 64 (same pairs: twice the steps)", ["--train.batch_size=64", "@steps*2"]),
    "batch-256": ("batch 256 (same pairs: half the steps)", ["--train.batch_size=256", "@steps/2"]),
    "scale-30": ("SigLIP logit scale starts at ln 30 instead of ln 10",
                 ["--encoder.init_logit_scale=3.4011973816621555"]),
    "scale-100": ("SigLIP logit scale starts at ln 100, its maximum", ["--encoder.init_logit_scale=4.605170185988092"]),
    "full-scale-30": ("tgit-full and scale-30 together", ["--data.tgit_groups=full",
                                                        "--encoder.init_logit_scale=3.4011973816621555"]),
    # architecture at equal FLOPs
    "deep-8x184": ("8 layers of width 184 (about the FLOPs of 4 x 256)",
                   ["--encoder.width=184", "--encoder.layers=8"]),
    # task mixture
    "mix-fused": ("a mixture weighted towards the fused tasks",
                  ['--data.task_weights={"caption": 0.15, "tgit": 0.4, "vqa": 0.1, "crop": 0.05, '
                   '"position": 0.25, "edit": 0.05}']),
    # curriculum
    "curriculum-shapes": ("ShapesWorld alone for the first 30 % of the steps, then both worlds",
                          ['--data.curriculum_first=["shapes"]', "--data.curriculum_until=0.3"]),
    "curriculum-captions": ("captions alone for the first 20 % of the steps, then every task",
                            ['--data.curriculum_first=["caption"]', "--data.curriculum_until=0.2"]),
    "group-9": ("hard-negative groups of up to 9 (VQA, edits, sampled TGIT)", ["--data.group_size=9"]),
    "mmm-clean": ("MMM kept, but the contrastive embeddings come from a second, unmasked pass",
                  ["--encoder.mmm_pass=clean"]),
    # the screening's two best changes together
    "ref-mmm-off": ("tgit-reference and mmm-off together", ["--data.tgit_groups=reference",
                                                             "--encoder.mmm_probability=0.0"]),
    "ref-mmm-clean": ("tgit-reference and mmm-clean together", ["--data.tgit_groups=reference",
                                                                 "--encoder.mmm_pass=clean"]),
    # the issue's own probe of the prototype's focus (ShapesWorld alone, a TGIT- and position-heavy mixture, groups
    # of up to 9), run long enough to compare with the prototype at its ~150,000 pairs
    "focus-shapes": ("ShapesWorld alone, TGIT 0.6 / caption 0.2 / position 0.2, groups of up to 9 (the issue's probe)",
                     ['--data.worlds=["shapes"]', "--data.world_weights=[1.0]",
                      '--data.task_weights={"tgit": 0.6, "caption": 0.2, "position": 0.2}', "--data.group_size=9"]),
    "focus-ref-mmm-off": ("focus-shapes with the reference's TGIT groups and MMM off",
                          ['--data.worlds=["shapes"]', "--data.world_weights=[1.0]",
                           '--data.task_weights={"tgit": 0.6, "caption": 0.2, "position": 0.2}', "--data.group_size=9",
                           "--data.tgit_groups=reference", "--encoder.mmm_probability=0.0"]),
    "ref-batch-64": ("tgit-reference at batch 64 (same pairs: twice the optimiser steps)",
                     ["--data.tgit_groups=reference", "--train.batch_size=64", "@steps*2"]),
    "ref-mix-tgit": ("tgit-reference with TGIT at 0.45 of the pairs (caption 0.15, VQA 0.05)",
                     ["--data.tgit_groups=reference",
                      '--data.task_weights={"caption": 0.15, "tgit": 0.45, "vqa": 0.05, "crop": 0.05, '
                      '"position": 0.25, "edit": 0.05}']),
}


def run_dir(name: str, steps: int) -> Path:
    return ROOT / "runs" / "study" / str(steps) / name


def command(name: str, steps: int, val_every: int, val_items: int, threads: int, batch: int = 128,
            precision: str | None = None) -> list[str]:
    """The training command of one study run (the base budget, then the run's overrides)."""
    overrides = list(STUDY[name][1]) + ([f"--train.precision={precision}"] if precision else [])
    preset = "tiny"
    if "--preset" in overrides:
        i = overrides.index("--preset")
        preset = overrides[i + 1]
        del overrides[i:i + 2]
    run_steps = steps
    for o in [o for o in overrides if o.startswith("@")]:  # "@steps*2": same pairs at another batch size
        run_steps = int(eval(o[1:], {}, {"steps": steps}))  # noqa: S307 (our own table)
        overrides.remove(o)
    ratio = run_steps / steps
    return [sys.executable, "train/train_fuselip.py", "--preset", preset,
            f"--train.out_dir={run_dir(name, steps).relative_to(ROOT)}", "--resume",
            f"--train.steps={run_steps}", f"--train.val_every={round(val_every * ratio)}",
            f"--train.checkpoint_every={round(val_every * ratio)}", f"--train.warmup_steps={round(100 * ratio)}",
            f"--data.train_pairs={steps * batch}", f"--data.val_items={val_items}", f"--train.threads={threads}",
            *overrides]


def record(name: str, steps: int, cmd: list[str]) -> Path:
    """docs/results/study/<steps>/<name>.json from the finished run."""
    folder = run_dir(name, steps)
    curve = [json.loads(line) for line in (folder / "validation.jsonl").read_text().splitlines() if line.strip()]
    summary = json.loads((folder / "summary.json").read_text())
    out = RESULTS / str(steps) / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "changes": STUDY[name][0], "overrides": STUDY[name][1],
            "command": shlex.join(["python"] + cmd[1:]), "pairs_per_s": summary["pairs_per_s"],
            "wall_time_s": summary["wall_time_s"], "curve": curve}
    out.write_text(json.dumps(data, indent=1) + "\n")
    return out


TABLE_METRICS = ("mean/tgit", "shapes/tgit", "emoji/tgit", "shapes/tgit/crop", "shapes/tgit/flip", "shapes/tgit/rotate",
                 "shapes/tgit/jitter", "mean/position_twin", "mean/edit", "mean/vqa", "mean/retrieval")


SHIPPED = ROOT / "checkpoints" / "fuselip-tiny"


def table(steps: int, last: int = 2, shipped: bool = False) -> str:
    """Markdown: per run, the mean of its last `last` validation points for each metric (smoother than one point
    of 100 items), the difference from `base` in brackets, and the throughput. shipped: the shipped FuseLIP-tiny's
    final validation (its metrics.json; the base recipe at 2,000 steps) stands in as `base`."""
    records = {p.stem: json.loads(p.read_text()) for p in sorted((RESULTS / str(steps)).glob("*.json"))}
    if not records:
        return f"no finished runs in {RESULTS / str(steps)}"
    if shipped:
        metrics = json.loads((SHIPPED / "metrics.json").read_text())
        records["base"] = {"curve": [metrics["validation"]], "pairs_per_s": metrics["pairs_per_s"]}

    def final(curve: list[dict], metric: str) -> float:
        values = [p[metric] for p in curve[-last:] if metric in p]
        return sum(values) / len(values) if values else float("nan")
    base = {m: final(records["base"]["curve"], m) for m in TABLE_METRICS} if "base" in records else {}
    header = ["run", *[m.replace("/tgit/", "/").replace("mean/", "") for m in TABLE_METRICS], "pairs/s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, rec in sorted(records.items(), key=lambda kv: (kv[0] != "base", -final(kv[1]["curve"], "mean/tgit"))):
        cells = []
        for m in TABLE_METRICS:
            v = final(rec["curve"], m)
            cells.append(f"{v:.1f}" if name == "base" or m not in base else f"{v:.1f} ({v - base[m]:+.1f})")
        label = "base (the shipped checkpoint)" if shipped and name == "base" else name
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {rec['pairs_per_s']:.0f} |")
    return "\n".join(lines)


def mixture_share(overrides: list[str], world: str, task: str, n: int = 6400) -> float:
    """The share of (world, task) pairs in a run's training set: its data settings (the tiny preset's, or the preset
    it names, with its --data.* overrides) sampled for `n` pairs (the mixture is exact in expectation; groups round)."""
    from collections import Counter

    from fuselip.config import add_override_arguments, apply_overrides, load_preset
    from fuselip.data.tasks import sample_pairs
    args = [o for o in overrides if not o.startswith("@")]
    preset = args[args.index("--preset") + 1] if "--preset" in args else "tiny"
    parser = argparse.ArgumentParser()
    add_override_arguments(parser, "fuselip")
    known, _ = parser.parse_known_args([a for a in args if a.startswith("--data.")])
    data = apply_overrides(load_preset("fuselip", preset), known).data
    counts = Counter((p.world, p.task) for p in sample_pairs(data, "train", n, data.seed))
    return counts[world, task] / n


def dose(world: str = "shapes", task: str = "tgit", out: Path | None = None) -> str:
    """Accuracy on `world/task` against the (world, task) training pairs a run had seen (pairs seen x the share of
    such pairs in its mixture), for every recorded run and the shipped FuseLIP-tiny: does accuracy follow the pairs
    of the task, whatever the mixture around them? Markdown table of each run's last point; `out`: the figure."""
    metric = f"{world}/{task}"
    runs: dict[str, tuple[float, list[dict]]] = {}
    for path in sorted(RESULTS.glob("*/*.json")):
        rec = json.loads(path.read_text())
        runs[f"{rec['name']} ({int(path.parent.name) * 128 // 1000}k)"] = (
            mixture_share(rec["overrides"], world, task), rec["curve"])
    shipped = json.loads((SHIPPED / "metrics.json").read_text())["validation"]  # batch 128: pairs = 128 x steps
    runs["shipped FuseLIP-tiny (256k)"] = (mixture_share([], world, task), [{"pairs_seen": 128 * shipped["step"],
                                                                            **shipped}])
    lines = [f"| run | share of {world} {task} pairs | {task} pairs seen | {metric} |", "|---|---|---|---|"]
    for name, (share, curve) in sorted(runs.items(), key=lambda kv: kv[1][1][-1]["pairs_seen"] * kv[1][0]):
        last = curve[-1]
        seen = last["pairs_seen"] * share / 1000
        lines.append(f"| {name} | {share:.3f} | {seen:.1f}k | {last.get(metric, float('nan')):.1f} |")
    if out is not None:
        import matplotlib.pyplot as plt

        from fuselip.plots import save_png
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
        for name, (share, curve) in runs.items():
            points = [(p["pairs_seen"] * share / 1000, p[metric]) for p in curve if metric in p]
            long = not name.endswith("(76k)")
            ax.plot(*zip(*points), marker="o" if long else ".", markersize=4 if long else 3,
                    linewidth=1.6 if long else 0.7, alpha=1.0 if long else 0.45, label=name if long else None)
        ax.set_xlabel(f"{world} {task} training pairs seen (thousands)")
        ax.set_ylabel(f"{metric} validation top-1 (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{metric} against the {task} pairs of that world (thin: 76,800-pair screens)", fontsize=10)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
        save_png(fig, out)
    return "\n".join(lines)


def diagnose(name: str, steps: int, n_items: int = 50) -> str:
    """Why a run misses TGIT: per kind, over ShapesWorld validation items, the cosine of the fused query with the
    correct candidate, with the best wrong one, and with its own image alone (a model that ignores the instruction
    embeds the query like its input image and ranks the unchanged image first)."""
    import torch

    from fuselip.checkpoint import load_model
    from fuselip.data.tasks import eval_items
    model = load_model(run_dir(name, steps) / "checkpoint").eval()
    rows: dict[str, list[list[float]]] = {}
    for item in eval_items("shapes", "tgit", "val", n_items, 0):
        query = model.encode([item.query.image], [item.query.text])               # (1, D)
        alone = model.encode([item.query.image], [None])                          # (1, D)
        candidates = model.encode([c.image for c in item.candidates])             # (C, D)
        cos = (query @ candidates.T)[0]                                           # (C,)
        rows.setdefault(item.kind, []).append([cos[0].item(), cos[1:].max().item(), (query @ alone.T).item(),
                                               float(cos.argmax() == 0)])
    lines = [f"{name} (logit scale {model.logit_scale.exp().item():.1f}): ShapesWorld TGIT, {n_items} val items",
             "| kind | cos(query, correct) | cos(query, best wrong) | cos(query, its image alone) | top-1 |",
             "|---|---|---|---|---|"]
    for kind, values in rows.items():
        m = torch.tensor(values).mean(0).tolist()
        lines.append(f"| {kind} | {m[0]:.3f} | {m[1]:.3f} | {m[2]:.3f} | {100 * m[3]:.0f} |")
    return "\n".join(lines)


def rotation_errors(checkpoint: str, world: str = "shapes", n_items: int = 800, split: str = "test") -> str:
    """How far off a model's rotations are: over the rotate items of one world's TGIT benchmark (split, seed 0,
    `n_items` TGIT items of which about a fifth rotate), the signed angle of the chosen candidate minus the asked one
    (counter-clockwise positive; 18 candidates, 10..90 degrees either way), and top-1 per asked angle."""
    from collections import Counter, defaultdict

    from fuselip import evaluate as ev
    from fuselip.checkpoint import load_model
    from fuselip.data import tgit
    model = load_model(checkpoint).eval()
    items = [it for it in ev.benchmark_items(split, n_items, 0)(world, "tgit") if it.kind == "rotate"]
    items = [it for it in items if len(it.candidates) == 18]  # none lost to a duplicate candidate
    choices = ev.item_choices(items, ev.embed_unique(model, [s for it in items for s in (it.query, *it.candidates)]))
    options = tgit.all_of_kind("rotate")

    def signed(t) -> int:
        return t.params[0] * (1 if t.params[1] == "counter-clockwise" else -1)
    errors: Counter = Counter()
    by_angle: dict[int, list[bool]] = defaultdict(list)
    direction = 0
    for item, choice in zip(items, choices):
        asked = next(o for o in options if o.text == item.query.text)
        chosen = asked if choice == 0 else [o for o in options if o != asked][choice - 1]  # eval_candidates' order
        errors[signed(chosen) - signed(asked)] += 1
        by_angle[signed(asked)].append(choice == 0)
        direction += (signed(chosen) > 0) == (signed(asked) > 0)
    n = len(items)

    def within(d: int) -> float:
        return 100 * sum(v for k, v in errors.items() if abs(k) <= d) / n
    per_angle = ", ".join(f"{k:+d}: {100 * sum(v) / len(v):.0f}" for k, v in sorted(by_angle.items()))
    return (f"{checkpoint} {world} {split}: {n} rotate items; top-1 {within(0):.1f} %, within 10 degrees "
            f"{within(10):.1f} %, within 20 degrees {within(20):.1f} %, right direction {100 * direction / n:.1f} %\n"
            f"top-1 per asked angle (counter-clockwise positive): {per_angle}\n"
            f"error histogram (degrees: items): {dict(sorted(errors.items()))}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="run names (see --list)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--steps", type=int, default=600, help="steps of batch 128 (default 600 = 76,800 pairs)")
    parser.add_argument("--val-every", type=int, default=100)
    parser.add_argument("--val-items", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=1, help="runs at once (each gets 2 // parallel threads)")
    parser.add_argument("--precision", choices=["bf16", "fp32"],
                        help="the training precision (default: the preset's, auto: bf16 where it is faster than fp32)")
    parser.add_argument("--threads", type=int, help="threads per run (default 2 // parallel; 1 to share the cores "
                        "with other work)")
    parser.add_argument("--record-only", action="store_true", help="only write the records of finished runs")
    parser.add_argument("--table", action="store_true", help="print the finished runs' final figures (markdown)")
    parser.add_argument("--shipped", action="store_true",
                        help="with --table: the shipped FuseLIP-tiny's final validation is the `base` row")
    parser.add_argument("--diagnose", action="store_true", help="cosines of query, correct and wrong TGIT candidates")
    parser.add_argument("--dose", nargs=2, metavar=("WORLD", "TASK"),
                        help="accuracy against the world's task pairs seen, every recorded run (table; --out: figure)")
    parser.add_argument("--out", type=Path, help="with --dose: where to draw the figure")
    parser.add_argument("--rotations", metavar="CHECKPOINT",
                        help="how far off a checkpoint's rotations are (signed angle errors, ShapesWorld and Emoji)")
    args = parser.parse_args(argv)
    if args.dose:
        print(dose(*args.dose, out=args.out))
        return
    if args.rotations:
        for world in ("shapes", "emoji"):
            print(rotation_errors(args.rotations, world))
        return
    if args.diagnose:
        for name in args.runs:
            print(diagnose(name, args.steps))
        return
    if args.table:
        print(table(args.steps, shipped=args.shipped))
        return
    if args.list or not args.runs:
        for name, (changes, overrides) in STUDY.items():
            print(f"{name:18s} {changes}  {' '.join(overrides)}")
        return
    unknown = [r for r in args.runs if r not in STUDY]
    if unknown:
        parser.error(f"unknown run(s) {', '.join(unknown)}; see --list")
    threads = args.threads or max(1, 2 // args.parallel)
    if args.record_only:
        for name in args.runs:
            cmd = command(name, args.steps, args.val_every, args.val_items, threads, precision=args.precision)
            print(f"recorded {name}: {record(name, args.steps, cmd).relative_to(ROOT)}")
        return
    queue, running = list(args.runs), []
    while queue or running:
        while queue and len(running) < args.parallel:
            name = queue.pop(0)
            cmd = command(name, args.steps, args.val_every, args.val_items, threads, precision=args.precision)
            folder = run_dir(name, args.steps)
            folder.mkdir(parents=True, exist_ok=True)
            log = open(folder / "train.log", "a")
            print(f"start {name}: {shlex.join(cmd[1:])}", flush=True)
            running.append((name, cmd, subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)))
        time.sleep(5)
        for entry in list(running):
            name, cmd, proc = entry
            if proc.poll() is not None:
                running.remove(entry)
                if proc.returncode == 0:
                    print(f"done {name}: {record(name, args.steps, cmd).relative_to(ROOT)}", flush=True)
                else:
                    print(f"FAILED {name} (exit {proc.returncode}): see {run_dir(name, args.steps)}/train.log",
                          flush=True)


if __name__ == "__main__":
    main()
