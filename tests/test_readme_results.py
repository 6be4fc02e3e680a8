"""The tables of the guide (README.md) and of the results report (docs/results/README.md) say what the result files in
docs/results/ say: no figure typed by hand drifts, and every link of the two documents leads somewhere."""
import json
import re
from pathlib import Path

import pytest

from fuselip import plots

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
GUIDE_PATH = ROOT / "README.md"
REPORT_PATH = RESULTS / "README.md"
GUIDE = GUIDE_PATH.read_text()
REPORT = REPORT_PATH.read_text()

# a table row's first cell starts with the task's name; "caption retrieval" is the task "retrieval"
ROW_TASK = {"caption retrieval": "retrieval", "caption": "caption", "edit": "edit", "tgit": "tgit", "vqa": "vqa",
            "position_twin": "position_twin", "position": "position", "crop": "crop", "classify": "classify"}
# the paper's headline table (shared/PAPER.md): FuseLIP-B / SigLIP-B SF / SigLIP-B MLF, where a task has a counterpart
PAPER = {"tgit": ("TGIT", 94.3, 56.6, 69.4), "position": ("OI-Pos", 70.8, 45.9, 47.4), "vqa": ("VQA", 17.5, 13.6, 14.8),
         "crop": ("OI-Crop", 68.1, 56.9, 68.4), "retrieval": ("retrieval", 15.0, 13.4, 13.9),
         "classify": ("ImageNet", 18.1, 10.3, 12.2)}
MAIN = ("fuselip-tiny", "siglip-sf-tiny", "siglip-mlf-tiny")


def load(path: str) -> dict:
    return json.loads((RESULTS / path).read_text())


def mean_of(path: str) -> dict[str, float]:
    return load(path)["mean"]


def table_after(text: str, heading: str, first_cell: str = "task") -> list[list[str]]:
    """The cells of the first markdown table after `heading` whose header starts with `first_cell`."""
    start = text.index(heading)
    lines = text[start:].splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_cell}"))
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def task_table(text: str, heading: str) -> dict[str, list[str]]:
    """{task: [cells after the first]} of the task table after `heading`, in the table's order."""
    rows = {}
    for cells in table_after(text, heading):
        name = next(task for prefix, task in ROW_TASK.items() if cells[0].startswith(prefix))
        rows[name] = cells[1:]
    return rows


def signed(value: float) -> str:
    text = f"{value:+.1f}"
    return text.replace("-", "−")  # the documents write a real minus sign


def lead(cell: str, a: float, b: float) -> bool:
    """A difference cell is a − b rounded, or the difference of the two cells it stands beside (a − b, each rounded
    to one decimal first): 44.737 − 19.857 may be written +24.9 or, from the printed 44.7 and 19.9, +24.8."""
    return cell in {signed(a - b), signed(round(a, 1) - round(b, 1))}


def chance_cell(value: float) -> str:
    """Chance levels as the documents print them: one decimal, two below 1 % (caption retrieval)."""
    return f"{value:.1f}" if value >= 0.95 else f"{value:.2f}"


def paper_triple(task: str, n: int = 3) -> str:
    return " / ".join(f"{v:.1f}" for v in PAPER[task][1:1 + n])


# ---------------------------------------------------------------------------------------------
# the guide


def test_guide_results_table_matches_the_result_files():
    rows = task_table(GUIDE, "## What it teaches")
    fuselip, sf, mlf = (mean_of(f"{name}-seed0.json") for name in MAIN)
    chance = mean_of("chance.json")
    assert list(rows) == [t for _, tasks in plots.LESSON_GROUPS for t in tasks], "the lesson figure's order"
    assert set(rows) == set(fuselip)
    for task, cells in rows.items():
        assert cells[:3] == [f"{fuselip[task]:.1f}", f"{sf[task]:.1f}", f"{mlf[task]:.1f}"], task
        assert cells[3] == chance_cell(chance[task]), (task, "chance")
        if task in PAPER:
            assert cells[4] == f"{PAPER[task][0]} {paper_triple(task)}", (task, "paper")
        else:
            assert cells[4] == "", (task, "the paper has no counterpart")


def test_guide_is_a_short_guide():
    lines = GUIDE.splitlines()
    assert len(lines) <= 200
    assert re.findall(r"^make \w+", GUIDE, flags=re.M)[:2] == ["make app", "make test"]
    assert "runs/" not in GUIDE and not re.search(r"\bissue\b|#\d", GUIDE, flags=re.I), "history goes to the report"
    assert "](docs/lesson.png)" in GUIDE and "python -m fuselip.plots lesson" in GUIDE
    assert "[Run the released FuseLIP](docs/pretrained.md)" in GUIDE
    assert "](docs/results/README.md)" in GUIDE


def test_guide_python_example_is_the_encode_api():
    """The README's example calls what exists (running it is the notebooks' and test_checkpoint's job)."""
    code = re.search(r"```python\n(.*?)```", GUIDE, flags=re.S).group(1)
    compile(code, "README.md", "exec")
    assert "fuselip.load_model(" in code and "model.encode(" in code
    for path in re.findall(r'load_model\("([^"]+)"\)', code):
        assert (ROOT / path / "config.json").exists(), path


# ---------------------------------------------------------------------------------------------
# the results report


def test_main_results_table_matches_the_result_files():
    rows = task_table(REPORT, "## The main results")
    fuselip, sf, mlf = (mean_of(f"{name}-seed0.json") for name in MAIN)
    chance = mean_of("chance.json")
    assert set(rows) == set(fuselip)
    for task, cells in rows.items():
        assert cells[:3] == [f"{fuselip[task]:.1f}", f"{sf[task]:.1f}", f"{mlf[task]:.1f}"], task
        assert lead(cells[3], fuselip[task], max(sf[task], mlf[task])), (task, cells[3])
        assert cells[4] == chance_cell(chance[task]), (task, "chance")
        assert cells[5].endswith(paper_triple(task)) if task in PAPER else cells[5] == "", (task, "paper")


def test_same_tokens_table_matches_the_result_files():
    rows = task_table(REPORT, "## Same tokens, late fusion")
    fuselip, late, sf, mlf = (mean_of(path) for path in (
        "fuselip-tiny-seed0.json", "ablation/fuselip-tiny-late-seed0.json", "siglip-sf-tiny-seed0.json",
        "siglip-mlf-tiny-seed0.json"))
    assert set(rows) == set(fuselip)
    for task, cells in rows.items():
        assert cells[0] == f"{fuselip[task]:.1f}" and cells[1] == f"{late[task]:.1f}", task
        assert cells[2] == f"{sf[task]:.1f} / {mlf[task]:.1f}", task
        assert lead(cells[3], fuselip[task], late[task]), (task, "fusion")
        assert lead(cells[4], late[task], max(sf[task], mlf[task])), (task, "tokens")


@pytest.mark.parametrize("name", ["siglip-sf-tiny-conv", "siglip-mlf-tiny-conv"])
def test_conv_stem_results_quoted_in_the_report_exist(name):
    """The conv-stem runs the report cites: results, config and metrics beside each other, the stem recorded."""
    config = json.loads((RESULTS / "conv" / f"{name}-config.json").read_text())
    assert config["encoder"]["vision_stem"] == "conv"
    metrics = json.loads((RESULTS / "conv" / f"{name}-metrics.json").read_text())
    assert "--encoder.vision_stem=conv" in metrics["command"] and metrics["steps"] == 2000
    retrieval = mean_of(f"conv/{name}-seed0.json")["retrieval"]
    assert f"{retrieval:.1f}" in re.sub(r"\s+", " ", REPORT)


def test_pretrained_vit_table_matches_the_result_files():
    rows = task_table(REPORT, "## Pretraining the pixel ViT")
    fuselip, sf, mlf, sf_mae, mlf_mae = (mean_of(path) for path in (
        "fuselip-tiny-seed0.json", "siglip-sf-tiny-seed0.json", "siglip-mlf-tiny-seed0.json",
        "mae/siglip-sf-tiny-mae-seed0.json", "mae/siglip-mlf-tiny-mae-seed0.json"))
    assert set(rows) == set(fuselip)
    for task, cells in rows.items():
        assert cells[0] == f"{fuselip[task]:.1f}", task
        assert cells[1] == f"{sf[task]:.1f} / {sf_mae[task]:.1f}", task
        assert cells[2] == f"{mlf[task]:.1f} / {mlf_mae[task]:.1f}", task
        assert lead(cells[3], fuselip[task], max(sf_mae[task], mlf_mae[task])), (task, cells[3])
        if task in PAPER:  # FuseLIP-B / SigLIP-B MLF
            assert cells[4].endswith(f"{PAPER[task][1]:.1f} / {PAPER[task][3]:.1f}"), (task, "paper")


@pytest.mark.parametrize("name", ["sf", "mlf"])
def test_pretrained_vit_runs_quoted_in_the_report_exist(name):
    """The MAE runs the report cites: the pretraining and the contrastive run, each with its command and config."""
    vit = json.loads((RESULTS / "mae" / f"vit-{name}-tiny-metrics.json").read_text())
    assert f"--baseline tiny-{name}" in vit["command"] and vit["step"] == 3000
    config = json.loads((RESULTS / "mae" / f"siglip-{name}-tiny-mae-config.json").read_text())
    assert config["encoder"]["vision_init"].endswith(f"vit-{name}-tiny")
    metrics = json.loads((RESULTS / "mae" / f"siglip-{name}-tiny-mae-metrics.json").read_text())
    assert f"--encoder.vision_init={config['encoder']['vision_init']}" in metrics["command"]
    assert metrics["steps"] == 2000


def test_retrieval_gallery_table_matches_the_result_files():
    """Caption retrieval R@1 per world (ShapesWorld / Emoji) in three galleries, for every model the report names."""
    columns = [("fuselip-tiny",), ("siglip-sf-tiny",), ("siglip-mlf-tiny",), ("fuselip-tiny-late",),
               ("siglip-sf-tiny-conv", "siglip-mlf-tiny-conv"), ("siglip-sf-tiny-mae", "siglip-mlf-tiny-mae")]
    benchmark = {"fuselip-tiny-late": "ablation/", "siglip-sf-tiny-conv": "conv/", "siglip-mlf-tiny-conv": "conv/",
                 "siglip-sf-tiny-mae": "mae/", "siglip-mlf-tiny-mae": "mae/"}
    galleries = {"test, 2,000": lambda n: f"{benchmark.get(n, '')}{n}-seed0.json",
                 "test, 200": lambda n: f"retrieval/{n}-test-200.json",
                 "validation": lambda n: f"retrieval/{n}-val-2000.json"}
    rows = table_after(REPORT, "## Caption retrieval", first_cell="gallery")
    assert len(rows) == len(galleries)
    for cells, (prefix, path_of) in zip(rows, galleries.items()):
        assert cells[0].startswith(prefix)
        for cell, names in zip(cells[1:], columns):
            worlds = [load(path_of(n))["worlds"] for n in names]
            expected = " · ".join(f"{w['shapes']['retrieval']['top1']:.1f} / {w['emoji']['retrieval']['top1']:.1f}"
                                  for w in worlds)
            assert cell == expected, (prefix, names)


def test_v2_results_table_matches_the_result_files():
    rows = task_table(REPORT, "#### Results of the v2 set")
    fuselip, sf, mlf = (mean_of(f"v2/{name}-seed0.json") for name in MAIN)
    assert set(rows) == set(fuselip)
    for task, cells in rows.items():
        assert cells[:3] == [f"{fuselip[task]:.1f}", f"{sf[task]:.1f}", f"{mlf[task]:.1f}"], task
        assert lead(cells[3], fuselip[task], max(sf[task], mlf[task])), (task, cells[3])
        assert cells[4].endswith(paper_triple(task)) if task in PAPER else cells[4] == "", (task, "paper")


def test_position_binding_table_matches_the_result_files():
    rows = table_after(REPORT, "#### Why position stayed at chance", first_cell="shipped model")
    assert [r[0] for r in rows] == ["FuseLIP-tiny", "SigLIP-SF-tiny", "SigLIP-MLF-tiny"]
    for cells, name in zip(rows, MAIN):
        b = load(f"v2/position-binding-{name}.json")["position_binding"]
        pair = lambda key, fmt: f"{b['shapes'][key]:{fmt}} / {b['emoji'][key]:{fmt}}"  # noqa: E731
        assert cells[1] == pair("left_right_cosine", ".3f"), name
        assert cells[2:] == [pair(k, ".1f") + " %" for k in ("size_question_top1", "crop_size_probe",
                                                             "query_size_probe")], name


def test_report_says_how_the_lesson_figure_is_drawn():
    assert "python -m fuselip.plots lesson" in REPORT and "python -m fuselip.plots chance" in REPORT
    assert "](../lesson.png)" in REPORT


# ---------------------------------------------------------------------------------------------
# links


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("path", [GUIDE_PATH, REPORT_PATH], ids=["guide", "report"])
def test_links_lead_somewhere(path):
    text = path.read_text()
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith("http"):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, target
        else:
            assert (path.parent / target.split("#")[0]).exists(), target
