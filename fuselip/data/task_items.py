"""Evaluation items: every task turns a world into items of one query and a candidate list, the correct one first.

An item function is fn(world, rng, split, kind, tc: TaskConfig) -> EvalItem | None (None: the caller,
fuselip.data.tasks.eval_items, draws again). The negatives are what the task is about: the scene's caption with
one fact changed, the other crops of the scene and same-class crops of other scenes, the position twin, the other
transformations of the image (fuselip.data.tgit), other edits of the scene; identical candidates are merged.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from fuselip.data import tgit
from fuselip.data import vqa as vqa_questions
from fuselip.data.edits import sample_edit, world_ops
from fuselip.data.task_scenes import (class_phrase, image_side, position_phrase, position_query, position_scene,
                                      same_class, single_object_scene, text_side, twin_attribute)
from fuselip.data.types import EvalItem, Side, image_key
from fuselip.data.world import Obj, Scene, World, obj_replace


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


def _caption_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split)
    correct = world.caption(scene)
    negatives = [world.caption(_caption_swap(world, scene, rng, split)) for _ in range(tc.caption_swaps)]
    negatives += [world.caption(world.sample_scene(rng, split)) for _ in range(tc.caption_others)]
    return _eval_item(image_side(world.render(scene)), text_side(correct), [text_side(n) for n in negatives],
                      "caption", kind, world, {"scene": scene})


def _classify_item(world, rng, split, kind, tc):
    scene = single_object_scene(world, rng, split)
    label = world.class_label(scene.objects[0])
    prompts = [world.class_prompt(lab) for lab in world.class_labels(split) if lab != label]
    return _eval_item(image_side(world.render(scene)), text_side(world.class_prompt(label)),
                      [text_side(p) for p in prompts], "classify", kind, world, {"label": label})


def _vqa_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split)
    qa = vqa_questions.ask(world, scene, rng, kind)
    if qa is None:
        return None
    question, answer = qa
    others = [a for a in vqa_questions.answers(world, kind, split) if a != answer]
    return _eval_item(Side(world.render(scene), question), text_side(answer), [text_side(a) for a in others],
                      "vqa", kind, world, {"scene": scene})


def _crop_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split, min_objects=min(2, world.config.max_objects))
    unique = [o for o in scene.objects if sum(same_class(world, o, p) for p in scene.objects) == 1]
    if not unique:
        return None
    obj = rng.choice(unique)
    image = world.render(scene)
    negatives = [world.crop(image, o) for o in scene.objects if o != obj]
    negatives += [_other_scene_crop(world, rng, split, obj) for _ in range(tc.crop_other_scenes)]
    return _eval_item(Side(image, f"the {class_phrase(world, obj)}"), image_side(world.crop(image, obj)),
                      [image_side(n) for n in negatives], "crop", kind, world, {"scene": scene, "object": obj})


def _position_item(world, rng, split, kind, tc):
    attribute = twin_attribute(world, tc.position_twins)
    scene, left, right = position_scene(world, rng, split, attribute)
    image = world.render(scene)
    target, other = (left, right) if kind == "left" else (right, left)
    correct, twin = world.crop(image, target), world.crop(image, other)
    if image_key(correct) == image_key(twin):
        return None
    negatives = [twin] + [world.crop(image, o) for o in scene.objects if o not in (left, right)]
    negatives += [_other_scene_crop(world, rng, split, target) for _ in range(tc.position_other_crops)]
    phrase = position_phrase(world, target, attribute)
    query = Side(image, position_query(phrase, kind))
    return _eval_item(query, image_side(correct), [image_side(n) for n in negatives], "position", kind, world,
                      {"scene": scene, "object": target, "phrase": phrase, "twin": image_side(twin)})


def _tgit_item(world, rng, split, kind, tc):
    scene = world.sample_scene(rng, split)
    query_image, text, candidates = tgit.eval_candidates(world.render(scene), kind, rng, world.config.background)
    return _eval_item(Side(query_image, text), image_side(candidates[0]), [image_side(c) for c in candidates[1:]],
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
    return _eval_item(query, image_side(world.render(target)), [image_side(world.render(s)) for s in others],
                      "edit", kind, world, {"scene": scene, "edit": e})


ITEMS = {"caption": _caption_item, "classify": _classify_item, "vqa": _vqa_item, "crop": _crop_item,
         "position": _position_item, "tgit": _tgit_item, "edit": _edit_item}
