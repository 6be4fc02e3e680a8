"""Figures drawn from result files (docs/results/*.json) and the chance levels they mark, one subcommand each
(run from the repository root):

    python -m fuselip.plots chance [--n-items 2000] [--out docs/results/chance.json]
        the chance level of every benchmark task, from the evaluation items' candidate lists (no model needed)
    python -m fuselip.plots lesson [--out docs/lesson.png]
        the lesson figure: per task, FuseLIP against the better late fusion, with chance levels;
        the values drawn are written beside it (docs/lesson.json), and tests/test_plots.py redraws both
    python -m fuselip.plots curves SOURCE… [--x pairs|minutes] [--world mean|shapes|emoji] [--out curves.png]
        learning curves (fuselip.curves) of checkpoints, run folders or recipe-study records

Each figure is made by a pure function (data in, matplotlib figure out) and saved by `save_png`, which writes
the same bytes for the same data (Agg backend, fixed size and dpi, no software stamp in the PNG).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
DPI = 120

# ---------------------------------------------------------------------------------------------
# chance levels

CHANCE_JSON = RESULTS / "chance.json"
CHANCE_ITEMS = 2000   # the benchmark's own items (train/evaluate.py --n-items 2000 --seed 0): same candidate lists


def chance_results(n_items: int = CHANCE_ITEMS, seed: int = 0, split: str = "test") -> dict:
    """fuselip.evaluate.chance_levels on the benchmark items, with the command and its time recorded."""
    from fuselip.evaluate import chance_levels
    start = time.perf_counter()
    results = chance_levels(split=split, n_items=n_items, seed=seed)
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["command"] = f"python -m fuselip.plots chance --n-items {n_items} --seed {seed} --split {split}"
    return results


# ---------------------------------------------------------------------------------------------
# the lesson figure: early vs late fusion per task, grouped by what the task asks of the text

LESSON_PNG = ROOT / "docs" / "lesson.png"
EARLY = ("FuseLIP-tiny", RESULTS / "fuselip-tiny-seed0.json")
LATE = (("SigLIP-SF-tiny", RESULTS / "siglip-sf-tiny-seed0.json"),
        ("SigLIP-MLF-tiny", RESULTS / "siglip-mlf-tiny-seed0.json"))
LESSON_GROUPS = (("the text must act on the image", ("tgit", "position", "position_twin", "edit", "vqa", "crop")),
                 ("unimodal", ("caption", "retrieval", "classify")))
TASK_LABELS = {"tgit": "TGIT", "position": "position", "position_twin": "position\n(twin only)", "edit": "edit",
               "vqa": "VQA", "crop": "crop", "caption": "caption", "retrieval": "caption\nretrieval",
               "classify": "zero-shot\nclassify"}
EARLY_COLOUR, LATE_COLOUR, CHANCE_COLOUR = "#1f77b4", "#b0b0b0", "#d62728"
FIGSIZE = (11.0, 5.0)


def _relative(path: Path) -> str:
    """A path as written in the sidecar: relative to the repository when it lies inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _mean(path: Path) -> dict[str, float]:
    return json.loads(Path(path).read_text())["mean"]


def lesson_row(task: str, group: str, early: dict, late: dict[str, dict], chance: dict) -> dict:
    """One task of the figure: FuseLIP's top-1, the better late fusion's (and which one), the chance level."""
    best = max(late, key=lambda name: late[name][task])   # ties go to the first (SF)
    return {"task": task, "group": group, "early": early[task], "late": late[best][task], "late_model": best,
            "chance": chance[task]}


def lesson_data(early: tuple[str, Path] = EARLY, late=LATE, chance: Path = CHANCE_JSON) -> dict:
    """Everything the lesson figure draws, read from the result files (docs/lesson.json holds it)."""
    early_name, early_path = early
    early_mean = _mean(early_path)
    late_means = {name: _mean(path) for name, path in late}
    chance_data = json.loads(Path(chance).read_text())
    rows = [lesson_row(task, group, early_mean, late_means, chance_data["mean"])
            for group, tasks in LESSON_GROUPS for task in tasks]
    return {"early": early_name, "late": [name for name, _ in late],
            "sources": {early_name: _relative(early_path), **{name: _relative(path) for name, path in late},
                        "chance": _relative(chance)},
            "chance_items": chance_data["n_items"], "split": chance_data["split"], "rows": rows}


def _short(model: str) -> str:
    """'SigLIP-MLF-tiny' -> 'MLF': the fusion's name, short enough for a bar."""
    return model.removeprefix("SigLIP-").removesuffix("-tiny")


def _chance_text(value: float) -> str:
    return f"{value:.1f}" if value >= 0.95 else f"{value:.2f}"


def _bar_labels(ax, bars, texts) -> None:
    for bar, text in zip(bars, texts):
        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=8)


def _draw_group(ax, group: str, rows: list[dict], width: float = 0.38) -> None:
    """One panel: a pair of bars per task (FuseLIP, the better late fusion) and a chance line across each pair."""
    xs = range(len(rows))
    early = ax.bar([x - width / 2 for x in xs], [r["early"] for r in rows], width, color=EARLY_COLOUR)
    late = ax.bar([x + width / 2 for x in xs], [r["late"] for r in rows], width, color=LATE_COLOUR)
    _bar_labels(ax, early, [f"{r['early']:.1f}" for r in rows])
    _bar_labels(ax, late, [f"{r['late']:.1f}\n{_short(r['late_model'])}" for r in rows])
    for x, r in zip(xs, rows):
        ax.hlines(r["chance"], x - width - 0.05, x + width + 0.05, colors=CHANCE_COLOUR, linestyles="--", lw=1.6)
    ax.set_xticks(list(xs), [f"{TASK_LABELS.get(r['task'], r['task'])}\nchance {_chance_text(r['chance'])}"
                             for r in rows], fontsize=9)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_title(group, fontsize=11, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)


def lesson_figure(data: dict):
    """The lesson figure from `lesson_data`: two panels (the groups), a shared 0-100 % axis, one legend below."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    groups = [g for g, _ in LESSON_GROUPS if any(r["group"] == g for r in data["rows"])]
    rows = {g: [r for r in data["rows"] if r["group"] == g] for g in groups}
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(groups), sharey=True, width_ratios=[len(rows[g]) for g in groups])
    for ax, group in zip(axes, groups):
        _draw_group(ax, group, rows[group])
    axes[0].set_ylim(0, 105)
    axes[0].set_ylabel("top-1 accuracy (%)")
    late = " and ".join(data["late"])
    handles = [Patch(color=EARLY_COLOUR, label=f"{data['early']} (early fusion)"),
               Patch(color=LATE_COLOUR, label=f"late fusion: the better of {late} per task (named on the bar)"),
               Line2D([], [], color=CHANCE_COLOUR, ls="--", lw=1.6, label="chance (a random ranking)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=9)
    fig.suptitle(f"Early vs late fusion on the {data['split']} split (top-1, mean of both worlds)", fontsize=12)
    return fig


def save_png(fig, path: Path) -> None:
    """The same figure always gives the same bytes: Agg, fixed dpi, no 'Software' stamp."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, metadata={"Software": None})


def draw_lesson(out: Path = LESSON_PNG, **sources) -> dict:
    """Draws the lesson figure to `out` and its values to `out` with .json; returns the values."""
    import matplotlib
    data = lesson_data(**sources)
    data["matplotlib"] = matplotlib.__version__
    save_png(lesson_figure(data), out)
    Path(out).with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    return data


# ---------------------------------------------------------------------------------------------
# the command line: one subcommand per figure


def _cmd_chance(args) -> None:
    results = chance_results(args.n_items, args.seed, args.split)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"chance levels of {args.n_items} items per task and world ({results['seconds']} s) -> {args.out}")


def _cmd_lesson(args) -> None:
    data = draw_lesson(Path(args.out), chance=Path(args.chance))
    print(f"{len(data['rows'])} tasks -> {args.out} (values in {Path(args.out).with_suffix('.json')})")


def _cmd_curves(args) -> None:
    from fuselip.curves import curves_figure, load_curve
    curves = dict(load_curve(path) for path in args.sources)
    chance = None
    if Path(args.chance).exists():
        levels = json.loads(Path(args.chance).read_text())
        chance = levels["mean"] if args.world == "mean" else {t: e["top1"] for t, e in
                                                              levels["worlds"][args.world].items()}
    fig = curves_figure(curves, tasks=tuple(args.tasks), world=args.world, x=args.x, chance=chance)
    save_png(fig, Path(args.out))
    print(f"{len(curves)} learning curves -> {args.out}")


def build_parser() -> argparse.ArgumentParser:
    """One subparser per command, each naming its handler with set_defaults(run=...)."""
    parser = argparse.ArgumentParser(prog="python -m fuselip.plots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    chance = commands.add_parser("chance", help="chance levels of the benchmark items -> JSON")
    chance.add_argument("--n-items", type=int, default=CHANCE_ITEMS, help="items per task and world")
    chance.add_argument("--seed", type=int, default=0)
    chance.add_argument("--split", default="test")
    chance.add_argument("--out", default=str(CHANCE_JSON))
    chance.set_defaults(run=_cmd_chance)
    lesson = commands.add_parser("lesson", help="the lesson figure (FuseLIP vs the better late fusion)")
    lesson.add_argument("--out", default=str(LESSON_PNG), help="PNG; the values drawn go beside it as .json")
    lesson.add_argument("--chance", default=str(CHANCE_JSON), help="chance levels (python -m fuselip.plots chance)")
    lesson.set_defaults(run=_cmd_lesson)
    from fuselip.curves import TASKS, X_AXES
    curves = commands.add_parser("curves", help="learning curves: accuracy per task against pairs seen or minutes")
    curves.add_argument("sources", nargs="+", help="checkpoint folders (metrics.json), run folders "
                                                   "(validation.jsonl) or study records (docs/results/study/…json)")
    curves.add_argument("--out", default="curves.png")
    curves.add_argument("--tasks", nargs="+", default=list(TASKS))
    curves.add_argument("--world", default="mean", help="mean | shapes | emoji")
    curves.add_argument("--x", default="pairs", choices=sorted(X_AXES))
    curves.add_argument("--chance", default=str(CHANCE_JSON), help="chance levels drawn as dotted lines")
    curves.set_defaults(run=_cmd_curves)
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
