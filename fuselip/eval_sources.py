"""Where the benchmark's items come from, and the loop over worlds and tasks that every run of the suite makes.

An item source is a function (world, task) -> evaluation items; the benchmark's is fuselip.data.tasks.eval_items
for one split and seed. Two rows of the results derive from a task's items: retrieval from the caption items,
the position twin row from the position items.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from fuselip.data.tasks import DEFAULT_TASK_CONFIG, TASKS, WORLDS, eval_items
from fuselip.data.types import EvalItem
from fuselip.eval_results import summary

RETRIEVAL = "retrieval"
RETRIEVAL_SOURCE = "caption"   # the task whose items form the retrieval gallery
TWIN = "position_twin"         # the position items ranked against the twin alone (twin_accuracy)
TWIN_SOURCE = "position"


ItemSource = Callable[[str, str], Sequence[EvalItem]]


def benchmark_twins(position_twins: str | None = None) -> str:
    """What the benchmark's position twins differ in: `position_twins`, or by default the task default
    (fuselip.data.tasks.TaskConfig.position_twins, "appearance": colour where a world has colours, else two emoji
    of one category; see fuselip.data.tasks.twin_attribute)."""
    return position_twins or DEFAULT_TASK_CONFIG.position_twins


def benchmark_items(split: str, n_items: int, seed: int, image_size: int = 64,
                    position_twins: str | None = None, objects: Sequence[int] = ()) -> ItemSource:
    """The item source of the benchmark: fuselip.data.tasks.eval_items for one split and seed.
    position_twins: what the position task's twins differ in (fuselip.data.tasks.twin_attribute; None: the
    benchmark default, `benchmark_twins()`). objects: the scenes' object counts, e.g. (5,) for the 5-object
    stratum of the bottleneck study (fuselip/bottleneck.py; () = each world's own range, the benchmark)."""
    config = dataclasses.replace(DEFAULT_TASK_CONFIG, position_twins=benchmark_twins(position_twins))
    objects = tuple(objects)

    def source(world: str, task: str) -> Sequence[EvalItem]:
        return eval_items(world, task, split, n_items, seed, image_size=image_size, config=config, objects=objects)
    return source


def default_tasks() -> tuple[str, ...]:
    return tuple(TASKS)


def default_worlds() -> tuple[str, ...]:
    return tuple(WORLDS)


def run_suite(measure_task: Callable[[str, str, Sequence[EvalItem]], dict], items: ItemSource | None,
              worlds: Sequence[str] | None, tasks: Sequence[str] | None, split: str, n_items: int, seed: int,
              image_size: int, position_twins: str | None) -> dict:
    """What evaluate and chance_levels share: the results record of every (world, task) that has items, each
    task's rows {row: {"top1", "n", "kinds"}} from `measure_task(world, task, items)`, and their mean over worlds.
    `items` (world, task) -> items, or None for the benchmark (`benchmark_items` with the other arguments)."""
    tasks = tuple(tasks) if tasks is not None else default_tasks()
    worlds = tuple(worlds) if worlds is not None else default_worlds()
    source = items or benchmark_items(split, n_items, seed, image_size, position_twins)
    results: dict = {"split": split, "seed": seed, "n_items": n_items, "worlds": {}, "mean": {}}
    if items is None:
        results["position_twins"] = benchmark_twins(position_twins)
    for world in worlds:
        per_task = {}
        for task in tasks:
            task_items = list(source(world, task))
            if not task_items:
                continue
            per_task.update(measure_task(world, task, task_items))
            del task_items  # one task's items at a time
        results["worlds"][world] = per_task
    results["mean"] = summary(results)
    return results
