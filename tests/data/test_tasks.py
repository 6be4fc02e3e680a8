"""Every task of both worlds: determinism, groups, mixture, splits, and evaluation-item properties."""
import dataclasses
import random
import re
from collections import Counter

import numpy as np
import pytest

from fuselip.config import DataConfig
from fuselip.data import tgit, vqa
from fuselip.data.edits import sample_edit, world_ops
from fuselip.data.tasks import (DEFAULT_TASK_CONFIG, TASKS, WORLDS, eval_items, iter_pairs, kinds, make_world,
                                sample_images, sample_pairs, twin_attribute)
from fuselip.data.types import image_key
from fuselip.data.world import CELL_NAMES

N_ITEMS = 10


def fingerprint(pairs):
    return [(p.left.key(), p.right.key(), p.task, p.group, p.kind, p.world) for p in pairs]


@pytest.fixture(scope="module")
def pairs():
    return sample_pairs(DataConfig(), "train", 600, seed=0)


def test_same_seed_gives_byte_identical_pairs(pairs):
    assert fingerprint(sample_pairs(DataConfig(), "train", 600, seed=0)) == fingerprint(pairs)
    assert fingerprint(sample_pairs(DataConfig(), "train", 600, seed=1)) != fingerprint(pairs)


def test_iter_pairs_streams_exactly_the_same_pairs(pairs):
    stream = iter_pairs(DataConfig(), "train", 600, seed=0)
    assert fingerprint(list(stream)) == fingerprint(pairs)


def test_same_seed_gives_byte_identical_eval_items():
    for world in WORLDS:
        a = eval_items(world, "edit", "test", 4, seed=3)
        b = eval_items(world, "edit", "test", 4, seed=3)
        assert [(i.query.key(), [c.key() for c in i.candidates]) for i in a] == \
               [(i.query.key(), [c.key() for c in i.candidates]) for i in b]


def test_splits_are_disjoint_streams(pairs):
    val = sample_pairs(DataConfig(), "val", 600, seed=0)
    images = {p.left.key() for p in pairs if p.task == "caption"}
    assert not images & {p.left.key() for p in val if p.task == "caption"}


def test_groups_are_contiguous_and_their_targets_differ(pairs):
    assert len(pairs) == 600
    order = [p.group for p in pairs]
    assert order == sorted(order)  # contiguous and increasing
    by_group = {}
    for p in pairs:
        by_group.setdefault(p.group, []).append(p)
    for group in by_group.values():
        assert len({(p.task, p.world) for p in group}) == 1
        assert len(group) <= DataConfig().group_size
        keys = [p.right.key() for p in group]
        assert len(set(keys)) == len(keys)  # hard negatives differ from each target


def test_task_mixture_follows_the_weights(pairs):
    weights = DataConfig().task_weights
    counts = Counter(p.task for p in pairs)
    for task, w in weights.items():
        assert abs(counts[task] / len(pairs) - w) < 0.03, (task, counts)
    worlds = Counter(p.world for p in pairs)
    assert abs(worlds["shapes"] - worlds["emoji"]) < 30


def test_pair_sides_have_the_right_modalities(pairs):
    for p in pairs:
        assert p.left.image is not None
        if p.task in ("caption", "classify", "vqa"):
            assert p.right.image is None and p.right.text
        else:
            assert p.right.image is not None and p.right.text == ""
            assert p.left.text
        if p.task == "caption":
            assert p.left.text == ""
        if p.task == "tgit":
            assert p.kind == tgit.parse(p.left.text).kind


def test_tgit_groups_hold_one_kind_so_their_hard_negatives_are_the_eval_candidates():
    config = DataConfig(worlds=["shapes"], world_weights=[1.0], task_weights={"tgit": 1.0})
    by_group = {}
    for p in sample_pairs(config, "train", 300, seed=0):
        by_group.setdefault(p.group, []).append(p)
    last = by_group.pop(max(by_group))  # may be cut short to return exactly 300 pairs
    assert len({p.kind for p in last}) == 1
    sizes = Counter()
    for group in by_group.values():
        kinds_in_group = {p.kind for p in group}
        assert len(kinds_in_group) == 1
        kind = kinds_in_group.pop()
        assert len({p.left.text for p in group}) == len(group)  # distinct instructions
        sizes[kind] = max(sizes[kind], len(group))
    assert sizes["crop"] == sizes["rotate"] == config.group_size  # six crops of one image side by side


def test_position_twins_differ_in_what_a_crop_shows_plainly():
    """position_twins="appearance" (the default, the benchmark): ShapesWorld twins share shape and size, differ in
    colour, and the query names the shape only ("the star on the left"); EmojiWorld twins are two different emoji
    of one category and size, and the query names the category ("the food & drink emoji on the left"), as does no
    third object. "colour" keeps size twins on emoji; "size" keeps the twins' colour and differs in size. Training
    groups and test items agree."""
    assert DEFAULT_TASK_CONFIG.position_twins == DataConfig().position_twins == "appearance"
    config = dataclasses.replace(DEFAULT_TASK_CONFIG, position_twins="appearance")
    for item in eval_items("shapes", "position", "test", 20, seed=0, config=config):
        twins = [o for o in item.meta["scene"].objects if o.name == item.meta["object"].name]
        assert len(twins) == 2 and twins[0].size == twins[1].size and twins[0].colour != twins[1].colour
        assert item.query.text == f"the {item.meta['object'].name} on the {item.kind}"
    emoji = make_world("emoji")
    for item in eval_items("emoji", "position", "test", 20, seed=0, config=config):
        target = item.meta["object"]
        twins = [o for o in item.meta["scene"].objects if emoji.class_label(o) == emoji.class_label(target)]
        assert len(twins) == 2 and twins[0].size == twins[1].size and twins[0].name != twins[1].name
        assert item.query.text == f"the {emoji.class_label(target)} emoji on the {item.kind}"
        assert all(n in emoji.names("test") for n in (twins[0].name, twins[1].name))
    coloured = dataclasses.replace(DEFAULT_TASK_CONFIG, position_twins="colour")
    for item in eval_items("emoji", "position", "test", 10, seed=0, config=coloured):
        twins = [o for o in item.meta["scene"].objects if o.name == item.meta["object"].name]
        assert twins[0].size != twins[1].size
    sized = dataclasses.replace(DEFAULT_TASK_CONFIG, position_twins="size")
    for item in eval_items("shapes", "position", "test", 10, seed=0, config=sized):
        twins = [o for o in item.meta["scene"].objects if o.name == item.meta["object"].name]
        assert twins[0].colour == twins[1].colour and twins[0].size != twins[1].size
    with pytest.raises(ValueError, match="position_twins"):
        sample_pairs(DataConfig(task_weights={"position": 1.0}, position_twins="angle"), "train", 4, seed=0)


def test_weights_select_tasks_and_bad_configs_name_the_field():
    only = sample_pairs(DataConfig(worlds=["emoji"], world_weights=[1.0], task_weights={"position": 1.0}),
                        "train", 10, seed=0)
    assert {(p.world, p.task) for p in only} == {("emoji", "position")}
    with pytest.raises(ValueError, match="unknown task 'captions'"):
        sample_pairs(DataConfig(task_weights={"captions": 1.0}), "train", 5, seed=0)
    with pytest.raises(ValueError, match="world_weights"):
        sample_pairs(DataConfig(worlds=["shapes"], world_weights=[0.5, 0.5]), "train", 5, seed=0)
    with pytest.raises(ValueError, match="split"):
        sample_pairs(DataConfig(), "training", 5, seed=0)


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("task", TASKS)
def test_eval_items(world, task):
    items = eval_items(world, task, "test", N_ITEMS, seed=0)
    w = make_world(world)
    task_kinds = kinds(w, task)
    assert [i.kind for i in items] == [task_kinds[j % len(task_kinds)] for j in range(N_ITEMS)]
    for item in items:
        assert item.task == task and item.world == world
        keys = [c.key() for c in item.candidates]
        assert len(keys) >= 2 and len(set(keys)) == len(keys)  # correct first, once; negatives differ
        for c in item.candidates:
            if c.image is not None:
                assert c.image.shape == (64, 64, 3) and c.image.dtype == np.uint8
        check = CHECKS[task]
        check(w, item)
        scene = item.meta.get("scene")
        if world == "emoji" and scene is not None:
            assert {o.name for o in scene.objects} <= set(w.names("test"))  # held-out emoji only


def check_caption(w, item):
    assert item.query.image is not None and item.query.text == ""
    assert item.candidates[0].text == w.caption(item.meta["scene"])
    assert np.array_equal(item.query.image, w.render(item.meta["scene"]))


def check_classify(w, item):
    assert [c.text for c in item.candidates][1:] == [w.class_prompt(l) for l in w.class_labels("test")
                                                      if l != item.meta["label"]]
    assert item.candidates[0].text == w.class_prompt(item.meta["label"])


def check_vqa(w, item):
    answers = vqa.answers(w, item.kind, "test")
    texts = [c.text for c in item.candidates]
    assert sorted(texts) == sorted(answers)  # every answer of the kind, the correct one among them
    assert item.query.text.endswith("?")
    scene, answer = item.meta["scene"], texts[0]
    if item.kind == "position":
        assert answer in CELL_NAMES
    if item.kind in ("shape", "object"):
        where = item.query.text.split(" in the ")[1].rstrip("?")
        assert [o.name for o in scene.objects if CELL_NAMES[o.cell] == where] == [answer]
    if item.kind == "colour":
        assert answer in {o.colour for o in scene.objects}


def check_crop(w, item):
    obj, scene = item.meta["object"], item.meta["scene"]
    assert item.query.text == "the " + w.phrase(obj, w.class_attributes)
    assert np.array_equal(item.candidates[0].image, w.crop(w.render(scene), obj))
    assert all(c.image is not None and c.text == "" for c in item.candidates)


def check_position(w, item):
    m = re.match(r"^the (.+) on the (left|right)$", item.query.text)
    assert m and m[2] == item.kind
    obj, scene = item.meta["object"], item.meta["scene"]
    attribute = twin_attribute(w, DEFAULT_TASK_CONFIG.position_twins)  # the benchmark's: colour on shapes, name on emoji
    shared = tuple(a for a in w.class_attributes if a != attribute)
    twins = [o for o in scene.objects if (w.class_noun(o) if attribute == "name" else w.phrase(o, shared)) == m[1]]
    assert len(twins) == 2 and obj in twins and getattr(twins[0], attribute) != getattr(twins[1], attribute)
    other = twins[0] if twins[1] == obj else twins[1]
    assert (w.centre(obj)[0] < w.centre(other)[0]) == (item.kind == "left")
    image = w.render(scene)
    assert np.array_equal(item.candidates[0].image, w.crop(image, obj))
    assert np.array_equal(item.candidates[1].image, w.crop(image, other))  # the twin is always a candidate
    assert np.array_equal(item.meta["twin"].image, w.crop(image, other))  # and named for evaluate.twin_accuracy


def check_tgit(w, item):
    t = tgit.parse(item.query.text)
    assert t.kind == item.kind and len(item.candidates) <= tgit.EVAL_COUNTS[item.kind]
    if not (t.kind == "colour" and t.params == ("colorize",)):
        assert np.array_equal(item.candidates[0].image, tgit.apply(item.query.image, t, w.config.background))


def check_edit(w, item):
    e, scene = item.meta["edit"], item.meta["scene"]
    assert item.query.text == e.text(w, scene) and e.op == item.kind
    assert np.array_equal(item.candidates[0].image, w.render(e.apply(scene)))
    assert any(np.array_equal(c.image, item.query.image) for c in item.candidates[1:])  # "no change" is offered


CHECKS = {"caption": check_caption, "classify": check_classify, "vqa": check_vqa, "crop": check_crop,
          "position": check_position, "tgit": check_tgit, "edit": check_edit}

EDIT_TEXT = re.compile(r"^(make the [a-z &-]+ (\w+)|replace the [a-z &-]+ with an? [a-z &-]+|"
                       r"move the [a-z &-]+ to the ([a-z ]+)|remove the [a-z &-]+|add an? [a-z &-]+ in the [a-z ]+)$")


@pytest.mark.parametrize("world", WORLDS)
def test_edit_then_inverse_gives_back_the_scene(world):
    w = make_world(world)
    rng = random.Random(0)
    done = Counter()
    for _ in range(300):
        scene = w.sample_scene(rng, "train")
        e = sample_edit(w, scene, rng, "train", rng.choice(world_ops(w)))
        if e is None:
            continue
        edited = e.apply(scene)
        assert edited != scene
        assert e.inverse().apply(edited) == scene
        assert EDIT_TEXT.match(e.text(w, scene)) and EDIT_TEXT.match(e.inverse().text(w, edited))
        done[e.op] += 1
    assert set(done) == set(world_ops(w))


def test_sample_images_are_distinct_and_include_transformed_ones():
    data = DataConfig(worlds=["shapes"], world_weights=[1.0])
    images = sample_images(data, "train", 64, seed=0)
    assert images.shape == (64, 64, 64, 3) and images.dtype == np.uint8
    assert len({im.tobytes() for im in images}) == 64
    assert np.array_equal(images, sample_images(data, "train", 64, seed=0))


@pytest.mark.parametrize("world_name", WORLDS)
def test_full_tgit_groups_hold_every_evaluation_candidate_as_a_target(world_name):
    """data.tgit_groups="full": a group's targets are exactly the images evaluation ranks for its kind (flip: the
    unchanged image and the double flip too), so nothing in evaluation is a negative that training never showed."""
    world = make_world(world_name)
    config = DataConfig(tgit_groups="full")
    from fuselip.data.task_groups import _tgit_group
    rng, seen = random.Random(0), set()
    while seen != set(tgit.KINDS):
        group = _tgit_group(world, rng, "train", config)
        kind = group[0][2]
        seen.add(kind)
        assert {t[2] for t in group} == {kind}
        source = group[0][0].image if kind != "colour" else next(t for t in group if t[0].text == "grayscale")[0].image
        targets = {image_key(t[1].image) for t in group}
        if kind in ("crop", "rotate", "flip"):
            _, _, candidates = tgit.eval_candidates(source, kind, random.Random(1), world.config.background)
            assert targets == {image_key(c) for c in candidates}, kind
        expected = {"crop": 9, "rotate": 18, "jitter": 10, "colour": 2}.get(kind)
        if expected is not None:
            assert len(targets) == expected or kind == "crop", kind  # identical (blank) crops are dropped
        if kind == "flip":
            assert image_key(source) in targets  # "copy the input" is a wrong answer the batch shows
            assert len(group) == len({(t[0].key(), t[1].key()) for t in group})  # no pair twice


def test_reference_tgit_groups_follow_the_reference_code():
    world = make_world("shapes")
    from fuselip.data.task_groups import _tgit_group
    rng, sizes, counts = random.Random(0), {}, Counter()
    for _ in range(400):
        group = _tgit_group(world, rng, "train", DataConfig(tgit_groups="reference"))
        kind = group[0][2]
        counts[kind] += 1
        sizes.setdefault(kind, set()).add(len(group))
        if kind == "flip":  # x -> hx, hx -> x, x -> vx, vx -> x: the unchanged image is a target
            assert image_key(group[0][0].image) in {image_key(t[1].image) for t in group}
    assert max(sizes["crop"]) == 9 and sizes["rotate"] == {3} and sizes["jitter"] == {3} and sizes["colour"] == {2}
    assert max(sizes["flip"]) == 4
    # kinds drawn with weights 2/9, 1/3, 1/3, 2/4, 1/2 (crop, rotate, jitter, flip, colour)
    assert counts["flip"] > counts["rotate"] > counts["crop"]


def test_unknown_tgit_group_mode_is_named():
    with pytest.raises(ValueError, match="tgit_groups"):
        sample_pairs(DataConfig(tgit_groups="all"), "train", 10, seed=0)
