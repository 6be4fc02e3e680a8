"""Chance levels: what a model that ranks the candidates at random scores on the same items.

Each is computed from the candidate lists alone, with the rules of the scoring (fuselip/eval_scoring.py), so it
stands beside a model's results in the same format (`chance_levels` is `evaluate` without a model).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from fuselip.data.types import EvalItem
from fuselip.eval_scoring import modality, percent, task_accuracy
from fuselip.eval_sources import RETRIEVAL, RETRIEVAL_SOURCE, TWIN, TWIN_SOURCE, ItemSource, run_suite


def item_chance(item: EvalItem) -> float:
    """1 / the number of candidates `score_items` ranks for `item` (duplicates of the correct one merged into it,
    repeated wrong ones counted once): the probability that a random ranking puts the correct one first."""
    correct_key = item.candidates[0].key()
    others = {c.key() for c in item.candidates[1:]} - {correct_key}
    return 1.0 / (1 + len(others))


def task_chance(items: Sequence[EvalItem]) -> dict:
    """`task_accuracy`'s {"top1", "n", "kinds"} with each item's chance in place of right/wrong (percent; a task
    with kinds is the mean over its kinds, as its accuracy is)."""
    return task_accuracy(items, [item_chance(item) for item in items])


def twin_chance(items: Sequence[EvalItem]) -> dict:
    """`twin_accuracy`'s chance: the target against its twin alone, 1/2 for every item that has a twin."""
    scored = [item for item in items if "twin" in item.meta]
    return task_accuracy(scored, [0.5] * len(scored))


def retrieval_chance(items: Sequence[EvalItem]) -> dict:
    """`retrieval_accuracy`'s chance on the same gallery: per source, its positives / the distinct targets
    (a random ranking puts one of its positives first), averaged over sources; the mean of both directions."""
    pairs = [(item.query, item.candidates[0]) for item in items]
    if not pairs:
        return {"top1": float("nan"), "n": 0, "kinds": {}}
    result = {}
    for a, b in ((0, 1), (1, 0)):
        positives: dict[bytes, set[bytes]] = defaultdict(set)
        for p in pairs:
            positives[p[a].key()].add(p[b].key())
        n_targets = len({p[b].key() for p in pairs})
        name = f"{modality(pairs[0][a])}_to_{modality(pairs[0][b])}"
        result[name] = {"top1": percent([len(t) / n_targets for t in positives.values()]), "n": len(positives)}
    top1 = sum(v["top1"] for v in result.values()) / len(result)
    return {"top1": top1, "n": len(pairs), "kinds": result}


def chance_levels(items: ItemSource | None = None, *, worlds: Sequence[str] | None = None,
                  tasks: Sequence[str] | None = None, split: str = "test", n_items: int = 500, seed: int = 0,
                  image_size: int = 64, position_twins: str | None = None, retrieval: bool = True) -> dict:
    """The chance level of every (world, task) of `evaluate` on the same items, in the same format (percent), so
    it can stand beside a model's results (e.g. in `compare`). No model is needed: only the candidate lists.
    `retrieval=False` leaves out caption retrieval, as `evaluate(..., retrieval=False)` does."""
    def measure(world: str, task: str, task_items: Sequence[EvalItem]) -> dict:
        rows = {task: task_chance(task_items)}
        if task == TWIN_SOURCE:
            rows[TWIN] = twin_chance(task_items)
        if retrieval and task == RETRIEVAL_SOURCE:
            rows[RETRIEVAL] = retrieval_chance(task_items)
        return rows
    return run_suite(measure, items, worlds, tasks, split, n_items, seed, image_size, position_twins)
