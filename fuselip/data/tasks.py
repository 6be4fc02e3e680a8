"""Every task turns a world into training pairs (with hard-negative groups) and evaluation items.

Tasks (shared/PAPER.md has the paper's originals; both worlds pose every task):
  caption   (image, "") -> (none, caption)                           the unimodal task (CC3M)
  classify  (image of one object, "") -> (none, "a star")             zero-shot labels: shape / emoji category
  vqa       (image, question) -> (none, answer)                       colour, shape|object|category, size, count, position
  crop      (image, "the red circle") -> (its crop, "")               OI-Crop analogue; group = crops of one scene
  position  (image, "the star on the left") -> (its crop, "")         OI-Pos analogue: two objects of the same class
  tgit      (image, "rotate 30 degrees clockwise") -> (result, "")    group = transformations of one image
  edit      (scene, "make the circle blue") -> (edited scene, "")    + the inverse edit; group = edits of one scene

Why late fusion cannot solve `position` by its score alone: the query names both objects alike and they
differ only in what the text does not say (by default colour in ShapesWorld, which of two emoji of the named
category in EmojiWorld: `twin_attribute`), and both crop windows are centred on their object, so neither the
crop nor the text alone says which is left. With score fusion, score = <f(image) + f(text), g(crop)>, the text
term cannot tell the two crops apart and the image term is the same for both questions: chance, by construction.
A fusion that mixes the two vectors (MLF) could only win if the pooled image vector already records which instance
is where.

Everything is a deterministic function of (seed, split, world, task): same seed -> same pixels and
texts. Splits draw from disjoint random streams, and EmojiWorld's test split uses held-out emoji.

Object counts (the late-fusion bottleneck study, fuselip/bottleneck.py): by default a world draws 1–3 (shapes) or
2–4 (emoji) objects per scene. `objects=(…)` (DataConfig.objects for training, `eval_items(…, objects=(k,))` for a
test set of exactly k objects) draws each scene's count from the given ones, 1 to 9 (one object per cell), and
every task is posed on such scenes as usual: the twins of `position` plus k − 2 objects the query does not name,
`crop` among k objects (alone at k = 1, against crops of other k-object scenes), edits and captions of k objects.
What a count makes impossible is left out, never retried forever: `position` needs two objects (no items at
k = 1), an edit cannot add or move at k = 9 (no free cell) nor remove at k = 1 (`kinds` lists what is possible).

Modules: task_scenes (the sides, scenes and phrases the tasks share), task_groups (training groups), task_items
(evaluation items); this one turns them into the public interface below.
"""
from __future__ import annotations

import hashlib
import random
from functools import lru_cache
from typing import Iterator

import numpy as np

from fuselip.config import DataConfig
from fuselip.data import tgit
from fuselip.data import vqa as vqa_questions
from fuselip.data.edits import world_ops
from fuselip.data.task_groups import GROUPS, REFERENCE_KIND_WEIGHTS, TGIT_GROUPS, tgit_instructions
from fuselip.data.task_items import DEFAULT_TASK_CONFIG, ITEMS, TaskConfig
from fuselip.data.task_scenes import POSITION_TWINS, position_query, position_size_question, twin_attribute
from fuselip.data.types import EvalItem, Pair, image_key
from fuselip.data.world import CELL_NAMES, World, check_counts, split_check, with_counts

__all__ = ["TASKS", "WORLDS", "make_world", "make_rng", "kinds", "check_data_config", "sample_pairs", "iter_pairs",
           "eval_items", "sample_images",
           # from the modules behind this one
           "TaskConfig", "DEFAULT_TASK_CONFIG", "ITEMS", "GROUPS", "TGIT_GROUPS", "REFERENCE_KIND_WEIGHTS",
           "tgit_instructions", "POSITION_TWINS", "twin_attribute", "position_query", "position_size_question"]

TASKS = ("caption", "classify", "vqa", "crop", "position", "tgit", "edit")
WORLDS = ("shapes", "emoji")


def make_world(name: str, image_size: int = 64, objects=()) -> World:
    """A world by name (cached, so sprite caches are shared): "shapes" or "emoji". `objects`: the numbers of
    objects its scenes are drawn with (fuselip.data.world.with_counts; () = the world's own range)."""
    return _make_world(name, image_size, check_counts(objects) if len(objects) else ())


@lru_cache(maxsize=None)
def _make_world(name: str, image_size: int, objects: tuple[int, ...]) -> World:
    # config None: the world's own (default) config
    if name == "shapes":
        from fuselip.data.shapes import ShapesConfig, ShapesWorld
        return ShapesWorld(with_counts(ShapesConfig(), objects) if objects else None, image_size=image_size)
    if name == "emoji":
        from fuselip.data.emoji import EmojiConfig, EmojiWorld
        return EmojiWorld(with_counts(EmojiConfig(), objects) if objects else None, image_size=image_size)
    raise ValueError(f"unknown world {name!r}; known: {', '.join(WORLDS)}")


def make_rng(*parts) -> random.Random:
    """A random stream named by `parts` (seed, split, ...): distinct names give independent streams."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


def kinds(world: World, task: str) -> tuple[str, ...]:
    """Sub-kinds of a task in a world (evaluation items cycle through them evenly), only those that the world's
    object counts make possible: () for `position` when no scene holds two objects; no "add" or "move" edit when
    every scene fills all nine cells, no "remove" when no scene holds more than the world's minimum."""
    if task == "vqa":
        return vqa_questions.question_kinds(world)
    if task == "position":
        return ("left", "right") if max(world.scene_counts()) >= 2 else ()
    if task == "tgit":
        return tgit.KINDS
    if task == "edit":
        counts, cfg = world.scene_counts(), world.config
        possible = {"move": min(counts) < len(CELL_NAMES),
                    "add": min(counts) < min(cfg.max_objects, len(CELL_NAMES)),
                    "remove": max(counts) > cfg.min_objects}
        return tuple(op for op in world_ops(world) if possible.get(op, True))
    if task in TASKS:
        return ("",)
    raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")


# ---------------------------------------------------------------------------------------------
# the public interface

def check_data_config(data: DataConfig) -> None:
    """Errors that name the offending field."""
    for w in data.worlds:
        if w not in WORLDS:
            raise ValueError(f"data.worlds: unknown world {w!r}; known: {', '.join(WORLDS)}")
    if len(data.world_weights) != len(data.worlds):
        raise ValueError(f"data.world_weights has {len(data.world_weights)} entries for {len(data.worlds)} worlds")
    for t, weight in data.task_weights.items():
        if t not in TASKS:
            raise ValueError(f"data.task_weights: unknown task {t!r}; known: {', '.join(TASKS)}")
        if weight < 0:
            raise ValueError(f"data.task_weights.{t} is negative ({weight})")
    if any(w < 0 for w in data.world_weights) or sum(data.world_weights) <= 0:
        raise ValueError(f"data.world_weights must be non-negative with a positive sum, got {data.world_weights}")
    if sum(data.task_weights.values()) <= 0:
        raise ValueError("data.task_weights: no task has a positive weight")
    if data.position_twins not in POSITION_TWINS:
        raise ValueError(f"data.position_twins must be one of {POSITION_TWINS}, got {data.position_twins!r}")
    if data.group_size < 1:
        raise ValueError(f"data.group_size must be at least 1, got {data.group_size}")
    if data.tgit_groups not in TGIT_GROUPS:
        raise ValueError(f"data.tgit_groups must be one of {TGIT_GROUPS}, got {data.tgit_groups!r}")
    if data.objects:
        try:
            check_counts(data.objects)
        except ValueError as e:
            raise ValueError(f"data.objects: {e}") from None
        if data.task_weights.get("position", 0) > 0 and max(data.objects) < 2:
            raise ValueError(f"data.objects={data.objects}: the position task needs two objects in a scene; "
                             f"add a count of 2 or more or set data.task_weights.position to 0")


def sample_pairs(data: DataConfig, split: str, n: int, seed: int) -> list[Pair]:
    """n training pairs mixing worlds and tasks by the config weights; pairs of one group are contiguous.

    Each (world, task) cell gets a quota of n * world_weight * task_weight (normalised); the next group
    comes from a cell drawn in proportion to its unfilled quota, so the mix matches the weights closely
    and the order is random. The last group may be cut to return exactly n pairs.
    Memory: about 12 KB per 64-px image; `iter_pairs` yields the same pairs one by one."""
    return list(iter_pairs(data, split, n, seed))


def iter_pairs(data: DataConfig, split: str, n: int, seed: int) -> Iterator[Pair]:
    """The pairs of `sample_pairs(data, split, n, seed)`, in the same order, generated lazily."""
    split_check(split)
    check_data_config(data)
    worlds = [make_world(w, data.image_size, data.objects) for w in data.worlds]
    wsum, tsum = sum(data.world_weights), sum(data.task_weights.values())
    cells = [(world, task, n * ww / wsum * tw / tsum)
             for world, ww in zip(worlds, data.world_weights) for task, tw in data.task_weights.items()
             if ww > 0 and tw > 0]
    filled = [0] * len(cells)
    # object counts name their own stream; the default stream (no counts) is the one it always was
    rng = make_rng("pairs", seed, split, tuple(data.worlds), data.image_size,
                   *((("objects", check_counts(data.objects)),) if data.objects else ()))
    done, group = 0, 0
    while done < n:
        room = [max(q - f, 0.0) for (_, _, q), f in zip(cells, filled)]
        if sum(room) <= 0:
            room = [q for _, _, q in cells]
        i = rng.choices(range(len(cells)), weights=room)[0]
        world, task, _ = cells[i]
        triples = []
        for _ in range(DEFAULT_TASK_CONFIG.max_tries):
            triples = GROUPS[task](world, rng, split, data)
            if triples:
                break
        if not triples:
            raise RuntimeError(f"could not generate a {task} group in world {world.name}")
        for left, right, kind in triples[:n - done]:
            yield Pair(left, right, task, group, kind, world.name)
        done += len(triples)
        filled[i] += len(triples)
        group += 1


def eval_items(world: str, task: str, split: str, n: int, seed: int, image_size: int = 64,
               config: TaskConfig = DEFAULT_TASK_CONFIG, objects=()) -> list[EvalItem]:
    """n evaluation items of one task (kinds cycle evenly: item i has kind kinds[i % len(kinds)]).
    objects: the object counts of the scenes, e.g. (5,) for a test set of 5-object scenes (() = the world's own
    range); a task the counts make impossible (position with one object) has no items: []."""
    split_check(split)
    w = make_world(world, image_size, objects)
    task_kinds = kinds(w, task)
    if not task_kinds:
        return []
    rng = make_rng("eval", seed, split, world, task, image_size,
                   *((("objects", check_counts(objects)),) if len(objects) else ()))
    items = []
    for i in range(n):
        kind = task_kinds[i % len(task_kinds)]
        for _ in range(config.max_tries):
            item = ITEMS[task](w, rng, split, kind, config)
            if item is not None:
                break
        else:
            raise RuntimeError(f"could not generate a {task}/{kind} item in world {world}")
        items.append(item)
    return items


def sample_images(data: DataConfig, split: str, n: int, seed: int) -> np.ndarray:
    """(n, H, W, 3) uint8: distinct images as they appear on either side of training pairs (incl. crops
    and transformed images) — what an image tokenizer should be trained on."""
    want = n
    while True:
        images, seen = [], set()
        for p in sample_pairs(data, split, want, seed):
            for side in (p.left, p.right):
                if side.image is not None:
                    k = image_key(side.image)
                    if k not in seen:
                        seen.add(k)
                        images.append(side.image)
        if len(images) >= n:
            return np.stack(images[:n]) if n else np.zeros((0, data.image_size, data.image_size, 3), np.uint8)
        want *= 2
