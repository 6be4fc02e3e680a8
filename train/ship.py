"""Ship a finished training run as a compact inference checkpoint, without training again:

    python train/ship.py runs/fuselip-tiny checkpoints/fuselip-tiny
    python train/ship.py runs/siglip-sf-tiny checkpoints/siglip-sf-tiny

Loads the run's training checkpoint (`<run>/checkpoint`, written by fuselip.engine) and its `summary.json`,
re-runs the run's own validation on it (it must reproduce the end-of-training figures exactly, same threads),
then writes config.json + model.safetensors (float16 on disk) + metrics.json through fuselip.pair_training.ship_run,
which measures the validation again on the reloaded half-size copy. `train_fuselip.py --ship` does the same
at the end of a run; this script is for a run that was trained without `--ship` or shipped by older code.
"""
import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuselip import checkpoint as ckpt  # noqa: E402
from fuselip.config import RunConfig, from_dict  # noqa: E402
from fuselip.engine import CHECKPOINT_DIR  # noqa: E402
from fuselip.pair_training import ship_run, validation_fn  # noqa: E402


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a run folder of fuselip.engine (holds checkpoint/ and summary.json)")
    parser.add_argument("out", type=Path, help="where to write the shipped checkpoint folder")
    args = parser.parse_args(argv)

    summary_file = args.run / "summary.json"
    if not summary_file.exists():
        raise SystemExit(f"{summary_file}: missing; the run has not finished (resume it with --resume first)")
    summary = json.loads(summary_file.read_text())
    found = ckpt.read(args.run / CHECKPOINT_DIR)
    if "run" not in found.config:
        raise SystemExit(f"{args.run / CHECKPOINT_DIR}: no 'run' section in its config; not an engine checkpoint")
    cfg = from_dict(RunConfig, found.config["run"], "run")
    if int(summary["step"]) != cfg.train.steps:
        raise SystemExit(f"{summary_file}: the run stopped at step {summary['step']} of {cfg.train.steps}")
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)  # the same kernels as the run's own validation

    model = ckpt.load_model(args.run / CHECKPOINT_DIR)
    val_fn = validation_fn(cfg)
    # the curve point's bookkeeping (step, pairs seen, training seconds) is copied, the metrics are measured again
    again = {k: summary["val"][k] for k in ("step", "pairs_seen", "train_seconds") if k in summary["val"]}
    again |= val_fn(model)
    if again != summary["val"]:
        diff = {k: (summary["val"].get(k), v) for k, v in again.items() if summary["val"].get(k) != v}
        raise SystemExit(f"{args.run}: the training checkpoint does not reproduce its validation: {diff}")
    path = ship_run(model, args.out, summary, val_fn)
    metrics = json.loads((path / ckpt.METRICS_FILE).read_text())
    print(f"shipped {path} (export shift {metrics.get('export_shift', 0.0):.4f}); validation:")
    print(json.dumps(metrics["validation"], indent=1, sort_keys=True))
    return path


if __name__ == "__main__":
    main()
