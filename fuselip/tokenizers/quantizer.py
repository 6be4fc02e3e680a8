"""Vector quantiser: every encoder output vector is replaced by its nearest codebook entry.

    z (…, D) ──nearest code──▶ index (…)  ──codebook row──▶ z_q (…, D)

Loss (shared/PAPER.md): codebook ‖z_q − sg(z)‖² + β · commitment ‖sg(z_q) − z‖², β = 0.25.
The decoder sees `z + sg(z_q − z)`: its value is z_q, its gradient flows straight through to z
(the straight-through estimator), so the encoder learns although `argmin` has no gradient.

With `l2_codes` (TiTok-S style) both z and the codes are l2-normalised before the lookup, so the nearest
code is the one with the largest cosine similarity.

Dead codes: a code that no encoder output picks never receives a gradient and stays dead. During
training the quantiser counts how often each code is picked; every `dead_code_every` steps the codes
picked fewer than `dead_code_threshold` times are re-seeded with randomly chosen recent encoder outputs
(so they start where the data is). The training loop calls `reseed_dead_codes()` after each optimiser step.

VQ warm-up (optional, `bypass`): for the first part of a run the decoder sees the continuous z, so encoder
and decoder first learn to pass information at all (a 1-D tokenizer otherwise tends to settle on a blurry
average); then every code is re-seeded from recent encoder outputs and quantisation starts.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def codebook_stats(indices: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Usage (fraction of codes picked at least once) and perplexity (exp of the entropy of the
    code histogram: = codebook_size when all codes are equally used, 1 when one code is used)."""
    counts = torch.bincount(indices.reshape(-1).long(), minlength=codebook_size).double()
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs[probs > 0] * probs[probs > 0].log()).sum()
    return {"usage": float((counts > 0).double().mean()), "perplexity": float(entropy.exp()),
            "codes_used": int((counts > 0).sum())}


class VectorQuantizer(nn.Module):
    usage_counts: torch.Tensor   # the buffers registered in __init__
    recent: torch.Tensor
    recent_filled: torch.Tensor
    window_steps: torch.Tensor

    def __init__(self, codebook_size: int, code_dim: int, *, l2_codes: bool = False, commitment: float = 0.25,
                 dead_code_threshold: float = 1.0, dead_code_every: int = 0, recent_codes: int = 4096):
        super().__init__()
        self.codebook_size, self.code_dim = codebook_size, code_dim
        self.l2_codes, self.commitment = l2_codes, commitment
        self.dead_code_threshold, self.dead_code_every = dead_code_threshold, dead_code_every
        self.codebook = nn.Parameter(torch.randn(codebook_size, code_dim) / math.sqrt(code_dim))
        # training-only state (kept in the state dict so that a resumed run continues exactly)
        self.register_buffer("usage_counts", torch.zeros(codebook_size))    # picks since the last re-seed
        self.register_buffer("recent", torch.zeros(recent_codes, code_dim))  # ring buffer of encoder outputs
        self.register_buffer("recent_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("window_steps", torch.zeros((), dtype=torch.long))
        self.reseeding = True  # the training loop turns this off for the final part of a run
        self.bypass = False    # VQ warm-up: pass z through unquantised (the codebook still follows z)

    TRAINING_BUFFERS = ("usage_counts", "recent", "recent_filled", "window_steps")

    def codes(self) -> torch.Tensor:
        """The codebook as the decoder sees it: (K, D), l2-normalised rows with `l2_codes`."""
        return F.normalize(self.codebook, dim=-1) if self.l2_codes else self.codebook

    def codes_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(…) long -> (…, D) quantised vectors."""
        return F.embedding(indices, self.codes())

    @torch.no_grad()
    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """(M, D) -> (M,) index of the nearest code (squared Euclidean; cosine with l2 codes), in fp32."""
        z = z.float()
        codes = self.codes().float()
        if self.l2_codes:
            z = F.normalize(z, dim=-1)
        # ‖z − c‖² = ‖z‖² − 2 z·c + ‖c‖²; ‖z‖² is the same for every code
        scores = z @ codes.t() * 2 - codes.pow(2).sum(-1)  # (M, K)
        return scores.argmax(dim=-1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """z (…, D) -> (z_q with straight-through gradient (…, D), indices (…), losses)."""
        z = z.float()
        if self.l2_codes:
            z = F.normalize(z, dim=-1)
        flat = z.reshape(-1, self.code_dim)  # (M, D)
        indices = self.nearest(flat)
        z_q = self.codes_from_indices(indices).view_as(z)
        losses = {"codebook": F.mse_loss(z_q, z.detach()), "commitment": F.mse_loss(z, z_q.detach())}
        losses["vq"] = losses["codebook"] + self.commitment * losses["commitment"]
        if self.training:
            self._track(flat.detach(), indices)
        if self.bypass and self.training:
            return z, indices.view(z.shape[:-1]), losses
        z_st = z + (z_q - z).detach()  # value z_q, gradient of z
        return z_st, indices.view(z.shape[:-1]), losses

    # ---------------------------------------------------------------------------------------------
    # dead-code remedy

    @torch.no_grad()
    def _track(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        self.usage_counts += torch.bincount(indices, minlength=self.codebook_size).to(self.usage_counts)
        size = self.recent.shape[0]
        take = flat[torch.randperm(flat.shape[0], device=flat.device)[:size]]
        start = int(self.recent_filled) % size
        positions = (start + torch.arange(take.shape[0], device=flat.device)) % size
        self.recent[positions] = take.to(self.recent)
        self.recent_filled += take.shape[0]

    @torch.no_grad()
    def reseed_all_codes(self) -> None:
        """Every code becomes a random recent encoder output (the end of the VQ warm-up)."""
        available = min(int(self.recent_filled), self.recent.shape[0])
        if available:
            pick = torch.randint(0, available, (self.codebook_size,), device=self.recent.device)
            self.codebook.data.copy_(self.recent[pick].to(self.codebook))
        self.usage_counts.zero_()
        self.window_steps.zero_()

    @torch.no_grad()
    def reseed_dead_codes(self) -> int:
        """Call once per optimiser step. At the end of each window, codes picked fewer than the threshold
        are replaced by random recent encoder outputs; returns how many were re-seeded."""
        if self.dead_code_every <= 0 or not self.training:
            return 0
        self.window_steps += 1
        if int(self.window_steps) < self.dead_code_every:
            return 0
        dead = (self.usage_counts < self.dead_code_threshold).nonzero().squeeze(1)
        available = min(int(self.recent_filled), self.recent.shape[0])
        n = int(dead.numel()) if self.reseeding and available > 0 else 0
        if n:
            pick = torch.randint(0, available, (n,), device=self.recent.device)
            self.codebook.data[dead] = self.recent[pick].to(self.codebook)
        self.usage_counts.zero_()
        self.window_steps.zero_()
        return n
