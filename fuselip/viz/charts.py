"""Charts of numbers: the loss curves and SigLIP temperature of an engine run, and top-1 accuracy per task as
grouped bars. Matplotlib figures out (imported only when drawn)."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def training_curves_figure(history: Sequence[dict], title: str = "", parts: Sequence[str] = ("loss", "siglip", "mmm")):
    """Loss curves of an engine run (fuselip.engine.Trainer.history: one dict per log step) and, on a second
    panel, the learned SigLIP logit scale exp(t) and bias b."""
    import matplotlib.pyplot as plt
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8, 2.8))
    steps = [h["step"] for h in history]
    for name in parts:
        if history and name in history[0]:
            ax.plot(steps, [h[name] for h in history], label=name, lw=1.5 if name == "loss" else 1)
    ax.set(xlabel="step", ylabel="loss", title=title or "training loss")
    ax.legend(fontsize=7)
    if history and "logit_scale" in history[0]:
        # both axes start at 0 and reach at least twice the starting values (10 and -10), so a drift of a few
        # hundredths looks like one, not like a dive (matplotlib's automatic limits would zoom into it)
        scale = [float(np.exp(h["logit_scale"])) for h in history]
        bias = [h["logit_bias"] for h in history]
        ax2.plot(steps, scale, color="C3", label="scale exp(t)")
        ax2.set_ylabel("scale exp(t)", color="C3")
        ax2.set_ylim(0, max(20.0, 1.1 * max(scale)))
        twin = ax2.twinx()
        twin.plot(steps, bias, color="C4", label="bias b")
        twin.set_ylabel("bias b", color="C4")
        twin.set_ylim(min(-20.0, 1.1 * min(bias)), 0)
    ax2.set(xlabel="step", title="SigLIP temperature and bias")
    fig.tight_layout()
    return fig


def task_bars_figure(results_by_model: dict, world: str = "mean", tasks: Sequence[str] | None = None,
                     title: str = "top-1 accuracy per task"):
    """Grouped bars: one group per task, one bar per model, from fuselip.evaluate results ({model: results});
    `world` = "mean" (over worlds) or a world name."""
    import matplotlib.pyplot as plt
    names = list(results_by_model)
    if tasks is None:
        tasks = []
        for results in results_by_model.values():
            source = results["mean"] if world == "mean" else results["worlds"].get(world, {})
            tasks += [t for t in source if t not in tasks]
    def value(results, task):
        if world == "mean":
            return results["mean"].get(task, float("nan"))
        return results["worlds"].get(world, {}).get(task, {}).get("top1", float("nan"))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(1.1 * len(tasks) + 1.5, 3))
    for k, name in enumerate(names):
        x = np.arange(len(tasks)) + (k - (len(names) - 1) / 2) * width
        ax.bar(x, [value(results_by_model[name], t) for t in tasks], width, label=name)
    ax.set_xticks(np.arange(len(tasks)), tasks, fontsize=8)
    ax.set(ylabel="top-1 (%)", ylim=(0, 100), title=f"{title} ({world})")
    ax.legend(fontsize=7, ncol=len(names))
    fig.tight_layout()
    return fig
