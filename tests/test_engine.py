"""The training engine: exact resume, DDP == single process, the learning curve, a curriculum, learning at all."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import fuselip_helpers as H
from fuselip import engine

ROOT = Path(__file__).resolve().parents[1]


def test_logit_scale_is_clamped_after_a_step(tmp_path):
    model = H.model()
    with torch.no_grad():
        model.logit_scale.fill_(9.0)
    cfg = H.run_config(steps=1)
    engine.train(model, cfg, H.pairs(12), out_dir=tmp_path, progress=False)
    assert model.logit_scale.detach() <= torch.tensor(cfg.encoder.max_logit_scale)  # (float32 rounding)


def test_resume_is_exact(tmp_path):
    cfg = H.run_config(steps=6, batch=8, precision="bf16")  # bf16 autocast, MMM on: the full training step
    pairs = H.pairs(20)
    straight = H.model()
    summary = engine.train(straight, cfg, pairs, out_dir=tmp_path / "a", progress=False)
    assert summary["step"] == 6 and summary["last"]["mmm"] > 0
    first = H.model()
    engine.train(first, cfg, pairs, out_dir=tmp_path / "b", progress=False, stop_at=3)
    assert not all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), straight.state_dict().values()))
    resumed = H.model(seed=7)  # a different init: everything must come from the checkpoint
    second = engine.train(resumed, cfg, pairs, out_dir=tmp_path / "b", progress=False, resume=True)
    # the reported training time is that of all six steps: the first run's (saved in the checkpoint) + this one's
    assert second["resumed_from_step"] == 3 and second["steps_run"] == 3
    assert second["wall_time_s"] > second["wall_time_this_run_s"] > 0
    assert second["pairs_per_s"] == pytest.approx(3 * 8 / second["wall_time_this_run_s"])  # this run's throughput
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different


def test_torchrun_two_processes_equal_one_process(tmp_path):
    sys.path.insert(0, str(ROOT / "tests"))
    from ddp_step import one_step
    single = one_step(str(tmp_path / "single"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    out = tmp_path / "ddp"
    out.mkdir()
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(ROOT / "tests" / "ddp_step.py"), str(out)], env=env, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = load_file(str(out / "step.safetensors"))
    assert single.keys() == ddp.keys()
    assert single["loss.mmm"] > 0
    for key in single:
        torch.testing.assert_close(ddp[key].double(), single[key].double(), atol=1e-5, rtol=1e-5, msg=key)


def test_duplicates_can_count_as_negatives():
    """train.duplicates: identical right sides are positives of each other ("positive"), or only a row's own target
    is ("negative", the reference code)."""
    model = H.model()
    pairs = H.pairs(12)
    batch = model.collate(pairs[:8])
    batch["right_key"][1] = batch["right_key"][0]  # pretend rows 0 and 1 share their target
    left, right = torch.nn.functional.normalize(torch.randn(2, 8, 32), dim=-1)
    model.forward_pairs = lambda batch, generator=None: (left, right, {})
    from fuselip.losses import siglip_loss
    for duplicates, extra in (("positive", True), ("negative", False)):
        _, parts = engine.PairLoss(model, duplicates=duplicates)(batch)
        positives = torch.eye(8, dtype=torch.bool)
        positives[0, 1] = positives[1, 0] = extra
        torch.testing.assert_close(parts["siglip"], siglip_loss(left, right, model.logit_scale, model.logit_bias,
                                                                 positives))
    with pytest.raises(ValueError, match="train.duplicates"):
        engine.PairLoss(model, duplicates="ignore")


def test_the_learning_curve_is_recorded_and_survives_a_resume(tmp_path):
    """Every validation is a point of the curve: step, pairs seen, training seconds (validation excluded), metrics;
    a resumed run keeps the points up to its checkpoint."""
    cfg = H.run_config(steps=6, batch=8, val_every=2, checkpoint_every=2)
    calls = []

    def val_fn(model):
        calls.append(1)
        return {"mean/tgit": float(len(calls))}
    engine.train(H.model(), cfg, H.pairs(20), val_fn, out_dir=tmp_path, progress=False, stop_at=4)
    summary = engine.train(H.model(), cfg, H.pairs(20), val_fn, out_dir=tmp_path, progress=False, resume=True)
    curve = summary["val_history"]
    assert [p["step"] for p in curve] == [2, 4, 6]
    assert [p["pairs_seen"] for p in curve] == [16, 32, 48]
    seconds = [p["train_seconds"] for p in curve]
    assert seconds == sorted(seconds) and seconds[0] >= 0
    lines = (tmp_path / "validation.jsonl").read_text().splitlines()
    assert len(lines) == 3  # the first run's validation at step 4 is not repeated


def test_curriculum_first_phase_draws_only_the_named_pairs_and_resumes_exactly(tmp_path):
    pairs = H.pairs(40)  # captions and transformations
    cfg = H.run_config(steps=8, batch=8)
    cfg.data.curriculum_first, cfg.data.curriculum_until = ["caption"], 0.5
    trainer = engine.Trainer(H.model(), cfg, pairs, out_dir=tmp_path / "t", progress=False)
    drawn = []
    for step in range(8):
        trainer.step = step
        drawn.append({pairs[i].task for i in trainer.next_batch()})
    assert all(tasks == {"caption"} for tasks in drawn[:4])
    assert any(tasks != {"caption"} for tasks in drawn[4:])
    straight = H.model()
    engine.train(straight, cfg, pairs, out_dir=tmp_path / "a", progress=False)
    engine.train(H.model(), cfg, pairs, out_dir=tmp_path / "b", progress=False, stop_at=4)  # stops at the switch
    resumed = H.model(seed=3)
    engine.train(resumed, cfg, pairs, out_dir=tmp_path / "b", progress=False, resume=True)
    a, b = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    cfg.data.curriculum_first = ["emoji"]
    with pytest.raises(ValueError, match="curriculum_first"):
        engine.Trainer(H.model(), cfg, pairs, out_dir=tmp_path / "c", progress=False)


def test_a_tiny_model_overfits_one_batch(tmp_path):
    """Training learns: 8 pairs (a word -> a two-word text, each its own group, so every step sees the same one
    batch), a tiny FuseLIP: the loss halves and in-batch retrieval (left -> its right, and back) becomes perfect.
    (Texts, not images: the tiny test tokenizer is untrained and gives every image the same codes.)"""
    from fuselip.data.types import Pair, Side
    from fuselip.retrieval import encode_sides
    lefts = ["red", "blue", "green", "star", "circle", "square", "left", "right"]
    rights = ["small cross", "large heart", "the moon", "a cup", "two dogs", "one tree", "big house", "old car"]
    pairs = [Pair(Side(None, lefts[g]), Side(None, rights[g]), "caption", g) for g in range(8)]
    cfg = H.run_config(steps=120, batch=8, lr=3e-3, warmup_steps=2)
    model = H.model()
    summary = engine.train(model, cfg, pairs, out_dir=tmp_path, progress=False)
    first, last = summary["history"][0]["loss"], summary["history"][-1]["loss"]
    assert last < 0.5 * first, (first, last)
    model.eval()
    left = encode_sides(model, [p.left for p in pairs])                   # (8, D)
    right = encode_sides(model, [p.right for p in pairs])                 # (8, D)
    scores = left @ right.T
    assert scores.argmax(dim=1).tolist() == list(range(8)) and scores.argmax(dim=0).tolist() == list(range(8))


def test_a_checkpoint_whose_config_has_more_keys_resumes_one_that_differs_does_not():
    """A run checkpoint written before a setting moved (a FuseLIP run's encoder section also holding the
    late-fusion fields at their defaults) is the same model; a differing or missing value is not."""
    saved = {"encoder": {"width": 32, "vision_stem": "patch"}, "tokenizer_checkpoint": "x"}
    assert engine._same_setting(saved["encoder"], {"width": 32})
    assert not engine._same_setting(saved["encoder"], {"width": 64})
    assert not engine._same_setting(saved["encoder"], {"width": 32, "mmm_pass": "clean"})
    assert engine._same_setting(saved["tokenizer_checkpoint"], "x") and not engine._same_setting(None, "x")
