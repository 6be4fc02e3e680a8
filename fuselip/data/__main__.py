"""Look at the data: contact sheets of training pairs or evaluation items for any world and task.

    python -m fuselip.data preview --world shapes --task tgit --n 16 --out FILE.png
    python -m fuselip.data preview --world emoji --task edit --eval --out FILE.png   # eval items
    python -m fuselip.data preview --csv my.csv --task tgit --out FILE.png           # your own images
    python -m fuselip.data preview-all --out docs/tasks                             # one PNG per world × task
    python -m fuselip.data preview --world emoji --task edit --eval --objects 9 --out FILE.png   # 9 objects each
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fuselip.config import DataConfig
from fuselip.data.tasks import TASKS, WORLDS, eval_items, sample_pairs


def preview_image(world: str, task: str, n: int = 16, split: str = "train", seed: int = 0, image_size: int = 64,
                  evaluation: bool = False, csv: str = "", folder: str = "", skip_bad: bool = False, objects=()):
    """The contact sheet as a PIL image (the app can show it too). objects: the scenes' object counts (1..9;
    () = each world's own range)."""
    from fuselip import viz
    if csv or folder:
        from fuselip.data import files
        data = files.read_user_data(csv, folder, image_size, skip_bad=skip_bad)
        if evaluation:
            return viz.eval_sheet(files.tgit_eval_items(data, n, seed), title=f"your data · tgit · {data.summary()}")
        if task == "caption":
            pairs = files.caption_pairs(data)[:n]
        elif task == "tgit":
            pairs = files.tgit_pairs(data, seed=seed)[:n]
        else:
            raise SystemExit(f"user data supports --task caption or tgit, not {task!r}")
        return viz.pair_sheet(pairs, title=f"your data · {task} · {data.summary()}")
    counted = f" · {','.join(map(str, objects))} objects" if len(objects) else ""
    if evaluation:
        items = eval_items(world, task, split, n, seed, image_size, objects=tuple(objects))
        return viz.eval_sheet(items, title=f"{world} · {task} · {split} evaluation items{counted} (correct candidate "
                                           f"framed)")
    config = DataConfig(worlds=[world], world_weights=[1.0], task_weights={task: 1.0}, image_size=image_size,
                        objects=list(objects))
    pairs = sample_pairs(config, split, n, seed)
    return viz.pair_sheet(pairs, title=f"{world} · {task} · {split} training pairs{counted} (query -> target)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fuselip.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("preview", help="contact sheet of one world and task")
    one.add_argument("--world", choices=WORLDS, default="shapes")
    one.add_argument("--task", choices=TASKS, default="tgit")
    one.add_argument("--out", required=True, help="PNG file to write")
    every = sub.add_parser("preview-all", help="one PNG per (world, task) into a folder")
    every.add_argument("--out", default="docs/tasks", help="folder")
    for p in (one, every):
        p.add_argument("--n", type=int, default=16)
        p.add_argument("--split", choices=("train", "val", "test"), default="train")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--image-size", type=int, default=64)
        p.add_argument("--eval", action="store_true", help="draw evaluation items instead of training pairs")
        p.add_argument("--objects", default="", help="objects per scene, e.g. 9 or 1-9 (default: each world's own "
                                                     "range, shapes 1-3 and emoji 2-4)")
    one.add_argument("--csv", default="", help="your CSV (filepath<TAB>title) instead of a world")
    one.add_argument("--folder", default="", help="your image folder instead of a world")
    one.add_argument("--skip-bad", action="store_true", help="skip (and count) bad rows instead of stopping")
    args = parser.parse_args(argv)
    objects: tuple[int, ...] = ()
    if args.objects:
        from fuselip.data.world import parse_counts
        try:
            objects = parse_counts(args.objects)
        except ValueError as e:
            parser.error(f"--objects: {e}")

    if args.command == "preview":
        sheet = preview_image(args.world, args.task, args.n, args.split, args.seed, args.image_size, args.eval,
                              args.csv, args.folder, args.skip_bad, objects)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.out, optimize=True)
        print(f"wrote {args.out} ({sheet.width}×{sheet.height})")
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for world in WORLDS:
        for task in TASKS:
            if task == "position" and objects and max(objects) < 2:
                continue  # no position task without two objects
            sheet = preview_image(world, task, args.n, args.split, args.seed, args.image_size, args.eval,
                                  objects=objects)
            path = out / f"{world}_{task}{'_eval' if args.eval else ''}.png"
            sheet.save(path, optimize=True)
            print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
