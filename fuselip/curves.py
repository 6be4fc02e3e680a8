"""Learning curves: validation accuracy per task against pairs seen or training minutes.

A curve is the list of validation records a training run writes (fuselip.engine.Trainer.validate): each holds
`step`, `pairs_seen`, `train_seconds` (validation time excluded) and every metric of fuselip.evaluate.flat_metrics
("mean/tgit", "shapes/tgit/flip", …). Shipped checkpoints keep theirs in metrics.json ("curve"); a recipe-study
record (train/study.py) under "curve"; a run folder in validation.jsonl. `load_curve` reads any of the three.

    python -m fuselip.plots curves checkpoints/fuselip-tiny checkpoints/siglip-mlf-tiny --out curves.png
"""
from __future__ import annotations

import json
from pathlib import Path

TASKS = ("tgit", "position_twin", "edit", "vqa", "retrieval", "caption")
X_AXES = {"pairs": ("pairs_seen", "pairs seen (thousands)", 1e-3), "minutes": ("train_seconds", "training minutes",
                                                                                1 / 60)}


def load_curve(path: str | Path) -> tuple[str, list[dict]]:
    """(label, curve) from a checkpoint folder, a run folder, or a JSON file holding a "curve" list."""
    path = Path(path)
    if path.is_dir() and (path / "metrics.json").exists():
        data = json.loads((path / "metrics.json").read_text())
        curve = data.get("curve")
    elif path.is_dir() and (path / "validation.jsonl").exists():
        curve = [json.loads(line) for line in (path / "validation.jsonl").read_text().splitlines() if line.strip()]
    elif path.is_file():
        curve = json.loads(path.read_text()).get("curve")
    else:
        raise FileNotFoundError(f"{path}: neither a checkpoint folder (metrics.json), a run folder "
                                f"(validation.jsonl) nor a JSON file with a learning curve")
    if not curve:
        raise ValueError(f"{path}: holds no learning curve (no validation records); train with "
                         f"--train.val_every to record one")
    label = path.stem if path.is_file() else path.name
    return label, curve


def curves_figure(curves: dict[str, list[dict]], tasks=TASKS, world: str = "mean", x: str = "pairs",
                  chance: dict[str, float] | None = None):
    """One panel per task, one line per run: accuracy (%) against pairs seen or training minutes."""
    import matplotlib.pyplot as plt
    if x not in X_AXES:
        raise ValueError(f"x must be one of {', '.join(X_AXES)}, got {x!r}")
    key, xlabel, scale = X_AXES[x]
    cols = min(3, len(tasks))
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        metric = f"{world}/{task}"
        for label, curve in curves.items():
            points = [(p[key] * scale, p[metric]) for p in curve if metric in p and key in p]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=label)
        if chance and task in chance:
            ax.axhline(chance[task], color="grey", linestyle=":", linewidth=1)
            ax.text(ax.get_xlim()[0], chance[task], " chance", color="grey", va="bottom", fontsize=8)
        ax.set_title(metric)
        ax.set_ylim(0, 100)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("top-1 (%)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False)
    fig.tight_layout(rect=(0, 0.04 + 0.03 * ((len(labels) - 1) // 4), 1, 1))
    return fig
