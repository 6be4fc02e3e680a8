"""fuselip.plots: the lesson figure is redrawn from docs/results/*.json (never hand-edited), and the chance
levels it marks are what a random ranking of the evaluation items' candidates scores."""
import json

import matplotlib
import numpy as np
import pytest
from PIL import Image

from fuselip import plots
from fuselip.data.types import EvalItem, Side
from fuselip.evaluate import chance_levels, retrieval_chance, task_chance, twin_chance

ROOT = plots.ROOT
LESSON_PNG = ROOT / "docs" / "lesson.png"
LESSON_JSON = ROOT / "docs" / "lesson.json"


def test_lesson_values_are_the_result_files():
    """docs/lesson.json (the values drawn) is exactly what the result files give today."""
    committed = json.loads(LESSON_JSON.read_text())
    fresh = json.loads(json.dumps(plots.lesson_data()))  # through JSON, as the sidecar was written
    committed.pop("matplotlib")
    assert fresh == committed, "redraw it: python -m fuselip.plots lesson"


def test_lesson_rows_follow_their_sources():
    data = plots.lesson_data()
    early, sf, mlf = (json.loads((ROOT / data["sources"][name]).read_text())["mean"]
                      for name in ("FuseLIP-tiny", "SigLIP-SF-tiny", "SigLIP-MLF-tiny"))
    assert [r["task"] for r in data["rows"]] == [t for _, tasks in plots.LESSON_GROUPS for t in tasks]
    for row in data["rows"]:
        task = row["task"]
        assert row["early"] == early[task] and row["late"] == max(sf[task], mlf[task])
        assert row["late_model"] == ("SigLIP-SF-tiny" if sf[task] >= mlf[task] else "SigLIP-MLF-tiny")
        assert 0 < row["chance"] < 100


def test_lesson_png_is_a_fresh_draw(tmp_path):
    """The committed PNG is what the command draws: same size always, same bytes with the same matplotlib."""
    out = tmp_path / "lesson.png"
    plots.draw_lesson(out)
    fresh, committed = Image.open(out), Image.open(LESSON_PNG)
    assert fresh.size == committed.size
    recorded = json.loads(LESSON_JSON.read_text())["matplotlib"]
    if recorded != matplotlib.__version__:
        pytest.skip(f"docs/lesson.png was drawn with matplotlib {recorded}, this is {matplotlib.__version__}")
    assert out.read_bytes() == LESSON_PNG.read_bytes(), "redraw it: python -m fuselip.plots lesson"


def test_lesson_draw_is_deterministic(tmp_path):
    plots.draw_lesson(tmp_path / "a.png")
    plots.draw_lesson(tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_chance_file_matches_the_benchmark_it_marks():
    """The chance levels were computed on the very items the results were scored on (same split, seed, count,
    twins), and a cheap part of them recomputes to the same values."""
    chance = json.loads(plots.CHANCE_JSON.read_text())
    for name in ("fuselip-tiny", "siglip-sf-tiny", "siglip-mlf-tiny"):
        results = json.loads((ROOT / "docs" / "results" / f"{name}-seed0.json").read_text())
        for key in ("split", "seed", "n_items", "position_twins"):
            assert chance[key] == results[key], (name, key)
        assert set(chance["mean"]) == set(results["mean"])
    again = chance_levels(worlds=["shapes"], tasks=["classify", "vqa"], split=chance["split"],
                          n_items=chance["n_items"], seed=chance["seed"])
    for task in ("classify", "vqa"):
        assert again["worlds"]["shapes"][task]["top1"] == chance["worlds"]["shapes"][task]["top1"], task


def _image(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, np.uint8)


def _item(n_candidates: int, kind: str = "", duplicate_of_correct: int = 0, repeated_wrong: int = 0) -> EvalItem:
    candidates = [Side(_image(0))] + [Side(_image(i)) for i in range(1, n_candidates)]
    candidates += [Side(_image(0))] * duplicate_of_correct + [Side(_image(1))] * repeated_wrong
    return EvalItem(Side(_image(200), "q"), tuple(candidates), "task", kind)


def test_chance_counts_distinct_candidates_and_averages_kinds():
    assert task_chance([_item(4)])["top1"] == pytest.approx(25.0)
    # duplicates of the correct one merge into it, a repeated wrong one counts once (as score_items ranks them)
    assert task_chance([_item(4, duplicate_of_correct=2, repeated_wrong=3)])["top1"] == pytest.approx(25.0)
    # a task with kinds is the mean over kinds, whatever the number of items per kind
    items = [_item(2, "a"), _item(2, "a"), _item(2, "a"), _item(10, "b")]
    assert task_chance(items)["top1"] == pytest.approx((50.0 + 10.0) / 2)


def test_twin_and_retrieval_chance():
    twin = EvalItem(Side(_image(200), "q"), (Side(_image(0)), Side(_image(1))), "position", "left",
                    meta={"twin": Side(_image(1))})
    assert twin_chance([twin, _item(3)])["top1"] == 50.0 and twin_chance([twin])["n"] == 1
    # a gallery of 4 images and 3 distinct captions (two images share one): image->text 1/3 each;
    # text->image: the shared caption has 2 positives of 4 images, the others 1 of 4
    captions = ["a", "b", "c", "c"]
    items = [EvalItem(Side(_image(i)), (Side(None, t),), "caption") for i, t in enumerate(captions)]
    result = retrieval_chance(items)
    assert result["kinds"]["image_to_text"]["top1"] == pytest.approx(100 / 3)
    assert result["kinds"]["text_to_image"]["top1"] == pytest.approx(100 * (1 / 4 + 1 / 4 + 2 / 4) / 3)


def test_command_line_has_one_subcommand_per_figure():
    parser = plots.build_parser()
    assert parser.parse_args(["lesson"]).run is plots._cmd_lesson
    assert parser.parse_args(["chance", "--n-items", "5"]).n_items == 5
    with pytest.raises(SystemExit):
        parser.parse_args([])


def test_learning_curves_read_every_source_and_draw_one_line_per_run(tmp_path):
    from fuselip.curves import curves_figure, load_curve
    curve = [{"step": s, "pairs_seen": 128 * s, "train_seconds": 6.0 * s, "mean/tgit": 10.0 * s} for s in (1, 2, 3)]
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "metrics.json").write_text(json.dumps({"curve": curve}))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "validation.jsonl").write_text("".join(json.dumps(p) + "\n" for p in curve[:2]))
    (tmp_path / "study.json").write_text(json.dumps({"curve": curve[:1]}))
    loaded = dict(load_curve(tmp_path / p) for p in ("ckpt", "run", "study.json"))
    assert [len(c) for c in loaded.values()] == [3, 2, 1] and list(loaded) == ["ckpt", "run", "study"]
    fig = curves_figure(loaded, tasks=("tgit",), x="minutes", chance={"tgit": 20.0})
    ax = fig.axes[0]
    xs = [list(line.get_xdata()) for line in ax.get_lines() if line.get_label() in loaded]
    assert xs[0] == pytest.approx([0.1, 0.2, 0.3])  # minutes
    assert len(xs) == 3
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.json").write_text("{}")
    with pytest.raises(ValueError, match="no learning curve"):
        load_curve(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="neither"):
        load_curve(tmp_path / "missing")
