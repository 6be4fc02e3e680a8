"""The shipped tokenizers load and reproduce the PSNR their metrics.json reports, on the fixed test batch."""
from pathlib import Path

import pytest

import fuselip
from fuselip.tokenizers import ImageTokenizer
from fuselip.tokenizers.evaluation import FIXED_BATCH, evaluate, fixed_test_batch

ROOT = Path(__file__).resolve().parents[2] / "checkpoints"
# every tokenizer folder in checkpoints/ (tokenizer-<kind>-<preset>); the grid tokenizer is always shipped
SHIPPED = {p.name: p.name.split("-")[1] for p in sorted(ROOT.glob("tokenizer-*")) if (p / "config.json").exists()}


def test_the_grid_tokenizer_is_shipped():
    assert "tokenizer-grid-tiny" in SHIPPED


@pytest.fixture(scope="module")
def batch():
    return fixed_test_batch(64)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_reproduces_its_metrics(name, batch):
    model = fuselip.load_model(ROOT / name)
    assert isinstance(model, ImageTokenizer) and model.config.kind == SHIPPED[name]
    reported = model.metrics["fixed_batch"]
    assert reported["images_per_world"] == FIXED_BATCH == len(batch["shapes"])
    measured = evaluate(model, batch)
    for world, psnr in reported["psnr"].items():
        assert abs(measured["psnr"][world] - psnr) <= 0.2, (name, world, measured["psnr"][world], psnr)
    # the test-split figures are in the same file, from the same function on more images
    test = model.metrics["test"]
    assert set(test["psnr"]) == {"shapes", "emoji"} and 0 < test["usage"] <= 1
    # a TiTok trained on proxy codes carries the grid's codebook and decoder (~2 MB in fp16) to make its pixels
    limit = 6_000_000 if getattr(model, "proxy", None) is not None else 4_000_000
    assert (ROOT / name / "model.safetensors").stat().st_size < limit


def test_evaluate_tokenizer_cli_update_metrics_rewrites_only_the_measured_fields(tmp_path):
    import importlib.util
    import json
    import shutil
    spec = importlib.util.spec_from_file_location("evaluate_tokenizer", ROOT.parent / "train" / "evaluate_tokenizer.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    copy = tmp_path / "tokenizer-grid-tiny"
    shutil.copytree(ROOT / "tokenizer-grid-tiny", copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["fixed_batch"]["psnr"] = {"shapes": 0.0, "emoji": 0.0}      # stale figures
    (copy / "metrics.json").write_text(json.dumps(metrics))
    cli.main([str(copy), "--update-metrics"])
    updated = json.loads((copy / "metrics.json").read_text())
    assert updated["command"] == metrics["command"]                     # training fields kept
    assert updated["fixed_batch"]["psnr"]["shapes"] > 20                # re-measured, not the stale 0.0
