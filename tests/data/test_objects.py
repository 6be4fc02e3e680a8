"""Scenes of a chosen number of objects (1..9, one per cell; DataConfig.objects, eval_items(objects=…)): counts
honoured, every task valid at every count, determinism, and the default streams unchanged (the bottleneck study)."""
import hashlib
import random
import re
from collections import Counter

import numpy as np
import pytest

from fuselip.config import DataConfig
from fuselip.data import vqa
from fuselip.data.collate import cache_file
from fuselip.data.emoji import EmojiConfig, EmojiWorld
from fuselip.data.shapes import ShapesConfig, ShapesWorld
from fuselip.data.tasks import TASKS, WORLDS, eval_items, kinds, make_world, sample_pairs
from fuselip.data.world import CELL_NAMES, with_counts

from test_tasks import CHECKS  # tests/data/test_tasks.py: what a valid item of each task is

COUNTS = tuple(range(1, 10))
ALL_TASKS = {task: 1.0 for task in TASKS}
# sample_pairs(DataConfig(), "train", 240, seed=0) and eval_items(world, task, "test", 5, seed=0) for every world and
# task, hashed by `stream_digest`: the streams as they were before object counts existed (commit 039b343)
DEFAULT_STREAM_DIGEST = "6c2b8b7600a1e14b"


def stream_digest() -> str:
    h = hashlib.sha256()
    for p in sample_pairs(DataConfig(), "train", 240, seed=0):
        h.update(p.left.key())
        h.update(p.right.key())
        h.update(f"{p.task}|{p.group}|{p.kind}|{p.world}".encode())
    for world in WORLDS:
        for task in TASKS:
            for item in eval_items(world, task, "test", 5, seed=0):
                h.update(item.query.key())
                h.update(item.kind.encode())
                for c in item.candidates:
                    h.update(c.key())
    return h.hexdigest()[:16]


def test_default_streams_are_unchanged_byte_for_byte():
    """Without object counts every training pair and evaluation item is what it was: same pixels, same texts."""
    assert stream_digest() == DEFAULT_STREAM_DIGEST, (
        "the default training pairs or test items changed: every shipped checkpoint and result was made on the old "
        "ones; if the change is intended, say so and update DEFAULT_STREAM_DIGEST")
    assert DataConfig().objects == [] and make_world("shapes").config.counts == ()
    assert make_world("shapes", 64, ()) is make_world("shapes")


def test_the_token_cache_of_a_default_config_keeps_its_name():
    """DataConfig.objects is hashed into the token-cache file name only when set: caches written before it existed
    stay valid, and a run with object counts gets a cache of its own."""
    class Cache:
        def fingerprint(self):
            return "0123456789abcdef"
    before = {k: v for k, v in DataConfig().__dict__.items() if k != "objects"}
    assert cache_file("c", Cache(), DataConfig()) == cache_file("c", Cache(), before)
    assert cache_file("c", Cache(), DataConfig(objects=[1, 9])) != cache_file("c", Cache(), DataConfig())


def objects_in_caption(text: str) -> int:
    return len(re.findall(r" in the (?:top|middle|bottom|center)", " " + text))


@pytest.mark.parametrize("world", WORLDS)
def test_scenes_hold_exactly_the_requested_counts(world):
    w = make_world(world, 64, (9,))
    assert (w.config.min_objects, w.config.max_objects, w.config.counts) == (1, 9, (9,))
    rng = random.Random(0)
    for k in COUNTS:
        w = make_world(world, 64, (k,))
        assert {len(w.sample_scene(rng, "test").objects) for _ in range(20)} == {k}
    mixture = make_world(world, 64, COUNTS)
    drawn = Counter(len(mixture.sample_scene(rng, "train").objects) for _ in range(900))
    assert set(drawn) == set(COUNTS) and min(drawn.values()) > 60  # uniform over the counts
    # the crop task asks for two objects at least: a mixture gives it those, a single count its own
    assert min(len(mixture.sample_scene(rng, "train", min_objects=2).objects) for _ in range(200)) == 2
    assert len(make_world(world, 64, (1,)).sample_scene(rng, "train", min_objects=2).objects) == 1


@pytest.mark.parametrize("k", (1, 4, 9))
def test_training_captions_describe_k_objects(k):
    config = DataConfig(task_weights={"caption": 1.0}, objects=[k])
    pairs = sample_pairs(config, "train", 40, seed=0)
    assert {objects_in_caption(p.right.text) for p in pairs} == {k}
    mixed = sample_pairs(DataConfig(task_weights={"caption": 1.0}, objects=list(COUNTS)), "train", 300, seed=0)
    assert {objects_in_caption(p.right.text) for p in mixed} == set(COUNTS)


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize("k", COUNTS)
def test_every_task_is_valid_at_every_count(world, k):
    """Items generate (no endless resampling), scenes hold k objects, candidates are distinct with the correct one
    first, and each task's own checks hold (tests/data/test_tasks.py). Impossible kinds are left out: position at
    k = 1, add and move at k = 9, remove at k = 1."""
    w = make_world(world, 64, (k,))
    for task in TASKS:
        task_kinds = kinds(w, task)
        n = max(len(task_kinds), 2)
        items = eval_items(world, task, "test", n, seed=0, objects=(k,))
        if task == "position" and k == 1:
            assert task_kinds == () and items == []
            continue
        assert [i.kind for i in items] == [task_kinds[j % len(task_kinds)] for j in range(n)]
        for item in items:
            keys = [c.key() for c in item.candidates]
            assert len(keys) >= 2 and len(set(keys)) == len(keys)
            scene = item.meta.get("scene")
            if scene is not None:
                assert len(scene.objects) == k
            CHECKS[task](w, item)
    ops = kinds(w, "edit")
    assert ("add" in ops) == ("move" in ops) == (k < 9) and ("remove" in ops) == (k > 1)
    assert vqa.answers(w, "count", "test")[-1] == "nine"  # the same answer list at every count


@pytest.mark.parametrize("k", (1, 2, 9))
def test_training_groups_generate_at_the_edges(k):
    tasks = {t: w for t, w in ALL_TASKS.items() if not (t == "position" and k == 1)}
    config = DataConfig(task_weights=tasks, objects=[k])
    pairs = sample_pairs(config, "train", 150, seed=0)
    by_group = {}
    for p in pairs:
        by_group.setdefault(p.group, []).append(p)
    for group in by_group.values():
        keys = [p.right.key() for p in group]
        assert len(set(keys)) == len(keys)
    assert {p.task for p in pairs} == set(tasks)
    if k == 9:  # no free cell: nothing moves (an "add" is only ever the inverse of a removal)
        assert "move" not in {p.kind for p in pairs if p.task == "edit"}


def test_position_scenes_hold_the_twins_and_k_minus_2_others():
    for k in (2, 5, 9):
        for item in eval_items("shapes", "position", "test", 6, seed=1, objects=(k,)):
            scene, target = item.meta["scene"], item.meta["object"]
            assert len(scene.objects) == k
            assert sum(o.name == target.name for o in scene.objects) == 2  # only the twins fit "the star"


def test_bad_counts_name_the_setting():
    with pytest.raises(ValueError, match="data.objects"):
        sample_pairs(DataConfig(objects=[0, 3]), "train", 4, seed=0)
    with pytest.raises(ValueError, match="data.objects"):
        sample_pairs(DataConfig(objects=[10]), "train", 4, seed=0)
    with pytest.raises(ValueError, match="position"):
        sample_pairs(DataConfig(objects=[1]), "train", 4, seed=0)
    assert sample_pairs(DataConfig(objects=[1], task_weights={"caption": 1.0, "edit": 1.0}), "train", 4, seed=0)
    with pytest.raises(ValueError, match="between 1 and 9"):
        eval_items("emoji", "caption", "test", 2, seed=0, objects=(12,))


@pytest.mark.parametrize("world", WORLDS)
def test_same_seed_same_pixels_at_every_count(world):
    def keys(items):
        return [(i.query.key(), [c.key() for c in i.candidates]) for i in items]
    for task in ("edit", "position"):
        a = eval_items(world, task, "test", 4, seed=3, objects=(7,))
        assert keys(a) == keys(eval_items(world, task, "test", 4, seed=3, objects=(7,)))
        assert keys(a) != keys(eval_items(world, task, "test", 4, seed=4, objects=(7,)))
        assert keys(a) != keys(eval_items(world, task, "test", 4, seed=3, objects=(6,)))
    config = DataConfig(worlds=[world], world_weights=[1.0], objects=list(COUNTS))
    first = sample_pairs(config, "train", 60, seed=0)
    assert [(p.left.key(), p.right.key()) for p in first] == \
           [(p.left.key(), p.right.key()) for p in sample_pairs(config, "train", 60, seed=0)]
    # pixels depend on nothing but the scene: a fresh world (empty sprite caches) draws the same image
    cls, cfg = (ShapesWorld, ShapesConfig) if world == "shapes" else (EmojiWorld, EmojiConfig)
    fresh = cls(with_counts(cfg(), (9,)))
    for item in eval_items(world, "caption", "test", 3, seed=0, objects=(9,)):
        assert np.array_equal(fresh.render(item.meta["scene"]), item.query.image)


def test_nine_objects_fill_every_cell_without_overlap():
    """At 64 px, nine shapes never touch: every cell's sprite stays inside its own cell (plus jitter)."""
    w = make_world("shapes", 64, (9,))
    rng = random.Random(0)
    for _ in range(5):
        scene = w.sample_scene(rng, "test")
        assert sorted(o.cell for o in scene.objects) == list(range(len(CELL_NAMES)))
        for o in scene.objects:
            _, alpha = w.sprite(o)
            ink = alpha[:, :, 0] > 0
            for axis in (0, 1):
                extent = ink.any(axis=axis).nonzero()[0]
                # the sprite is centred: half its inked extent plus the jitter stays within half a cell (+1 px)
                assert (extent.max() - extent.min() + 1) / 2 + w.jitter <= 64 / 6 + 1
