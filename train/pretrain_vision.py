"""Pretrain a late-fusion baseline's ViT as a masked autoencoder (fuselip/mae.py) on the tokenizers' image pool.

    python train/pretrain_vision.py --baseline tiny-sf --ship runs/mae/ship/vit-sf-tiny
    python train/pretrain_vision.py --baseline tiny-mlf --encoder.vision_stem=conv --resume
    python train/train_baseline.py --preset tiny-sf --encoder.vision_init=runs/mae/ship/vit-sf-tiny

`--baseline` names the baseline preset whose ViT is pretrained (its `encoder` section: width, depth, heads,
patch, stem); `--preset` the pretraining recipe in fuselip/presets/mae/ (data pool, steps, masking, decoder).
The tiny recipe matches the grid tokenizer's own pretraining: the same 16,000 training images of both worlds,
3,000 steps of 64. The run's checkpoint (model + exact train state) is `<train.out_dir>/checkpoint` (default
runs/mae-<baseline>), written by the engine that trains every model of the project; `--resume` continues it
bit-exactly; `--ship DIR` writes the final model with a
metrics.json that holds this command line, ready for `--encoder.vision_init=DIR`.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuselip import config, image_training, mae  # noqa: E402
from fuselip.optim import describe_precision  # noqa: E402
from fuselip.ship import ship  # noqa: E402
from fuselip.tokenizers import pool  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, choices=config.preset_names("baseline"),
                        help="the baseline preset whose image tower is pretrained")
    parser.add_argument("--preset", default="tiny", choices=config.preset_names("mae"))
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in train.out_dir")
    parser.add_argument("--ship", default=None, metavar="DIR", help="write the final model to DIR")
    parser.add_argument("--no-progress", action="store_true")
    config.add_override_arguments(parser, "mae")
    args = parser.parse_args(argv)

    recipe = config.load_preset("mae", args.preset)
    recipe.encoder = config.load_preset("baseline", args.baseline).encoder
    if not recipe.train.out_dir:
        recipe.train.out_dir = f"runs/mae-{args.baseline}"
    with config.config_errors_exit(parser):
        cfg = config.apply_overrides(recipe, args)
    print(config.dump(cfg, "mae"))
    print(describe_precision(cfg.train.precision, cfg.train.device))

    images, val = pool.train_and_val(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = mae.build_mae(cfg)
    summary = image_training.train(model, cfg, images, mae.validation_fn(val), resume=args.resume,
                                   progress=not args.no_progress)
    if args.ship:
        metrics = {**summary["val"], "train_loss": round(summary["last"]["loss"], 4),
                   "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
                   "parameters_vit": sum(p.numel() for p in model.visual.parameters())}
        ship(model, args.ship, metrics, dtype=None)
        print(f"shipped {args.ship}: {metrics}")


if __name__ == "__main__":
    main()
