"""Train an image tokenizer (2-D VQ grid or 1-D TiTok) on images of both worlds.

    python train/train_tokenizer.py --preset tiny-grid
    python train/train_tokenizer.py --preset tiny-titok             # 32 tokens, on the grid's proxy codes
    python train/train_tokenizer.py --preset tiny-titok-64 --resume  # 64 tokens; continue an interrupted run
    python train/train_tokenizer.py --preset tiny-grid --csv my.csv --image-folder photos/   # + your images
    python train/train_tokenizer.py --preset tiny-grid --ship checkpoints/tokenizer-grid-tiny

The run's checkpoint (model + exact train state) is `<train.out_dir>/checkpoint`, written by the engine that
trains every model of the project (fuselip.engine); `--resume` continues it bit-exactly.
TiTok is trained as TiTok is trained (fuselip/tokenizers/titok.py): its decoder first predicts the codes of the
frozen grid tokenizer `tokenizer.proxy_checkpoint` (cross-entropy), then, for the last `tokenizer.pixel_finetune`
of the steps, learns on pixels; the grid tokenizer must exist first (`--preset tiny-grid`).
`--ship DIR` then evaluates the final model on the test split (fuselip.tokenizers.evaluation) and writes a
shipped checkpoint folder: config.json, model.safetensors, metrics.json (with this command line).
"""
from __future__ import annotations

import argparse
import shlex
import sys

from fuselip import config, image_training
from fuselip.optim import describe_precision
from fuselip.ship import ship
from fuselip.tokenizers import evaluation, pool, training


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", required=True, choices=config.preset_names("tokenizer"))
    parser.add_argument("--csv", default=None, help="optional CSV of (filepath, title) images to add to the pool")
    parser.add_argument("--image-folder", default=None, help="optional folder of images to add to the pool")
    parser.add_argument("--resume", action="store_true", help="continue the checkpoint in train.out_dir")
    parser.add_argument("--ship", default=None, metavar="DIR", help="evaluate on the test split and write DIR")
    parser.add_argument("--no-progress", action="store_true")
    config.add_override_arguments(parser, "tokenizer")
    args = parser.parse_args(argv)

    with config.config_errors_exit(parser):
        cfg = config.apply_overrides(config.load_preset("tokenizer", args.preset), args)
    if args.csv:
        cfg.data.csv = args.csv
    if args.image_folder:
        cfg.data.image_folder = args.image_folder
    print(config.dump(cfg, "tokenizer"))
    print(describe_precision(cfg.train.precision, cfg.train.device))

    images, val = pool.train_and_val(cfg.data)
    model = training.build(cfg)
    summary = image_training.train(model, cfg, images, training.validation_fn(val), resume=args.resume,
                                   progress=not args.no_progress)
    model.reconstruct = True
    if args.ship:
        metrics = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
                   "train_seconds": summary["wall_time_s"], "train_steps": summary["step"],
                   "weights": "float16 on disk, float32 in memory",
                   "machine": "2 shared CPU cores (heavily loaded by other jobs while training)"}
        ship(model, args.ship, metrics, lambda loaded: evaluation.shipped_metrics(loaded, loaded.config.image_size))
        print(f"shipped {args.ship}")


if __name__ == "__main__":
    main()
