"""The two training objectives of FuseLIP (shared/PAPER.md, "Training objective").

- `siglip_loss`: the sigmoid contrastive loss between left (query) and right (target) embeddings,
  `logits = exp(t) · L · Rᵀ + b`, label +1 for a positive pair and −1 otherwise,
  loss = −Σ logsigmoid(label · logit) / (number of left rows).
- `mmm_mask` / `mmm_loss`: masked multimodal modelling. Each token of a sequence is replaced by `[MASK]`
  with probability p, except `eot`, pad and `[MASK]` itself; a head predicts the original id over the
  joint vocabulary and the loss is the cross-entropy on the masked positions.

`sot` CAN be masked: PAPER.md exempts exactly eot, pad and [MASK] (sot is an ordinary token there, and
masking it is harmless because its id is constant and trivially predictable).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fuselip import vocab

# ids that masked multimodal modelling never replaces
MMM_EXEMPT = (vocab.EOT, vocab.PAD, vocab.MASK)


def siglip_loss(left: torch.Tensor, right: torch.Tensor, logit_scale: torch.Tensor, logit_bias: torch.Tensor,
                positives: torch.Tensor | None = None) -> torch.Tensor:
    """SigLIP sigmoid loss.

    left: (B, D), right: (N, D) embeddings (N = B in one process; under DDP the right side of every rank).
    logit_scale: the learned log-scale t (the logits use exp(t)); logit_bias: b.
    positives: (B, N) bool, True where right row j is a correct target for left row i. Default: the diagonal
        (requires N == B). Rows whose right sides have identical content are all positives of each other.
    Returns the scalar −Σ logsigmoid(label · logit) / B, computed in float32.
    """
    if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[1]:
        raise ValueError(f"siglip_loss expects (B, D) and (N, D) embeddings, got {tuple(left.shape)} "
                         f"and {tuple(right.shape)}")
    batch = left.shape[0]
    if positives is None:
        if right.shape[0] != batch:
            raise ValueError(f"without `positives`, left and right need the same rows ({batch} vs {right.shape[0]})")
        positives = torch.eye(batch, dtype=torch.bool, device=left.device)
    if tuple(positives.shape) != (batch, right.shape[0]):
        raise ValueError(f"positives must be ({batch}, {right.shape[0]}), got {tuple(positives.shape)}")
    logits = logit_scale.exp() * left.float() @ right.float().T + logit_bias  # (B, N)
    labels = positives.float() * 2 - 1  # +1 positives, -1 negatives
    return -F.logsigmoid(labels * logits).sum() / batch


def mmm_mask(ids: torch.Tensor, p: float, generator: torch.Generator | None = None,
             uniform: torch.Tensor | None = None) -> torch.Tensor:
    """(B, T) ids -> (B, T) bool: True where the token is replaced by [MASK] (probability p each).

    eot, pad and [MASK] are never masked. `uniform` ((B, T) in [0, 1)) replaces the random draw, so that a
    caller can make the mask a function of something stable (the engine draws it per global batch row,
    which makes a DDP run mask exactly like a single process).
    """
    if uniform is None:
        uniform = torch.rand(ids.shape, generator=generator, device="cpu").to(ids.device)
    eligible = torch.ones_like(ids, dtype=torch.bool)
    for token in MMM_EXEMPT:
        eligible &= ids != token
    return (uniform < p) & eligible


def apply_mask(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace masked positions by [MASK]."""
    return torch.where(mask, torch.full_like(ids, vocab.MASK), ids)


def mmm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the MMM head on the masked positions only.

    logits: (M, V) for the M masked positions, targets: (M,) original ids. With no masked position the
    loss is 0 (but still connected to the graph, so every parameter receives a (zero) gradient).
    reduction: "mean" (over masked positions) or "sum" (the engine divides by the count over all ranks).
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets, reduction=reduction)
