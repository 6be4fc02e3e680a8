"""Measure a tokenizer checkpoint the way its metrics.json was measured, and draw its pictures.

    python train/evaluate_tokenizer.py checkpoints/tokenizer-grid-tiny
    python train/evaluate_tokenizer.py checkpoints/tokenizer-titok-tiny --figure docs/tokenizers/titok.png

Prints the test-split and fixed-batch metrics (fuselip.tokenizers.evaluation.shipped_metrics) next to the
ones stored in metrics.json; `--update-metrics` writes the new ones there. `--figure PATH` writes original | tokens | reconstruction for two test images
of each world, and PATH with `-influence` added: the per-token influence maps of one emoji test image.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

import fuselip
from fuselip import viz
from fuselip.images import to_tensor, to_uint8
from fuselip.tokenizers.evaluation import fixed_test_batch, psnr, shipped_metrics

FIGURE_IMAGES = (0, 3)   # which fixed-batch images of each world the figure shows
FIGURE_SIZE = 192


def figures(tok, path: Path) -> None:
    batch = fixed_test_batch(tok.config.image_size)
    grid = getattr(tok, "grid_size", None)
    rows = []
    for world in ("shapes", "emoji"):
        for i in FIGURE_IMAGES:
            x = to_tensor(batch[world][i:i + 1])
            codes = tok.encode(x)
            recon = tok.decode(codes)
            rows.append(viz.reconstruction_row(batch[world][i], codes[0].tolist(), to_uint8(recon)[0], grid=grid,
                                               size=FIGURE_SIZE, psnr=float(psnr(recon, x)[0])))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(viz.reconstruction_sheet(rows)).save(path)
    image = batch["emoji"][FIGURE_IMAGES[0]]
    codes = tok.encode(to_tensor(image[None]))[0]
    sheet = viz.influence_sheet(image, tok.influence_maps(codes), codes.tolist(), columns=8)
    influence = path.with_name(path.stem + "-influence" + path.suffix)
    Image.fromarray(sheet).save(influence)
    print(f"wrote {path} and {influence}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--figure", default=None, metavar="PATH.png")
    parser.add_argument("--update-metrics", action="store_true",
                        help="write the re-measured test and fixed-batch figures into the checkpoint's metrics.json "
                             "(after a change to the data generators moved the evaluation images)")
    args = parser.parse_args(argv)
    tok = fuselip.load_model(args.checkpoint)
    measured = shipped_metrics(tok, tok.config.image_size)
    print("measured:", json.dumps({k: measured[k] for k in ("test", "fixed_batch")}, indent=2))
    if tok.metrics:
        print("metrics.json:", json.dumps({k: tok.metrics.get(k) for k in ("test", "fixed_batch")}, indent=2))
    if args.update_metrics:
        path = Path(args.checkpoint) / "metrics.json"
        metrics = json.loads(path.read_text()) if path.exists() else {}
        metrics.update(measured, remeasured_by=f"python train/evaluate_tokenizer.py {args.checkpoint} --update-metrics")
        path.write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"updated {path}")
    if args.figure:
        figures(tok, Path(args.figure))


if __name__ == "__main__":
    main()
