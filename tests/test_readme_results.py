"""The README's results tables say what the result files in docs/results/ say (no figure typed by hand drifts)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
README = (ROOT / "README.md").read_text()

# a table row's first cell starts with the task's name; "caption retrieval" is the task "retrieval"
ROW_TASK = {"caption retrieval": "retrieval", "caption": "caption", "edit": "edit", "tgit": "tgit", "vqa": "vqa",
            "position_twin": "position_twin", "position": "position", "crop": "crop", "classify": "classify"}


def mean_of(path: str) -> dict[str, float]:
    return json.loads((RESULTS / path).read_text())["mean"]


def table_after(heading: str) -> dict[str, list[str]]:
    """The first markdown table after `heading`: {task: [cells after the first]}."""
    start = README.index(heading)
    lines = README[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| task"))
    rows = {}
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = next(task for prefix, task in ROW_TASK.items() if cells[0].startswith(prefix))
        rows[name] = cells[1:]
    return rows


def signed(value: float) -> str:
    text = f"{value:+.1f}"
    return text.replace("-", "−")  # the README writes a real minus sign


def close(cell: str, value: float) -> bool:
    """A cell agrees with a value to its printed precision (a difference of rounded numbers may be 0.1 off)."""
    return abs(float(cell.replace("−", "-").replace("+", "")) - value) <= 0.051 + 1e-9


def test_main_results_table_matches_the_result_files():
    rows = table_after("### Results (test split")
    fuselip, sf, mlf = (mean_of(f"{name}-seed0.json") for name in ("fuselip-tiny", "siglip-sf-tiny", "siglip-mlf-tiny"))
    assert set(rows) == set(fuselip)
    for task, cells in rows.items():
        assert cells[0] == f"{fuselip[task]:.1f}" and cells[1] == f"{sf[task]:.1f}" and cells[2] == f"{mlf[task]:.1f}", task
        lead = fuselip[task] - max(sf[task], mlf[task])
        assert close(cells[3], lead), (task, cells[3], signed(lead))


def test_same_tokens_table_matches_the_result_files():
    rows = table_after("### Same tokens, late fusion")
    fuselip, late, sf, mlf = (mean_of(path) for path in (
        "fuselip-tiny-seed0.json", "ablation/fuselip-tiny-late-seed0.json", "siglip-sf-tiny-seed0.json",
        "siglip-mlf-tiny-seed0.json"))
    assert set(rows) == set(fuselip)
    for task, cells in rows.items():
        assert cells[0] == f"{fuselip[task]:.1f}" and cells[1] == f"{late[task]:.1f}", task
        assert cells[2] == f"{sf[task]:.1f} / {mlf[task]:.1f}", task
        assert close(cells[3], fuselip[task] - late[task]), (task, "fusion")
        assert close(cells[4], late[task] - max(sf[task], mlf[task])), (task, "tokens")


@pytest.mark.parametrize("name", ["siglip-sf-tiny-conv", "siglip-mlf-tiny-conv"])
def test_conv_stem_results_quoted_in_the_readme_exist(name):
    """The conv-stem runs the README cites: results, config and metrics beside each other, the stem recorded."""
    config = json.loads((RESULTS / "conv" / f"{name}-config.json").read_text())
    assert config["encoder"]["vision_stem"] == "conv"
    metrics = json.loads((RESULTS / "conv" / f"{name}-metrics.json").read_text())
    assert "--encoder.vision_stem=conv" in metrics["command"] and metrics["steps"] == 2000
    retrieval = mean_of(f"conv/{name}-seed0.json")["retrieval"]
    assert f"{retrieval:.1f}" in re.sub(r"\s+", " ", README)


def test_pretrained_vit_table_matches_the_result_files():
    rows = table_after("### Pretraining the pixel ViT")
    fuselip, sf, mlf, sf_mae, mlf_mae = (mean_of(path) for path in (
        "fuselip-tiny-seed0.json", "siglip-sf-tiny-seed0.json", "siglip-mlf-tiny-seed0.json",
        "mae/siglip-sf-tiny-mae-seed0.json", "mae/siglip-mlf-tiny-mae-seed0.json"))
    assert set(rows) == set(fuselip)
    for task, cells in rows.items():
        assert cells[0] == f"{fuselip[task]:.1f}", task
        assert cells[1] == f"{sf[task]:.1f} / {sf_mae[task]:.1f}", task
        assert cells[2] == f"{mlf[task]:.1f} / {mlf_mae[task]:.1f}", task
        assert close(cells[3], fuselip[task] - max(sf_mae[task], mlf_mae[task])), (task, cells[3])


@pytest.mark.parametrize("name", ["sf", "mlf"])
def test_pretrained_vit_runs_quoted_in_the_readme_exist(name):
    """The MAE runs the README cites: the pretraining and the contrastive run, each with its command and config."""
    vit = json.loads((RESULTS / "mae" / f"vit-{name}-tiny-metrics.json").read_text())
    assert f"--baseline tiny-{name}" in vit["command"] and vit["step"] == 3000
    config = json.loads((RESULTS / "mae" / f"siglip-{name}-tiny-mae-config.json").read_text())
    assert config["encoder"]["vision_init"].endswith(f"vit-{name}-tiny")
    metrics = json.loads((RESULTS / "mae" / f"siglip-{name}-tiny-mae-metrics.json").read_text())
    assert f"--encoder.vision_init={config['encoder']['vision_init']}" in metrics["command"]
    assert metrics["steps"] == 2000
