"""The results record of fuselip/evaluate.py, read as numbers: the mean over worlds of every task, one flat
number per row ("shapes/tgit/crop") for logs and metrics.json, and the largest difference between two records.
"""
from __future__ import annotations

from collections import defaultdict


def summary(results: dict) -> dict[str, float]:
    """{task: mean over the worlds of its top1} (only over worlds that have the task)."""
    values: dict[str, list[float]] = defaultdict(list)
    for per_task in results["worlds"].values():
        for task, entry in per_task.items():
            values[task].append(entry["top1"])
    return {task: sum(v) / len(v) for task, v in values.items()}


def flat_metrics(results: dict, prefix: str = "") -> dict[str, float]:
    """{"mean/tgit": …, "shapes/tgit": …, "shapes/tgit/crop": …}: one number per row, for logs and metrics."""
    flat = {f"{prefix}mean/{task}": value for task, value in results["mean"].items()}
    for world, per_task in results["worlds"].items():
        for task, entry in per_task.items():
            flat[f"{prefix}{world}/{task}"] = entry["top1"]
            for kind, sub in entry["kinds"].items():
                flat[f"{prefix}{world}/{task}/{kind}"] = sub["top1"]
    return flat


def max_delta(first: dict, second: dict) -> tuple[float, str]:
    """Largest |difference| of any task's top1 (per world and mean) between two results, and where."""
    a, b = flat_metrics(first), flat_metrics(second)
    common = [k for k in a if k in b and k.count("/") == 1]  # task rows, not kinds
    if not common:
        raise ValueError("the two results share no task")
    key = max(common, key=lambda k: abs(a[k] - b[k]))
    return abs(a[key] - b[key]), key

