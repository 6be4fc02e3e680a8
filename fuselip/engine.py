"""One training loop for every model in the project (FuseLIP and the late-fusion baselines).

The protocol a trainable model follows (FuseLIP in fuselip/model.py is the reference):

    model.collate(pairs: list[Pair]) -> dict of CPU tensors. Required keys: whatever forward_pairs reads,
        plus `right_key` (B,) int64 content hash of each right side (fuselip.data.collate.content_key) or at
        least `right_dup` (B, B) bool. Rows with identical right content are positives of each other.
    model.prepare(pairs) -> None                      optional; called once with the whole training set
        before the first step (FuseLIP: tokenise every image once, record the vocabulary it uses).
    model.forward_pairs(batch, generator=None) -> (left (B, D), right (B, D), aux)
        left/right: L2-normalised embeddings of both sides. aux: extra losses, each either an already
        weighted scalar tensor, or a pair (weighted sum, count) for a mean over a variable number of items
        (e.g. masked tokens): the engine divides the sum by the count summed over all ranks, so a DDP run
        optimises exactly the same objective as one process on the global batch.
        The engine adds `row_index` (B,) long (each row's index in the global batch) and `rows_total` (int) to
        the batch, and passes a generator seeded by (seed, step), identical on every rank: random choices
        drawn per global row (see FuseLIP.forward_pairs) then make DDP == single process, and resume exact.
    model.logit_scale, model.logit_bias: scalar nn.Parameters (log-scale t, bias b of the SigLIP loss);
        t is clamped to [0, run_config.encoder.max_logit_scale] after every step.
    model.encode(images=None, texts=None) -> (B, D)   for validation (val_fn) and everything after training.
    model.config_dict() / from_config / checkpoint_kind (fuselip.checkpoint.register) for checkpoints.

What the loop does (shared/PAPER.md): SigLIP loss between left and the right side of every rank (gathered
with a gradient-carrying all_gather) + aux losses; AdamW (betas, eps from TrainConfig), weight decay on
tensors with >= 2 dims except LayerNorm weights, biases and the logit scale/bias; linear warmup then cosine to
0; gradient clipping; bf16 autocast (CPU and CUDA) when train.precision == "bf16"; a group-aware sampler that
puts every pair of a hard-negative group into the same global batch; validation through `val_fn(model)`;
checkpoints written atomically to <out_dir>/checkpoint (full weights + optimizer state + step + sampler position
+ RNG state, all safetensors); exact resume; DDP under torchrun (gloo on CPU, nccl on CUDA).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from fuselip import checkpoint as ckpt
from fuselip import evaluate as ev
from fuselip.config import (RunConfig, TokenizerConfig, add_override_arguments, apply_overrides, config_errors_exit,
                            dump, from_dict, load_preset, to_dict)
from fuselip.data.collate import cache_file
from fuselip.data.tasks import sample_pairs
from fuselip.losses import siglip_loss

CHECKPOINT_DIR = "checkpoint"
MAX_OPEN_BATCHES = 8  # group packing: how many partly filled batches the sampler keeps open


# ---------------------------------------------------------------------------------------------
# distributed setup


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> DistInfo:
    """Reads torchrun's environment; starts a process group (nccl on CUDA, gloo on CPU) when world > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("train.device is 'cuda' but torch sees no GPU; use --train.device=cpu")
        dev = torch.device("cuda", local_rank if world > 1 else torch.device(device).index or 0)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, dev)


# ---------------------------------------------------------------------------------------------
# optimiser and schedule


def is_decayed(name: str, param: nn.Parameter, module: nn.Module) -> bool:
    """PAPER.md: weight decay on >= 2-d tensors except LayerNorms, biases and the logit scale."""
    return param.ndim >= 2 and not isinstance(module, nn.LayerNorm) and not name.endswith("bias") \
        and "logit_scale" not in name


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter, bool]]:
    """(name, parameter, decayed) for every parameter that requires grad, in a fixed order."""
    out = []
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if param.requires_grad:
                full = f"{module_name}.{name}" if module_name else name
                out.append((full, param, is_decayed(full, param, module)))
    return out


def build_optimizer(model: nn.Module, cfg: RunConfig) -> torch.optim.AdamW:
    params = trainable_parameters(model)
    groups = [{"params": [p for _, p, d in params if d], "weight_decay": cfg.train.weight_decay},
              {"params": [p for _, p, d in params if not d], "weight_decay": 0.0}]
    # fused: one kernel per step instead of ~10 passes over every tensor (4-5x less CPU time on the 49k-row
    # token table); same update rule
    return torch.optim.AdamW(groups, lr=cfg.train.lr, betas=(cfg.train.beta1, cfg.train.beta2), eps=cfg.train.eps,
                             fused=True)


def learning_rate(step: int, cfg: RunConfig) -> float:
    """Linear warmup to train.lr over warmup_steps, then cosine decay to 0 at train.steps."""
    t = cfg.train
    if step < t.warmup_steps:
        return t.lr * (step + 1) / t.warmup_steps
    progress = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
    return t.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ---------------------------------------------------------------------------------------------
# group-aware batch sampler


def contiguous_groups(group_ids: Sequence[int]) -> list[range]:
    """Runs of equal group id -> index ranges (pairs of one group are contiguous by the data contract)."""
    groups, start = [], 0
    for i in range(1, len(group_ids) + 1):
        if i == len(group_ids) or group_ids[i] != group_ids[start]:
            groups.append(range(start, i))
            start = i
    return groups


class GroupBatchSampler:
    """Full batches of exactly `batch_size` pair indices with every hard-negative group kept together.

    Each epoch shuffles the groups (deterministically from (seed, epoch)) and packs them first-fit into up to
    MAX_OPEN_BATCHES open batches; a batch is emitted when full. A group that fits nowhere (rare: only when all
    open batches are nearly full, or the group is larger than a batch) is split, and `split_groups` counts it.
    The incomplete batches left at the end of an epoch are dropped (their pairs come back next epoch).
    """

    def __init__(self, group_ids: Sequence[int], batch_size: int, seed: int, positions: Sequence[int] | None = None):
        """positions: the training-set index of each entry of group_ids (default 0, 1, …), for a sampler over a
        subset of the pairs (a curriculum's first phase)."""
        self.groups = contiguous_groups(list(group_ids))
        self.batch_size = batch_size
        self.seed = seed
        self.positions = list(positions) if positions is not None else None
        self.split_groups = 0
        if sum(len(g) for g in self.groups) < batch_size:
            raise ValueError(f"{sum(len(g) for g in self.groups)} training pairs cannot fill one batch of {batch_size}")

    def epoch(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.groups), generator=generator).tolist()
        batches, open_batches = [], []
        for g in order:
            members = list(self.groups[g])
            while members:
                target = next((b for b in open_batches if len(b) + len(members) <= self.batch_size), None)
                if target is None and len(open_batches) < MAX_OPEN_BATCHES:
                    target = []
                    open_batches.append(target)
                if target is None:  # split: fill the fullest open batch with the first part of the group
                    self.split_groups += 1
                    target = max(open_batches, key=len)
                take = min(len(members), self.batch_size - len(target))
                target.extend(members[:take])
                members = members[take:]
                if len(target) == self.batch_size:
                    open_batches.remove(target)
                    batches.append(target)
        if self.positions is not None:
            batches = [[self.positions[i] for i in batch] for batch in batches]
        return batches


def curriculum(pairs: Sequence, cfg: RunConfig) -> tuple[GroupBatchSampler | None, int]:
    """The first phase of a curriculum (data.curriculum_first, data.curriculum_until): a sampler over the pairs whose
    world or task is named there, used for the first curriculum_until x train.steps steps; (None, 0) without one."""
    first, until = cfg.data.curriculum_first, cfg.data.curriculum_until
    if not first or until <= 0:
        return None, 0
    chosen = [i for i, p in enumerate(pairs) if p.world in first or p.task in first]
    if not chosen:
        raise ValueError(f"data.curriculum_first={first}: no training pair has one of these worlds or tasks")
    sampler = GroupBatchSampler([pairs[i].group for i in chosen], cfg.train.batch_size, cfg.train.seed, chosen)
    return sampler, round(until * cfg.train.steps)


# ---------------------------------------------------------------------------------------------
# the loss: forward_pairs + SigLIP over the gathered right side + aux


class GatherWithGradient(torch.autograd.Function):
    """all_gather whose backward sends every rank the summed gradient of its own rows (works on gloo and nccl)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rows, ctx.rank = x.shape[0], dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)                                                     # (W·B, D)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every rank's loss depends on every rank's rows
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


class PairLoss(nn.Module):
    """Wraps a protocol model so that DDP sees the whole loss computation in one forward."""

    def __init__(self, model: nn.Module, world: int = 1, duplicates: str = "positive"):
        super().__init__()
        if duplicates not in ("positive", "negative"):
            raise ValueError(f"train.duplicates must be 'positive' or 'negative', got {duplicates!r}")
        self.model = model
        self.world = world
        self.duplicates = duplicates

    def forward(self, batch: dict, generator: torch.Generator | None = None):
        left, right, aux = self.model.forward_pairs(batch, generator=generator)
        keys = batch.get("right_key")
        if self.duplicates == "negative":  # the reference: only a row's own target is positive
            keys = batch.get("row_index", torch.arange(left.shape[0]))
        if self.world > 1:
            right_all = GatherWithGradient.apply(right)                             # (W·B, D), gradient flows back
            if keys is None:
                raise ValueError("DDP training needs batch['right_key'] from collate (fuselip.data.collate)")
            gathered = [torch.empty_like(keys) for _ in range(self.world)]
            dist.all_gather(gathered, keys.contiguous())
            positives = keys[:, None] == torch.cat(gathered)[None, :]               # (B, W·B)
        else:
            right_all = right
            if keys is not None:
                positives = keys[:, None] == keys[None, :]                           # (B, B)
            else:
                positives = batch.get("right_dup")
                if positives is None:
                    positives = torch.eye(left.shape[0], dtype=torch.bool)
        positives = positives.to(left.device)
        parts = {"siglip": siglip_loss(left, right_all, self.model.logit_scale, self.model.logit_bias, positives)}
        for name, value in aux.items():
            if isinstance(value, tuple):  # (weighted sum, count): mean over all ranks' items
                total, count = value
                count = count.detach().clone().float()
                if self.world > 1:
                    dist.all_reduce(count)
                parts[name] = total * self.world / count.clamp(min=1.0)
            else:
                parts[name] = value
        loss = sum(parts.values())
        return loss, parts


def autocast(precision: str, device: torch.device):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"train.precision must be 'bf16' or 'fp32', got {precision!r}")


def move(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------
# the trainer


class Trainer:
    """train(...) below is the usual entry; the class exposes single steps for tests and notebooks."""

    def __init__(self, model: nn.Module, cfg: RunConfig, pairs_train: Sequence, *,
                 val_fn: Callable[[nn.Module], dict] | None = None, out_dir: str | Path | None = None,
                 progress: bool = True, extra_config: dict | None = None):
        self.cfg = cfg
        self.dist = setup_distributed(cfg.train.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.batch_size % self.dist.world:
            raise ValueError(f"train.batch_size {cfg.train.batch_size} is not divisible by {self.dist.world} ranks")
        torch.manual_seed(cfg.train.seed)
        self.model = model.to(self.dist.device)
        self.pairs = pairs_train
        self.val_fn = val_fn
        self.out_dir = Path(out_dir or cfg.train.out_dir)
        self.progress = progress and self.dist.main
        self.extra_config = extra_config or {}
        self.sampler = GroupBatchSampler([p.group for p in pairs_train], cfg.train.batch_size, cfg.train.seed)
        self.first_sampler, self.first_steps = curriculum(pairs_train, cfg)
        self._in_use: GroupBatchSampler | None = None  # the sampler whose epoch/index the trainer is at
        self.optimizer = build_optimizer(model, cfg)
        self.params = [p for _, p, _ in trainable_parameters(model)]
        loss = PairLoss(model, self.dist.world, cfg.train.duplicates)
        if self.dist.world > 1:
            from torch.nn.parallel import DistributedDataParallel
            import inspect
            # buffers (token_seen, the frozen tokenizer's) are identical on every rank: never re-broadcast them
            no_sync = ({"forward_sync_buffers": False}
                       if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
                       else {"broadcast_buffers": False})
            loss = DistributedDataParallel(loss, device_ids=[self.dist.device] if self.dist.device.type == "cuda"
                                           else None, **no_sync)
        self.loss = loss
        self.step = 0
        self.epoch, self.index = 0, 0
        self.train_seconds = 0.0  # wall time of the steps up to self.step, summed over every resumed run
        self._clock = time.perf_counter()
        self._batches = None
        self.history: list[dict] = []
        self.val_history: list[dict] = []

    # ---- data
    def prepare(self) -> None:
        """The model's one-off preparation on the whole training set (after a checkpoint was loaded, so that
        e.g. FuseLIP's image tokens come from the tokenizer weights the run actually uses)."""
        if hasattr(self.model, "prepare"):
            self.model.prepare(self.pairs)

    def sampler_at(self, step: int) -> GroupBatchSampler:
        """The curriculum's first-phase sampler for its steps, then the sampler over the whole training set."""
        return self.first_sampler if step < self.first_steps else self.sampler

    def next_batch_indices(self) -> list[int]:
        sampler = self.sampler_at(self.step)
        if sampler is not self._in_use:  # the run starts, or the curriculum's second phase does: epoch 0
            self._in_use, self.epoch, self.index, self._batches = sampler, 0, 0, None
        if self._batches is None:
            self._batches = sampler.epoch(self.epoch)
        if self.index >= len(self._batches):
            self.epoch, self.index = self.epoch + 1, 0
            self._batches = sampler.epoch(self.epoch)
        indices = self._batches[self.index]
        self.index += 1
        return indices

    def local_batch(self, indices: list[int]) -> dict:
        """This rank's slice of the global batch, collated, with its rows' global positions."""
        share = len(indices) // self.dist.world
        rows = range(self.dist.rank * share, (self.dist.rank + 1) * share)
        batch = self.model.collate([self.pairs[indices[r]] for r in rows])
        batch["row_index"] = torch.arange(rows.start, rows.stop)
        batch["rows_total"] = len(indices)
        return move(batch, self.dist.device)

    def generator(self, step: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + step + 1)

    # ---- one step
    def backward(self, indices: list[int], step: int) -> dict[str, float]:
        """Forward + backward on one global batch (gradients are averaged over ranks by DDP).
        Returns the loss parts averaged over ranks (= the single-process loss on the global batch)."""
        self.model.train()
        batch = self.local_batch(indices)
        with autocast(self.cfg.train.precision, self.dist.device):
            loss, parts = self.loss(batch, self.generator(step))
        loss.backward()
        values = torch.stack([loss.detach().float()] + [v.detach().float() for v in parts.values()])
        if self.dist.world > 1:
            dist.all_reduce(values)
            values /= self.dist.world
        return dict(zip(["loss", *parts], values.tolist()))

    def optimizer_step(self, step: int) -> float:
        lr = learning_rate(step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.train.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.model.logit_scale.clamp_(0.0, self.cfg.encoder.max_logit_scale)
        return float(grad_norm)

    # ---- the loop
    def run(self, stop_at: int | None = None) -> dict:
        """Trains until train.steps (or `stop_at`, then writes a checkpoint and returns: used by the resume test)."""
        t = self.cfg.train
        end = min(t.steps, stop_at) if stop_at is not None else t.steps
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=t.steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        start_time, start_step = time.perf_counter(), self.step
        self._clock = start_time
        window_time, window_pairs = time.perf_counter(), 0
        parts = {}
        while self.step < end:
            step = self.step
            parts = self.backward(self.next_batch_indices(), step)
            grad_norm = self.optimizer_step(step)
            self.step += 1
            window_pairs += t.batch_size
            if self.step % t.log_every == 0 or self.step == end:
                elapsed = time.perf_counter() - window_time
                record = {"step": self.step, "lr": learning_rate(step, self.cfg), "grad_norm": grad_norm,
                          "pairs_per_s": window_pairs / max(elapsed, 1e-9), "epoch": self.epoch,
                          "logit_scale": self.model.logit_scale.item(), "logit_bias": self.model.logit_bias.item(),
                          **parts}
                self.history.append(record)
                window_time, window_pairs = time.perf_counter(), 0
                if bar is not None:
                    bar.set_postfix(loss=f"{parts['loss']:.3f}", lr=f"{record['lr']:.2e}",
                                    pairs_s=f"{record['pairs_per_s']:.0f}")
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
        # its throughput, pairs_per_s
        return {"step": self.step, "steps_run": steps_run, "wall_time_s": total, "wall_time_this_run_s": wall,
                "resumed_from_step": start_step,
                "pairs_per_s": steps_run * t.batch_size / max(wall, 1e-9), "last": parts,
                "val": self.val_history[-1] if self.val_history else {}, "val_history": self.val_history,
                "split_groups": self.sampler.split_groups}

    def validate(self) -> dict:
        """Runs val_fn; the record (appended to validation.jsonl and val_history) is one point of the learning
        curve: step, pairs seen, training seconds so far (validation time excluded) and every metric."""
        metrics = {}
        train_seconds = self.tick()
        if self.dist.main:
            self.model.eval()
            with torch.no_grad():
                metrics = dict(self.val_fn(self.model))
            self.model.train()
            metrics = {"step": self.step, "pairs_seen": self.step * self.cfg.train.batch_size,
                       "train_seconds": round(train_seconds, 1), **metrics}
            self.val_history.append(metrics)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            with open(self.out_dir / "validation.jsonl", "a") as f:
                f.write(json.dumps(metrics) + "\n")
            print(f"[step {self.step}] validation: " + ", ".join(
                f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()), flush=True)
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
        state = {"state.step": torch.tensor(self.step), "state.epoch": torch.tensor(self.epoch),
                 "state.train_seconds": torch.tensor(self.train_seconds, dtype=torch.float64),
                 "state.index": torch.tensor(self.index), "rng.torch": torch.get_rng_state()}
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
        """Restores weights, optimizer state, step, sampler position and RNG state of a training checkpoint."""
        path = Path(path or self.out_dir / CHECKPOINT_DIR)
        found = ckpt.read(path, with_extra=True)
        extra = {k[len("extra:"):]: v for k, v in found.tensors.items() if k.startswith("extra:")}
        weights = {k: v for k, v in found.tensors.items() if not k.startswith("extra:")}
        if not extra:
            raise ckpt.CheckpointError(f"{path}: no training state (extra.safetensors); cannot resume from it")
        ckpt.check_state_dict(self.model.state_dict(), weights, str(path))
        self.model.load_state_dict(weights)
        self.step = int(extra["state.step"])
        self.epoch, self.index = int(extra["state.epoch"]), int(extra["state.index"])
        # checkpoints written before the field existed: their time is unknown, and so is the total
        self.train_seconds = float(extra.get("state.train_seconds", torch.tensor(float("nan"))))
        self._in_use = self.sampler_at(max(self.step - 1, 0))  # the sampler that drew the last batch
        self._batches = None if self.index == 0 else self._in_use.epoch(self.epoch)
        torch.set_rng_state(extra["rng.torch"])
        for name, param, _ in trainable_parameters(self.model):
            prefix = f"optim.{name}."
            state = {k[len(prefix):]: v.to(param.device)  # fused AdamW keeps `step` on the parameter's device
                     for k, v in extra.items() if k.startswith(prefix)}
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


def train(model: nn.Module, run_config: RunConfig, pairs_train: Sequence, val_fn=None, *,
          out_dir: str | Path | None = None, resume: bool = False, stop_at: int | None = None,
          progress: bool = True, extra_config: dict | None = None) -> dict:
    """Trains `model` on `pairs_train`; returns a summary (steps, wall time, pairs/s, last losses, last val)."""
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(model, run_config, pairs_train, val_fn=val_fn, out_dir=out_dir, progress=progress,
                          extra_config=extra_config)
        if resume and (trainer.out_dir / CHECKPOINT_DIR).exists():
            trainer.load_checkpoint()
        trainer.prepare()
        summary = trainer.run(stop_at=stop_at)
    finally:
        torch.set_num_threads(threads)  # train.threads applies to this run only
    summary["history"] = trainer.history
    return summary


# ---------------------------------------------------------------------------------------------
# the command line shared by train/train_fuselip.py and the baseline scripts


def validation_fn(cfg: RunConfig, split: str = "val"):
    """`val_fn(model)` for the engine: the benchmark suite (fuselip.evaluate) on `data.val_items` items per task."""
    source = ev.benchmark_items(split, cfg.data.val_items, cfg.data.seed, cfg.data.image_size,
                                cfg.data.position_twins)
    items: dict[tuple[str, str], list] = {}  # generated once, reused by every validation of the run

    def cached(world: str, task: str):
        if (world, task) not in items:
            items[world, task] = list(source(world, task))
        return items[world, task]

    def val_fn(model) -> dict[str, float]:
        results = ev.evaluate(model, cached, split=split, n_items=cfg.data.val_items, seed=cfg.data.seed,
                              image_size=cfg.data.image_size, worlds=tuple(cfg.data.worlds))
        return ev.flat_metrics(results)
    return val_fn


def cli(argv: Sequence[str] | None, family: str, build_model: Callable[[RunConfig], nn.Module],
        default_preset: str = "tiny", description: str = "") -> dict:
    """Parse `--preset NAME [--section.field=value …] [--device D] [--resume] [--ship DIR] [--name N]`, build the
    training set (fuselip.data.tasks.sample_pairs), tokenise its images once (on-disk cache), train, validate,
    write runs/<name>/ and optionally ship a compact checkpoint (config.json, model.safetensors, metrics.json)."""
    import argparse
    import shlex
    import sys

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--preset", default=default_preset, help=f"preset in fuselip/presets/{family}/")
    parser.add_argument("--name", default="", help="run name: writes runs/<name>/ (default: train.out_dir)")
    parser.add_argument("--device", default="", help="cpu | cuda (shortcut for --train.device)")
    parser.add_argument("--resume", action="store_true", help="continue from runs/<name>/checkpoint if present")
    parser.add_argument("--ship", default="", help="also write a compact checkpoint folder here, e.g. "
                                                   "checkpoints/fuselip-tiny")
    parser.add_argument("--no-val", action="store_true", help="skip validation (smoke runs)")
    parser.add_argument("--cache-dir", default="runs/cache", help="on-disk image-token cache ('' = none)")
    add_override_arguments(parser)
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
    if hasattr(model, "tokenizer"):  # the resolved config names the tokenizer actually used
        cfg.tokenizer = from_dict(TokenizerConfig, to_dict(model.tokenizer.config))
    if rank0:
        print(dump(cfg), flush=True)
    out_dir = Path(cfg.train.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if rank0:
        (out_dir / "run_config.json").write_text(dump(cfg) + "\n")

    t0 = time.perf_counter()
    pairs = sample_pairs(cfg.data, "train", cfg.data.train_pairs, cfg.data.seed)
    data_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if hasattr(model, "token_cache"):
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
            summary["shipped"] = str(ship(model, args.ship, summary, val_fn))
    if dist.is_initialized():
        dist.destroy_process_group()
    return summary


SHIP_DTYPE = torch.float16  # shipped weights are half size on disk; their metrics are measured on that copy


def ship(model: nn.Module, path: str | Path, summary: dict, val_fn=None, dtype: torch.dtype | None = SHIP_DTYPE) -> Path:
    """Writes the compact inference checkpoint (floating-point weights in `dtype` on disk), reloads it and measures
    the validation metrics on the reloaded copy: those are the figures metrics.json reports. The end-of-training
    figures stay beside them (`validation_before_export`) with the largest difference (`export_shift`)."""
    metrics = {"validation": summary.get("val", {}), "curve": summary.get("val_history", []),
               "wall_time_s": summary["wall_time_s"],
               "steps": summary["step"], "pairs_per_s": summary["pairs_per_s"], "command": summary.get("command", ""),
               "weights": f"{str(dtype or torch.float32).removeprefix('torch.')} on disk, float32 in memory"}
    path = ckpt.save_model(model, path, metrics=metrics, dtype=dtype)
    if val_fn is not None and summary.get("val"):
        loaded = ckpt.load_model(path).to(next(model.parameters()).device)  # same device, same kernels
        before = summary["val"]
        after = {k: before[k] for k in ("step", "pairs_seen", "train_seconds") if k in before} | val_fn(loaded)
        metrics["validation"], metrics["validation_before_export"] = after, before
        metrics["export_shift"] = max((abs(after[k] - v) for k, v in before.items()
                                       if k not in ("step", "pairs_seen", "train_seconds")
                                       and isinstance(v, (int, float)) and k in after), default=0.0)
        ckpt.write_json_atomic(Path(path) / ckpt.METRICS_FILE, metrics)
    return path
