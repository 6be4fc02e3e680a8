"""The benchmark suite on hand-built toy models whose right and wrong answers we choose."""
import math

import numpy as np
import pytest
import torch

from fuselip import evaluate
from fuselip.data.types import EvalItem, Side

DIM = 8


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def image(value: int) -> np.ndarray:
    """A tiny solid image whose content (and so its key) is `value`."""
    return np.full((4, 4, 3), value, dtype=np.uint8)


class TableModel:
    """Embeds a side by looking it up: (image value or None, text) -> a fixed unit vector. Counts calls."""

    def __init__(self, table: dict):
        self.table = table
        self.encoded = 0

    def encode(self, images=None, texts=None):
        n = len(images) if images is not None else len(texts)
        images = images if images is not None else [None] * n
        texts = texts if texts is not None else [None] * n
        rows = []
        for im, text in zip(images, texts):
            key = (None if im is None else int(im[0, 0, 0]), text or "")
            rows.append(torch.nn.functional.normalize(torch.as_tensor(self.table[key], dtype=torch.float32), dim=0))
        self.encoded += n
        return torch.stack(rows)


class ModeModel(torch.nn.Module):
    """A torch module with the encode API that records whether it was training at each call."""

    def __init__(self):
        super().__init__()
        self.modes: list[bool] = []

    def encode(self, images=None, texts=None):
        self.modes.append(self.training)
        n = len(images) if images is not None else len(texts)
        return torch.nn.functional.normalize(torch.ones(n, DIM), dim=1)


def test_sides_are_embedded_in_eval_mode_and_a_training_model_trains_again():
    model = ModeModel().train()
    out = evaluate.embed_unique(model, [Side(None, "a"), Side(None, "b"), Side(None, "a")])
    assert len(out) == 2 and model.modes == [False] and model.training
    model.eval()
    evaluate.embed_unique(model, [Side(None, "a")])
    assert not model.training  # an evaluating model stays in eval mode


def axis(i: int, scale: float = 1.0) -> list[float]:
    v = [0.0] * DIM
    v[i] = scale
    return v


def test_toy_model_is_right_exactly_on_the_items_we_chose():
    # query i = (image i, "q"); candidates = text sides "c{i}a" (correct), "c{i}b", "c{i}c"
    # the model puts the query on axis i, the correct candidate on axis i for items 0 and 2 only
    table, items = {}, []
    for i in range(4):
        table[(i, "q")] = axis(i)
        right = i in (0, 2)
        table[(None, f"c{i}a")] = axis(i) if right else axis((i + 1) % DIM)
        # a close but worse distractor when right (cosine 0.71), the query's own axis when wrong
        table[(None, f"c{i}b")] = [a + b for a, b in zip(axis(i, 0.5), axis(7, 0.5))] if right else axis(i)
        table[(None, f"c{i}c")] = axis(6)
        items.append(EvalItem(Side(image(i), "q"), (Side(None, f"c{i}a"), Side(None, f"c{i}b"), Side(None, f"c{i}c")),
                              task="toy"))
    model = TableModel(table)
    res = evaluate.evaluate(model, lambda w, t: items, worlds=["w"], tasks=["toy"], retrieval=False)
    assert res["worlds"]["w"]["toy"]["top1"] == pytest.approx(50.0)
    assert res["worlds"]["w"]["toy"]["n"] == 4
    assert res["mean"]["toy"] == pytest.approx(50.0)
    assert model.encoded == 4 * 4  # every distinct side once


def test_ties_count_against_the_model_and_duplicates_of_the_correct_candidate_do_not():
    constant = {(i, t): axis(0) for i in range(3) for t in ("q", "")} | {(None, t): axis(0) for t in "abc"}
    items = [EvalItem(Side(image(0), "q"), (Side(None, "a"), Side(None, "b")), task="t")]
    res = evaluate.evaluate(TableModel(constant), lambda w, t: items, worlds=["w"], tasks=["t"], retrieval=False)
    assert res["worlds"]["w"]["t"]["top1"] == 0.0  # a constant model ties everywhere -> 0 %, not 100 %

    # the second candidate has the same content as the correct one (e.g. the flip of a symmetric scene):
    # it is one candidate, so the tie between the two cannot count against the model
    dup = [EvalItem(Side(image(0), "q"), (Side(image(1)), Side(image(1)), Side(None, "c")), task="t")]
    table = {(0, "q"): axis(0), (1, ""): axis(0), (None, "c"): axis(1)}
    res = evaluate.evaluate(TableModel(table), lambda w, t: dup, worlds=["w"], tasks=["t"], retrieval=False)
    assert res["worlds"]["w"]["t"]["top1"] == 100.0


def test_a_task_with_kinds_is_the_mean_over_its_kinds():
    table = {(0, "q"): axis(0), (None, "good"): axis(0), (None, "bad"): axis(1)}
    right = EvalItem(Side(image(0), "q"), (Side(None, "good"), Side(None, "bad")), task="t", kind="A")
    wrong = EvalItem(Side(image(0), "q"), (Side(None, "bad"), Side(None, "good")), task="t", kind="A")
    also_right = EvalItem(Side(image(0), "q"), (Side(None, "good"), Side(None, "bad")), task="t", kind="B")
    items = [right, wrong, also_right]
    res = evaluate.evaluate(TableModel(table), lambda w, t: items, worlds=["w"], tasks=["t"], retrieval=False)
    entry = res["worlds"]["w"]["t"]
    assert entry["kinds"] == {"A": {"top1": 50.0, "n": 2}, "B": {"top1": 100.0, "n": 1}}
    assert entry["top1"] == pytest.approx(75.0)  # mean over kinds, not 2 of 3 items


def test_retrieval_on_a_gallery_with_known_ranks():
    # 3 images with captions; image 2's caption is closer to image 1 than image 1's own caption is
    table = {(0, ""): axis(0), (1, ""): axis(1), (2, ""): axis(2),
             (None, "zero"): axis(0), (None, "one"): [0, 0.6, 0.8, 0, 0, 0, 0, 0], (None, "two"): axis(2)}
    items = [EvalItem(Side(image(i)), (Side(None, t), Side(None, "distractor")), task="caption")
             for i, t in enumerate(["zero", "one", "two"])]
    table[(None, "distractor")] = axis(5)
    res = evaluate.evaluate(TableModel(table), lambda w, t: items, worlds=["w"], tasks=["caption"])
    kinds = res["worlds"]["w"]["retrieval"]["kinds"]
    # image->text: image 0 -> zero ✓, image 1 -> one (0.6) ✓ (two scores 0), image 2 -> two (1.0) ✓
    assert kinds["image_to_text"] == {"top1": 100.0, "n": 3}
    # text->image: zero -> 0 ✓, one -> image 2 (0.8 > 0.6) ✗, two -> 2 ✓
    assert kinds["text_to_image"]["top1"] == pytest.approx(200 / 3)
    assert res["worlds"]["w"]["retrieval"]["top1"] == pytest.approx((100 + 200 / 3) / 2)
    assert res["worlds"]["w"]["caption"]["top1"] == 100.0


def test_retrieval_counts_any_image_of_a_shared_caption_as_correct():
    table = {(0, ""): axis(0), (1, ""): axis(1), (None, "same"): [0.6, 0.8] + [0] * 6}
    items = [EvalItem(Side(image(i)), (Side(None, "same"),), task="caption") for i in range(2)]
    res = evaluate.evaluate(TableModel(table), lambda w, t: items, worlds=["w"], tasks=["caption"])
    kinds = res["worlds"]["w"]["retrieval"]["kinds"]
    assert kinds["text_to_image"] == {"top1": 100.0, "n": 1}  # one distinct caption, either image is right
    assert kinds["image_to_text"] == {"top1": 100.0, "n": 2}  # the only caption is every image's


def test_tables_render_every_model_and_row():
    a = {"worlds": {"s": {"tgit": {"top1": 90.0, "n": 2, "kinds": {"crop": {"top1": 80.0, "n": 1},
                                                                    "flip": {"top1": 100.0, "n": 1}}}},
                    "e": {"tgit": {"top1": 70.0, "n": 1, "kinds": {"crop": {"top1": 70.0, "n": 1}}}}}}
    a["mean"] = evaluate.summary(a)
    b = {"worlds": {"s": {"tgit": {"top1": 50.0, "n": 2, "kinds": {}},
                          "vqa": {"top1": 25.0, "n": 4, "kinds": {}}}}}
    b["mean"] = evaluate.summary(b)
    assert a["mean"]["tgit"] == 80.0
    table = evaluate.to_markdown(a)
    assert "| tgit | 90.0 | 70.0 | 80.0 |" in table
    assert "| tgit: crop | 80.0 | 70.0 | 75.0 |" in table
    assert "| tgit: flip | 100.0 | – | 100.0 |" in table
    side_by_side = evaluate.compare({"fuselip": a, "sf": b})
    assert "| tgit | 80.0 | 50.0 |" in side_by_side
    assert "| vqa | – | 25.0 |" in side_by_side
    with_delta = evaluate.compare({"seed 0": a, "seed 1": b}, world="s", delta=True)
    assert "| tgit | 90.0 | 50.0 | -40.0 |" in with_delta and "| vqa | – | 25.0 | – |" in with_delta
    assert evaluate.max_delta(a, b) == (40.0, "s/tgit")
    flat = evaluate.flat_metrics(a)
    assert flat["s/tgit/flip"] == 100.0 and flat["mean/tgit"] == 80.0
    assert not any(math.isnan(v) for v in flat.values())


# ---------------------------------------------------------------------------------------------
# every shipped checkpoint reproduces the benchmark slice recorded in its metrics.json

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.parent for p in (ROOT / "checkpoints").glob("*/metrics.json")
                 if "benchmark_slice" in __import__("json").loads(p.read_text()))


@pytest.mark.slow
@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_checkpoint_reproduces_its_benchmark_slice(folder):
    import json

    from fuselip.checkpoint import load_model
    stored = json.loads((folder / "metrics.json").read_text())["benchmark_slice"]
    again = evaluate.measure_slice(load_model(folder), **stored["settings"])
    one_item = 100.0 / stored["settings"]["n_items"]  # a near-tie may flip on other float hardware
    for key, value in stored["results"].items():
        assert abs(again["results"][key] - value) <= one_item + 1e-9, (key, value, again["results"][key])


class SideModel:
    """Embeds a side by its content key: a dict Side.key() -> vector; anything else -> `default(side)`."""

    def __init__(self, table: dict, default):
        self.table, self.default = table, default

    def encode(self, images=None, texts=None):
        n = len(images) if images is not None else len(texts)
        images = images if images is not None else [None] * n
        texts = texts if texts is not None else [None] * n
        rows = [self.table.get(Side(im, t or "").key()) for im, t in zip(images, texts)]
        rows = [r if r is not None else self.default(Side(im, t or "")) for r, im, t in zip(rows, images, texts)]
        return torch.nn.functional.normalize(torch.as_tensor(rows, dtype=torch.float32), dim=1)


def test_position_binding_of_a_text_blind_model_and_of_an_oracle():
    items = list(evaluate.benchmark_items("test", 12, 0, position_twins="size")("shapes", "position"))
    answers = {"small": axis(0), "large": axis(1)}

    def text_blind(side):  # the image alone decides; it says nothing about either size
        return answers[side.text] if side.image is None else axis(2 + int(side.image.sum()) % (DIM - 2))
    blind = evaluate.position_binding(SideModel({}, text_blind), n_items=12, worlds=["shapes"])["shapes"]
    assert blind["n"] == len(items)
    assert blind["left_right_cosine"] == pytest.approx(1.0)
    assert blind["size_question_top1"] == 0.0  # both answers tie: ties count against the model

    table = {}
    for item in items:  # knows each side's object: "left" and "right" queries orthogonal, sizes answered right
        phrase, side = item.query.text.removeprefix("the ").rsplit(" on the ", 1)
        for s, vec in (("left", axis(2)), ("right", axis(3))):
            table[Side(item.query.image, f"the {phrase} on the {s}").key()] = vec
        table[Side(item.query.image, f"what size is the {phrase} on the {side}?").key()] = answers[
            item.meta["object"].size]
    oracle = evaluate.position_binding(SideModel(table, lambda s: answers.get(s.text, axis(4))), n_items=12,
                                       worlds=["shapes"])
    assert oracle["shapes"]["left_right_cosine"] == pytest.approx(0.0)
    assert oracle["shapes"]["size_question_top1"] == 100.0


def test_linear_probe_reads_a_linear_label_and_not_a_random_one():
    g = torch.Generator().manual_seed(0)
    labels = torch.rand(400, generator=g) > 0.5
    features = torch.randn(400, 16, generator=g)
    features[:, 3] += 6.0 * labels  # the label is one direction of the features, with a margin
    assert evaluate.linear_probe_accuracy(features, labels) == 100.0
    random_labels = torch.rand(400, generator=g) > 0.5
    assert 35.0 < evaluate.linear_probe_accuracy(features, random_labels) < 65.0
    with pytest.raises(ValueError, match="features must be"):
        evaluate.linear_probe_accuracy(features, random_labels[:10])
    with pytest.raises(ValueError, match="no train or no test rows"):
        evaluate.linear_probe_accuracy(features[:2], random_labels[:2])


def test_position_binding_probes_find_the_target_size_only_where_the_model_puts_it():
    items = list(evaluate.benchmark_items("test", 40, 0, position_twins="size")("shapes", "position"))
    sizes = {"small": axis(0), "large": axis(1)}
    table = {}
    for item in items:  # the query embeds its target twin's size; crops embed nothing about size
        table[item.query.key()] = sizes[item.meta["object"].size]
        table[item.candidates[0].key()] = axis(2 + len(table) % (DIM - 2))
    binder = evaluate.position_binding(SideModel(table, lambda s: axis(DIM - 1)), n_items=40,
                                       worlds=["shapes"])["shapes"]
    assert binder["query_size_probe"] == 100.0
    assert binder["crop_size_probe"] < 100.0


def test_position_twins_choose_the_test_set_that_evaluate_ranks():
    """evaluate(position_twins="size") ranks the size-twin items; the default is the "appearance" benchmark (a
    model that knows exactly those items is right on all of them and on none of the size twins); both record the
    choice."""
    default_items = evaluate.benchmark_items("test", 4, 0)("emoji", "position")
    assert evaluate.benchmark_twins() == "appearance"
    table = {}
    for item in default_items:
        table[item.query.key()] = axis(0)
        table[item.candidates[0].key()] = axis(0)
    model = SideModel(table, default=lambda side: axis(1))
    default = evaluate.evaluate(model, worlds=["emoji"], tasks=["position"], n_items=4)
    size = evaluate.evaluate(model, worlds=["emoji"], tasks=["position"], n_items=4, position_twins="size")
    assert default["worlds"]["emoji"]["position"]["top1"] == 100.0 and default["position_twins"] == "appearance"
    assert size["worlds"]["emoji"]["position"]["top1"] == 0.0 and size["position_twins"] == "size"


def test_position_twin_ranks_the_target_against_its_twin_only():
    """position_twin: the target against the twin alone. A model that prefers the target to its twin but ranks
    the other crops above both scores 100 there and 0 on the full position task; one that cannot tell the twins
    apart (a late-fusion model: the same vector for both) scores 0 there (ties lose)."""
    items = list(evaluate.benchmark_items("test", 6, 0)("shapes", "position"))
    assert all(item.meta["twin"].key() == item.candidates[1].key() for item in items)
    binder, blind = {}, {}
    for item in items:
        binder[item.query.key()] = blind[item.query.key()] = axis(0)
        binder[item.candidates[0].key()] = axis(0, 0.5)   # the target: above the twin, below the others
        binder[item.meta["twin"].key()] = axis(1)
        blind[item.candidates[0].key()] = blind[item.meta["twin"].key()] = axis(0, 0.5)
    for model, twin_top1 in ((SideModel(binder, lambda side: axis(0)), 100.0),
                             (SideModel(blind, lambda side: axis(2)), 0.0)):
        results = evaluate.evaluate(model, worlds=["shapes"], tasks=["position"], n_items=6)
        shapes = results["worlds"]["shapes"]
        assert shapes[evaluate.TWIN]["top1"] == twin_top1 and shapes[evaluate.TWIN]["n"] == len(items)
        assert set(shapes[evaluate.TWIN]["kinds"]) == {"left", "right"}
        assert results["mean"][evaluate.TWIN] == twin_top1
    assert shapes["position"]["top1"] == 0.0  # the blind model: its target ties with the twin
    assert evaluate.evaluate(SideModel(binder, lambda side: axis(0)), worlds=["shapes"], tasks=["position"],
                             n_items=6)["worlds"]["shapes"]["position"]["top1"] == 0.0  # the other crops win there


def test_chance_levels_leave_out_retrieval_like_evaluate():
    """chance_levels(retrieval=False) has the rows of evaluate(..., retrieval=False): no retrieval row."""
    kept = evaluate.chance_levels(worlds=["shapes"], tasks=["caption"], split="val", n_items=4, seed=0)
    left_out = evaluate.chance_levels(worlds=["shapes"], tasks=["caption"], split="val", n_items=4, seed=0,
                                      retrieval=False)
    assert evaluate.RETRIEVAL in kept["worlds"]["shapes"]
    assert evaluate.RETRIEVAL not in left_out["worlds"]["shapes"]
    assert left_out["worlds"]["shapes"]["caption"] == kept["worlds"]["shapes"]["caption"]
