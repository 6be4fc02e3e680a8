"""The training loop for image tokenizers: the model's own loss, validation, atomic checkpoints, exact resume.

    train(run_config, train_images, val_images, resume=...) -> tokenizer

`train_images` is a (M, S, S, 3) uint8 pool; every step draws a batch from it with a seeded generator.
A checkpoint in `train.out_dir` holds the model (config.json + model.safetensors, loadable with
`fuselip.load_model`) and, in `extra.safetensors`, everything needed to continue bit-exactly: the step,
the optimiser moments, the quantiser's usage window and recent-output buffer, and both RNG states.
The model supplies its losses (forward -> losses["loss"]) and, through the hooks of ImageTokenizer
(prepare_training, training_phase, after_step), whatever it does in stages: a TiTok trained on proxy codes
switches from the proxy cross-entropy to pixels here, as a function of the step alone.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from fuselip import checkpoint
from fuselip.config import RunConfig, to_dict
from fuselip.images import to_tensor
from fuselip.tokenizers import build_tokenizer
from fuselip.tokenizers.base import ImageTokenizer
from fuselip.tokenizers.evaluation import evaluate, psnr
from fuselip.tokenizers.quantizer import VectorQuantizer, codebook_stats


def lr_at(step: int, cfg) -> float:
    """Linear warmup, then cosine decay to zero (cfg: TrainConfig)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.AdamW:
    """AdamW; weight decay only on ≥2-d weights, never on the codebook, biases or embeddings of positions."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "codebook" not in name and "pos" not in name else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


# -------------------------------------------------------------------------------------------------
# train state <-> tensors (safetensors holds tensors only: no pickle)


def training_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The quantiser's usage window and recent outputs (a model without a quantiser, e.g. fuselip.mae, has none)."""
    quantizer = getattr(model, "quantizer", None)
    if quantizer is None:
        return {}
    return {name: getattr(quantizer, name) for name in VectorQuantizer.TRAINING_BUFFERS}


def train_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                batch_rng: torch.Generator, seconds: float = 0.0) -> dict[str, torch.Tensor]:
    state = {"step": torch.tensor(step), "rng.torch": torch.get_rng_state(), "rng.batches": batch_rng.get_state(),
             "train_seconds": torch.tensor(seconds, dtype=torch.float64)}
    for name, buffer in training_buffers(model).items():
        state[f"buffer.{name}"] = buffer
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        for key, value in optimizer.state.get(p, {}).items():
            state[f"optim.{i}.{key}"] = torch.as_tensor(value)
    return state


def load_train_state(state: dict[str, torch.Tensor], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     batch_rng: torch.Generator) -> int:
    for name, buffer in training_buffers(model).items():
        buffer.copy_(state[f"buffer.{name}"])
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, p in enumerate(params):
        entries = {k.rsplit(".", 1)[1]: v for k, v in state.items() if k.startswith(f"optim.{i}.")}
        if entries:
            optimizer.state[p] = {k: v.clone() for k, v in entries.items()}
    torch.set_rng_state(state["rng.torch"])
    batch_rng.set_state(state["rng.batches"])
    return int(state["step"])


def resume_run(out_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch_rng: torch.Generator,
               what: str, log: Callable[[str], None]) -> tuple[int, float, dict]:
    """Loads the run checkpoint in `out_dir` (save_run) into model, optimiser and generator, after checking it
    was made with the same model config -> (step, training seconds so far, its metrics)."""
    ckpt = checkpoint.read(out_dir, with_extra=True)
    if ckpt.config != model.config_dict():
        raise ValueError(f"{out_dir}: the checkpoint was trained with another {what} config; "
                         f"resume with the same preset/overrides or choose a new --train.out_dir")
    extra = {k.split(":", 1)[1]: v for k, v in ckpt.tensors.items() if k.startswith("extra:")}
    model.import_tensors({k: v for k, v in ckpt.tensors.items() if not k.startswith("extra:")}, str(out_dir))
    step = load_train_state(extra, model, optimizer, batch_rng)
    log(f"resumed from {out_dir} at step {step}")
    return step, float(extra.get("train_seconds", torch.tensor(0.0))), ckpt.metrics or {}


def save_run(model, optimizer, step, batch_rng, out_dir: Path, metrics: dict, seconds: float = 0.0) -> None:
    checkpoint.save(out_dir, kind=model.checkpoint_kind, config=model.config_dict(),
                    tensors=model.export_tensors(), metrics=metrics,
                    extra=train_state(model, optimizer, step, batch_rng, seconds))


# -------------------------------------------------------------------------------------------------


def train(cfg: RunConfig, train_images: np.ndarray, val_images: dict[str, np.ndarray], *, resume: bool = False,
          progress: bool = True, log: Callable[[str], None] = print,
          stop_after: int | None = None) -> ImageTokenizer:
    """Trains `cfg.tokenizer` on `train_images` for `cfg.train.steps` steps (see module doc).

    stop_after: end (with a checkpoint) after this many steps of this call, as if interrupted (tests).
    """
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    out_dir = Path(tc.out_dir)
    torch.manual_seed(tc.seed)
    model = build_tokenizer(cfg.tokenizer).to(tc.device)
    model.prepare_training()  # e.g. TiTok on proxy codes: its frozen grid tokenizer, from tokenizer.proxy_checkpoint
    optimizer = make_optimizer(model, tc)
    batch_rng = torch.Generator().manual_seed(tc.seed)
    step, seconds_before = 0, 0.0
    if resume and (out_dir / checkpoint.WEIGHTS_FILE).exists():
        step, seconds_before, _ = resume_run(out_dir, model, optimizer, batch_rng, "tokenizer", log)
    checkpoint.write_json_atomic(_ensure_dir(out_dir.parent) / f"{out_dir.name}.run.json", to_dict(cfg))

    model.train()
    pool = torch.from_numpy(train_images)  # (M, S, S, 3) uint8
    autocast = torch.autocast(tc.device.split(":")[0], dtype=torch.bfloat16, enabled=tc.precision == "bf16")
    reseed_until = int(cfg.tokenizer.dead_code_until * tc.steps) if cfg.tokenizer.dead_code_until > 0 else tc.steps
    vq_from = int(cfg.tokenizer.vq_warmup * tc.steps)  # steps before this one pass z through unquantised
    window_codes: list[torch.Tensor] = []
    metrics: dict = {}
    start_step, t0 = step, time.time()
    bar = tqdm(total=tc.steps, initial=step, disable=not progress, dynamic_ncols=True, desc=cfg.tokenizer.kind)
    while step < tc.steps:
        idx = torch.randint(0, len(pool), (tc.batch_size,), generator=batch_rng)
        x = to_tensor(pool[idx].numpy()).to(tc.device)  # (B, 3, S, S)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, tc)
        model.training_phase(step, tc.steps)  # a model trained in stages (TiTok: proxy codes, then pixels)
        model.reconstruct = (step + 1) % tc.log_every == 0 or step + 1 == tc.steps  # the steps that show PSNR
        model.quantizer.bypass = step < vq_from
        if step == vq_from and vq_from > 0:
            model.quantizer.reseed_all_codes()
        with autocast:
            recon, codes, losses = model(x)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if tc.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        model.quantizer.reseeding = step < reseed_until
        model.after_step()
        step += 1
        window_codes.append(codes.detach())
        bar.update(1)
        if step % tc.log_every == 0 or step == tc.steps:
            stats = codebook_stats(torch.cat(window_codes), model.codebook_size)
            window_codes = []
            bar.set_postfix(loss=f"{float(losses['loss'].detach()):.4f}", psnr=f"{psnr(recon.detach(), x).mean():.2f}",
                            usage=f"{stats['usage']:.2f}", refresh=False,
                            **{k: f"{float(losses[k]):.3f}" for k in model.progress_losses if k in losses})
        last = step == tc.steps or (stop_after is not None and step - start_step >= stop_after)
        if (tc.val_every and step % tc.val_every == 0) or last:
            model.eval()
            metrics = {"step": step, **evaluate(model, val_images),
                       "train_seconds_total": round(seconds_before + time.time() - t0, 1)}
            model.train()
            log(f"step {step}: " + ", ".join(f"psnr[{w}]={v:.2f}" for w, v in metrics["psnr"].items())
                + f", usage={metrics['usage']:.3f}, perplexity={metrics['perplexity']:.1f}"
                + "".join(f", proxy_accuracy[{w}]={v:.3f}" for w, v in metrics.get("proxy_accuracy", {}).items()))
        if (tc.checkpoint_every and step % tc.checkpoint_every == 0) or last:
            save_run(model, optimizer, step, batch_rng, out_dir, {"step": step, **metrics},
                     seconds=seconds_before + time.time() - t0)
        if last:
            break
    bar.close()
    model.reconstruct = True
    model.eval()
    return model


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
