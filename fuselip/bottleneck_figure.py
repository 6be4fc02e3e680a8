"""The bottleneck figure (docs/bottleneck.png): accuracy against objects per scene, one line per model, one panel per
task and per probe read-out, chance levels dashed, drawn from the JSON files of evaluate_by_objects and
probe_by_objects.
"""
from __future__ import annotations

from typing import Sequence

from fuselip import evaluate as ev
from fuselip.bottleneck_eval import tasks_in, value_at
from fuselip.bottleneck_probe import CLASS_NAMES, PROBE_TITLES, PROBES

FIGURE_TASKS = ("tgit", "vqa", "position", "position_twin", "crop", "edit", "retrieval", "caption")


def bottleneck_figure(results: dict[str, dict], probes: dict[str, dict] | None = None, world: str = "mean",
                      tasks: Sequence[str] = FIGURE_TASKS, columns: int = 4,
                      title: str = "Accuracy against objects per scene"):
    """One panel per task (accuracy against objects per scene, one line per model, the chance level dashed), then
    one panel per (world, read-out) of the probes if given. results / probes: {model name: JSON of
    evaluate_by_objects / probe_by_objects}; world: "mean" (over worlds) or a world name."""
    import matplotlib.pyplot as plt
    tasks = [t for t in tasks if any(t in tasks_in(r) for r in results.values())]
    probe_worlds = list(dict.fromkeys(w for probe in (probes or {}).values() for w in probe["worlds"]))
    probe_worlds.sort(key=lambda w: (ev.default_worlds() + (w,)).index(w))  # the suite's world order (JSON sorts)
    probe_panels = [(w, name) for w in probe_worlds for name in PROBES
                    if any(name in entry for probe in (probes or {}).values()
                           for entry in probe["worlds"].get(w, {}).values())]
    if not tasks and not probe_panels:
        raise ValueError("nothing to draw: the results hold none of the tasks and no probe was given")
    columns = min(columns, max(len(tasks), len(probe_panels)))
    gap = -len(tasks) % columns  # the probes start a row of their own
    # a task's name, None for a blank, a probe's (world, read-out)
    panels: list[str | tuple[str, str] | None] = [*tasks, *[None] * (gap if probe_panels else 0), *probe_panels]
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 2.9 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(dict.fromkeys(list(results) + list(probes or {})))
    style = {name: colours[i % len(colours)] for i, name in enumerate(names)}
    for ax, panel in zip(axes.flat, panels):
        if panel is None:
            ax.axis("off")
            continue
        chance: tuple[list[int], list[float]] | None = None  # (counts, chance levels) of the first model
        if isinstance(panel, str):
            for name, r in results.items():
                counts = r["objects"]
                ys = [value_at(r, k, panel, world) for k in counts]
                ax.plot(counts, ys, marker="o", markersize=3, color=style[name], label=name)
                chance = chance or (counts, [value_at(r, k, panel, world, "chance") for k in counts])
            ax.set_title(f"{panel} ({world})", fontsize=9)
        else:
            w, name = panel
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
        ax.set_ylabel("top-1 (%)" if isinstance(panel, str) else "read-out accuracy (%)", fontsize=8)
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

