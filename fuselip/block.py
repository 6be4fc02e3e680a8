"""The transformer block of FuseLIP's encoder (fuselip/model.py) and of the released TiTok
(fuselip/tokenizers/titok_official.py): pre-LN, fused QKV projection, bidirectional attention over the tokens that
`keep` marks (a key-padding mask, no causal mask), a GELU MLP:

    x (B, T, D) -> x + proj(attention(ln_1(x))) -> x + fc_out(gelu(fc(ln_2(x))))

`return_attention=True` also returns the (B, H, T, T) attention weights (fuselip/probe.py reads them).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """Pre-LN transformer block with fused QKV projection and bidirectional attention."""

    # bf16 on CPU: PyTorch's CPU flash-attention kernel is several times slower (backward) than the explicit two
    # matmuls at our sequence lengths; benchmarks/encoder_throughput.py measures both ("ours_sdpa_kernel").
    explicit_cpu_bf16 = True

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.fc = nn.Linear(width, hidden)
        self.fc_out = nn.Linear(hidden, width)

    def attention(self, x: torch.Tensor, keep: torch.Tensor, return_attention: bool):
        B, T, D = x.shape
        H = self.heads
        qkv = self.qkv(x).view(B, T, 3, H, D // H)             # (B, T, 3, H, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)          # 3 x (B, H, T, hd)
        key_mask = keep[:, None, None, :]                       # (B, 1, 1, T): True = attend to this key
        weights = None
        if return_attention or (self.explicit_cpu_bf16 and q.device.type == "cpu" and q.dtype == torch.bfloat16):
            # explicit softmax(q k^T / sqrt(hd)) v: the same maths, with the weights available
            scores = (q @ k.transpose(-2, -1)) * (D // H) ** -0.5  # (B, H, T, T)
            weights = scores.masked_fill(~key_mask, float("-inf")).softmax(dim=-1)
            y = weights.to(v.dtype) @ v                         # (B, H, T, hd)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, D)                  # (B, T, D)
        return self.proj(y), (weights if return_attention else None)

    def forward(self, x: torch.Tensor, keep: torch.Tensor, return_attention: bool = False):
        a, weights = self.attention(self.ln_1(x), keep, return_attention)
        x = x + a
        x = x + self.fc_out(F.gelu(self.fc(self.ln_2(x))))
        return x, weights
