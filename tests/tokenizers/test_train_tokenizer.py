"""End to end: train/train_tokenizer.py trains a tiny grid tokenizer through the engine, resumes it and ships it."""
import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

import fuselip

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--preset", "tiny-grid", "--tokenizer.channels=[8, 8]", "--tokenizer.code_dim=4",
        "--tokenizer.codebook_size=16", "--tokenizer.decoder_res_blocks=1", "--data.tokenizer_images=16",
        "--data.tokenizer_val_images=2", "--train.batch_size=4", "--train.warmup_steps=1", "--train.val_every=0",
        "--train.checkpoint_every=1", "--train.out_dir=runs/tok", "--no-progress"]

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run(*args: str) -> None:
    argv = sys.argv
    sys.argv = [str(ROOT / "train" / "train_tokenizer.py"), *args]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        sys.argv = argv


def test_train_resume_and_ship(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run(*TINY, "--train.steps=2")
    settings, precision = capsys.readouterr().out.split("\nimage pool")[0].rsplit("\n", 1)
    assert set(json.loads(settings)) == {"tokenizer", "data", "train"}  # a tokenizer run's settings, nothing else
    assert precision.startswith("train.precision=auto: ")  # then the precision it trains in
    run_dir = tmp_path / "runs" / "tok"
    assert json.loads((run_dir / "checkpoint" / "config.json").read_text())["run"]["train"]["steps"] == 2
    run(*TINY, "--train.steps=3", "--resume", "--ship", "shipped")  # one more step, then ship
    curve = [json.loads(line) for line in (run_dir / "validation.jsonl").read_text().splitlines()]
    assert [p["step"] for p in curve] == [2, 3] and "psnr" in curve[-1]
    metrics = json.loads((tmp_path / "shipped" / "metrics.json").read_text())
    assert metrics["train_steps"] == 3 and "train_tokenizer.py" in metrics["command"]
    assert set(metrics["test"]["psnr"]) == {"shapes", "emoji"} and metrics["weights"].startswith("float16")
    shipped, trained = fuselip.load_model(tmp_path / "shipped"), fuselip.load_model(run_dir / "checkpoint")
    x = torch.rand(2, 3, 64, 64)
    agree = (shipped.encode(x) == trained.encode(x)).float().mean()  # half-size weights: codes nearly all equal
    assert agree >= 0.95, agree
