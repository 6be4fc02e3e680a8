"""Train a late-fusion baseline: `python train/train_baseline.py --preset tiny-sf|tiny-mlf [--section.field=value …]
[--device cuda] [--resume] [--ship checkpoints/siglip-sf-tiny]`. Multi-process: `torchrun --nproc_per_node N …`.

The same command line, engine, data mixture, validation and shipping as train/train_fuselip.py
(train/cli.py); only the model differs: fuselip.baselines (SigLIP dual encoder + SF or MLF fusion).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # train/cli.py, also when run through runpy

from fuselip.baselines import build_baseline  # noqa: E402
from cli import main  # noqa: E402  (train/cli.py)

if __name__ == "__main__":
    main(None, "baseline", build_baseline, default_preset="tiny-sf", description=__doc__)
