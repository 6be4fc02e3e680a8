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
"""
from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import numpy as np

from fuselip.config import DataConfig
from fuselip.data import tgit
from fuselip.data import vqa as vqa_questions
from fuselip.data.edits import sample_edit, world_ops
from fuselip.data.types import EvalItem, Pair, Side, image_key
from fuselip.data.world import (CELL_NAMES, Obj, Scene, World, check_counts, obj_replace, split_check,
                                with_counts)

TASKS = ("caption", "classify", "vqa", "crop", "position", "tgit", "edit")
WORLDS = ("shapes", "emoji")


@dataclass(frozen=True)
class TaskConfig:
    """Sizes of evaluation candidate lists (the training group size is DataConfig.group_size)."""
    caption_swaps: int = 3          # captions of the same scene with one fact changed (SugarCrepe-like)
    caption_others: int = 6         # captions of other scenes
    crop_other_scenes: int = 3      # same-class crops from other scenes (OI-Crop)
    position_other_crops: int = 2   # same-class crops from other scenes (OI-Pos "+ random crops")
    position_twins: str = "appearance"  # what tells the position twins apart (see twin_attribute): colour where a
                                        # world has colours (ShapesWorld), else the emoji (two of one category)
    edit_candidates: int = 8        # edited versions of the same scene, incl. the unedited one
    max_tries: int = 200            # resampling attempts before giving up on an impossible request


DEFAULT_TASK_CONFIG = TaskConfig()


def make_world(name: str, image_size: int = 64, objects=()) -> World:
    """A world by name (cached, so sprite caches are shared): "shapes" or "emoji". `objects`: the numbers of
    objects its scenes are drawn with (fuselip.data.world.with_counts; () = the world's own range)."""
    return _make_world(name, image_size, check_counts(objects) if len(objects) else ())


@lru_cache(maxsize=None)
def _make_world(name: str, image_size: int, objects: tuple[int, ...]) -> World:
    if name == "shapes":
        from fuselip.data.shapes import ShapesConfig as Config, ShapesWorld as Cls
    elif name == "emoji":
        from fuselip.data.emoji import EmojiConfig as Config, EmojiWorld as Cls
    else:
        raise ValueError(f"unknown world {name!r}; known: {', '.join(WORLDS)}")
    if objects:
        return Cls(with_counts(Config(), objects), image_size=image_size)
    return Cls(image_size=image_size)


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


def _image(a: np.ndarray) -> Side:
    return Side(a, "")


def _text(t: str) -> Side:
    return Side(None, t)


def _distinct_rights(triples: list[tuple[Side, Side, str]], limit: int) -> list[tuple[Side, Side, str]]:
    """Keep pairs whose right sides all differ (hard negatives must differ from the target), up to limit."""
    seen, out = set(), []
    for t in triples:
        k = t[1].key()
        if k not in seen:
            seen.add(k)
            out.append(t)
        if len(out) == limit:
            break
    return out


def _eval_item(query: Side, correct: Side, negatives: list[Side], task: str, kind: str, world: World,
               meta: dict | None = None) -> EvalItem | None:
    """An item with the correct candidate first and no duplicate candidates (None if nothing is left to rank)."""
    seen, candidates = set(), []
    for c in [correct] + negatives:
        k = c.key()
        if k not in seen:
            seen.add(k)
            candidates.append(c)
    if len(candidates) < 2:
        return None
    return EvalItem(query, tuple(candidates), task, kind, world.name, meta or {})


# ---------------------------------------------------------------------------------------------
# scenes that some tasks need

def _single_object_scene(world: World, rng: random.Random, split: str) -> Scene:
    return world.sample_scene(rng, split, n_objects=1)


def _class_phrase(world: World, obj: Obj) -> str:
    return world.phrase(obj, world.class_attributes)


def _same_class(world: World, a: Obj, b: Obj) -> bool:
    return all(getattr(a, x) == getattr(b, x) for x in world.class_attributes)


POSITION_TWINS = ("appearance", "colour", "size")


def twin_attribute(world: World, twins: str) -> str:
    """The one attribute in which the position twins differ, for `twins` =
      - "appearance": what a crop shows plainly: "colour" where the world has colours (same shape and size, and the
        query names the shape only: "the star on the left"), else "name": two different emoji of one category and
        size, the query naming the category ("the food & drink emoji on the left");
      - "colour": colour where the world has colours, else size (the benchmark of the v3 checkpoints);
      - "size": the twins share the class phrase ("the red star on the left") and differ in size only.
    In every case the query names both twins alike, so a model that embeds image and text apart can only guess."""
    if twins not in POSITION_TWINS:
        raise ValueError(f"position_twins must be one of {POSITION_TWINS}, got {twins!r}")
    if twins == "size":
        return "size"
    if world.colours():
        return "colour"
    return "name" if twins == "appearance" else "size"


def _position_phrase(world: World, obj: Obj, attribute: str) -> str:
    """The twins' shared phrase: the class attributes without the one they differ in (name twins: their class)."""
    if attribute == "name":
        return world.class_noun(obj)
    return world.phrase(obj, tuple(a for a in world.class_attributes if a != attribute))


def _position_scene(world: World, rng: random.Random, split: str, attribute: str = "size"):
    """Two objects of the same class in different columns (+ maybe a third of another class; with object counts,
    as many others as the drawn count asks); they differ in `attribute`, which the question never mentions, so
    their crops always look different. Returns (scene, left object, right object)."""
    while True:
        a, b = rng.sample(range(9), 2)
        if a % 3 != b % 3:
            break
    first = world.sample_object(rng, split, a)
    if attribute == "size":
        other_size = rng.choice([s for s in world.sizes if s != first.size])
        second = world.sample_object(rng, split, b, name=first.name, colour=first.colour, size=other_size)
    elif attribute == "name":
        label = world.class_label(first)
        kin = [n for n in world.names(split)
               if n != first.name and world.class_label(obj_replace(first, name=n)) == label]
        second = world.sample_object(rng, split, b, name=rng.choice(kin), colour=first.colour, size=first.size)
    else:
        other_colour = rng.choice([c for c in world.colours() if c != first.colour])
        second = world.sample_object(rng, split, b, name=first.name, colour=other_colour, size=first.size)
    objects = [first, second]
    if world.config.counts:  # a count of at least 2 (kinds() offers no position task otherwise)
        extra = rng.choice([c for c in world.config.counts if c >= 2]) - 2
    else:
        extra = 1 if world.config.max_objects >= 3 and rng.random() < 0.5 else 0
    if extra:
        # the other objects never fit the twins' phrase ("the star", "the food & drink emoji")
        phrase = _position_phrase(world, first, attribute)
        names = [n for n in world.names(split) if _position_phrase(world, obj_replace(first, name=n), attribute)
                 != phrase]
        for _ in range(extra):
            free = [c for c in range(9) if c not in {o.cell for o in objects}]
            objects.append(world.sample_object(rng, split, rng.choice(free), name=rng.choice(names)))
    scene = Scene(tuple(objects))
    left, right = sorted([first, second], key=lambda o: world.centre(o)[0])
    return scene, left, right


def _other_scene_crop(world: World, rng: random.Random, split: str, like: Obj) -> np.ndarray:
    """Crop of an object of the same class as `like`, in a fresh random scene."""
    scene = world.sample_scene(rng, split)
    victim = rng.choice(scene.objects)
    fixed = {a: getattr(like, a) for a in world.class_attributes}
    obj = world.sample_object(rng, split, victim.cell, **fixed)
    scene = scene.replace(victim, obj)
    return world.crop(world.render(scene), obj)


def _caption_swap(world: World, scene: Scene, rng: random.Random, split: str) -> Scene:
    """The scene with one fact changed: an object's colour, name, size or cell."""
    obj = rng.choice(scene.objects)
    choices = ["name", "size"] + (["colour"] if world.colours() else []) + (["cell"] if scene.free_cells() else [])
    what = rng.choice(choices)
    if what == "cell":
        return scene.replace(obj, obj_replace(obj, cell=rng.choice(scene.free_cells())))
    pool = {"name": world.names(split), "size": world.sizes, "colour": world.colours()}[what]
    value = rng.choice([v for v in pool if v != getattr(obj, what)])
    new = obj_replace(obj, **{what: value})
    if what == "name":
        new = obj_replace(new, angle=new.angle % world.symmetry(value))
    return scene.replace(obj, new)


# ---------------------------------------------------------------------------------------------
# training groups: fn(world, rng, split, data: DataConfig) -> [(left, right, kind), ...] (may be empty: retry)

def _caption_group(world, rng, split, data):
    scene = world.sample_scene(rng, split)
    return [(_image(world.render(scene)), _text(world.caption(scene)), "")]


def _classify_group(world, rng, split, data):
    scene = _single_object_scene(world, rng, split)
    label = world.class_label(scene.objects[0])
    return [(_image(world.render(scene)), _text(world.class_prompt(label)), "")]


def _vqa_group(world, rng, split, data):
    size = data.group_size
    scene = world.sample_scene(rng, split)
    image = world.render(scene)
    kinds_ = list(vqa_questions.question_kinds(world))
    rng.shuffle(kinds_)
    triples = []
    for kind in kinds_:
        qa = vqa_questions.ask(world, scene, rng, kind)
        if qa is not None:
            triples.append((Side(image, qa[0]), _text(qa[1]), kind))
    return _distinct_rights(triples, size)


def _crop_group(world, rng, split, data):
    size = data.group_size
    scene = world.sample_scene(rng, split, min_objects=min(2, world.config.max_objects))
    image = world.render(scene)
    triples = []
    for obj in scene.objects:
        if sum(_same_class(world, obj, o) for o in scene.objects) == 1:
            triples.append((Side(image, f"the {_class_phrase(world, obj)}"), _image(world.crop(image, obj)), ""))
    return _distinct_rights(triples, size)


def position_query(phrase: str, side: str) -> str:
    """The position task's query text ("the star on the left")."""
    return f"the {phrase} on the {side}"


def position_size_question(phrase: str, side: str) -> str:
    """The same binding asked about the twins' size ("what size is the star on the left?";
    fuselip.evaluate.position_binding)."""
    return f"what size is the {phrase} on the {side}?"


def _position_group(world, rng, split, data):
    size = data.group_size
    attribute = twin_attribute(world, data.position_twins)
    scene, left, right = _position_scene(world, rng, split, attribute)
    image = world.render(scene)
    phrase = _position_phrase(world, left, attribute)
    triples = [(Side(image, position_query(phrase, "left")), _image(world.crop(image, left)), "left"),
               (Side(image, position_query(phrase, "right")), _image(world.crop(image, right)), "right")]
    out = _distinct_rights(triples, size)
    if len(out) != len(triples):
        return []  # identical crops: the question has no answer, resample
    return out


def _tgit_group(world, rng, split, data):
    """Transformations of ONE kind of one image, so that the in-batch hard negatives are the candidates evaluation
    ranks and the instruction is what tells them apart (mixed-kind groups almost never put two crops of one image
    side by side). How many, by `data.tgit_groups` (tgit_instructions):
      "sampled"    up to `group_size` instructions of the kind, all from the original image;
      "full"       every evaluation candidate of the kind is a target: 9 crops, 18 rotations, 10 jitters, grayscale
                   and colorize, and the flips asked of each of the four flip images (x, hx, vx, hvx), so the
                   unchanged image and the double flip are targets too and "copy the input" is always wrong;
      "reference"  the reference code's groups (shared/PAPER.md): crop 9, rotate 3, jitter 3, the four flip pairs
                   (x -> hx, hx -> x, x -> vx, vx -> x), colour 2, kinds drawn with weights 2/1/1/2/1 per pair."""
    scene = world.sample_scene(rng, split)
    image = world.render(scene)
    fill = world.config.background
    triples = []
    for query, t in tgit_instructions(image, rng, data.tgit_groups, data.group_size, fill):
        left, right = tgit.make_pair(query, t, fill)
        triples.append((Side(left, t.text), _image(right), t.kind))
    if data.tgit_groups == "sampled":
        return _distinct_rights(triples, data.group_size)
    return _distinct_pairs(triples)


TGIT_GROUPS = ("sampled", "full", "reference")
# the reference's kind weights, divided by the pairs each kind's group yields (PAPER.md "TGIT training groups")
REFERENCE_KIND_WEIGHTS = {"crop": 2 / 9, "rotate": 1 / 3, "jitter": 1 / 3, "flip": 2 / 4, "colour": 1 / 2}


def tgit_instructions(image: np.ndarray, rng: random.Random, mode: str, group_size: int, fill
                      ) -> list[tuple[np.ndarray, tgit.Transform]]:
    """(query image, instruction) of one TGIT training group (see _tgit_group). A flip's query may be a flipped
    image; every other query is `image` (colorize: its gray version is made by tgit.make_pair)."""
    if mode not in TGIT_GROUPS:
        raise ValueError(f"data.tgit_groups must be one of {TGIT_GROUPS}, got {mode!r}")
    if mode == "reference":
        kind = rng.choices(list(REFERENCE_KIND_WEIGHTS), weights=list(REFERENCE_KIND_WEIGHTS.values()))[0]
    else:
        kind = rng.choice(tgit.KINDS)
    if mode == "sampled":
        return [(image, t) for t in tgit.sample_of_kind(rng, kind, group_size)]
    flips = tgit.all_of_kind("flip")
    if kind == "flip":
        h, v = flips
        if mode == "reference":  # x -> hx, hx -> x, x -> vx, vx -> x
            return [(image, h), (tgit.apply(image, h, fill), h), (image, v), (tgit.apply(image, v, fill), v)]
        queries = [image, tgit.apply(image, h, fill), tgit.apply(image, v, fill),
                   tgit.apply(tgit.apply(image, h, fill), v, fill)]
        return [(q, f) for q in queries for f in flips]
    if kind in ("crop", "colour") or (kind == "rotate" and mode == "full"):
        return [(image, t) for t in tgit.all_of_kind(kind)]
    n = tgit.EVAL_COUNTS[kind] if mode == "full" else 3   # jitter (full: 10), rotate/jitter (reference: 3)
    return [(image, t) for t in tgit.sample_of_kind(rng, kind, n)]


def _distinct_pairs(triples: list[tuple[Side, Side, str]]) -> list[tuple[Side, Side, str]]:
    """Drop pairs identical to an earlier one (query and target), e.g. the flips of a symmetric scene. Pairs that
    share only their target stay: identical targets are positives of each other in the loss."""
    seen, out = set(), []
    for t in triples:
        k = (t[0].key(), t[1].key())
        if k not in seen:
            seen.add(k)
            out.append(t)
    return out


def _edit_group(world, rng, split, data):
    size = data.group_size
    scene = world.sample_scene(rng, split)
    image = world.render(scene)
    ops = world_ops(world)
    edits, seen = [], {scene}
    for _ in range(4 * size):
        if len(edits) == max(size - 1, 1):
            break
        e = sample_edit(world, scene, rng, split, rng.choice(ops))
        if e is not None and e.apply(scene) not in seen:
            seen.add(e.apply(scene))
            edits.append(e)
    triples = []
    for e in edits:
        triples.append((Side(image, e.text(world, scene)), _image(world.render(e.apply(scene))), e.op))
    if edits and size > 1:  # the inverse of the first edit: edited scene -> original
        e = edits[0]
        edited = e.apply(scene)
        triples.insert(1, (Side(triples[0][1].image, e.inverse().text(world, edited)), _image(image),
                           e.inverse().op))
    return _distinct_rights(triples, size)


GROUPS = {"caption": _caption_group, "classify": _classify_group, "vqa": _vqa_group, "crop": _crop_group,
          "position": _position_group, "tgit": _tgit_group, "edit": _edit_group}


# ---------------------------------------------------------------------------------------------
# evaluation items: fn(world, rng, split, kind, tc) -> EvalItem | None (None: resample)

def _caption_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split)
    correct = world.caption(scene)
    negatives = [world.caption(_caption_swap(world, scene, rng, split)) for _ in range(tc.caption_swaps)]
    negatives += [world.caption(world.sample_scene(rng, split)) for _ in range(tc.caption_others)]
    return _eval_item(_image(world.render(scene)), _text(correct), [_text(n) for n in negatives],
                      "caption", kind, world, {"scene": scene})


def _classify_item(world, rng, split, kind, tc):
    scene = _single_object_scene(world, rng, split)
    label = world.class_label(scene.objects[0])
    prompts = [world.class_prompt(lab) for lab in world.class_labels(split) if lab != label]
    return _eval_item(_image(world.render(scene)), _text(world.class_prompt(label)), [_text(p) for p in prompts],
                      "classify", kind, world, {"label": label})


def _vqa_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split)
    qa = vqa_questions.ask(world, scene, rng, kind)
    if qa is None:
        return None
    question, answer = qa
    others = [a for a in vqa_questions.answers(world, kind, split) if a != answer]
    return _eval_item(Side(world.render(scene), question), _text(answer), [_text(a) for a in others],
                      "vqa", kind, world, {"scene": scene})


def _crop_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split, min_objects=min(2, world.config.max_objects))
    unique = [o for o in scene.objects if sum(_same_class(world, o, p) for p in scene.objects) == 1]
    if not unique:
        return None
    obj = rng.choice(unique)
    image = world.render(scene)
    negatives = [world.crop(image, o) for o in scene.objects if o != obj]
    negatives += [_other_scene_crop(world, rng, split, obj) for _ in range(tc.crop_other_scenes)]
    return _eval_item(Side(image, f"the {_class_phrase(world, obj)}"), _image(world.crop(image, obj)),
                      [_image(n) for n in negatives], "crop", kind, world, {"scene": scene, "object": obj})


def _position_item(world, rng, split, kind, tc):
    attribute = twin_attribute(world, tc.position_twins)
    scene, left, right = _position_scene(world, rng, split, attribute)
    image = world.render(scene)
    target, other = (left, right) if kind == "left" else (right, left)
    correct, twin = world.crop(image, target), world.crop(image, other)
    if image_key(correct) == image_key(twin):
        return None
    negatives = [twin] + [world.crop(image, o) for o in scene.objects if o not in (left, right)]
    negatives += [_other_scene_crop(world, rng, split, target) for _ in range(tc.position_other_crops)]
    phrase = _position_phrase(world, target, attribute)
    query = Side(image, position_query(phrase, kind))
    return _eval_item(query, _image(correct), [_image(n) for n in negatives], "position", kind, world,
                      {"scene": scene, "object": target, "phrase": phrase, "twin": _image(twin)})


def _tgit_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split)
    query_image, text, candidates = tgit.eval_candidates(world.render(scene), kind, rng, world.config.background)
    return _eval_item(Side(query_image, text), _image(candidates[0]), [_image(c) for c in candidates[1:]],
                      "tgit", kind, world, {"scene": scene})


def _edit_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split)
    e = sample_edit(world, scene, rng, split, kind)
    if e is None:
        return None
    target = e.apply(scene)
    others, seen = [scene], {scene, target}  # the unedited scene is always a candidate
    ops = world_ops(world)
    for _ in range(4 * tc.edit_candidates):
        if len(others) == tc.edit_candidates - 1:
            break
        o = sample_edit(world, scene, rng, split, rng.choice(ops))
        if o is not None and o.apply(scene) not in seen:
            seen.add(o.apply(scene))
            others.append(o.apply(scene))
    query = Side(world.render(scene), e.text(world, scene))
    return _eval_item(query, _image(world.render(target)), [_image(world.render(s)) for s in others],
                      "edit", kind, world, {"scene": scene, "edit": e})


ITEMS = {"caption": _caption_item, "classify": _classify_item, "vqa": _vqa_item, "crop": _crop_item,
         "position": _position_item, "tgit": _tgit_item, "edit": _edit_item}


# ---------------------------------------------------------------------------------------------
# the public interface

def check_data_config(data: DataConfig) -> None:
    """Errors that name the offending field."""
    for w in data.worlds:
        if w not in WORLDS:
            raise ValueError(f"data.worlds: unknown world {w!r}; known: {', '.join(WORLDS)}")
    if len(data.world_weights) != len(data.worlds):
        raise ValueError(f"data.world_weights has {len(data.world_weights)} entries for {len(data.worlds)} worlds")
    for t, w in data.task_weights.items():
        if t not in TASKS:
            raise ValueError(f"data.task_weights: unknown task {t!r}; known: {', '.join(TASKS)}")
        if w < 0:
            raise ValueError(f"data.task_weights.{t} is negative ({w})")
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
