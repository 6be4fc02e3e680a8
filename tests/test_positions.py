"""fuselip.positions: the 2-D sine-cosine map TiTok's pos_grid_rms starts its positions from."""
import pytest
import torch

from fuselip.positions import grid_sincos


def test_grid_sincos_is_a_row_and_column_map():
    table = grid_sincos(4, 16, rms=0.02)                                   # (16, 16): 4×4 grid, reading order
    assert table.shape == (16, 16) and float(table.pow(2).mean().sqrt()) == pytest.approx(0.02, rel=1e-5)
    grid = table.reshape(4, 4, 16)                                         # (row, col, channels)
    assert torch.equal(grid[:, 0, :8], grid[:, 3, :8])                     # first half: the row only
    assert torch.equal(grid[0, :, 8:], grid[3, :, 8:])                     # second half: the column only
    assert len({tuple(r.tolist()) for r in table}) == 16                   # every position distinct
    with pytest.raises(ValueError, match="divisible by 4"):
        grid_sincos(4, 18, rms=0.02)
