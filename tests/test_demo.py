"""fuselip.demo without a server: input checks and their messages, the model registry's stand-ins."""
import numpy as np
import pytest
from PIL import Image

from fuselip.demo import DemoConfig, DemoError, Registry, read_image, read_text


def test_read_image_notes(tmp_path):
    rgba = Image.fromarray(np.zeros((10, 20, 4), np.uint8), "RGBA")
    array, notes = read_image(rgba, 64)
    assert array.shape == (64, 64, 3) and (array == 255).all(), "transparent -> white"
    assert any("alpha channel" in n for n in notes) and any("small (20×10)" in n for n in notes)
    assert any("not square" in n for n in notes)
    _, notes = read_image(Image.new("L", (64, 64)), 64)
    assert notes == ["The image is grayscale (L): it was converted to RGB (three equal channels)."]
    _, notes = read_image(np.zeros((1, 1, 3), np.uint8), 64)
    assert any("1×1 pixel" in n for n in notes)
    _, notes = read_image(Image.new("RGB", (6000, 4000)), 64)
    assert any("large (6000×4000)" in n for n in notes)
    assert read_image(np.zeros((64, 64, 3), np.uint8), 64)[1] == [] and read_image(None, 64) == (None, [])


def test_read_image_errors_name_the_file(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(DemoError, match="notes.txt: not an image"):
        read_image(str(bad), 64)
    with pytest.raises(DemoError, match="my upload.txt: not an image"):
        read_image({"path": str(bad), "orig_name": "my upload.txt"}, 64)


def test_read_text_notes():
    assert read_text("  rotate\n90  degrees ", "text", 100) == ("rotate 90 degrees", [])
    text, notes = read_text("a" * 5000, "text", 100)
    assert len(text) == 100 and "5,000 characters" in notes[0]
    assert "right-to-left" in read_text("סובב ב-90 מעלות", "text", 100)[1][0]
    assert "outside plain English" in read_text("a 🐶", "text", 100)[1][0]
    assert read_text(None, "text", 100) == ("", [])


def test_registry_stand_ins_and_missing(tmp_path, monkeypatch):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with_stand_ins = Registry(DemoConfig(checkpoints=str(tmp_path)))
    kinds = sorted(e.kind for e in with_stand_ins.entries.values())
    assert kinds == ["fuselip", "siglip-mlf", "siglip-sf", "tokenizer-grid", "tokenizer-titok"]
    assert all(not e.trained for e in with_stand_ins.entries.values())
    assert "untrained" in with_stand_ins.status() and "Missing checkpoints" in with_stand_ins.status()
    without = Registry(DemoConfig(checkpoints=str(tmp_path), untrained_fallback=False))
    assert without.entries == {} and without.pick("fuselip") is None
    with pytest.raises(DemoError, match="No model named"):
        without.get("fuselip-tiny")


def test_untrained_stand_ins_are_reproducible(tmp_path):
    from fuselip.retrieval import model_fingerprint
    first = Registry(DemoConfig(checkpoints=str(tmp_path)))
    second = Registry(DemoConfig(checkpoints=str(tmp_path)))
    key = first.pick("tokenizer-grid")
    assert model_fingerprint(first.get(key)) == model_fingerprint(second.get(key))
