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


NBVAL_MARKERS = ("NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_nbval_markers_are_exact_and_explained(path: Path):
    """nbval only honours a marker alone on its comment line (`# NBVAL_IGNORE_OUTPUT: why` is silently NOT a
    marker); every ignored output says why on the next line."""
    for i, cell in enumerate(_cells(path)):
        lines = _source(cell).splitlines() if cell["cell_type"] == "code" else []
        for k, line in enumerate(lines):
            if "NBVAL_" not in line:
                continue
            assert line.strip().lstrip("#").strip() in NBVAL_MARKERS, \
                f"{path.name} cell {i}: {line.strip()!r} is not an nbval marker (put the marker alone on its line)"
            if "IGNORE" in line:
                reason = lines[k + 1].strip() if k + 1 < len(lines) else ""
                assert reason.startswith("#") and len(reason) > 10, \
                    f"{path.name} cell {i}: say on the line after NBVAL_IGNORE_OUTPUT why the output varies"


def test_the_checks_catch_a_model_and_a_loop():
    """The patterns above must fire on the things they forbid (a check that cannot fail is no check)."""
    snippet = "class Net(nn.Module):\n    pass\nfor step in range(3):\n    loss.backward()\n"
    hits = [what for what, pattern in FORBIDDEN.items() if pattern.search(snippet)]
    assert {"defines an nn.Module", "has a training loop", "calls .backward("} <= set(hits)
    assert FORBIDDEN["defines a loss"].search("def my_siglip_loss(a, b):")
