"""Train FuseLIP: `python train/train_fuselip.py --preset tiny [--section.field=value …] [--device cuda]
[--resume] [--ship checkpoints/fuselip-tiny]`. Multi-process: `torchrun --nproc_per_node N train/train_fuselip.py …`.

Everything happens in train/cli.py and the package: config + overrides, the training set, the image-token
cache, the engine, validation, and the compact shipped checkpoint.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # train/cli.py, also when run through runpy

from cli import main  # noqa: E402  (train/cli.py)
from fuselip.model import build_fuselip  # noqa: E402

if __name__ == "__main__":
    main(None, "fuselip", build_fuselip, description=__doc__)
