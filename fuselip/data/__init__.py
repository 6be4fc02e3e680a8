"""Data: two generated worlds (ShapesWorld, EmojiWorld), every multimodal task, and your own images.

    from fuselip.data import sample_pairs, eval_items, make_world
    pairs = sample_pairs(DataConfig(), "train", n=1000, seed=0)       # list[Pair], groups contiguous
    items = eval_items("shapes", "tgit", "test", n=100, seed=0)        # list[EvalItem], correct first

Modules: types (the data contract), world (scene graph, layout), shapes, emoji, tgit (image
transformations), edits, vqa, tasks (pairs + eval items), files (CSV / folders), collate (pairs -> ids).
Importing this package is cheap: no emoji PNG is read until a scene needs it, and the modules behind
`files` and the worlds load on first use.
"""
from __future__ import annotations

from fuselip.data.types import EvalItem, Pair, Side, image_key
from fuselip.data.tasks import (TASKS, WORLDS, TaskConfig, eval_items, iter_pairs, kinds, make_world,
                                sample_images, sample_pairs)

__all__ = ["EvalItem", "Pair", "Side", "image_key", "TASKS", "WORLDS", "TaskConfig", "eval_items", "iter_pairs", "kinds",
           "make_world", "sample_images", "sample_pairs", "read_csv", "read_folder", "DataFileError"]


def __getattr__(name):  # user-data readers pull in fuselip.images (torch): load them on first use
    if name in ("read_csv", "read_folder", "DataFileError", "UserImages"):
        from fuselip.data import files
        return getattr(files, name)
    raise AttributeError(f"module 'fuselip.data' has no attribute {name!r}")
