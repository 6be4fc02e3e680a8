"""The benchmark suite: top-1 accuracy on every task of both worlds, for ANY model with the encode API.

Every task of fuselip/data/tasks.py yields evaluation items: a query side and a candidate list with the
correct candidate first (shared/PAPER.md, "Evaluation"). A model embeds the query and the candidates with
`model.encode(images, texts)` and is right when the correct candidate scores highest. The same code
measures FuseLIP and the late-fusion baselines, so a difference in the table is a difference in the model.

Conventions (each a decision, tested in tests/test_evaluate.py):
- **Ties count against the model.** An item is correct only when the correct candidate's score is
  *strictly* above every other candidate's. A model that maps everything to one vector scores 0, not 100.
- **Identical candidates are one candidate.** A candidate with the same content as the correct one
  (`Side.key()`: same pixels and text, e.g. the flip of a symmetric scene) is dropped from the list, so
  it can neither tie with nor beat the correct one (DESIGN.md: duplicates count as correct).
- **Each distinct side is encoded once** per (world, task): queries and candidates are de-duplicated by
  content, sorted so that similar sequences share a batch, and encoded in batches in float32.
- **A task's `top1`** is the plain item accuracy; for a task with sub-kinds (tgit's crop/rotate/…,
  vqa's question types) it is the *mean over its kinds* (the paper's TGIT = mean over the five kinds),
  so the mix in which items were sampled does not weigh the kinds.
- **Retrieval** uses the caption items as a gallery: every image against every distinct caption
  (image→text R@1) and every distinct caption against every image (text→image R@1); when several
  images share one caption, any of them is a correct answer. `top1` is the mean of both directions.

`evaluate(model, ...)` returns a nested dict (all accuracies in percent):
    {"split", "seed", "n_items", "worlds": {world: {task: {"top1", "n", "kinds": {kind: {"top1", "n"}}}}},
     "mean": {task: mean of the worlds' top1}}
`to_markdown(results)` renders one model; `compare({name: results})` renders models side by side.

Modules: eval_sources (item sources, the frame of a run), eval_embed (every distinct side encoded once),
eval_scoring (per item and per task), eval_results (means, flat metrics), eval_tables (markdown), eval_chance
(chance levels), eval_binding and linear_probes (the position diagnostic). Everything is importable from here.
"""
from __future__ import annotations

from typing import Callable, Sequence

from fuselip.contract import EmbeddingModel
from fuselip.data.types import EvalItem
from fuselip.eval_binding import position_binding
from fuselip.eval_chance import chance_levels, item_chance, retrieval_chance, task_chance, twin_chance
from fuselip.eval_embed import ENCODE_BATCH, embed_unique
from fuselip.eval_results import flat_metrics, max_delta, summary
from fuselip.eval_scoring import (item_choices, item_correct, retrieval_accuracy, score_items, task_accuracy,
                                  twin_accuracy)
from fuselip.eval_sources import (RETRIEVAL, RETRIEVAL_SOURCE, TWIN, TWIN_SOURCE, ItemSource, benchmark_items,
                                  benchmark_twins, default_tasks, default_worlds, run_suite)
from fuselip.eval_tables import compare, to_markdown
from fuselip.linear_probes import PROBE_RIDGE, PROBE_TRAIN_FRACTION, linear_probe_accuracy, probe_design

__all__ = [
    "evaluate", "model_image_size", "measure_slice", "SLICE_ITEMS",
    "RETRIEVAL", "RETRIEVAL_SOURCE", "TWIN", "TWIN_SOURCE", "ItemSource", "benchmark_items", "benchmark_twins",
    "default_tasks", "default_worlds",
    "ENCODE_BATCH", "embed_unique",
    "item_correct", "score_items", "item_choices", "task_accuracy", "retrieval_accuracy", "twin_accuracy",
    "summary", "flat_metrics", "max_delta", "to_markdown", "compare",
    "PROBE_TRAIN_FRACTION", "PROBE_RIDGE", "probe_design", "linear_probe_accuracy", "position_binding",
    "item_chance", "task_chance", "twin_chance", "retrieval_chance", "chance_levels",
]

SLICE_ITEMS = 8  # items per (world, task) of the reproducibility slice kept in metrics.json


def evaluate(model, items: ItemSource | None = None, *, worlds: Sequence[str] | None = None,
             tasks: Sequence[str] | None = None, split: str = "test", n_items: int = 500, seed: int = 0,
             image_size: int = 64, batch_size: int = ENCODE_BATCH, retrieval: bool = True,
             progress: Callable[[str], None] | None = None, position_twins: str | None = None) -> dict:
    """Every (world, task) top-1 accuracy of `model`, plus caption retrieval R@1 (see module docstring).

    `items(world, task)` supplies the evaluation items; by default the `split` test set of `seed` with
    `n_items` per (world, task) (position twins differing in `position_twins`, default `benchmark_twins()`).
    One (world, task) is generated, encoded and scored at a time. The position task also reports
    `position_twin` (see `twin_accuracy`).
    """
    def measure(world: str, task: str, task_items: Sequence[EvalItem]) -> dict:
        if progress:
            progress(f"{world}/{task}: {len(task_items)} items")
        sides = [item.query for item in task_items] + [c for item in task_items for c in item.candidates]
        embeddings = embed_unique(model, sides, batch_size)
        rows = {task: task_accuracy(task_items, score_items(task_items, embeddings))}
        if task == TWIN_SOURCE:
            rows[TWIN] = twin_accuracy(task_items, embeddings)
        if retrieval and task == RETRIEVAL_SOURCE:
            rows[RETRIEVAL] = retrieval_accuracy(task_items, embeddings)
        return rows
    return run_suite(measure, items, worlds, tasks, split, n_items, seed, image_size, position_twins)


def model_image_size(model: EmbeddingModel) -> int:
    """The pixel size a model reads (fuselip.contract.EmbeddingModel.image_size: FuseLIP's is its tokenizer's)."""
    return int(model.image_size)


def measure_slice(model, split: str = "test", seed: int = 0, worlds: Sequence[str] | None = None,
                  n_items: int = SLICE_ITEMS, position_twins: str | None = None) -> dict:
    """A small fixed slice of the benchmark, stored in a shipped checkpoint's metrics.json
    ("benchmark_slice") and re-measured by the tests: {"settings": …, "results": flat_metrics}."""
    worlds = list(worlds) if worlds is not None else list(default_worlds())
    twins = benchmark_twins(position_twins)
    settings = {"split": split, "seed": seed, "worlds": worlds, "n_items": n_items, "position_twins": twins}
    results = evaluate(model, split=split, seed=seed, worlds=worlds, n_items=n_items,
                       image_size=model_image_size(model), position_twins=twins)
    return {"settings": settings, "results": flat_metrics(results)}

