"""The results record of fuselip/evaluate.py as markdown: one model (`to_markdown`), or models side by side
(`compare`); a row per task and per kind, top-1 in %.
"""
from __future__ import annotations


def _rows(*results: dict) -> list[tuple[str, str, str]]:
    """(task, kind, label) rows in the task order of the results, each task followed by its kinds."""
    kinds_by_task: dict[str, list[str]] = {}
    for result in results:
        for per_task in result["worlds"].values():
            for task, entry in per_task.items():
                known = kinds_by_task.setdefault(task, [])
                known += [kind for kind in entry["kinds"] if kind not in known]
    rows = []
    for task, kinds in kinds_by_task.items():
        rows.append((task, "", task))
        rows += [(task, kind, f"{task}: {kind}") for kind in kinds]
    return rows


def _cell(results: dict, world: str, task: str, kind: str) -> float | None:
    if world == "mean":
        if kind:
            cells = [_cell(results, w, task, kind) for w in results["worlds"]]
            values = [v for v in cells if v is not None]
            return sum(values) / len(values) if values else None
        return results["mean"].get(task)
    entry = results["worlds"].get(world, {}).get(task)
    if entry is None:
        return None
    if kind:
        return entry["kinds"].get(kind, {}).get("top1")
    return entry["top1"]


def _fmt(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.1f}"


def to_markdown(results: dict, kinds: bool = True) -> str:
    """One model: a row per task (and per kind), a column per world and their mean; top-1 in %."""
    worlds = list(results["worlds"])
    lines = ["| task | " + " | ".join(worlds) + " | mean |", "|---|" + "---:|" * (len(worlds) + 1)]
    for task, kind, label in _rows(results):
        if kind and not kinds:
            continue
        cells = [_fmt(_cell(results, w, task, kind)) for w in worlds + ["mean"]]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(results_by_model: dict[str, dict], world: str = "mean", kinds: bool = True,
            delta: bool = False) -> str:
    """Models side by side: a row per task (and kind), a column per model; `world` = "mean" or a world.
    `delta` adds the column "Δ" = last − first model (e.g. the same checkpoint on two test seeds)."""
    names = list(results_by_model)
    if not names:
        raise ValueError("compare needs at least one model's results")
    rows = _rows(*results_by_model.values())
    header = names + (["Δ"] if delta else [])
    lines = [f"| task ({world}) | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for task, kind, label in rows:
        if kind and not kinds:
            continue
        values = [_cell(results_by_model[n], world, task, kind) for n in names]
        cells = [_fmt(v) for v in values]
        if delta:
            first, last = values[0], values[-1]
            cells.append("–" if first is None or last is None else f"{last - first:+.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

