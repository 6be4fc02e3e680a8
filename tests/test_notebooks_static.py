"""Static checks on the tutorial notebooks (the notebooks themselves are executed by `pytest --nbval`).

Every lesson imports the package and never re-declares a model, a loss, a dataset or a training loop; each
opens with what the reader will learn and ends with exercises.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MAX_BYTES = 1_500_000

FORBIDDEN = {
    "defines an nn.Module": re.compile(r"^\s*class\s+\w+\s*\((?:[\w.]*\.)?(?:nn\.)?Module\)", re.M),
    "defines a loss": re.compile(r"^\s*def\s+\w*loss\w*\s*\(", re.M | re.I),
    "defines a dataset": re.compile(r"^\s*class\s+\w*Dataset\w*\s*[(:]", re.M),
    "has a training loop": re.compile(r"^\s*for\s+step\s+in\b", re.M),
    "calls .backward(": re.compile(r"\.backward\("),
    "steps an optimizer": re.compile(r"\boptimi[sz]er\.step\("),
}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    for expected in ("01_image_tokens", "02_one_sequence", "03_training", "04_probing", "05_early_vs_late"):
        assert any(n.startswith(expected) for n in names), f"notebooks/{expected}.ipynb is missing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_lesson_shape(path: Path):
    cells = _cells(path)
    markdown = [_source(c) for c in cells if c["cell_type"] == "markdown"]
    assert cells and cells[0]["cell_type"] == "markdown", f"{path.name}: the first cell must be markdown"
    assert "what you will learn" in _source(cells[0]).lower(), f"{path.name}: the first cell must say what you will learn"
    assert any(re.search(r"^#+\s*exercises", m, re.I | re.M) for m in markdown[-2:]), \
        f"{path.name}: one of the last markdown cells must be an 'Exercises' section"
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    assert re.search(r"^\s*(from|import)\s+fuselip", code, re.M), f"{path.name}: must import the fuselip package"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_logic_copied_into_notebooks(path: Path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code":
            continue
        for what, pattern in FORBIDDEN.items():
            assert not pattern.search(_source(cell)), f"{path.name} cell {i} {what}: that belongs in the package"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_committed_and_small(path: Path):
    cells = [c for c in _cells(path) if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in cells), f"{path.name}: commit the executed notebook (outputs)"
    assert not [c for c in cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))], \
        f"{path.name}: a committed output is an error"
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size} bytes (limit {MAX_BYTES})"


NBVAL_TAGS = {"nbval-ignore-output", "nbval-check-output", "nbval-skip", "raises-exception"}
LESSONS_WITH_FIGURES = ("01_", "02_", "03_", "04_", "05_")
WHAT_YOU_SEE = "**What you should see:**"
# research-log words, internal paths, the tracker and superseded checkpoint sets have no place in a lesson
INTERNAL = {
    "an internal runs/ path": re.compile(r"runs/"),
    "the issue tracker": re.compile(r"\bissues?\b", re.I),
    "an nbval comment (use a cell tag)": re.compile(r"NBVAL_"),
    "a superseded checkpoint set": re.compile(r"\bv[23] set\b|results/(?:v2|v3|n500)\b|\bearlier sets?\b", re.I),
    "research-log prose": re.compile(r"design notes|throwaway prototype|MB budget|\bHistory\b"),
}


def _outputs_text(cell: dict) -> str:
    """Everything a code cell's committed outputs show as text (streams, text/plain, errors)."""
    parts = []
    for output in cell.get("outputs", []):
        if "text" in output:
            parts.append(_source({"source": output["text"]}))
        data = output.get("data", {})
        for kind in ("text/plain", "text/markdown", "text/html"):
            if kind in data:
                parts.append(_source({"source": data[kind]}))
        parts += [output.get("ename", ""), output.get("evalue", "")]
    return "\n".join(parts)


def _has_image(cell: dict) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_cell_tags(path: Path):
    """nbval reads its markers from cell tags; a comment a learner must read past is not needed."""
    for i, cell in enumerate(_cells(path)):
        tags = set(cell.get("metadata", {}).get("tags", []))
        unknown = {t for t in tags if t.startswith("nbval") or t == "raises-exception"} - NBVAL_TAGS
        assert not unknown, f"{path.name} cell {i}: unknown nbval tag(s) {sorted(unknown)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_internal_paths_tracker_or_history(path: Path):
    for i, cell in enumerate(_cells(path)):
        for where, text in (("text", _source(cell)), ("output", _outputs_text(cell))):
            for what, pattern in INTERNAL.items():
                hit = pattern.search(text)
                assert not hit, f"{path.name} cell {i} {where} names {what}: {hit.group(0)!r}"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name.startswith(LESSONS_WITH_FIGURES)],
                         ids=lambda p: p.name)
def test_every_figure_says_what_you_should_see(path: Path):
    cells = _cells(path)
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not _has_image(cell):
            continue
        after = cells[i + 1] if i + 1 < len(cells) else None
        assert after is not None and after["cell_type"] == "markdown" and \
            _source(after).lstrip().startswith(WHAT_YOU_SEE), \
            f"{path.name} cell {i} draws a figure: the next cell must be markdown starting with {WHAT_YOU_SEE!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_warning_in_committed_outputs(path: Path):
    """Warnings are fixed where they arise (or handled visibly by the lesson), never left in an output."""
    for i, cell in enumerate(_cells(path)):
        assert "Warning" not in _outputs_text(cell), f"{path.name} cell {i}: a committed output holds a warning"


def test_the_checks_catch_a_model_and_a_loop():
    """The patterns above must fire on the things they forbid (a check that cannot fail is no check)."""
    snippet = "class Net(nn.Module):\n    pass\nfor step in range(3):\n    loss.backward()\n"
    hits = [what for what, pattern in FORBIDDEN.items() if pattern.search(snippet)]
    assert {"defines an nn.Module", "has a training loop", "calls .backward("} <= set(hits)
    assert FORBIDDEN["defines a loss"].search("def my_siglip_loss(a, b):")
    assert INTERNAL["an internal runs/ path"].search("--ship runs/c3/ship")
    assert INTERNAL["the issue tracker"].search("see issue 24") and not INTERNAL["the issue tracker"].search("tissue")
    assert INTERNAL["a superseded checkpoint set"].search("stayed at chance in an earlier set")
