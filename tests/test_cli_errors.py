"""A bad setting on any training command line is one clear line on stderr and a non-zero exit, never a traceback."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script,args,message", [
    ("train_tokenizer.py", ["--preset", "tiny-grid", "--train.steps=many"], "--train.steps: cannot parse"),
    ("pretrain_vision.py", ["--baseline", "tiny-sf", "--train.steps=many"], "--train.steps: cannot parse"),
    ("train_fuselip.py", ["--train.steps=many"], "--train.steps: cannot parse"),
    ("train_fuselip.py", ["--tokenizer_checkpoint=checkpoints/nowhere", "--no-val"],
     "tokenizer_checkpoint='checkpoints/nowhere': no checkpoint folder"),
])
def test_bad_settings_are_one_line_errors(script, args, message, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, str(ROOT / "train" / script), *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "Traceback" not in run.stderr and message in run.stderr, run.stderr[-2000:]
    assert run.stderr.strip().splitlines()[-1].startswith(f"{script}: error: ")
    assert not any(tmp_path.iterdir())  # nothing written
