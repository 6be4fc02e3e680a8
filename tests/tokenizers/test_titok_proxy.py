"""TiTok trained as TiTok is trained: proxy codes of a frozen grid tokenizer (stage 1), then pixels (stage 2).

Tiny configs throughout: a random 32-px grid tokenizer (4×4 cells, 16 codes) is the proxy of a 4-token TiTok.
"""
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import fuselip
from fuselip.config import DataConfig, FuseLIPConfig, RunConfig, TokenizerConfig, TrainConfig, load_preset
from fuselip.images import to_tensor
from fuselip.tokenizers import TiTokTokenizer, build_tokenizer, influence_maps
from fuselip.tokenizers.titok import merge_copies
from fuselip.tokenizers.training import train

GRID = dict(image_size=32, stem_patch=4, channels=[8, 16], res_blocks=1, decoder_res_blocks=1, decoder_stage_blocks=1)
PROXY = dict(proxy_codebook_size=16, proxy_code_dim=4, proxy_l2_codes=True)
QUIET = dict(progress=False, log=lambda s: None)


@pytest.fixture(scope="module")
def images():
    """Blocky random images (4×4 cells of one colour each): a tiny TiTok can learn to tell them apart."""
    rng = np.random.default_rng(0)
    cells = rng.integers(0, 256, (32, 4, 4, 3), dtype=np.uint8)
    pool = cells.repeat(8, axis=1).repeat(8, axis=2)  # (32, 32, 32, 3)
    return pool, {"shapes": pool[:4], "emoji": pool[4:8]}


@pytest.fixture(scope="module")
def proxy_dir(tmp_path_factory, images):
    """A frozen grid tokenizer's checkpoint folder, the proxy: untrained, its codes spread over its encoder's
    outputs on the images (so that the images do not all get the same codes)."""
    torch.manual_seed(0)
    grid = build_tokenizer(TokenizerConfig(kind="grid", codebook_size=16, code_dim=4, l2_codes=True, **GRID))
    with torch.no_grad():
        z = grid.encode_latents(to_tensor(images[0]) * 2 - 1).reshape(-1, 4)  # (32·16, 4)
        grid.quantizer.codebook.copy_(z[torch.randperm(len(z))[:16]])
    path = tmp_path_factory.mktemp("proxy") / "grid"
    fuselip.save_model(grid.eval(), path)
    assert len(grid.encode(to_tensor(images[0])).unique()) >= 8
    return path


def titok_config(proxy_dir, **changes) -> TokenizerConfig:
    cfg = TokenizerConfig(kind="titok", codebook_size=16, code_dim=4, l2_codes=True, patch_size=8, num_latent_tokens=4,
                          width=32, layers=1, heads=2, dead_code_every=2, recent_codes=32, dead_code_until=0.5,
                          proxy_checkpoint=str(proxy_dir), **GRID, **PROXY)
    return dataclasses.replace(cfg, **changes)


def run_config(proxy_dir, out_dir, steps=8, **tokenizer) -> RunConfig:
    return RunConfig(tokenizer=titok_config(proxy_dir, **tokenizer), data=DataConfig(image_size=32),
                     train=TrainConfig(steps=steps, batch_size=8, lr=3e-3, warmup_steps=2, weight_decay=0.0,
                                       val_every=0, checkpoint_every=0, precision="fp32", out_dir=str(out_dir),
                                       threads=1))


@pytest.fixture(scope="module")
def trained(proxy_dir, images, tmp_path_factory):
    """A tiny TiTok after both stages (60 steps on proxy codes, then 20 on pixels)."""
    pool, val = images
    cfg = run_config(proxy_dir, tmp_path_factory.mktemp("run") / "titok", steps=80, pixel_finetune=0.25)
    return train(cfg, pool, val, **QUIET)


def proxy_ce(model, x) -> float:
    model.eval().training_phase(0, 1)  # stage 1: the loss is the proxy cross-entropy
    with torch.no_grad():
        return float(model(x)[2]["proxy_ce"])


def test_training_on_proxy_codes_lowers_the_proxy_cross_entropy(proxy_dir, images, tmp_path):
    pool, val = images
    cfg = run_config(proxy_dir, tmp_path / "ce", steps=60)
    torch.manual_seed(cfg.train.seed)
    fresh = build_tokenizer(cfg.tokenizer)  # the model `train` starts from (same seed)
    fresh.load_proxy()
    model = train(cfg, pool[:8], val, **QUIET)
    x = to_tensor(pool[:8])
    assert proxy_ce(model, x) < 0.8 * proxy_ce(fresh, x)  # measured: 2.9 -> 2.0
    assert model.proxy_accuracy(x) > fresh.proxy_accuracy(x)


def test_an_interrupted_run_resumes_exactly_across_both_stages(proxy_dir, images, tmp_path):
    pool, val = images
    straight = train(run_config(proxy_dir, tmp_path / "a", pixel_finetune=0.5), pool, val, **QUIET)
    cfg = run_config(proxy_dir, tmp_path / "b", pixel_finetune=0.5)  # stage 2 from step 4
    train(cfg, pool, val, stop_after=3, **QUIET)                      # interrupted in stage 1
    train(cfg, pool, val, resume=True, stop_after=3, **QUIET)         # ... and again in stage 2 (step 6)
    resumed = train(cfg, pool, val, resume=True, **QUIET)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and int(b["decoder_stage"]) == 2
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"


def test_stage_two_trains_the_decoders_only(proxy_dir, images, tmp_path):
    pool, val = images
    cfg = run_config(proxy_dir, tmp_path / "s", pixel_finetune=0.5)
    before = {k: v.clone() for k, v in train(cfg, pool, val, stop_after=4, **QUIET).state_dict().items()}
    after = train(cfg, pool, val, resume=True, **QUIET).state_dict()
    frozen = ("patch_embed.", "enc_pos", "latents", "encoder.", "to_code.", "quantizer.codebook",
              "proxy.quantizer.codebook", "proxy.encoder.")
    learned = ("decoder.", "to_proxy_logits.", "proxy.decoder.")
    for key in before:
        if key.startswith(frozen):
            assert torch.equal(before[key], after[key]), f"{key} changed in stage 2"
    assert all(not torch.equal(before[k], after[k]) for k in before if k.startswith(learned) and k.endswith("weight"))


def maps_of_two_tokens_differ(model, codes) -> bool:
    maps = influence_maps(model, codes)  # (N, S, S)
    return not torch.allclose(maps[0], maps[1])


def ignoring_its_input(model):
    """A copy whose decoder ignores the tokens (their embedding into the decoder is zero)."""
    broken = build_tokenizer(model.config)
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():
        broken.from_code.weight.zero_()
        broken.from_code.bias.zero_()
    return broken.eval()


def test_influence_maps_of_two_tokens_of_one_image_differ(trained, images):
    x = to_tensor(images[0][:1])
    codes = trained.encode(x)[0]
    assert int(trained.decoder_stage) == 2  # decoded from soft codes
    assert maps_of_two_tokens_differ(trained, codes)
    assert float(influence_maps(trained, codes).sum()) > 0
    assert not maps_of_two_tokens_differ(ignoring_its_input(trained), codes)  # the test catches a deaf decoder


def test_reconstructions_of_different_images_differ(trained, images):
    x = to_tensor(images[0][8:12])
    for model, differ in ((trained, True), (ignoring_its_input(trained), False)):
        recon = model.decode(trained.encode(x))  # (4, 3, S, S)
        gaps = [float((recon[i] - recon[j]).abs().max()) for i in range(4) for j in range(i + 1, 4)]
        assert (min(gaps) > 1e-3) if differ else (max(gaps) == 0), gaps


def test_stage_one_decodes_the_argmax_codes_with_the_grid_decoder(trained, images):
    x = to_tensor(images[0][:2])
    model = build_tokenizer(trained.config)
    model.load_state_dict(trained.state_dict())
    model.eval().training_phase(0, 1)                    # stage 1: hard codes
    codes = model.encode(x)
    with torch.inference_mode():
        logits = model.proxy_logits(model.quantizer.codes_from_indices(codes))
        expected = model.proxy.decode(logits.argmax(-1))  # the grid tokenizer's own decode of the predicted codes
    torch.testing.assert_close(model.decode(codes), expected, atol=2e-2, rtol=0)


def test_checkpoint_round_trip_is_self_contained(trained, images, tmp_path):
    x = to_tensor(images[0][:4])
    fuselip.save_model(trained, tmp_path / "tok", dtype=torch.float16)
    loaded = fuselip.load_model(tmp_path / "tok")
    assert isinstance(loaded, TiTokTokenizer) and loaded.config == trained.config
    assert torch.equal(loaded.encode(x), trained.encode(x))
    torch.testing.assert_close(loaded.decode(trained.encode(x)), trained.decode(trained.encode(x)), atol=2e-2, rtol=0)
    saved = set(loaded.export_tensors())
    assert "proxy.quantizer.codebook" in saved and any(k.startswith("proxy.decoder.") for k in saved)
    assert not any(k.startswith("proxy.encoder.") or "usage_counts" in k for k in saved)  # training-only parts
    with pytest.raises(RuntimeError, match="load_proxy"):
        loaded.proxy_codes(x)
    assert loaded.proxy_accuracy(x) is None


def test_a_fuselip_reads_images_through_it_and_round_trips(trained, images, tmp_path):
    model = fuselip.model.FuseLIP(FuseLIPConfig(width=32, layers=1, heads=2, context_length=24), trained)
    image = images[0][0]
    model.mark_seen(torch.arange(model.token_seen.numel()))  # as if trained on every id: the saved file keeps all rows
    expected = model.encode(images=[image], texts=["a"])
    fuselip.save_model(model, tmp_path / "fuselip")
    loaded = fuselip.load_model(tmp_path / "fuselip")
    assert isinstance(loaded.tokenizer, TiTokTokenizer) and loaded.tokenizer.proxy is not None
    torch.testing.assert_close(loaded.encode(images=[image], texts=["a"]), expected)


def test_bad_settings_name_the_setting(proxy_dir, images, tmp_path):
    pool, val = images
    with pytest.raises(ValueError, match=r"tokenizer\.proxy_checkpoint='.*nowhere': no checkpoint folder"):
        train(run_config(tmp_path / "nowhere", tmp_path / "r1"), pool, val, **QUIET)
    with pytest.raises(ValueError, match=r"tokenizer\.image_size=64 but the proxy has image_size=32"):
        train(run_config(proxy_dir, tmp_path / "r2", image_size=64), pool, val, **QUIET)
    with pytest.raises(ValueError, match=r"tokenizer\.channels=\[8, 8\] but the proxy has channels=\[8, 16\]"):
        build_tokenizer(titok_config(proxy_dir, channels=[8, 8])).load_proxy()
    with pytest.raises(ValueError, match="tokenizer.proxy_codebook_size"):
        build_tokenizer(titok_config(proxy_dir, proxy_codebook_size=0))
    with pytest.raises(ValueError, match="tokenizer.pixel_finetune needs tokenizer.proxy_checkpoint"):
        build_tokenizer(titok_config(proxy_dir, proxy_checkpoint="", pixel_finetune=0.2))
    titok_dir = tmp_path / "not-a-grid"
    fuselip.save_model(build_tokenizer(titok_config(proxy_dir, proxy_checkpoint="")), titok_dir)
    with pytest.raises(ValueError, match="holds a TiTokTokenizer; the proxy must be a grid tokenizer"):
        build_tokenizer(titok_config(titok_dir)).load_proxy()


@pytest.mark.parametrize("preset, tokens", [("tiny-titok", 32), ("tiny-titok-64", 64)])
def test_presets_fit_the_shipped_grid_tokenizer(preset, tokens):
    cfg = load_preset("tokenizer", preset).tokenizer
    tok = build_tokenizer(cfg)
    assert tok.num_tokens == tokens and tok.proxy is not None and tok.num_queries == 64  # the grid's 8×8 cells
    if not (Path(__file__).resolve().parents[2] / cfg.proxy_checkpoint / "config.json").exists():
        pytest.skip(f"{cfg.proxy_checkpoint} is not here")
    tok.load_proxy()  # raises when the preset's grid settings differ from the checkpoint's


def test_near_copies_of_a_code_share_one_target():
    codes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.001], [0.0, -1.0], [0.001, 1.0]])
    assert merge_copies(codes, 0.999).tolist() == [0, 1, 0, 3, 1]
    assert merge_copies(codes, 1.0 + 1e-6).tolist() == [0, 1, 2, 3, 4]  # nothing is that close


def test_stage_one_targets_are_the_merged_grid_codes(proxy_dir, images):
    tok = build_tokenizer(titok_config(proxy_dir, proxy_merge_cos=0.5))
    tok.load_proxy()
    x = to_tensor(images[0][:4])
    merged = tok.proxy_codes(x)
    exact = tok.proxy.encode(x)
    assert torch.equal(merged, merge_copies(tok.proxy.quantizer.codes(), 0.5)[exact])
    assert len(merged.unique()) < len(exact.unique())


def test_patch_and_query_positions_can_start_as_2d_maps(proxy_dir):
    from fuselip.positions import grid_sincos
    tok = build_tokenizer(titok_config(proxy_dir, pos_grid_rms=0.5))  # 4×4 patches, 4×4 proxy cells, width 32
    torch.testing.assert_close(tok.enc_pos[:16].detach(), grid_sincos(4, 32, 0.5))
    torch.testing.assert_close(tok.dec_pos[:16].detach(), grid_sincos(4, 32, 0.5))
    assert float(tok.enc_pos[16:].std()) < 0.05  # the latent tokens' positions stay N(0, 0.02)
