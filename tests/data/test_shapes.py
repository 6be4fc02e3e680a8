"""ShapesWorld: determinism, layout, crops, captions, referring expressions, orientations."""
import random
import re

import numpy as np
import pytest

from fuselip.data.shapes import COLOURS, SHAPES, SYMMETRY, ShapesWorld
from fuselip.data.world import CELL_NAMES, Obj, Scene


@pytest.fixture(scope="module")
def world():
    return ShapesWorld()


def scenes(world, n, seed=0, split="train"):
    rng = random.Random(seed)
    return [world.sample_scene(rng, split) for _ in range(n)]


def test_world_has_the_promised_vocabulary(world):
    assert {"circle", "square", "triangle", "star", "cross", "diamond"} <= set(SHAPES)
    assert len(COLOURS) >= 8 and "white" not in dict(COLOURS)  # white is the background
    assert world.sizes == ("small", "large") and len(CELL_NAMES) == 9


def test_same_seed_same_pixels_and_captions(world):
    a, b = scenes(world, 30, seed=3), scenes(world, 30, seed=3)
    assert a == b
    fresh = ShapesWorld()  # empty sprite cache: pixels must not depend on cache state
    for s in a:
        assert world.render(s).tobytes() == fresh.render(s).tobytes()
        assert world.caption(s) == fresh.caption(s)
    assert scenes(world, 30, seed=4) != a


def test_render_is_readonly_uint8_and_shows_each_colour(world):
    for name, rgb in COLOURS:
        obj = Obj(4, "circle", name, "large")
        image = world.render(Scene((obj,)))
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and not image.flags.writeable
        assert tuple(image[32, 32]) == rgb  # the centre pixel is fully covered
        assert tuple(image[0, 0]) == (255, 255, 255)


def test_scene_sizes_and_objects_within_bounds(world):
    for s in scenes(world, 200):
        assert 1 <= len(s.objects) <= 3
        assert len({o.cell for o in s.objects}) == len(s.objects)
        for o in s.objects:
            assert abs(o.dx) <= world.jitter and abs(o.dy) <= world.jitter
            assert 0 <= o.angle < SYMMETRY[o.name] and (o.angle % world.config.angle_step == 0 or o.name == "star")


def test_orientations_survive_tgit_rotation_steps(world):
    # TGIT rotates by multiples of 10 degrees: orientations must be a grid that such rotations map onto itself
    assert 10 % world.config.angle_step == 0 and world.config.max_tilt >= 180


def test_layout_is_symmetric_and_crops_lie_inside_and_are_centred(world):
    S = world.image_size
    c = world.axis_centres
    assert c[0] == S - c[2] and c[1] == S // 2
    for cell in range(9):
        for dx in (-world.jitter, 0, world.jitter):
            for dy in (-world.jitter, world.jitter):
                obj = Obj(cell, "star", "red", "large", 0, dx, dy)
                x0, y0, x1, y1 = world.crop_box(obj)
                assert 0 <= x0 < x1 <= S and 0 <= y0 < y1 <= S
                assert ((x0 + x1) / 2, (y0 + y1) / 2) == world.centre(obj)
                assert x1 - x0 >= world.size_px["large"]  # the whole large object fits its window


def test_crop_of_mirrored_objects_is_mirrored(world):
    # no pixel of a crop says which side of the canvas it came from
    left = Obj(3, "circle", "blue", "large", 0, 1, 0)
    right = Obj(5, "circle", "blue", "large", 0, -1, 0)
    a = world.crop(world.render(Scene((left,))), left)
    b = world.crop(world.render(Scene((right,))), right)
    assert np.array_equal(a, b[:, ::-1])


def test_caption_lists_every_object_in_reading_order(world):
    pattern = re.compile(r"^an? (small|large) (\w+) (\w+) in the ([a-z ]+)$")
    for s in scenes(world, 100):
        parts = re.split(r", | and (?=an? )", world.caption(s))
        assert len(parts) == len(s.objects)
        for part, o in zip(parts, s.objects):
            m = pattern.match(part)
            assert m and m.groups() == (o.size, o.colour, o.name, CELL_NAMES[o.cell])


def test_refer_picks_out_exactly_one_object(world):
    rng = random.Random(1)
    for _ in range(300):
        objs = [world.sample_object(rng, "train", c, name="star") for c in rng.sample(range(9), 3)]
        s = Scene(tuple(objs))
        for o in s.objects:
            for exclude in ((), ("colour",), ("size",), ("cell",)):
                ref = world.refer(s, o, exclude)
                if ref is None:
                    continue
                words = ref.split(" in the ")[0].split()
                for banned in exclude:
                    if banned != "cell":
                        assert getattr(o, banned) not in words
                    else:
                        assert " in the " not in ref
                matches = [p for p in s.objects if world.phrase(p, ("size", "colour", "name")).endswith(words[-1])
                           and all(w in world.phrase(p).split() for w in words)
                           and (" in the " not in ref or CELL_NAMES[p.cell] == ref.split(" in the ")[1])]
                assert matches == [o], (ref, s)


def test_image_size_is_configurable_and_validated():
    big = ShapesWorld(image_size=96)
    s = big.sample_scene(random.Random(0), "train")
    assert big.render(s).shape == (96, 96, 3)
    with pytest.raises(ValueError, match="even"):
        ShapesWorld(image_size=63)
