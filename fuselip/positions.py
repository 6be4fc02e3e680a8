"""2-D sine-cosine position maps (MAE/ViT style), the start of the learned positions of a token grid: TiTok's
patches and queries (`tokenizer.pos_grid_rms`, fuselip/tokenizers/titok.py)."""
from __future__ import annotations

import torch


def grid_sincos(grid: int, width: int, rms: float) -> torch.Tensor:
    """(grid², width) 2-D sine-cosine position map of a grid×grid token grid in reading order (MAE/ViT style): the
    first half of the channels encodes the row, the second half the column, each as sin/cos pairs of geometric
    frequencies; scaled to root-mean-square `rms`."""
    if width % 4:
        raise ValueError(f"2-D sine-cosine positions need a width divisible by 4, got {width}")
    quarter = width // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)   # (W/4,)
    axis = torch.arange(grid, dtype=torch.float64)[:, None] * omega[None, :]           # (g, W/4)
    one_axis = torch.cat([axis.sin(), axis.cos()], dim=1)                               # (g, W/2)
    rows = one_axis[:, None, :].expand(grid, grid, width // 2)                          # (g, g, W/2): row r
    cols = one_axis[None, :, :].expand(grid, grid, width // 2)                          # (g, g, W/2): column c
    table = torch.cat([rows, cols], dim=2).reshape(grid * grid, width)                  # (g², W)
    return (table * (rms / table.pow(2).mean().sqrt())).float()
