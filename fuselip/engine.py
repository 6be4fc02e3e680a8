"""One training loop for every model in the project: FuseLIP, the late-fusion baselines, the image tokenizers and
the MAE-pretrained ViT.

What is trained on what comes from a workload (the `Workload` protocol below): pairs for FuseLIP and the
baselines (fuselip.pair_training.PairData: group-aware batches, the SigLIP + MMM loss, DDP), a pool of images for
the tokenizers and the MAE (fuselip.image_training.ImagePool: random batches, the model's own loss). The loop is
the same for all (shared/PAPER.md): AdamW and its schedule (fuselip.optim), bf16 autocast when train.precision is
"bf16" (or "auto", the default, where bf16 is the faster: CUDA, a CPU with AMX or AVX512-BF16), gradient
clipping, validation through `val_fn(model)` as a learning curve (validation.jsonl), checkpoints written
atomically to <out_dir>/checkpoint (the model's weights, and in extra.safetensors the optimiser state, step,
training seconds, RNG and the workload's position: no pickle), exact resume, and DDP under torchrun (gloo on
CPU, nccl on CUDA; fuselip.distributed).

    train(model, run_config, pairs_or_workload, val_fn, out_dir=..., resume=...) -> summary
"""
from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import torch
import torch.distributed as dist
from torch import nn

from fuselip import checkpoint as ckpt
from fuselip.config import RunConfig, to_dict
from fuselip.contract import Configured
from fuselip.distributed import setup_distributed
from fuselip.optim import autocast, build_optimizer, learning_rate, resolve_precision, trainable_parameters
from fuselip.pair_training import PairData, PairLoss  # noqa: F401  (PairLoss: the loss notebook 03 takes apart)

CHECKPOINT_DIR = "checkpoint"
print_now = functools.partial(print, flush=True)  # the default log: a line as soon as it is known


class Workload(Protocol):
    """What one kind of training gives the loop: its batches, its loss, what it does around a step, its state."""

    unit: str  # what a batch row is ("pairs", "images"): names the throughput and the learning curve's x axis

    @property
    def split_groups(self) -> int: ...  # hard-negative groups the sampler had to split (0 where there are none)

    def prepare(self) -> None: ...  # once, after a resume, before the first step

    def next_batch(self, step: int) -> Any: ...  # what the step trains on (pair indices, image indices)

    def loss(self, batch: Any, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...

    def before_step(self, step: int) -> None: ...

    def after_step(self, step: int) -> None: ...  # after the optimiser step

    def log_items(self) -> dict[str, float]: ...  # extra entries of a history record

    def state(self) -> dict[str, torch.Tensor]: ...  # its position, for exact resume

    def load_state(self, state: dict[str, torch.Tensor], step: int) -> None: ...


class Trainer:
    """train(...) below is the usual entry; the class exposes single steps for tests, notebooks and benchmarks."""

    def __init__(self, model: nn.Module, cfg: RunConfig, data: Sequence | Workload, *,
                 val_fn: Callable[[nn.Module], dict] | None = None, out_dir: str | Path | None = None,
                 progress: bool = True, extra_config: dict | None = None, log: Callable[[str], None] = print_now):
        self.cfg = cfg
        self.dist = setup_distributed(cfg.train.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.batch_size % self.dist.world:
            raise ValueError(f"train.batch_size {cfg.train.batch_size} is not divisible by {self.dist.world} ranks")
        torch.manual_seed(cfg.train.seed)
        if not isinstance(model, Configured):
            raise TypeError(f"{type(model).__name__} cannot be checkpointed: it has no checkpoint_kind/config_dict "
                            f"(fuselip.contract.Configured; register the class with fuselip.checkpoint.register)")
        self.model = model.to(self.dist.device)
        # a sequence of pairs (fuselip.data.types.Pair) is the common case; anything else brings its own workload
        self.data: Workload = data if not isinstance(data, Sequence) else PairData(self.model, cfg, data, self.dist)
        self.val_fn = val_fn
        self.out_dir = Path(out_dir or cfg.train.out_dir)
        self.progress = progress and self.dist.main
        self.extra_config = extra_config or {}
        self.log = log
        self.precision = self._agreed_precision()
        self.optimizer = build_optimizer(model, cfg.train)
        self.params = [p for _, p, _ in trainable_parameters(model)]
        self.step = 0
        self.train_seconds = 0.0  # wall time of the steps up to self.step, summed over every resumed run
        self._clock = time.perf_counter()
        self.history: list[dict] = []
        self.val_history: list[dict] = []

    def _agreed_precision(self) -> str:
        """train.precision resolved once ("auto" measured on rank 0, which every rank then follows)."""
        chosen = [resolve_precision(self.cfg.train.precision, self.dist.device)]
        if self.dist.world > 1:
            dist.broadcast_object_list(chosen, src=0)
        return chosen[0]

    def prepare(self) -> None:
        self.data.prepare()

    def next_batch(self) -> Any:
        return self.data.next_batch(self.step)

    # ---- one step
    def backward(self, batch: Any, step: int) -> dict[str, float]:
        """Forward + backward on one global batch (gradients are averaged over ranks by DDP).
        Returns the loss parts averaged over ranks (= the single-process loss on the global batch)."""
        self.model.train()
        self.data.before_step(step)
        with autocast(self.precision, self.dist.device):
            loss, parts = self.data.loss(batch, step)
        loss.backward()
        values = torch.stack([loss.detach().float()] + [v.detach().float() for v in parts.values()])
        if self.dist.world > 1:
            dist.all_reduce(values)
            values /= self.dist.world
        return dict(zip(["loss", *parts], values.tolist()))

    def optimizer_step(self, step: int) -> float:
        lr = learning_rate(step, self.cfg.train)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        clip = self.cfg.train.grad_clip if self.cfg.train.grad_clip > 0 else math.inf  # inf: measure, never clip
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.data.after_step(step)
        return float(grad_norm)

    # ---- the loop
    def run(self, stop_at: int | None = None) -> dict:
        """Trains until train.steps (or `stop_at`, then writes a checkpoint and returns: an interrupted run)."""
        t = self.cfg.train
        unit = self.data.unit
        end = min(t.steps, stop_at) if stop_at is not None else t.steps
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=t.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        start_time, start_step = time.perf_counter(), self.step
        self._clock = start_time
        window_time, window_rows = time.perf_counter(), 0
        parts: dict[str, float] = {}
        while self.step < end:
            step = self.step
            parts = self.backward(self.next_batch(), step)
            grad_norm = self.optimizer_step(step)
            self.step += 1
            window_rows += t.batch_size
            if self.step % t.log_every == 0 or self.step == end:
                elapsed = time.perf_counter() - window_time
                record = {"step": self.step, "lr": learning_rate(step, t), "grad_norm": grad_norm,
                          f"{unit}_per_s": window_rows / max(elapsed, 1e-9), **self.data.log_items(), **parts}
                self.history.append(record)
                window_time, window_rows = time.perf_counter(), 0
                if bar is not None:
                    bar.set_postfix({"loss": f"{parts['loss']:.3f}", "lr": f"{record['lr']:.2e}",
                                     f"{unit}_s": f"{record[f'{unit}_per_s']:.0f}"})
            if bar is not None:
                bar.update(1)
            if self.val_fn is not None and t.val_every and self.step % t.val_every == 0 and self.step < t.steps:
                self.validate()
            if t.checkpoint_every and self.step % t.checkpoint_every == 0 and self.step < end:
                self.save_checkpoint()
        if bar is not None:
            bar.close()
        wall = time.perf_counter() - start_time
        total = self.tick()  # without the final validation
        if self.step >= t.steps and self.val_fn is not None:
            self.validate()
        self.save_checkpoint()
        steps_run = self.step - start_step
        # wall_time_s: all steps of the model, over every run that made them (a resumed run adds its time to the
        # checkpoint's; NaN when that checkpoint predates the record); this run alone: wall_time_this_run_s and
        # its throughput, <unit>_per_s
        return {"step": self.step, "steps_run": steps_run, "wall_time_s": total, "wall_time_this_run_s": wall,
                "resumed_from_step": start_step,
                f"{unit}_per_s": steps_run * t.batch_size / max(wall, 1e-9), "last": parts,
                "val": self.val_history[-1] if self.val_history else {}, "val_history": self.val_history,
                "split_groups": self.data.split_groups}

    def validate(self) -> dict:
        """Runs val_fn; the record (appended to validation.jsonl and val_history) is one point of the learning
        curve: step, pairs (images) seen, training seconds so far (validation time excluded) and every metric."""
        metrics = {}
        train_seconds = self.tick()
        if self.dist.main:
            self.model.eval()
            with torch.no_grad():
                metrics = dict(self.val_fn(self.model)) if self.val_fn is not None else {}
            self.model.train()
            metrics = {"step": self.step, f"{self.data.unit}_seen": self.step * self.cfg.train.batch_size,
                       "train_seconds": round(train_seconds, 1), **metrics}
            self.val_history.append(metrics)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "validation.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
            self.log(f"[step {self.step}] validation: " + ", ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
        if self.dist.world > 1:
            dist.barrier()
        self._clock = time.perf_counter()  # the time spent validating is not training time
        return metrics

    # ---- checkpoints (no pickle: the train state is tensors in extra.safetensors)
    def tick(self) -> float:
        """Adds the time since the last tick to `train_seconds` (saved in checkpoints) and returns it."""
        now = time.perf_counter()
        self.train_seconds, self._clock = self.train_seconds + now - self._clock, now
        return self.train_seconds

    def train_state(self) -> dict[str, torch.Tensor]:
        self.tick()
        state = {"state.step": torch.tensor(self.step),
                 "state.train_seconds": torch.tensor(self.train_seconds, dtype=torch.float64),
                 "rng.torch": torch.get_rng_state(), **self.data.state()}
        for name, param, _ in trainable_parameters(self.model):
            for key, value in self.optimizer.state.get(param, {}).items():
                state[f"optim.{name}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        return state

    def save_checkpoint(self) -> Path | None:
        if not self.dist.main:
            if self.dist.world > 1:
                dist.barrier()
            return None
        path = self.out_dir / CHECKPOINT_DIR
        config = {**self.model.config_dict(), "run": to_dict(self.cfg), **self.extra_config}
        ckpt.save(path, kind=self.model.checkpoint_kind, config=config, tensors=self.model.state_dict(),
                  extra=self.train_state())
        with open(self.out_dir / "history.jsonl", "w") as f:
            for record in self.history:
                f.write(json.dumps(record) + "\n")
        if self.dist.world > 1:
            dist.barrier()
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        """Restores weights, optimizer state, step, the workload's position and the RNG state of a training
        checkpoint made with the same model config."""
        path = Path(path or self.out_dir / CHECKPOINT_DIR)
        found = ckpt.read(path, with_extra=True)
        extra = {k[len("extra:"):]: v for k, v in found.tensors.items() if k.startswith("extra:")}
        weights = {k: v for k, v in found.tensors.items() if not k.startswith("extra:")}
        if not extra:
            raise ckpt.CheckpointError(f"{path}: no training state (extra.safetensors); cannot resume from it")
        ours = self.model.config_dict()
        differ = sorted(k for k in ours if not _same_setting(found.config.get(k), ours[k]))
        if differ:
            raise ValueError(f"{path}: the checkpoint was trained with another model config ({', '.join(differ)} "
                             f"differ); resume with the same preset/overrides or choose a new --train.out_dir")
        ckpt.check_state_dict(self.model.state_dict(), weights, str(path))
        self.model.load_state_dict(weights)
        self.step = int(extra["state.step"])
        # checkpoints written before the field existed: their time is unknown, and so is the total
        self.train_seconds = float(extra.get("state.train_seconds", torch.tensor(float("nan"))))
        self.data.load_state(extra, self.step)
        torch.set_rng_state(extra["rng.torch"])
        for name, param, _ in trainable_parameters(self.model):
            prefix = f"optim.{name}."
            # fused AdamW keeps `step` on the parameter's device, and its moments must have the parameter's memory
            # layout (a channels-last conv weight of a tokenizer): the file holds them contiguous
            state = {k[len(prefix):]: torch.empty_like(param, dtype=v.dtype).copy_(v) if v.shape == param.shape
                     else v.to(param.device) for k, v in extra.items() if k.startswith(prefix)}
            if state:
                self.optimizer.state[param] = state
        if self.dist.main:
            history = self.out_dir / "history.jsonl"
            if history.exists():
                self.history = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
            curve = self.out_dir / "validation.jsonl"  # the learning curve up to the checkpoint's step
            if curve.exists():
                records = [json.loads(line) for line in curve.read_text().splitlines() if line.strip()]
                self.val_history = [r for r in records if r.get("step", 0) <= self.step]
                curve.write_text("".join(json.dumps(r) + "\n" for r in self.val_history))  # drop points past it


def _same_setting(saved: Any, ours: Any) -> bool:
    """Whether a saved config entry is ours; a saved section may hold more keys (written before a setting moved
    elsewhere, e.g. a FuseLIP run's encoder section with the late-fusion fields at their defaults)."""
    if isinstance(saved, dict) and isinstance(ours, dict):
        return all(key in saved and _same_setting(saved[key], value) for key, value in ours.items())
    return saved == ours


def train(model: nn.Module, run_config: RunConfig, data: Sequence | Workload, val_fn=None, *,
          out_dir: str | Path | None = None, resume: bool = False, stop_at: int | None = None,
          stop_after: int | None = None, progress: bool = True, extra_config: dict | None = None,
          log: Callable[[str], None] = print_now) -> dict:
    """Trains `model` on `data` (pairs, or a workload); returns a summary (steps, wall time, throughput, last
    losses, last validation, the history). stop_at: end at this step (with a checkpoint), as if interrupted;
    stop_after: the same, after this many steps of this call."""
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(model, run_config, data, val_fn=val_fn, out_dir=out_dir, progress=progress,
                          extra_config=extra_config, log=log)
        if resume and (trainer.out_dir / CHECKPOINT_DIR).exists():
            trainer.load_checkpoint()
        trainer.prepare()
        if stop_after is not None:
            stop_at = trainer.step + stop_after if stop_at is None else min(stop_at, trainer.step + stop_after)
        summary = trainer.run(stop_at=stop_at)
    finally:
        torch.set_num_threads(threads)  # train.threads applies to this run only
    summary["history"] = trainer.history
    return summary
