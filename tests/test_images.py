"""fuselip.images.preprocess: any image-like input of any mode and size -> (size, size, 3) uint8 RGB."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from fuselip.images import ImageError, preprocess, to_tensor, to_uint8

SIZE = 64


def check(out, size=SIZE):
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (size, size, 3)
    return out


def as_png_bytes(image):
    buf = io.BytesIO()
    image.save(buf, format="PNG" if image.mode != "CMYK" else "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("mode,colour", [("RGB", (200, 30, 40)), ("L", 77), ("CMYK", (0, 255, 255, 0))])
def test_plain_modes_keep_their_colour(mode, colour):
    out = check(preprocess(Image.new(mode, (80, 50), colour), SIZE))
    expected = np.asarray(Image.new(mode, (1, 1), colour).convert("RGB"))[0, 0]
    assert np.abs(out.astype(int) - expected).max() <= 1


def test_rgba_composites_transparent_pixels_onto_white():
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 255))
    image.paste((0, 0, 255, 0), (0, 0, 32, 64))  # left half fully transparent blue
    out = check(preprocess(image, SIZE))
    assert tuple(out[32, 5]) == (255, 255, 255)   # transparent -> white background
    assert tuple(out[32, 60]) == (255, 0, 0)      # opaque red stays red


def test_palette_image_uses_its_palette_and_transparency():
    image = Image.new("P", (40, 40), 1)
    image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
    out = check(preprocess(image, SIZE))
    assert tuple(out[10, 10]) == (0, 200, 0)
    image.info["transparency"] = 1
    out = check(preprocess(Image.open(io.BytesIO(as_png_bytes(image))), SIZE))
    assert tuple(out[10, 10]) == (255, 255, 255)


def test_sixteen_bit_images_are_rescaled_not_clipped():
    mid = Image.fromarray(np.full((30, 30), 32768, dtype=np.uint16))  # mode I;16
    assert mid.mode.startswith("I;16")
    out = check(preprocess(mid, SIZE))
    assert abs(int(out[0, 0, 0]) - 128) <= 1
    out = check(preprocess(np.full((30, 30, 3), 65535, dtype=np.uint16), SIZE))  # 16-bit RGB array
    assert out.min() == 255


def test_one_pixel_image_is_upscaled():
    out = check(preprocess(Image.new("RGB", (1, 1), (10, 20, 30)), SIZE))
    assert (out == np.array([10, 20, 30], dtype=np.uint8)).all()


def test_huge_photo_is_downscaled_and_centre_cropped():
    image = Image.new("RGB", (6000, 4000), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 600, 4000))  # a red band at the far left is cropped away
    out = check(preprocess(image, SIZE))
    assert tuple(out[32, 0]) == (0, 0, 255) and tuple(out[32, 63]) == (0, 0, 255)


@pytest.mark.parametrize("size", [16, 64, 256])
def test_other_sizes_and_non_square_inputs(size):
    check(preprocess(Image.new("RGB", (300, 20), (5, 5, 5)), size), size)
    check(preprocess(np.zeros((20, 300, 3), dtype=np.float32), size), size)


def test_paths_bytes_and_file_objects(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (10, 10), (1, 2, 3)).save(path)
    for source in (path, str(path), path.read_bytes(), open(path, "rb")):
        assert tuple(check(preprocess(source, SIZE))[0, 0]) == (1, 2, 3)


def test_non_image_file_gives_a_clear_error(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    with pytest.raises(ImageError, match="notes.png: not an image file"):
        preprocess(bad, SIZE)
    with pytest.raises(ImageError, match="no such file"):
        preprocess(tmp_path / "missing.jpg", SIZE)
    with pytest.raises(ImageError, match="not an image"):
        preprocess(np.zeros((5, 5, 7)), SIZE)


def test_tensor_round_trip():
    images = [preprocess(Image.new("RGB", (8, 8), (0, 128, 255)), 8) for _ in range(2)]
    x = to_tensor(images)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert np.array_equal(to_uint8(x), np.stack(images))
