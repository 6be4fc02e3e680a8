"""Training on pairs (FuseLIP and the late-fusion baselines): which pairs make a step, and the loss they give.

The model follows `PairModel` below (FuseLIP in fuselip/model.py is the reference):

    model.collate(pairs) -> dict of CPU tensors: whatever forward_pairs reads, plus `right_key` (B,) int64 content
        hash of each right side (fuselip.data.collate.content_key) or at least `right_dup` (B, B) bool. Rows with
        identical right content are positives of each other.
    model.prepare(pairs)   called once with the whole training set before the first step (FuseLIP: tokenise
        every image once, record the vocabulary it uses).
    model.forward_pairs(batch, generator) -> (left (B, D), right (B, D), aux)
        left/right: L2-normalised embeddings of both sides. aux: extra losses, each either an already weighted
        scalar tensor, or a pair (weighted sum, count) for a mean over a variable number of items (e.g. masked
        tokens): the sum is divided by the count summed over all ranks, so a DDP run optimises exactly the same
        objective as one process on the global batch. The batch holds `row_index` (B,) long (each row's index in
        the global batch) and `rows_total` (int); the generator is seeded by (seed, step), identical on every
        rank: random choices drawn per global row then make DDP == single process, and resume exact.
    model.logit_scale, model.logit_bias: scalar parameters (log-scale t, bias b of the SigLIP loss); t is clamped
        to [0, encoder.max_logit_scale] after every step.

The loss (PAPER.md): SigLIP between the left side and the right side of every rank (gathered with a
gradient-carrying all_gather) + the aux losses. The batches: GroupBatchSampler (every hard-negative group in one
global batch), with a curriculum's first phase if the config names one.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

import torch
import torch.distributed as dist
from torch import nn

from fuselip import checkpoint as ckpt
from fuselip import evaluate as ev
from fuselip.config import RunConfig
from fuselip.contract import Checkpointable
from fuselip.data.types import Pair
from fuselip.distributed import DistInfo, GatherWithGradient, move
from fuselip.losses import siglip_loss
from fuselip.sampler import GroupBatchSampler, curriculum
from fuselip.ship import SHIP_DTYPE, ship


@runtime_checkable
class PairModel(Protocol):
    """What training on pairs reads of a model (the module docstring says what each member does)."""

    logit_scale: nn.Parameter
    logit_bias: nn.Parameter

    def collate(self, pairs: Sequence[Pair]) -> dict[str, Any]: ...

    def prepare(self, pairs: Sequence[Pair]) -> None: ...

    def forward_pairs(self, batch: dict[str, Any], generator: torch.Generator | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]: ...


@runtime_checkable
class ReadsImageTokens(Protocol):
    """A pair model that reads images as the codes of a frozen tokenizer (FuseLIP): the command line tokenises every
    training image once into an on-disk cache (`token_cache`), and records the tokenizer actually used."""

    tokenizer: nn.Module

    def token_cache(self) -> Any: ...


class PairLoss(nn.Module):
    """Wraps a protocol model so that DDP sees the whole loss computation in one forward."""

    def __init__(self, model: nn.Module, world: int = 1, duplicates: str = "positive"):
        super().__init__()
        if not isinstance(model, PairModel):
            raise TypeError(f"{type(model).__name__} cannot train on pairs: it lacks part of fuselip.pair_training."
                            f"PairModel (collate, prepare, forward_pairs, logit_scale, logit_bias)")
        if duplicates not in ("positive", "negative"):
            raise ValueError(f"train.duplicates must be 'positive' or 'negative', got {duplicates!r}")
        self.model: PairModel = model  # a submodule (the isinstance above made it a module and a PairModel)
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


class PairData:
    """The engine's workload (fuselip.engine.Workload) for a pair model: batches of pair indices drawn by the
    group sampler, this rank's share of them collated, and PairLoss (under DDP when there are several ranks)."""

    unit = "pairs"

    def __init__(self, model: nn.Module, cfg: RunConfig, pairs: Sequence[Pair], dist_info: DistInfo):
        pair_loss = PairLoss(model, dist_info.world, cfg.train.duplicates)  # checks that the model is a PairModel
        self.model = pair_loss.model
        self.cfg, self.pairs, self.dist = cfg, pairs, dist_info
        self.sampler = GroupBatchSampler([p.group for p in pairs], cfg.train.batch_size, cfg.train.seed)
        self.first_sampler, self.first_steps = curriculum(pairs, cfg)
        self._in_use: GroupBatchSampler | None = None  # the sampler whose epoch/index the run is at
        self.epoch, self.index = 0, 0
        self._batches: list[list[int]] | None = None
        self.pair_loss: nn.Module = pair_loss
        if dist_info.world > 1:
            from torch.nn.parallel import DistributedDataParallel
            # buffers (token_seen, the frozen tokenizer's) are identical on every rank: never re-broadcast them
            ddp_options = inspect.signature(DistributedDataParallel).parameters
            no_sync: dict[str, Any] = ({"forward_sync_buffers": False} if "forward_sync_buffers" in ddp_options
                                       else {"broadcast_buffers": False})
            self.pair_loss = DistributedDataParallel(
                pair_loss, device_ids=[dist_info.device] if dist_info.device.type == "cuda" else None, **no_sync)

    def prepare(self) -> None:
        """The model's one-off preparation on the whole training set (after a checkpoint was loaded, so that
        e.g. FuseLIP's image tokens come from the tokenizer weights the run actually uses)."""
        self.model.prepare(self.pairs)

    @property
    def split_groups(self) -> int:
        return self.sampler.split_groups

    def sampler_at(self, step: int) -> GroupBatchSampler:
        """The curriculum's first-phase sampler for its steps, then the sampler over the whole training set."""
        if self.first_sampler is not None and step < self.first_steps:
            return self.first_sampler
        return self.sampler

    def next_batch(self, step: int) -> list[int]:
        """The global batch of `step`: training-set indices of its pairs."""
        sampler = self.sampler_at(step)
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

    def loss(self, indices: list[int], step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.cfg.train.seed * 1_000_003 + step + 1)
        return self.pair_loss(self.local_batch(indices), generator)

    def before_step(self, step: int) -> None:
        pass

    def after_step(self, step: int) -> None:
        with torch.no_grad():
            self.model.logit_scale.clamp_(0.0, self.cfg.encoder.max_logit_scale)

    def log_items(self) -> dict[str, float]:
        return {"epoch": self.epoch, "logit_scale": self.model.logit_scale.item(),
                "logit_bias": self.model.logit_bias.item()}

    def state(self) -> dict[str, torch.Tensor]:
        return {"state.epoch": torch.tensor(self.epoch), "state.index": torch.tensor(self.index)}

    def load_state(self, state: dict[str, torch.Tensor], step: int) -> None:
        self.epoch, self.index = int(state["state.epoch"]), int(state["state.index"])
        self._in_use = self.sampler_at(max(step - 1, 0))  # the sampler that drew the last batch
        self._batches = None if self.index == 0 else self._in_use.epoch(self.epoch)


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


def ship_run(model: Checkpointable, path: str | Path, summary: dict, val_fn=None,
             dtype: torch.dtype | None = SHIP_DTYPE) -> Path:
    """Ships a finished pair-model run (fuselip.ship.ship): its learning curve and time beside the validation
    measured again on the reloaded copy; the end-of-training figures stay beside them (`validation_before_export`)
    with the largest difference (`export_shift`)."""
    metrics = {"validation": summary.get("val", {}), "curve": summary.get("val_history", []),
               "wall_time_s": summary["wall_time_s"],
               "steps": summary["step"], "pairs_per_s": summary["pairs_per_s"], "command": summary.get("command", ""),
               "weights": f"{str(dtype or torch.float32).removeprefix('torch.')} on disk, float32 in memory"}
    before: dict = summary.get("val") or {}

    def measure(loaded: nn.Module) -> dict:
        assert val_fn is not None
        after = {k: before[k] for k in ("step", "pairs_seen", "train_seconds") if k in before} | val_fn(loaded)
        bookkeeping = ("step", "pairs_seen", "train_seconds")
        shift = max((abs(after[k] - v) for k, v in before.items()
                     if k not in bookkeeping and isinstance(v, (int, float)) and k in after), default=0.0)
        return {"validation": after, "validation_before_export": before, "export_shift": shift}

    return ship(model, path, metrics, measure if val_fn is not None and before else None, dtype)
