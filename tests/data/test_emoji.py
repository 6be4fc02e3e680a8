"""EmojiWorld: the frozen subset, its split, lazy loading, sprites, determinism."""
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fuselip.data import emoji as emoji_module
from fuselip.data.emoji import CATEGORIES, EmojiWorld, png_path
from fuselip.data.emoji_subset import EMOJI


@pytest.fixture(scope="module")
def world():
    return EmojiWorld()


def test_subset_is_fixed_split_and_covers_every_category():
    assert len(EMOJI) == 256
    names = [name for _, name, _, _ in EMOJI]
    assert len(set(names)) == len(names)
    per = Counter((cat, split) for _, _, cat, split in EMOJI)
    for cat in CATEGORIES:
        assert per[(cat, "train")] == 24 and per[(cat, "test")] == 8


def test_every_emoji_has_its_own_png():
    paths = [png_path(u) for u, _, _, _ in EMOJI]
    assert all(p.exists() for p in paths)
    assert [Path(p).stem for p in paths] == [u for u, _, _, _ in EMOJI]  # exact file, no fallback
    assert len({Path(p).read_bytes() for p in paths}) == len(paths)


def test_test_split_holds_out_emoji(world):
    train, val, test = (set(world.names(s)) for s in ("train", "val", "test"))
    assert train == val and not train & test and len(test) == 64
    rng = random.Random(0)
    for _ in range(50):
        assert all(o.name in test for o in world.sample_scene(rng, "test").objects)
        assert all(o.name in train for o in world.sample_scene(rng, "train").objects)


def test_pngs_load_lazily_once(world):
    fresh = EmojiWorld()
    assert fresh._png == {}  # constructing a world reads nothing
    scene = fresh.sample_scene(random.Random(0), "train")
    fresh.render(scene)
    assert set(fresh._png) == {o.name for o in scene.objects}
    cached = {k: id(v) for k, v in fresh._png.items()}
    fresh.render(scene)
    assert {k: id(v) for k, v in fresh._png.items()} == cached


def test_scenes_render_deterministically_with_2_to_4_emoji(world):
    a = [world.sample_scene(random.Random(5), "train") for _ in range(3)]
    fresh = EmojiWorld()
    for s in a:
        assert 2 <= len(s.objects) <= 4
        image = world.render(s)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert image.tobytes() == fresh.render(s).tobytes()
        assert (image != 255).any()


def test_sprites_are_premultiplied_and_fit_their_crop_window(world):
    rng = random.Random(2)
    for _ in range(20):
        obj = world.sample_object(rng, "train", 4)
        rgb, alpha = world.sprite(obj)
        assert (alpha >= 0).all() and (alpha <= 1).all()
        assert (rgb <= 255 * alpha + 1).all()  # no colour bleeding from transparent pixels
        assert alpha.shape[0] <= world.crop_side


def test_captions_name_the_emoji(world):
    scene = world.sample_scene(random.Random(3), "train")
    caption = world.caption(scene)
    for o in scene.objects:
        assert o.name in caption
    assert caption.startswith(("a ", "an "))


def test_attribution_is_in_the_docstring():
    doc = emoji_module.__doc__
    assert "Twemoji" in doc and "CC-BY 4.0" in doc and "Twitter, Inc. and other contributors" in doc
