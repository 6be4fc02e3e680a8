"""The patch tokenizer: a token is the nearest code of its own pixel patch, and nothing else."""
import pytest
import torch
import torch.nn.functional as F

import fuselip
from fuselip.config import TokenizerConfig, load_preset
from fuselip.tokenizers import PatchTokenizer, build_tokenizer

TINY = TokenizerConfig(kind="patch", image_size=16, patch_size=4, codebook_size=8, code_dim=48, l2_codes=False)


@pytest.fixture
def tok():
    torch.manual_seed(0)
    return build_tokenizer(TINY).eval()


def test_a_token_depends_on_its_own_patch_only(tok):
    x = torch.rand(1, 3, 16, 16)
    codes = tok.encode(x)
    assert codes.shape == (1, 16) and isinstance(tok, PatchTokenizer)
    changed = 0
    for _ in range(20):  # repaint patch (row 1, column 2) = token 1 * 4 + 2
        y = x.clone()
        y[:, :, 4:8, 8:12] = torch.rand(1, 3, 4, 4)
        diff = (tok.encode(y) != codes).nonzero()[:, 1].tolist()
        assert set(diff) <= {6}
        changed += bool(diff)
    assert changed  # and repainting it does change it


def test_an_image_made_of_codes_comes_back_exactly(tok):
    codes = torch.randint(0, 8, (2, 16))
    images = tok.decode(codes)                               # the codebook rows are pixel patches
    assert torch.equal(tok.encode(images), codes)
    expected = F.pixel_shuffle(tok.quantizer.codes_from_indices(codes).transpose(1, 2).reshape(2, 48, 4, 4), 4)
    torch.testing.assert_close(images, (expected * 0.5 + 0.5).clamp(0, 1))


def test_training_is_k_means_on_patches():
    """The codebook loss alone moves each code to the mean of the patches it wins: two kinds of patch, two codes."""
    torch.manual_seed(0)
    tok = build_tokenizer(TokenizerConfig(**{**TINY.__dict__, "codebook_size": 2}))
    with torch.no_grad():
        tok.quantizer.codebook.copy_(torch.stack([torch.full((48,), -0.5), torch.full((48,), 0.5)]))
    dark, light = torch.full((1, 3, 4, 4), 0.1), torch.full((1, 3, 4, 4), 0.9)
    x = torch.cat([torch.cat([dark, light], 3).repeat(1, 1, 4, 2)])  # (1, 3, 16, 16): dark and light patches
    opt = torch.optim.SGD(tok.parameters(), lr=10.0)
    for _ in range(50):
        _, _, losses = tok.train()(x)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
    torch.testing.assert_close(tok.quantizer.codebook.detach(), torch.stack([torch.full((48,), -0.8),
                                                                            torch.full((48,), 0.8)]), atol=1e-3,
                               rtol=0)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="code_dim must be 3 x patch_size"):
        build_tokenizer(TokenizerConfig(kind="patch", image_size=16, patch_size=4, code_dim=12))
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        build_tokenizer(TokenizerConfig(kind="patch", image_size=18, patch_size=4, code_dim=48))
    with pytest.raises(ValueError, match="l2_codes"):
        build_tokenizer(TokenizerConfig(kind="patch", image_size=16, patch_size=4, code_dim=48, l2_codes=True))


def test_preset_and_checkpoint_round_trip(tmp_path, tok):
    default = build_tokenizer(load_preset("tokenizer", "tiny-patch").tokenizer)
    assert default.num_tokens == 64  # 64-px image -> 8 x 8 patches
    fuselip.save_model(tok, tmp_path / "tok")
    loaded = fuselip.load_model(tmp_path / "tok")
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded.encode(x), tok.encode(x))
