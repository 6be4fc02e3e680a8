"""End to end: train a baseline for a few steps with the real command line, ship it, benchmark it.

The scripts run in this process (runpy, with their real argv): the same code path as a shell, without
paying the torch/open_clip import once more per command."""
import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

from fuselip import evaluate as ev
from fuselip.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["caption", "position", "tgit"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run(script: str, *args: str, capsys=None) -> str:
    argv = sys.argv
    sys.argv = [str(ROOT / script), *args]
    try:
        if capsys is not None:
            capsys.readouterr()
        runpy.run_path(str(ROOT / script), run_name="__main__")
    finally:
        sys.argv = argv
    return capsys.readouterr().out if capsys is not None else ""


def tiny_run(out_dir: Path) -> list[str]:
    """Overrides for a seconds-long baseline run on 16 ShapesWorld pairs (steps are the caller's)."""
    return ["--train.batch_size=8", "--train.warmup_steps=1", "--data.train_pairs=16", "--data.val_items=1",
            "--train.checkpoint_every=0", "--train.threads=1", '--data.worlds=["shapes"]', "--data.world_weights=[1.0]",
            f"--train.out_dir={out_dir}", "--cache-dir", ""]


@pytest.mark.slow
def test_train_baseline_then_evaluate_and_compare(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written to a relative path lands here
    ship = tmp_path / "siglip-mlf-tiny"
    run("train/train_baseline.py", "--preset", "tiny-mlf", "--train.steps=3", "--train.batch_size=16",
        "--train.warmup_steps=1", "--data.train_pairs=48", "--data.val_items=1", "--train.checkpoint_every=0",
        "--train.threads=1",
        '--data.worlds=["shapes"]', "--data.world_weights=[1.0]",
        f"--train.out_dir={tmp_path / 'run'}", "--cache-dir", "", "--ship", str(ship))
    metrics = json.loads((ship / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["weights"].startswith("float16")  # figures of the half-size copy
    assert set(metrics["validation"]) == set(metrics["validation_before_export"]) and metrics["export_shift"] >= 0
    model = load_model(ship)
    assert model.checkpoint_kind == "siglip-mlf" and model.compacted

    out = tmp_path / "results.json"
    table = run("train/evaluate.py", "--checkpoint", str(ship), "--n-items", "2", "--tasks", *TASKS,
                "--out", str(out), "--update-metrics", "--slice-items", "1", capsys=capsys)
    results = json.loads(out.read_text())
    assert set(results["worlds"]) == {"shapes", "emoji"}
    assert set(results["worlds"]["shapes"]) == {*TASKS, "retrieval", ev.TWIN}
    assert set(results["worlds"]["emoji"]["tgit"]["kinds"]) <= {"crop", "rotate", "jitter", "flip", "colour"}
    assert results["model"]["kind"] == "siglip-mlf" and results["model"]["parameters"] > 0
    for task, value in results["mean"].items():
        assert 0.0 <= value <= 100.0
        assert f"| {task} |" in table
    # the slice stored in metrics.json is what measuring it again gives
    stored = json.loads((ship / "metrics.json").read_text())["benchmark_slice"]
    assert stored["settings"]["n_items"] == 1
    assert ev.measure_slice(model, **stored["settings"]) == stored

    # compare: the checkpoint evaluated now (tgit only) next to the results file written above (3 tasks)
    side_by_side = run("train/evaluate.py", "--compare", str(ship), str(out), "--names", "now", "saved",
                       "--n-items", "2", "--tasks", "tgit", "--no-kinds", capsys=capsys)
    rows = {r[0].strip(): (r[1].strip(), r[2].strip())
            for r in (line.split("|")[1:-1] for line in side_by_side.strip().splitlines()[2:])}
    assert set(rows) == {*TASKS, "retrieval", ev.TWIN}
    assert rows["tgit"][0] == rows["tgit"][1] == f"{results['mean']['tgit']:.1f}"  # same settings, same number
    assert rows["caption"][0] == "–" and rows["caption"][1] != "–"  # not measured now: an empty cell


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:text ids")  # 16 training pairs leave most validation words unseen
def test_conv_stem_from_the_command_line_ships_and_reloads(tmp_path, monkeypatch):
    """`--encoder.vision_stem=conv` reaches the model, its config.json and the reloaded checkpoint."""
    monkeypatch.chdir(tmp_path)
    ship = tmp_path / "siglip-sf-tiny-conv"
    run("train/train_baseline.py", "--preset", "tiny-sf", "--encoder.vision_stem=conv", "--train.steps=2",
        *tiny_run(tmp_path / "run"), "--ship", str(ship))
    assert json.loads((ship / "config.json").read_text())["encoder"]["vision_stem"] == "conv"
    model = load_model(ship)
    assert isinstance(model.clip.visual.conv1, torch.nn.Sequential)  # the stem, not open_clip's patch conv
    stems = [k for k in model.state_dict() if k.startswith("clip.visual.conv1.")]
    assert "clip.visual.conv1.0.weight" in stems and "clip.visual.conv1.weight" not in stems
