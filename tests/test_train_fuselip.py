"""End to end: train/train_fuselip.py trains, validates, resumes and ships a compact checkpoint."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from fuselip.checkpoint import load_model
from fuselip.model import build_fuselip

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "train"))
from cli import main as cli  # noqa: E402  (train/cli.py, the pair models' command line)
SCRIPT = ROOT / "train" / "train_fuselip.py"
TINY = ["--preset", "tiny", "--tokenizer_checkpoint=untrained", "--tokenizer.channels=[8, 8]", "--tokenizer.code_dim=8",
        "--tokenizer.codebook_size=32", "--encoder.width=32", "--encoder.layers=1", "--encoder.heads=2",
        "--data.train_pairs=48", "--data.val_items=2", "--train.batch_size=16", "--train.warmup_steps=1",
        "--train.checkpoint_every=1", "--train.threads=1", "--cache-dir", "cache"]


def test_train_validate_resume_and_ship(tmp_path, monkeypatch):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    first = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--name", "e2e", "--train.steps=2",
                            "--train.val_every=100"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert '"width": 32' in first.stdout  # the resolved config is printed
    run_dir = tmp_path / "runs" / "e2e"
    config = json.loads((run_dir / "checkpoint" / "config.json").read_text())
    assert config["run"]["train"]["steps"] == 2 and config["command"].startswith("python ")
    assert json.loads((run_dir / "run_config.json").read_text())["encoder"]["width"] == 32
    assert (run_dir / "validation.jsonl").exists()
    assert list((tmp_path / "cache").glob("image-tokens-*.safetensors"))

    monkeypatch.chdir(tmp_path)  # the same entry point, in-process: resume one more step and ship
    summary = cli([*TINY, "--name", "e2e", "--train.steps=3", "--resume", "--ship", "shipped"], "fuselip",
                  build_fuselip)
    assert summary["step"] == 3 and summary["steps_run"] == 1
    assert json.loads((run_dir / "summary.json").read_text())["step"] == 3
    metrics = json.loads((tmp_path / "shipped" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["weights"].startswith("float16")
    assert "mean/tgit" in metrics["validation"] and "--ship shipped" in metrics["command"]
    # the reported figures are those of the half-size copy; the end-of-training ones stay beside them
    assert metrics["validation_before_export"] == summary["val"]
    assert metrics["export_shift"] == max(abs(metrics["validation"][k] - v)
                                          for k, v in summary["val"].items() if k != "step")
    assert {v.dtype for v in load_file(tmp_path / "shipped" / "model.safetensors").values()
            if v.is_floating_point()} == {torch.float16}
    model = load_model(tmp_path / "shipped")
    assert model.compacted and model.config.width == 32
    assert next(model.parameters()).dtype == torch.float32
    out = model.encode(texts=["a red circle"])
    assert out.shape == (1, 32) and torch.allclose(out.norm(), torch.tensor(1.0))

    # train/ship.py ships the finished run again from its training checkpoint: same figures
    again = subprocess.run([sys.executable, str(ROOT / "train" / "ship.py"), "runs/e2e", "reshipped"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    reshipped = json.loads((tmp_path / "reshipped" / "metrics.json").read_text())
    assert reshipped["validation"] == metrics["validation"] and reshipped["wall_time_s"] == metrics["wall_time_s"]
    unfinished = subprocess.run([sys.executable, str(ROOT / "train" / "ship.py"), "runs/nothing", "x"],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert unfinished.returncode != 0 and "summary.json: missing" in unfinished.stderr


@pytest.mark.parametrize("bad,message", [("--train.stepz=3", "unrecognized arguments"),
                                         ("--train.steps=many", "cannot parse"),
                                         ("--encoder.width=1.5", "expected an integer")])
def test_bad_overrides_are_errors(bad, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli([*TINY, bad], "fuselip", build_fuselip)
    assert exit_info.value.code != 0 and message in capsys.readouterr().err
