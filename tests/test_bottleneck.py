"""The bottleneck study (fuselip/bottleneck.py): per-count evaluation with chance levels, the linear probe of the
image vector on tiny random models, the figure and the command lines."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fuselip import bottleneck as bn
from fuselip import evaluate as ev
from fuselip.baselines import build_baseline
from fuselip.checkpoint import save_model
from fuselip.config import LateFusionConfig
from fuselip.data.types import EvalItem, Side

import fuselip_helpers as helpers

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(width=64, layers=2, heads=4, context_length=96, fusion_layers=2)


@pytest.fixture(scope="module")
def late():
    torch.manual_seed(0)
    return build_baseline(LateFusionConfig(kind="siglip-mlf", **SMALL), image_size=64).eval()


def test_parse_objects():
    assert bn.parse_objects("1,3,5,7,9") == (1, 3, 5, 7, 9)
    assert bn.parse_objects("1-4, 9") == (1, 2, 3, 4, 9)
    with pytest.raises(ValueError, match="between 1 and 9"):
        bn.parse_objects("0-3")


def test_multiclass_probe_is_the_binary_probe_for_two_classes_and_reads_separable_classes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    y = (x[:, 0] + 0.8 * torch.randn(200, generator=g)) > 0
    assert bn.linear_probe_multiclass(x, y.long()) == pytest.approx(ev.linear_probe_accuracy(x, y))
    classes = torch.arange(240) % 4
    centres = torch.randn(4, 6, generator=g) * 5
    points = centres[classes] + 0.1 * torch.randn(240, 6, generator=g)
    assert bn.linear_probe_multiclass(points, classes) == 100.0
    assert bn.majority_chance(torch.tensor([0, 0, 0, 1, 2, 0, 0, 1])) == 50.0  # class 0 on the scored rows


def test_chance_levels_follow_the_candidates_and_the_kinds():
    im = [np.full((4, 4, 3), v, np.uint8) for v in range(6)]
    items = [EvalItem(Side(im[0], "q"), (Side(im[1]), Side(im[2])), "t", "a"),
             EvalItem(Side(im[0], "r"), (Side(im[1]), Side(im[2]), Side(im[3]), Side(im[4])), "t", "b"),
             EvalItem(Side(im[0], "s"), (Side(im[1]), Side(im[2]), Side(im[3]), Side(im[4])), "t", "b")]
    level = bn.chance_levels("t", items)["t"]
    assert level["kinds"] == {"a": 50.0, "b": 25.0} and level["chance"] == 37.5  # the mean over kinds, as top1
    captions = [EvalItem(Side(im[i]), (Side(None, f"c{i % 2}"), Side(None, "x")), "caption") for i in range(4)]
    levels = bn.chance_levels("caption", captions)
    # image -> text: 1 of 2 captions; text -> image: 2 of 4 images are right
    assert levels["retrieval"]["chance"] == pytest.approx(50.0)


def test_evaluate_by_objects_reports_every_count_with_its_chance(late):
    results = bn.evaluate_by_objects(late, (1, 9), worlds=["shapes"], tasks=["position", "edit", "crop", "caption"],
                                     n_items=4)
    assert results["objects"] == [1, 9] and set(results["by_objects"]) == {"1", "9"}
    one, nine = (results["by_objects"][k]["worlds"]["shapes"] for k in ("1", "9"))
    assert "position" not in one and {"position", "position_twin"} <= set(nine)  # no twins in a 1-object scene
    assert set(one["edit"]["kinds"]) == {"recolour", "move", "add"}
    assert set(nine["edit"]["kinds"]) == {"recolour", "remove"}
    for entry in list(one.values()) + list(nine.values()):
        assert 0 <= entry["top1"] <= 100 and 0 < entry["chance"] <= 100
    assert nine["position_twin"]["chance"] == 50.0 and nine["crop"]["chance"] < one["crop"]["chance"]
    assert bn.value_at(results, 9, "crop", "shapes") == nine["crop"]["top1"]
    assert bn.value_at(results, 1, "position") != bn.value_at(results, 1, "position")  # nan: no items
    table = bn.to_markdown(results)
    assert "| position |" in table and "1 obj." in table and "9 obj." in table
    gaps = bn.gaps_markdown({"a": results, "b": results}, early="a")
    assert "| crop | +0.0 | +0.0 | +0.0 |" in gaps


@pytest.mark.parametrize("k", (1, 5, 9))
def test_probe_of_a_tiny_random_late_fusion_model_returns_every_count(late, k):
    out = bn.probe_world(late, "shapes", k, rows=40)
    assert bn.probe_scene_count(k, 40) <= out["scenes"] <= bn.probe_scene_count(k, 40) + 2 * ev.ENCODE_BATCH
    assert set(out) == {"scenes", "colour", "class"} | ({"occupied"} if k < 9 else set())
    for name in ("colour", "class"):
        assert out[name]["cells"] == 9 and out[name]["rows"] == 40
        assert 0 <= out[name]["top1"] <= 100 and 0 < out[name]["chance"] < 60
    if k < 9:
        assert out["occupied"]["chance"] == 50.0 and out["occupied"]["rows"] == 40  # balanced
    assert bn.probe_world(late, "shapes", k, rows=40) == out  # deterministic


def test_probe_by_objects_runs_on_both_worlds_and_on_early_fusion(late):
    probe = bn.probe_by_objects(late, (2, 9), rows=24)
    assert probe["features"] == "tower" and probe["objects"] == [2, 9]
    assert set(probe["worlds"]["emoji"]["2"]) == {"scenes", "class", "occupied"}  # emoji have no colour
    assert "emoji: category" in bn.probe_markdown(probe)
    fused = helpers.model()  # 16-px tokenizer: the worlds are drawn at 64 px and resized by encode
    early = bn.probe_by_objects(fused, (3,), worlds=["shapes"], rows=24, image_size=64)
    assert early["features"] == "encode" and "colour" in early["worlds"]["shapes"]["3"]
    with pytest.raises(ValueError, match="no separate image tower"):
        bn.probe_by_objects(fused, (3,), rows=24, image_size=64, features="tower")
    tower = bn.image_vectors(late, [np.zeros((64, 64, 3), np.uint8)] * 2)
    assert tower.shape == (2, late.embed_dim)


def test_image_vectors_embed_in_eval_mode_and_a_training_model_trains_again(late):
    images = [np.full((64, 64, 3), v, np.uint8) for v in (0, 128)]
    expected = bn.image_vectors(late, images)
    late.train()
    try:
        assert torch.equal(bn.image_vectors(late, images), expected)
        assert late.training
    finally:
        late.eval()


def test_model_record_reads_the_kind_and_the_token_table_from_the_contract(late):
    record = bn.model_record("folder", late, 1.24)
    assert record == {"checkpoint": "folder", "kind": "siglip-mlf", "parameters": late.effective_parameters(),
                      "seconds": 1.2}
    other = bn.model_record("folder", torch.nn.Linear(2, 2), 0.0)  # neither Configured nor Compactable
    assert other["kind"] == "Linear" and other["parameters"] is None


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:text ids")  # an untrained checkpoint: its text table was never trained
def test_figure_and_command_lines(late, tmp_path, capsys):
    save_model(late, tmp_path / "mlf")

    def run(*args):
        bn.main(list(args))
        return capsys.readouterr().out
    table = run("evaluate", "--checkpoint", str(tmp_path / "mlf"), "--objects", "1,9", "--n-items", "2",
                "--worlds", "shapes", "--tasks", "position", "crop", "--out", str(tmp_path / "e.json"))
    assert "| crop |" in table and "9 obj." in table
    run("probe", "--checkpoint", str(tmp_path / "mlf"), "--objects", "1,9", "--rows", "16", "--worlds", "emoji",
        "--out", str(tmp_path / "p.json"))
    probe = json.loads((tmp_path / "p.json").read_text())
    assert probe["model"]["kind"] == "siglip-mlf" and set(probe["worlds"]["emoji"]) == {"1", "9"}
    run("figure", "--results", str(tmp_path / "e.json"), str(tmp_path / "e.json"), "--names", "a", "b",
        "--probes", str(tmp_path / "p.json"), "--out", str(tmp_path / "bottleneck.png"))
    assert (tmp_path / "bottleneck.png").stat().st_size > 10_000
    gaps = run("gaps", "--results", str(tmp_path / "e.json"), str(tmp_path / "e.json"), "--names", "a", "b",
               "--early", "a")
    assert "| crop |" in gaps
    # the same per-count evaluation from the benchmark's own command line, end to end
    table = subprocess.run([sys.executable, "train/evaluate.py", "--checkpoint", str(tmp_path / "mlf"), "--objects",
                            "9", "--n-items", "2", "--worlds", "emoji", "--tasks", "edit", "--threads", "1", "--out",
                            str(tmp_path / "t.json")], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    assert "| edit |" in table and json.loads((tmp_path / "t.json").read_text())["objects"] == [9]
