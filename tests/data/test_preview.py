"""`python -m fuselip.data preview` / `preview-all` and the contact sheets of fuselip.viz."""
from PIL import Image

from fuselip.data.__main__ import main
from fuselip.data.tasks import TASKS, WORLDS


def test_preview_writes_a_contact_sheet(tmp_path):
    out = tmp_path / "sheet.png"
    main(["preview", "--world", "shapes", "--task", "tgit", "--n", "4", "--out", str(out)])
    image = Image.open(out)
    assert image.width > 500 and image.height > 2 * 128
    main(["preview", "--world", "emoji", "--task", "vqa", "--n", "3", "--eval", "--out", str(out)])
    assert Image.open(out).height > 3 * 96


def test_preview_all_writes_one_png_per_world_and_task(tmp_path):
    main(["preview-all", "--n", "2", "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"{w}_{t}.png" for w in WORLDS for t in TASKS)


def test_preview_of_user_images(tmp_path):
    import numpy as np
    folder = tmp_path / "mine"
    folder.mkdir()
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(folder / "gray_box.png")
    out = tmp_path / "user.png"
    main(["preview", "--folder", str(folder), "--task", "tgit", "--n", "4", "--out", str(out)])
    assert out.exists()
