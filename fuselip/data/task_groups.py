"""Training groups: every task turns a world into a group of pairs that are hard negatives of each other.

A group function is fn(world, rng, split, data: DataConfig) -> [(left, right, kind), ...], possibly empty (the
caller, fuselip.data.tasks.iter_pairs, draws again). Pairs of one group share an image (its questions, its objects'
crops, its transformations, its edits), so that in a batch they tell apart what only the text says.
"""
from __future__ import annotations

import random

import numpy as np

from fuselip.data import tgit
from fuselip.data import vqa as vqa_questions
from fuselip.data.edits import sample_edit, world_ops
from fuselip.data.task_scenes import (class_phrase, image_side, position_phrase, position_query, position_scene,
                                      same_class, single_object_scene, text_side, twin_attribute)
from fuselip.data.types import Side


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


def _caption_group(world, rng, split, data):
    scene = world.sample_scene(rng, split)
    return [(image_side(world.render(scene)), text_side(world.caption(scene)), "")]


def _classify_group(world, rng, split, data):
    scene = single_object_scene(world, rng, split)
    label = world.class_label(scene.objects[0])
    return [(image_side(world.render(scene)), text_side(world.class_prompt(label)), "")]


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
            triples.append((Side(image, qa[0]), text_side(qa[1]), kind))
    return _distinct_rights(triples, size)


def _crop_group(world, rng, split, data):
    size = data.group_size
    scene = world.sample_scene(rng, split, min_objects=min(2, world.config.max_objects))
    image = world.render(scene)
    triples = []
    for obj in scene.objects:
        if sum(same_class(world, obj, o) for o in scene.objects) == 1:
            triples.append((Side(image, f"the {class_phrase(world, obj)}"), image_side(world.crop(image, obj)), ""))
    return _distinct_rights(triples, size)


def _position_group(world, rng, split, data):
    size = data.group_size
    attribute = twin_attribute(world, data.position_twins)
    scene, left, right = position_scene(world, rng, split, attribute)
    image = world.render(scene)
    phrase = position_phrase(world, left, attribute)
    triples = [(Side(image, position_query(phrase, "left")), image_side(world.crop(image, left)), "left"),
               (Side(image, position_query(phrase, "right")), image_side(world.crop(image, right)), "right")]
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
        triples.append((Side(left, t.text), image_side(right), t.kind))
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
        triples.append((Side(image, e.text(world, scene)), image_side(world.render(e.apply(scene))), e.op))
    if edits and size > 1:  # the inverse of the first edit: edited scene -> original
        e = edits[0]
        edited = e.apply(scene)
        triples.insert(1, (Side(triples[0][1].image, e.inverse().text(world, edited)), image_side(image),
                           e.inverse().op))
    return _distinct_rights(triples, size)


GROUPS = {"caption": _caption_group, "classify": _classify_group, "vqa": _vqa_group, "crop": _crop_group,
          "position": _position_group, "tgit": _tgit_group, "edit": _edit_group}
