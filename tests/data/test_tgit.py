"""TGIT: the paper's phrasing, parsing, pixel semantics, and the evaluation candidate sets."""
import random
import re

import numpy as np
import pytest

from fuselip.data import tgit

# The paper's phrasing (shared/PAPER.md), written out independently of the module's own patterns.
PAPER = {
    "crop": re.compile(r"^crop to (upper|center|lower) (left|center|right)$"),
    "rotate": re.compile(r"^rotate (10|20|30|40|50|60|70|80|90) degrees (clockwise|counter-clockwise)$"),
    "flip": re.compile(r"^(horizontal|vertical) flip$"),
    "jitter": re.compile(r"^(increase|decrease) (brightness|contrast|saturation) by factor (0\.[3-9]|1\.[1-9]|2\.0)"
                         r"( and (increase|decrease) (brightness|contrast|saturation) by factor "
                         r"(0\.[3-9]|1\.[1-9]|2\.0))*$"),
    "colour": re.compile(r"^(grayscale|colorize)$"),
}


def noise(seed=0, size=32):
    image = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    image.setflags(write=False)
    return image


def test_sampled_instructions_use_the_paper_phrasing_and_parse_back():
    rng = random.Random(0)
    seen = set()
    for _ in range(500):
        t = tgit.sample(rng)
        assert PAPER[t.kind].match(t.text), t.text
        assert tgit.parse(t.text) == t
        seen.add(t.kind)
        if t.kind == "jitter":
            for part in t.text.split(" and "):
                verb, factor = part.split()[0], float(part.split()[-1])
                assert (verb == "increase") == (factor > 1)
    assert seen == set(tgit.KINDS)


def test_the_papers_example_parses():
    t = tgit.parse("increase brightness by factor 1.4 and decrease contrast by factor 0.6")
    assert t == tgit.Transform("jitter", (("brightness", 1.4), ("contrast", 0.6)))


@pytest.mark.parametrize("bad", ["rotate 45 degrees clockwise", "crop to top left", "increase contrast by factor 0.6",
                                 "increase brightness by factor 1.4and", "flip", ""])
def test_parse_rejects_what_is_not_an_instruction(bad):
    with pytest.raises(ValueError):
        tgit.parse(bad)


def test_pixel_semantics():
    image = noise()
    S = image.shape[0]
    assert np.array_equal(tgit.apply(image, tgit.parse("horizontal flip")), image[:, ::-1])
    assert np.array_equal(tgit.apply(image, tgit.parse("vertical flip")), image[::-1])
    gray = tgit.apply(image, tgit.parse("grayscale"))
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    half = tgit.apply(image, tgit.parse("decrease brightness by factor 0.5"))
    assert np.abs(half.astype(int) - np.round(image * 0.5).astype(int)).max() <= 1
    flat = tgit.apply(image, tgit.parse("decrease contrast by factor 0.3"))
    assert flat.std() < image.std()
    for t in tgit.all_of_kind("crop") + tgit.all_of_kind("rotate"):
        out = tgit.apply(image, t)
        assert out.shape == image.shape and out.dtype == np.uint8 and not out.flags.writeable
    # the upper-left crop only sees the upper-left quarter (with its bicubic border)
    marked = np.zeros((S, S, 3), np.uint8)
    marked[S // 2 + 2:, :] = 255
    assert tgit.apply(marked, tgit.parse("crop to upper left")).max() == 0
    with pytest.raises(ValueError, match="colorize"):
        tgit.apply(image, tgit.parse("colorize"))


def test_rotation_direction():
    # a dot right of the centre: clockwise (on screen, y down) moves it down
    image = np.full((33, 33, 3), 255, np.uint8)
    image[15:18, 26:29] = 0
    cw = tgit.apply(image, tgit.parse("rotate 90 degrees clockwise"))
    ys, xs = np.nonzero(cw[..., 0] < 128)
    assert ys.mean() > 22 and abs(xs.mean() - 16) < 2


def test_make_pair_for_colorize_starts_from_gray():
    image = noise(1)
    left, right = tgit.make_pair(image, tgit.parse("colorize"))
    assert right is image and (left[..., 0] == left[..., 2]).all()


def test_eval_candidate_counts_match_the_paper():
    image = noise(2)
    rng = random.Random(0)
    for kind, count in tgit.EVAL_COUNTS.items():
        for _ in range(3):
            query, text, candidates = tgit.eval_candidates(image, kind, rng)
            assert len(candidates) == count
            assert PAPER[kind].match(text)
            keys = {c.tobytes() for c in candidates}
            assert len(keys) == count  # no duplicates
            if kind == "colour" and text == "colorize":
                assert np.array_equal(candidates[0], image) and not np.array_equal(query, image)
            elif kind != "colour" or text == "grayscale":
                assert query is image
                t = tgit.parse(text)
                assert np.array_equal(candidates[0], tgit.apply(image, t))


def test_duplicate_candidates_are_removed_keeping_the_correct_first():
    symmetric = np.full((16, 16, 3), 200, np.uint8)  # every flip, every crop is the same image
    rng = random.Random(0)
    for kind in ("flip", "crop"):
        _, text, candidates = tgit.eval_candidates(symmetric, kind, rng)
        assert len(candidates) == 1 and np.array_equal(candidates[0], tgit.apply(symmetric, tgit.parse(text)))


def test_fast_rotation_matches_pil_inside_the_inscribed_disc():
    # (at the rotated image's border PIL clamps to the edge pixel, ours blends with the fill colour)
    from PIL import Image
    image = noise(4, 40)
    ys, xs = np.mgrid[0:40, 0:40]
    disc = (xs + 0.5 - 20) ** 2 + (ys + 0.5 - 20) ** 2 < 18 ** 2
    for degrees in (10, -30, 45, 90, -80):
        ours = tgit.rotate(image, degrees).astype(int)
        pil = np.asarray(Image.fromarray(image).rotate(degrees, Image.Resampling.BILINEAR,
                                                       fillcolor=(255, 255, 255))).astype(int)
        assert np.abs(ours - pil)[disc].max() <= 1
