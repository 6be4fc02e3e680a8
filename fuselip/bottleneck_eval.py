"""The benchmark per object count, with chance levels (fuselip/bottleneck.py, `evaluate_by_objects`), and its tables:
"top-1 (chance)" per task and count (`to_markdown`), and early − best late fusion per task and count (`gaps_markdown`).
"""
from __future__ import annotations

from typing import Callable, Sequence

from fuselip import evaluate as ev
from fuselip.data.types import EvalItem
from fuselip.data.world import check_counts

DEFAULT_OBJECTS = (1, 3, 5, 7, 9)        # the test strata of the study (every count is allowed: 1..9)
TASKS = ("caption", "vqa", "crop", "position", "tgit", "edit")   # classify is one object whatever the count


def chance_levels(task: str, items: Sequence[EvalItem]) -> dict[str, dict]:
    """{task: {"chance", "kinds"}} (+ the rows derived from it: retrieval, position_twin), percent: the top-1 of a
    model that ranks the candidates at random on these items (fuselip.evaluate.task_chance and its kin), aggregated
    as the task's top1 is (the mean over kinds where there are kinds)."""
    def flat(entry: dict) -> dict:
        return {"chance": entry["top1"], "kinds": {k: v["top1"] for k, v in entry["kinds"].items()}}
    out = {task: flat(ev.task_chance(items))}
    if task == ev.TWIN_SOURCE:
        out[ev.TWIN] = flat(ev.twin_chance(items))
    if task == ev.RETRIEVAL_SOURCE:
        out[ev.RETRIEVAL] = flat(ev.retrieval_chance(items))
    return out


def evaluate_by_objects(model, objects: Sequence[int] = DEFAULT_OBJECTS, *, worlds: Sequence[str] | None = None,
                        tasks: Sequence[str] = TASKS, split: str = "test", n_items: int = 2000, seed: int = 0,
                        image_size: int | None = None, batch_size: int = ev.ENCODE_BATCH,
                        position_twins: str | None = None, progress: Callable[[str], None] | None = None) -> dict:
    """fuselip.evaluate.evaluate on each object count's test set (n_items per count, world and task; a task the
    count makes impossible, position at k = 1, is absent), every task entry with its "chance" level."""
    objects = check_counts(objects)
    image_size = image_size or ev.model_image_size(model)
    worlds = tuple(worlds) if worlds is not None else ev.default_worlds()
    by_objects: dict[str, dict] = {}
    out = {"objects": list(objects), "split": split, "seed": seed, "n_items": n_items,
           "position_twins": ev.benchmark_twins(position_twins), "image_size": image_size, "by_objects": by_objects}
    for k in objects:
        source = ev.benchmark_items(split, n_items, seed, image_size, position_twins, objects=(k,))
        chances: dict[str, dict[str, dict]] = {}

        def counted(world: str, task: str, source=source, chances=chances):
            items = source(world, task)
            chances.setdefault(world, {}).update(chance_levels(task, items))
            return items
        say = (lambda msg, k=k: progress(f"{k} objects · {msg}")) if progress else None
        results = ev.evaluate(model, counted, worlds=worlds, tasks=tasks, split=split, n_items=n_items, seed=seed,
                              image_size=image_size, batch_size=batch_size, progress=say)
        for world, per_task in results["worlds"].items():
            for task, entry in per_task.items():
                level = chances.get(world, {}).get(task)
                if level is not None:
                    entry["chance"] = level["chance"]
                    for kind, sub in entry["kinds"].items():
                        if kind in level["kinds"]:
                            sub["chance"] = level["kinds"][kind]
        results["mean_chance"] = _world_mean(results, "chance")
        by_objects[str(k)] = results
    return out


def _world_mean(results: dict, key: str) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for per_task in results["worlds"].values():
        for task, entry in per_task.items():
            if key in entry:
                values.setdefault(task, []).append(entry[key])
    return {task: sum(v) / len(v) for task, v in values.items()}


def value_at(results: dict, k: int, task: str, world: str = "mean", key: str = "top1") -> float:
    """One number of an `evaluate_by_objects` result (nan where the task has no items at that count)."""
    entry = results["by_objects"].get(str(k))
    if entry is None:
        return float("nan")
    if world == "mean":
        source = entry["mean"] if key == "top1" else entry.get("mean_chance", {})
        return source.get(task, float("nan"))
    return entry["worlds"].get(world, {}).get(task, {}).get(key, float("nan"))


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.1f}"


def to_markdown(results: dict, world: str = "mean", tasks: Sequence[str] | None = None) -> str:
    """A row per task, a column per object count: "top-1 (chance)" in %."""
    counts = results["objects"]
    tasks = tasks or tasks_in(results)
    lines = [f"| task ({world}) | " + " | ".join(f"{k} obj." for k in counts) + " |",
             "|---|" + "---:|" * len(counts)]
    for task in tasks:
        cells = [f"{_fmt(value_at(results, k, task, world))} ({_fmt(value_at(results, k, task, world, 'chance'))})"
                 for k in counts]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tasks_in(*results: dict) -> list[str]:
    tasks: list[str] = []
    for r in results:
        for entry in r["by_objects"].values():
            tasks += [t for t in entry["mean"] if t not in tasks]
    return tasks


def gaps_markdown(by_model: dict[str, dict], early: str, world: str = "mean",
                  tasks: Sequence[str] | None = None) -> str:
    """Per task: `early` − the best other model at the smallest and at the largest object count they share (and
    at each count in between), the numbers the results report quotes."""
    if early not in by_model:
        raise ValueError(f"--early {early!r} is none of the models: {', '.join(by_model)}")
    late = [n for n in by_model if n != early]
    if not late:
        raise ValueError("the gap needs at least one late-fusion model next to the early one")
    counts = sorted(set.intersection(*(set(r["objects"]) for r in by_model.values())))
    tasks = tasks or tasks_in(*by_model.values())
    lines = [f"| task ({world}) | " + " | ".join(f"{k} obj." for k in counts) + " | change |",
             "|---|" + "---:|" * (len(counts) + 1)]
    for task in tasks:
        row = []
        for k in counts:
            best = max((value_at(by_model[n], k, task, world) for n in late), key=lambda v: -1e9 if v != v else v)
            row.append(value_at(by_model[early], k, task, world) - best)
        valid = [v for v in row if v == v]
        change = valid[-1] - valid[0] if len(valid) >= 2 else float("nan")
        lines.append(f"| {task} | " + " | ".join("–" if v != v else f"{v:+.1f}" for v in row)
                     + f" | {'–' if change != change else f'{change:+.1f}'} |")
    return "\n".join(lines)

