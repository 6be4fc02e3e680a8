"""fuselip.demo without a server: input checks and their messages, the model registry's stand-ins."""
import numpy as np
import pytest
from PIL import Image

from fuselip.demo import (DemoConfig, DemoError, Registry, folder_gallery, read_image, read_text,
                          upload_gallery)


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
    status = with_stand_ins.status()
    assert "untrained" in status and "Missing checkpoints" in status and "`broken` (no readable config.json)" in status
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


def test_attention_and_tokens_views_with_a_titok_fuselip(tmp_path):
    """A tiny TiTok FuseLIP checkpoint in a checkpoint folder: the attention view spreads a text token's
    weights over the pixels through the influence maps and shows per-token bars; the tokens view too."""
    import torch
    from fuselip.checkpoint import save_model
    from fuselip.config import FuseLIPConfig, TokenizerConfig
    from fuselip.demo import Demo
    from fuselip.model import FuseLIP
    from fuselip.tokenizers import build_tokenizer
    torch.manual_seed(0)
    tok = build_tokenizer(TokenizerConfig(kind="titok", image_size=64, codebook_size=32, code_dim=8, patch_size=16,
                                          num_latent_tokens=6, width=16, layers=1, heads=2))
    save_model(FuseLIP(FuseLIPConfig(width=32, layers=2, heads=2, context_length=40), tok), tmp_path / "fuselip-x")
    save_model(tok, tmp_path / "tokenizer-x")
    demo = Demo(DemoConfig(checkpoints=str(tmp_path), display_size=96))
    assert demo.fuselip_names()[0] == "fuselip-x" and demo.tokenizer_names()[0] == "tokenizer-x"
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    view = demo.attention("fuselip-x", image, "the red star", "2", "1", "2: red")
    assert view.heatmap.shape == (96, 96, 3) and view.token == "2: red" and len(view.per_token) == 6
    assert view.layer_choices == ["mean", "1", "2"]
    # an untrained export kept no ids but pad/sot/eot/[MASK]: every word and image code is unseen
    assert "3 token(s) the model never saw" in view.notes[0] and "6 of the image's 6 tokens" in view.notes[1]
    with pytest.raises(DemoError, match="out of range"):
        demo.attention("fuselip-x", image, "the red star", "3")
    view = demo.tokens("tokenizer-x", image)
    assert len(view.codes) == 6 and len(view.influence) == 6 and view.highlight.shape[2] == 3


def test_released_model_in_the_tokens_and_attention_tabs(tmp_path, monkeypatch):
    """FUSELIP_MODEL names a release folder: the released FuseLIP and its TiTok come first in the two tabs, images are
    squashed to 256 px, "!" gets a note, the token maps say where tokens read from, and there is no decoder."""
    from pathlib import Path
    from fuselip.demo import Demo
    monkeypatch.setenv("FUSELIP_MODEL", "chs20/FuseLIP-B-CC3M-MM, some/folder")
    monkeypatch.setenv("FUSELIP_DOWNLOAD", "1")
    config = DemoConfig.from_env()
    assert config.released == ("chs20/FuseLIP-B-CC3M-MM", "some/folder") and config.download
    assert DemoConfig().released == () and not DemoConfig().download, "nothing released, nothing downloads by default"
    fixture = Path(__file__).parent / "fixtures" / "released" / "fuselip-s"
    demo = Demo(DemoConfig(checkpoints=str(tmp_path), released=(str(fixture),), display_size=96))
    model, tokenizer = demo.fuselip_names()[0], demo.tokenizer_names()[0]
    assert model == "fuselip-s (released)" and tokenizer == "fuselip-s · its TiTok (released)"
    assert [label for label, _ in demo.retrieval_models()][0] == "FuseLIP" and "released" not in demo.retrieval_models()[0][1]
    image = Image.fromarray(np.full((30, 50, 3), 90, np.uint8))
    view = demo.attention(model, image, "stop!% make it gray")
    assert view.heatmap.shape == (96, 96, 3) and len(view.per_token) == 128
    assert any("squashed" in n for n in view.notes) and any('"!" as padding' in n for n in view.notes)
    tokens = demo.tokens(tokenizer, image)
    assert len(tokens.codes) == 128 and len(tokens.influence) == 128 and "*reads* from" in tokens.summary
    assert tokens.reconstruction.shape == (demo.config.token_display_size,) * 2 + (3,)
    assert "released" in demo.registry.status()


def test_each_tab_opens_on_a_worked_example_of_its_task(tmp_path):
    from fuselip.demo import Benchmark
    config = DemoConfig(checkpoints=str(tmp_path), gallery_items=2)
    bench = Benchmark(config)
    for tab, task in config.first_view.items():
        example = bench.worked_example(tab)
        assert example.task == task and any(e.text == example.text and e.world == example.world and (e.image == example.image).all() for e in bench.tab_examples(tab))
        assert example.image.shape == (64, 64, 3) and example.text
    with pytest.raises(DemoError, match="no worked example for tab 'tokens'"):
        bench.worked_example("tokens")


def test_attention_view_opens_on_the_first_content_word(tmp_path):
    from fuselip.demo import Demo
    demo = Demo(DemoConfig(checkpoints=str(tmp_path), display_size=64))
    image = np.full((64, 64, 3), 255, np.uint8)
    name = demo.fuselip_names()[0]
    assert demo.attention(name, image, "the diamond on the left").token == "2: diamond"
    assert demo.attention(name, image, "the on").token == "1: the"  # no content word: the first word


def test_server_folders_only_under_the_gallery_root(tmp_path, monkeypatch):
    root, outside = tmp_path / "root", tmp_path / "private"
    (root / "mine").mkdir(parents=True)
    outside.mkdir()
    picture = np.full((20, 30, 3), 200, np.uint8)
    for folder in (root / "mine", outside):
        Image.fromarray(picture).save(folder / "a.png")
    assert len(folder_gallery("mine", 16, 10, str(root))) == 1  # relative: inside the root
    assert len(folder_gallery(str(root / "mine"), 16, 10, str(root))) == 1
    for path in (str(outside), "../private", "/etc", str(root / "mine" / ".." / ".." / "private")):
        with pytest.raises(DemoError, match="outside the gallery root"):
            folder_gallery(path, 16, 10, str(root))
    with pytest.raises(DemoError, match="has not set FUSELIP_GALLERY_ROOT"):
        folder_gallery(str(root / "mine"), 16, 10, "")
    (root / "mine" / "link.png").symlink_to(outside / "a.png")  # a link out of the root is refused too
    with pytest.raises(DemoError, match="lead outside the gallery root"):
        folder_gallery("mine", 16, 10, str(root))
    monkeypatch.setenv("FUSELIP_GALLERY_ROOT", str(root))
    assert DemoConfig.from_env().gallery_root == str(root)
    monkeypatch.delenv("FUSELIP_GALLERY_ROOT")
    assert DemoConfig.from_env().gallery_root == ""


def test_uploaded_images_are_a_gallery(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((20, 30, 3), 60 * i, np.uint8)).save(paths[-1])
    (tmp_path / "notes.txt").write_text("not an image")
    files = [{"path": str(p), "orig_name": p.name} for p in paths] + [{"path": str(tmp_path / "notes.txt"),
                                                                        "orig_name": "notes.txt"}]
    items, notes = upload_gallery(files, 16, 10)
    assert len(items) == 3 and all(s.image.shape == (16, 16, 3) and s.text == "" for s in items)
    assert notes and "notes.txt" in notes[0]
    assert len(upload_gallery(files, 16, 2)[0]) == 2
    with pytest.raises(DemoError, match="Upload some images"):
        upload_gallery([], 16, 10)
