"""User data: open_clip-style CSVs and image folders; bad rows are errors or counted skips."""
import numpy as np
import pytest
from PIL import Image

from fuselip.data import tgit
from fuselip.data.files import (DataFileError, caption_pairs, read_csv, read_folder, tgit_eval_items,
                                tgit_pairs)


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, colour in enumerate([(255, 0, 0), (0, 128, 0), (0, 0, 255)]):
        a = np.zeros((40, 50, 3), np.uint8)
        a[:, : 10 + 10 * i] = colour
        Image.fromarray(a).save(folder / f"thing_{i}.png")
    (folder / "broken.png").write_bytes(b"this is not a png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def write_csv(path, rows, sep="\t", header=("filepath", "title")):
    path.write_text("\n".join(sep.join(r) for r in [header, *rows]) + "\n")
    return path


def test_csv_reads_open_clip_format(tmp_path, images):
    csv = write_csv(tmp_path / "data.csv", [("imgs/thing_0.png", "a red bar"), ("imgs/thing_1.png", "a  green bar")])
    data = read_csv(csv, image_size=32)
    assert len(data) == 2 and data.captions == ["a red bar", "a green bar"]
    assert data.images[0].shape == (32, 32, 3) and data.images[0].dtype == np.uint8
    assert "data.csv line 2" in data.sources[0] and not data.skipped


def test_csv_separator_and_column_names_are_configurable(tmp_path, images):
    csv = write_csv(tmp_path / "data.csv", [(str(images / "thing_2.png"), "blue")], sep=",", header=("img", "cap"))
    data = read_csv(csv, sep=",", img_key="img", caption_key="cap")
    assert data.captions == ["blue"]


@pytest.mark.parametrize("row, reason", [
    (("imgs/missing.png", "gone"), "no such file"),
    (("imgs/broken.png", "broken"), "not an image"),
    (("imgs/thing_0.png", "  "), "empty caption"),
    (("", "no path"), "empty 'filepath'"),
])
def test_bad_rows_name_file_and_line_or_are_skipped_and_counted(tmp_path, images, row, reason):
    rows = [("imgs/thing_0.png", "fine"), row, ("imgs/thing_1.png", "also fine")]
    csv = write_csv(tmp_path / "data.csv", rows)
    with pytest.raises(DataFileError, match=rf"data\.csv line 3: .*{reason}"):
        read_csv(csv)
    data = read_csv(csv, skip_bad=True)
    assert len(data) == 2 and len(data.skipped) == 1
    assert "line 3" in data.skipped[0] and reason in data.skipped[0]
    assert "1 bad rows skipped" in data.summary()


def test_missing_column_is_always_an_error(tmp_path, images):
    csv = write_csv(tmp_path / "data.csv", [("imgs/thing_0.png", "x")], header=("path", "title"))
    for skip in (False, True):
        with pytest.raises(DataFileError, match=r"data\.csv line 1: no image path column 'filepath'.*'path'"):
            read_csv(csv, skip_bad=skip)


def test_nothing_usable_is_an_error(tmp_path, images):
    csv = write_csv(tmp_path / "data.csv", [("imgs/missing.png", "gone")])
    with pytest.raises(DataFileError, match="no usable images; skipped 1"):
        read_csv(csv, skip_bad=True)
    with pytest.raises(DataFileError, match="no such file"):
        read_csv(tmp_path / "nope.csv")


def test_folder_captions_from_names_and_bad_files(images):
    with pytest.raises(DataFileError, match="broken.png"):
        read_folder(images)
    data = read_folder(images, image_size=16, skip_bad=True)
    assert data.captions == ["thing 0", "thing 1", "thing 2"]
    assert len(data.skipped) == 1 and "broken.png" in data.skipped[0]
    assert len(data.ignored) == 1 and data.ignored[0].endswith("notes.txt")
    assert read_folder(images, captions="none", skip_bad=True).captions == ["", "", ""]


def test_pairs_and_items_from_user_images(images):
    data = read_folder(images, image_size=32, skip_bad=True)
    caps = caption_pairs(data)
    assert [p.right.text for p in caps] == data.captions and len({p.group for p in caps}) == 3
    pairs = tgit_pairs(data, per_image=5, seed=0)
    assert tgit_pairs(data, per_image=5, seed=0)[0].right.key() == pairs[0].right.key()
    groups = [p.group for p in pairs]
    assert groups == sorted(groups) and set(groups) == {0, 1, 2}
    for p in pairs:
        assert tgit.parse(p.left.text).kind == p.kind
    items = tgit_eval_items(data, 10, seed=0)
    for item in items:
        keys = [c.key() for c in item.candidates]
        assert len(keys) >= 2 and len(set(keys)) == len(keys)
