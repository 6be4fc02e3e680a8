"""Training throughput (pairs/s) of FuseLIP-tiny and the late-fusion models SF-tiny and MLF-tiny, in one run.

Each model takes real engine steps (fuselip.engine.Trainer: collate -> forward_pairs -> SigLIP (+ MMM for
FuseLIP) -> backward -> clip -> AdamW) on the SAME global batches of real training pairs, with the settings of
its tiny preset (batch 128, bf16 autocast). Repetitions are interleaved (FuseLIP, SF, MLF, FuseLIP, …) so a
busy machine slows all three alike; each figure is the median over repetitions. As in a training run,
FuseLIP's image tokens are computed once before timing (TokenCache); the baselines read pixels (and encode
each distinct image of a batch once). The anchor is MLF, the stronger late-fusion baseline. FuseLIP-tiny-late, the
ablation that fuses late over the same tokens (`encoder.fusion="score"`), runs beside them: the price of fusing early.

    python benchmarks/train_throughput.py [--steps 3] [--reps 5] [--threads 0] [--batch-size 128]

Last line: `fuselip_vs_mlf_pairs_per_s=X.XX` = FuseLIP-tiny pairs/s / MLF-tiny pairs/s (> 1: FuseLIP is faster).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuselip.baselines import build_baseline, effective_parameters  # noqa: E402
from fuselip.config import load_preset  # noqa: E402
from fuselip.data.tasks import sample_pairs  # noqa: E402
from fuselip.engine import Trainer  # noqa: E402
from fuselip.sampler import GroupBatchSampler  # noqa: E402
from fuselip.model import build_fuselip  # noqa: E402

MODELS = {"fuselip-tiny": ("fuselip", "tiny"), "siglip-sf-tiny": ("baseline", "tiny-sf"),
          "siglip-mlf-tiny": ("baseline", "tiny-mlf"), "fuselip-tiny-late": ("fuselip", "tiny-late")}


def build(family: str, preset: str, args, out_dir: Path, pairs):
    cfg = load_preset(family, preset)
    cfg.train.batch_size = args.batch_size or cfg.train.batch_size
    cfg.train.threads = args.threads
    cfg.train.out_dir = str(out_dir / preset)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an untrained tokenizer is as fast as a trained one
        model = build_fuselip(cfg) if family == "fuselip" else build_baseline(cfg)
    trainer = Trainer(model, cfg, pairs, progress=False)
    trainer.prepare()  # FuseLIP: every image tokenised once, like a run does before its first step
    return cfg, trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="timed engine steps per model per repetition")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--batch-size", type=int, default=0, help="0: the presets' batch (128)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    reference = load_preset("fuselip", "tiny")
    batch = args.batch_size or reference.train.batch_size
    n_batches = args.steps + 1
    pairs = sample_pairs(reference.data, "train", batch * (n_batches + 1), reference.data.seed)
    batches = GroupBatchSampler([p.group for p in pairs], batch, seed=0).epoch(0)[:n_batches]

    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: build(family, preset, args, Path(tmp), pairs) for name, (family, preset) in MODELS.items()}
        precision = next(iter(runs.values()))[1].precision  # train.precision as resolved on this host
        print(f"batch {batch}, {args.steps} steps x {args.reps} interleaved repetitions, "
              f"precision {precision} ({reference.train.precision}), torch threads {torch.get_num_threads()}")
        for name, (cfg, trainer) in runs.items():
            print(f"  {name:16s} {cfg.encoder.kind:10s} {effective_parameters(trainer.model):>10,d} parameters "
                  f"(trainable, seen vocabulary rows only)")
            trainer.backward(batches[-1], 0)  # warm-up step (allocator, autocast caches), not timed
            trainer.optimizer_step(0)

        rates: dict[str, list[float]] = {name: [] for name in runs}
        for rep in range(args.reps):
            for name, (cfg, trainer) in runs.items():
                start = time.perf_counter()
                for step in range(args.steps):
                    trainer.backward(batches[step], step + 1)
                    trainer.optimizer_step(step + 1)
                rates[name].append(args.steps * batch / (time.perf_counter() - start))
            print(f"  rep {rep + 1}: " + ", ".join(f"{n} {r[-1]:.1f}" for n, r in rates.items()), flush=True)

    median = {name: statistics.median(r) for name, r in rates.items()}
    print()
    print("| model | training pairs/s (median) | min | max |")
    print("|---|---:|---:|---:|")
    for name, r in rates.items():
        print(f"| {name} | {median[name]:.1f} | {min(r):.1f} | {max(r):.1f} |")
    print(f"fuselip_vs_late_pairs_per_s={median['fuselip-tiny'] / median['fuselip-tiny-late']:.2f}")
    print(f"fuselip_vs_sf_pairs_per_s={median['fuselip-tiny'] / median['siglip-sf-tiny']:.2f}")
    print(f"fuselip_vs_mlf_pairs_per_s={median['fuselip-tiny'] / median['siglip-mlf-tiny']:.2f}")


if __name__ == "__main__":
    main()
