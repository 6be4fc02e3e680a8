"""The optimiser and its schedule, the same for every model the engine trains (fuselip/engine.py).

AdamW with weight decay on the tensors that are weights of a layer (>= 2 dims) and nowhere else: not on
LayerNorms, biases or the SigLIP logit scale/bias (PAPER.md), nor on any parameter whose name holds one of the
model's own `no_weight_decay` names (a tokenizer's codebook and position tables, the MAE's positions: shrinking
them towards zero is not regularisation). Linear warmup to `train.lr`, then cosine decay to 0 at `train.steps`.
"""
from __future__ import annotations

import contextlib
import functools
import math
import time

import torch
from torch import nn

from fuselip.config import TrainConfig


def is_decayed(name: str, param: nn.Parameter, module: nn.Module, exempt: tuple[str, ...] = ()) -> bool:
    """Whether AdamW decays `param` (its full dotted `name`, in `module`); `exempt`: the model's no_weight_decay."""
    return param.ndim >= 2 and not isinstance(module, nn.LayerNorm) and not name.endswith("bias") \
        and "logit_scale" not in name and not any(part in name for part in exempt)


def trainable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter, bool]]:
    """(name, parameter, decayed) for every parameter of the model, in a fixed order. A frozen one (FuseLIP's
    image tokenizer) gets no gradient, so AdamW leaves it alone; a model trained in stages (TiTok on proxy codes)
    may unfreeze some later, and they are in the optimiser already."""
    exempt = tuple(getattr(model, "no_weight_decay", ()))
    out = []
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            out.append((full, param, is_decayed(full, param, module, exempt)))
    return out


def build_optimizer(model: nn.Module, train: TrainConfig) -> torch.optim.AdamW:
    params = trainable_parameters(model)
    groups = [{"params": [p for _, p, d in params if d], "weight_decay": train.weight_decay},
              {"params": [p for _, p, d in params if not d], "weight_decay": 0.0}]
    # fused: one kernel per step instead of ~10 passes over every tensor (4-5x less CPU time on the 49k-row
    # token table); same update rule
    return torch.optim.AdamW(groups, lr=train.lr, betas=(train.beta1, train.beta2), eps=train.eps, fused=True)


def learning_rate(step: int, train: TrainConfig) -> float:
    """Linear warmup to train.lr over warmup_steps, then cosine decay to 0 at train.steps."""
    if step < train.warmup_steps:
        return train.lr * (step + 1) / train.warmup_steps
    progress = (step - train.warmup_steps) / max(1, train.steps - train.warmup_steps)
    return train.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _matmul_seconds(dtype: torch.dtype, size: int = 256, repeats: int = 8) -> float:
    """The best of three timings of `repeats` (size x size) matmuls in `dtype` on the CPU."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b  # warm-up: the first call picks and prepares its kernel
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = min(best, time.perf_counter() - start)
    return best


@functools.cache
def bf16_speedup(device_type: str) -> float:
    """How many times faster a bf16 matmul runs than an fp32 one here: measured once per process on a CPU
    (about 2.5 with AMX or AVX512-BF16; about 0.2 on a CPU without them, which emulates bf16), 2.0 on CUDA."""
    if device_type != "cpu":
        return 2.0
    return _matmul_seconds(torch.float32) / _matmul_seconds(torch.bfloat16)


def resolve_precision(precision: str, device: torch.device) -> str:
    """train.precision as the loop runs it: "auto" is bf16 where bf16 is the faster, else fp32."""
    if precision == "auto":
        return "bf16" if bf16_speedup(device.type) > 1.0 else "fp32"
    return precision


def describe_precision(precision: str, device: str) -> str:
    """One line for a run's log: the precision a run on `device` (train.device) trains in, and why."""
    dev = torch.device(device)
    chosen = resolve_precision(precision, dev)
    if precision != "auto":
        return f"train.precision={precision}"
    return (f"train.precision=auto: {chosen} (a bf16 matmul runs at {bf16_speedup(dev.type):.2f}x the speed of "
            f"fp32 on this {dev.type})")


def autocast(precision: str, device: torch.device):
    """bf16 autocast (CPU and CUDA) for precision "bf16", nothing for "fp32" (resolve "auto" first)."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"precision must be 'bf16' or 'fp32' (resolve 'auto' first), got {precision!r}")
