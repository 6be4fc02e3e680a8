"""The command line of the pair models, shared by train/train_fuselip.py and train/train_baseline.py:

    --preset NAME [--section.field=value …] [--device D] [--resume] [--ship DIR] [--name N] [--no-val]

config + overrides, the training set (fuselip.data.tasks.sample_pairs), every image tokenised once (on-disk
cache), the engine (fuselip.engine.train), validation, runs/<name>/, and optionally the compact shipped
checkpoint (fuselip.pair_training.ship_run).
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuselip import checkpoint as ckpt  # noqa: E402
from fuselip.config import (RunConfig, TokenizerConfig, add_override_arguments, apply_overrides,  # noqa: E402
                            config_errors_exit, dump, from_dict, load_preset, to_dict)
from fuselip.data.collate import cache_file  # noqa: E402
from fuselip.data.tasks import sample_pairs  # noqa: E402
from fuselip.engine import train  # noqa: E402
from fuselip.optim import describe_precision  # noqa: E402
from fuselip.pair_training import ReadsImageTokens, ship_run, validation_fn  # noqa: E402


def main(argv: Sequence[str] | None, family: str, build_model: Callable[[RunConfig], nn.Module],
         default_preset: str = "tiny", description: str = "") -> dict:
    """Parse `--preset NAME [--section.field=value …] [--device D] [--resume] [--ship DIR] [--name N]`, build the
    training set (fuselip.data.tasks.sample_pairs), tokenise its images once (on-disk cache), train, validate,
    write runs/<name>/ and optionally ship a compact checkpoint (config.json, model.safetensors, metrics.json)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--preset", default=default_preset, help=f"preset in fuselip/presets/{family}/")
    parser.add_argument("--name", default="", help="run name: writes runs/<name>/ (default: train.out_dir)")
    parser.add_argument("--device", default="", help="cpu | cuda (shortcut for --train.device)")
    parser.add_argument("--resume", action="store_true", help="continue from runs/<name>/checkpoint if present")
    parser.add_argument("--ship", default="", help="also write a compact checkpoint folder here, e.g. "
                                                   "checkpoints/fuselip-tiny")
    parser.add_argument("--no-val", action="store_true", help="skip validation (smoke runs)")
    parser.add_argument("--cache-dir", default="runs/cache", help="on-disk image-token cache ('' = none)")
    add_override_arguments(parser, family)
    args = parser.parse_args(argv)
    with config_errors_exit(parser):
        cfg = apply_overrides(load_preset(family, args.preset), args)
    if args.device:
        cfg.train.device = args.device
    if args.name:
        cfg.train.out_dir = str(Path("runs") / args.name)
    command = "python " + " ".join(shlex.quote(a) for a in ([sys.argv[0]] + list(argv if argv is not None
                                                                                  else sys.argv[1:])))
    rank0 = int(os.environ.get("RANK", "0")) == 0

    torch.manual_seed(cfg.train.seed)
    with config_errors_exit(parser):  # e.g. a tokenizer_checkpoint that names no folder
        model = build_model(cfg)
    if isinstance(model, ReadsImageTokens):  # the resolved config names the tokenizer actually used
        cfg.tokenizer = from_dict(TokenizerConfig, to_dict(model.tokenizer.config))
    if rank0:
        print(dump(cfg, family), flush=True)
        print(describe_precision(cfg.train.precision, cfg.train.device), flush=True)
    out_dir = Path(cfg.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank0:
        (out_dir / "run_config.json").write_text(dump(cfg) + "\n")

    t0 = time.perf_counter()
    pairs = sample_pairs(cfg.data, "train", cfg.data.train_pairs, cfg.data.seed)
    data_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if isinstance(model, ReadsImageTokens):
        cache = model.token_cache()
        path = cache_file(args.cache_dir, cache, cfg.data) if args.cache_dir else None
        loaded = bool(path) and cache.load(path)
        cache.add_pairs(pairs, progress=rank0)
        if path and rank0 and not loaded:
            cache.save(path)
    tokenise_s = time.perf_counter() - t0
    if rank0:
        print(f"training set: {len(pairs)} pairs in {data_s:.1f}s; image tokens in {tokenise_s:.1f}s", flush=True)

    val_fn = None if args.no_val else validation_fn(cfg)
    summary = train(model, cfg, pairs, val_fn, out_dir=out_dir, resume=args.resume,
                    extra_config={"command": command})
    summary.update(command=command, data_s=data_s, tokenise_s=tokenise_s)
    if rank0:
        record = {k: v for k, v in summary.items() if k != "history"}
        ckpt.write_json_atomic(out_dir / "summary.json", record)
        print(f"done: {summary['steps_run']} steps in {summary['wall_time_s']:.0f}s "
              f"({summary['pairs_per_s']:.1f} pairs/s)", flush=True)
        if args.ship:
            summary["shipped"] = str(ship_run(model, args.ship, summary, val_fn))
    if dist.is_initialized():
        dist.destroy_process_group()
    return summary


SHIP_DTYPE = torch.float16  # shipped weights are half size on disk; their metrics are measured on that copy
