"""Late-fusion baselines (SF, MLF) and the encode API contract that every model of the project keeps."""
import warnings

import numpy as np
import pytest
import torch

from fuselip import vocab
from fuselip.baselines import (MagicLensFusionSigLIP, ScoreFusionSigLIP, build_baseline, effective_parameters,
                               side_tensors)
from fuselip.checkpoint import load_model, save_model
from fuselip.config import FuseLIPConfig, LateFusionConfig, load_preset
from fuselip.data.types import Pair, Side
from fuselip.losses import siglip_loss

SMALL = dict(width=64, layers=2, heads=4, context_length=32, fusion_layers=2)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def small(kind: str, **extra):
    torch.manual_seed(0)
    return build_baseline(LateFusionConfig(kind=kind, **{**SMALL, **extra}), image_size=64).eval()


def images(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(n)]


def fuselip_tiny():
    from fuselip.model import build_fuselip
    config = load_preset("fuselip", "tiny")
    config.tokenizer_checkpoint = "untrained"  # an untrained tokenizer is enough for the API contract
    torch.manual_seed(0)
    return build_fuselip(config).eval()


MODELS = {"siglip-sf": lambda: small("siglip-sf"), "siglip-mlf": lambda: small("siglip-mlf"),
          "siglip-mlf-conv-stem": lambda: small("siglip-mlf", vision_stem="conv"), "fuselip-tiny": fuselip_tiny}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request):
    return MODELS[request.param]()


def test_encode_contract_shapes_norms_and_missing_sides_per_sample(model):
    ims = images(3)
    # image+text, text only, image only, image+text: each side may be missing per sample
    batch_images = [ims[0], None, ims[1], ims[2]]
    batch_texts = ["rotate 90 degrees clockwise", "a red circle", None, "a small blue square on the left"]
    emb = model.encode(images=batch_images, texts=batch_texts)
    assert emb.ndim == 2 and emb.shape[0] == 4 and emb.dtype == torch.float32
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(4))
    # a sample's embedding does not depend on the rest of the batch (masks, padding, de-duplication)
    for i in range(4):
        alone = model.encode(images=[batch_images[i]], texts=[batch_texts[i]])
        torch.testing.assert_close(alone[0], emb[i], atol=2e-5, rtol=0)
    # a whole side may be left out
    torch.testing.assert_close(model.encode(images=[ims[1]])[0], emb[2], atol=2e-5, rtol=0)
    torch.testing.assert_close(model.encode(texts=["a red circle"])[0], emb[1], atol=2e-5, rtol=0)
    # the text changes a fused embedding, the image too
    assert not torch.allclose(emb[0], model.encode(images=[ims[0]], texts=["horizontal flip"])[0], atol=1e-4)
    assert not torch.allclose(emb[0], model.encode(images=[ims[1]], texts=[batch_texts[0]])[0], atol=1e-4)
    with pytest.raises(ValueError):
        model.encode(images=[None], texts=[None])
    with pytest.raises(ValueError):
        model.encode(images=ims[:2], texts=["one text"])


def test_score_fusion_is_the_normalised_sum_of_the_normalised_towers():
    model = small("siglip-sf")
    ims, texts = images(2), ["grayscale", "a green triangle"]
    fused = model.encode(images=ims, texts=texts)
    alone = model.encode(images=ims) + model.encode(texts=texts)
    torch.testing.assert_close(fused, torch.nn.functional.normalize(alone, dim=-1), atol=1e-5, rtol=0)


def test_text_tower_is_bidirectional_and_ignores_padding():
    model = small("siglip-mlf")
    ids = torch.tensor([vocab.build_sequence(None, [320, 736, 2866], 32)])
    feats = model.encode_text_ids(ids)
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)  # pad columns change nothing
    torch.testing.assert_close(model.encode_text_ids(padded), feats, atol=1e-5, rtol=0)
    # id 0 is the pad id AND the BPE token "!": inside a text it is a real token that the output reads
    bang = torch.tensor([vocab.build_sequence(None, [320, vocab.PAD, 2866], 32)])
    model.clip.token_embedding.weight.grad = None
    model.encode_text_ids(bang).sum().backward()
    assert model.clip.token_embedding.weight.grad[vocab.PAD].abs().sum() > 0
    later = ids.clone()
    later[0, 3] = 1125  # a token AFTER position 1 changes what position 1 sees: no causal mask
    with torch.no_grad():
        clip = model.clip
        hidden = lambda x: clip.transformer(clip.token_embedding(x) + clip.positional_embedding[:x.shape[1]])
        assert not torch.allclose(hidden(ids)[0, 1], hidden(later)[0, 1])


def test_side_tensors_store_each_distinct_image_and_text_once():
    ims = images(2)
    batch = side_tensors([ims[0], ims[0].copy(), None, ims[1]], ["a", None, "a", "b"], 16, "left")
    assert batch["left_pixels"].shape == (2, 64, 64, 3)
    assert batch["left_image_index"].tolist() == [0, 0, -1, 1]
    assert batch["left_text_index"].tolist() == [0, -1, 0, 1]
    assert batch["left_text_ids"].shape[0] == 2 and (batch["left_text_ids"][:, 0] == vocab.SOT).all()


def pairs_batch(n: int = 6) -> list[Pair]:
    ims = images(n, seed=1)
    out = []
    for i in range(n):
        if i % 2:  # caption-like: image -> text
            out.append(Pair(Side(ims[i]), Side(None, f"caption number {i}"), task="caption", group=i))
        else:  # instruction-like: image + text -> image (two share one target: right_dup)
            out.append(Pair(Side(ims[i], "rotate 90 degrees"), Side(ims[0]), task="tgit", group=0))
    return out


@pytest.mark.parametrize("kind,stem", [("siglip-sf", "patch"), ("siglip-mlf", "patch"), ("siglip-sf", "conv")])
def test_training_step_reaches_every_parameter_group(kind, stem):
    model = small(kind, vision_stem=stem).train()
    pairs = pairs_batch()
    batch = model.collate(pairs)
    assert batch["right_dup"].shape == (6, 6) and bool(batch["right_dup"][0, 2])  # identical right sides
    left, right, aux = model.forward_pairs(batch)
    assert left.shape == right.shape == (6, model.embed_dim) and aux == {}
    loss = siglip_loss(left, right, model.logit_scale, model.logit_bias, positives=batch["right_dup"])
    loss.backward()
    first = "clip.visual.conv1.weight" if stem == "patch" else "clip.visual.conv1.0.weight"
    for name in (first, "clip.transformer.resblocks.0.attn.in_proj_weight",
                 "clip.text_projection", "clip.logit_scale"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    if kind == "siglip-mlf":
        assert model.fusion.pool_query.grad.abs().sum() > 0


@pytest.mark.parametrize("kind,stem", [("siglip-sf", "patch"), ("siglip-mlf", "patch"), ("siglip-mlf", "conv")])
def test_checkpoint_keeps_only_seen_text_rows_and_reloads_identically(kind, stem, tmp_path):
    model = small(kind, vision_stem=stem)
    pairs = pairs_batch()
    model.prepare(pairs)
    seen = int(model.token_seen.sum())
    assert 2 < seen < 30
    path = save_model(model, tmp_path / kind)
    loaded = load_model(path)
    assert isinstance(loaded, {"siglip-sf": ScoreFusionSigLIP, "siglip-mlf": MagicLensFusionSigLIP}[kind])
    assert loaded.compacted and int(loaded.token_seen.sum()) == seen
    ims = images(2)
    texts = ["caption number 3", "rotate 90 degrees"]
    torch.testing.assert_close(loaded.encode(images=ims, texts=texts), model.encode(images=ims, texts=texts))
    full = 49408 * SMALL["width"] * 4
    assert (path / "model.safetensors").stat().st_size < full / 4  # the table is not stored in full
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded.encode(texts=["zebra"])
    assert any("never occurred in training" in str(w.message) for w in caught)


@pytest.mark.parametrize("patch_size", [4, 8, 16])
def test_conv_stem_makes_the_same_token_grid_as_the_patch_embedding(patch_size):
    pixels = torch.rand(2, 3, 64, 64)
    layers = {stem: small("siglip-sf", vision_patch_size=patch_size, vision_stem=stem).clip.visual.conv1
              for stem in ("patch", "conv")}
    grid = 64 // patch_size
    for layer in layers.values():
        assert tuple(layer(pixels).shape) == (2, SMALL["width"], grid, grid)
    stem = layers["conv"]
    strided = [m for m in stem if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == patch_size.bit_length() - 1  # one 3x3 stride-2 conv per halving


def test_conv_stem_features_do_not_depend_on_the_rest_of_the_batch():
    model = small("siglip-sf", vision_stem="conv").train()  # training mode: a BatchNorm would mix the batch here
    pixels = torch.from_numpy(np.stack(images(3)))
    together = model.encode_pixels(pixels)
    torch.testing.assert_close(model.encode_pixels(pixels[:1])[0], together[0], atol=2e-5, rtol=0)


def test_config_round_trip_and_errors():
    model = small("siglip-mlf")
    again = type(model).from_config(model.config_dict())
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="vision_patch_size"):
        build_baseline(LateFusionConfig(kind="siglip-sf", **{**SMALL, "vision_patch_size": 7}), 64)
    with pytest.raises(ValueError, match="late-fusion"):
        build_baseline(FuseLIPConfig(), 64)  # a FuseLIP encoder, on purpose
    with pytest.raises(ValueError, match="vision_stem must be"):
        small("siglip-sf", vision_stem="resnet")
    with pytest.raises(ValueError, match="power-of-two"):
        build_baseline(LateFusionConfig(kind="siglip-sf", **{**SMALL, "vision_patch_size": 12, "vision_stem": "conv"}),
                       96)
    conv = small("siglip-mlf", vision_stem="conv")
    again = type(conv).from_config(conv.config_dict())
    assert again.encoder_config.vision_stem == "conv"
    assert again.state_dict().keys() == conv.state_dict().keys()


def test_effective_parameters_count_only_seen_rows():
    model = small("siglip-sf")
    before = effective_parameters(model)
    model.prepare(pairs_batch())
    added = int(model.token_seen.sum()) - 2
    assert effective_parameters(model) == before + added * SMALL["width"]


# ---------------------------------------------------------------------------------------------
# the tiny presets: same training as FuseLIP-tiny, parameter counts within ±15 % of it


def test_tiny_baselines_train_exactly_like_fuselip_tiny():
    from fuselip.tokenizers import build_tokenizer

    fuselip = load_preset("fuselip", "tiny")
    image_tokens = build_tokenizer(fuselip.tokenizer).num_tokens  # 8 x 8 grid codes
    for name in ("tiny-sf", "tiny-mlf"):
        baseline = load_preset("baseline", name)
        assert baseline.data == fuselip.data, name  # same worlds, task mixture, training set, seed
        assert {**vars(baseline.train), "out_dir": ""} == {**vars(fuselip.train), "out_dir": ""}, name
        # a text is cut at the same token: FuseLIP's context holds the image tokens too
        assert baseline.encoder.context_length == fuselip.encoder.context_length - image_tokens, name


def test_tiny_baselines_have_fuselip_tiny_parameter_count_within_15_percent():
    """Counted as trainable parameters that data can reach (effective_parameters): the rows of the token
    tables for ids the training data contains (measured on 2,000 real training pairs: the text vocabulary
    of both worlds saturates at ~420 BPE ids), plus for FuseLIP every image code of the codebook (an upper
    bound: a trained tokenizer uses most of them). FuseLIP's frozen image tokenizer is not counted."""
    import warnings

    from fuselip.data.tasks import sample_pairs
    from fuselip.model import build_fuselip
    from fuselip.text import default_tokenizer

    config = load_preset("fuselip", "tiny")
    pairs = sample_pairs(config.data, "train", 2000, config.data.seed)
    texts = {side.text for p in pairs for side in (p.left, p.right) if side.text}
    text_ids = sorted({i for t in texts for i in default_tokenizer().encode(t)})
    assert 300 < len(text_ids) < 2000

    config.tokenizer_checkpoint = "untrained"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fuselip = build_fuselip(config)
    fuselip.mark_seen(torch.tensor(text_ids))
    fuselip.mark_seen(torch.arange(vocab.IMAGE_OFFSET, fuselip.vocab_size))
    reference = effective_parameters(fuselip)
    assert 3_000_000 < reference < 4_500_000

    for name in ("tiny-sf", "tiny-mlf"):
        baseline = build_baseline(load_preset("baseline", name))
        baseline.prepare(pairs)
        assert int(baseline.token_seen.sum()) == len(text_ids) + 2  # + sot, eot
        ratio = effective_parameters(baseline) / reference
        assert 0.85 <= ratio <= 1.15, f"{name}: {effective_parameters(baseline)} vs FuseLIP-tiny {reference}"


def test_unseen_text_rows_stay_zero_in_training_so_the_compact_checkpoint_is_exact(tmp_path):
    model = small("siglip-sf").train()
    pairs = pairs_batch()
    model.prepare(pairs)
    table = model.clip.token_embedding.weight
    assert table[~model.token_seen].abs().sum() == 0
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(2):
        left, right, _ = model.forward_pairs(model.collate(pairs))
        siglip_loss(left, right, model.logit_scale, model.logit_bias).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert table[~model.token_seen].abs().sum() == 0 and table[model.token_seen].abs().sum() > 0
    loaded = load_model(save_model(model.eval(), tmp_path / "sf"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        unseen = ["a zebra juggling", "caption number 3 and a zebra"]
        torch.testing.assert_close(loaded.encode(texts=unseen), model.encode(texts=unseen), atol=0, rtol=0)
