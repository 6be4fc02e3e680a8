"""FuseLIP: the encode contract, padding invariance, the attention switch, the tied MMM head, compaction."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import fuselip_helpers as H
from fuselip import vocab
from fuselip.checkpoint import load_model, save_model
from fuselip.config import ConfigError, load_preset
from fuselip.data.collate import collate_pairs
from fuselip.model import UNTRAINED_TOKENIZER, FuseLIP, build_fuselip

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    return H.model().eval()


def test_encode_contract(model):
    ims = H.images(3)
    out = model.encode(images=[ims[0], None, ims[1], ims[2]], texts=["red circle", "blue square", None, ""])
    assert out.shape == (4, model.embed_dim) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)
    # image alone == image with the empty text (both are [img…, sot, eot])
    assert torch.allclose(out[2], model.encode(images=[ims[1]])[0], atol=1e-6)
    assert torch.allclose(out[1], model.encode(texts=["blue square"])[0], atol=1e-6)
    # one sample's embedding does not depend on the others in its batch
    assert torch.allclose(out[0], model.encode(images=[ims[0]], texts=["red circle"])[0], atol=1e-5)
    with pytest.raises(ValueError, match="sample 1 has neither"):
        model.encode(images=[ims[0], None], texts=["a", None])
    with pytest.raises(ValueError, match="images, texts, or both"):
        model.encode()
    with pytest.raises(ValueError, match="2 images but 3 texts"):
        model.encode(images=ims[:2], texts=["a", "b", "c"])


def test_sequence_layout_image_first_then_sot_text_eot(model):
    pairs = H.pairs(4)
    batch = collate_pairs(pairs, model.token_cache(), model.config.context_length)
    row = batch["left_ids"][1].tolist()
    n = model.tokenizer.num_tokens
    assert all(i >= vocab.IMAGE_OFFSET for i in row[:n]) and row[n] == vocab.SOT
    assert vocab.EOT in row and all(i == vocab.PAD for i in row[row.index(vocab.EOT) + 1:])


def test_padding_never_changes_an_embedding(model):
    ids = torch.tensor(vocab.build_sequence([3, 1, 4, 1, 5, 9], [320, 1929, 2368], model.config.context_length))
    short = vocab.pad_sequences([ids.tolist()])
    long = torch.cat([short, torch.zeros(1, 9, dtype=torch.long)], dim=1)  # same input, 9 more pads
    longer_companion = vocab.pad_sequences([ids.tolist(), list(range(1, 20)) + [vocab.EOT]])
    a, b, c = model.encode_ids(short), model.encode_ids(long), model.encode_ids(longer_companion)[:1]
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)
    # "!" (BPE id 0) inside a text is a token, not padding
    bang = vocab.pad_sequences([vocab.build_sequence(None, [320, 0, 0], 32)])
    assert not torch.allclose(model.encode_ids(bang), model.encode_ids(vocab.pad_sequences(
        [vocab.build_sequence(None, [320], 32)])), atol=1e-4)


def test_attention_switch(model):
    seqs = [vocab.build_sequence([1, 2, 3, 4], [320, 321], 32), vocab.build_sequence(None, [400], 32)]
    ids = vocab.pad_sequences(seqs)
    fast = model.encode_ids(ids)
    slow, attentions = model.encode_ids(ids, return_attention=True)
    assert torch.allclose(fast, slow, atol=1e-5)
    B, T = ids.shape
    assert len(attentions) == model.config.layers
    for weights in attentions:
        assert weights.shape == (B, model.config.heads, T, T)
        assert torch.allclose(weights.sum(-1), torch.ones(B, model.config.heads, T), atol=1e-5)
        assert (weights[1, :, :, len(seqs[1]):] == 0).all()  # padded keys get exactly 0
        assert (weights[1, :, :, :len(seqs[1])] > 0).all()


def test_mmm_head_is_tied_to_the_token_embedding():
    m = H.model().train()
    V, D = m.vocab_size, m.config.width
    big = [name for name, p in m.named_parameters() if p.shape == (V, D)]
    assert big == ["token_embedding.weight"], big  # no separate output matrix
    h = torch.randn(5, D)
    z = m.mmm_ln(torch.nn.functional.gelu(m.mmm_dense(h)))
    assert torch.allclose(m.mmm_logits(h), z @ m.token_embedding.weight.T + m.mmm_bias, atol=1e-5)
    # a gradient of the MMM loss reaches the embedding rows of ids that were never inputs (full vocab)
    batch = collate_pairs(H.pairs(6), m.token_cache(), m.config.context_length)
    _, _, aux = m.forward_pairs(batch, torch.Generator().manual_seed(0))
    total, count = aux["mmm"]
    assert count > 0
    (total / count).backward()
    unseen = vocab.IMAGE_OFFSET - 5
    assert m.token_embedding.weight.grad[unseen].abs().sum() > 0


def test_mmm_reads_pre_layernorm_states_and_the_same_pass_gives_embeddings():
    m = H.model().train()
    batch = collate_pairs(H.pairs(6), m.token_cache(), m.config.context_length)
    left, right, aux = m.forward_pairs(batch, torch.Generator().manual_seed(0))
    # masked embeddings differ from clean ones (the contrastive embedding comes from the masked pass)
    clean = m.eval().encode_ids(batch["left_ids"])
    assert not torch.allclose(left, clean, atol=1e-4)
    assert torch.allclose(left.norm(dim=1), torch.ones(len(left)), atol=1e-5)


def test_seen_vocab_mmm_matches_targets():
    m = H.model(mmm_vocab="seen").train()
    pairs = H.pairs(6)
    m.prepare(pairs)
    batch = collate_pairs(pairs, m.token_cache(), m.config.context_length)
    _, _, aux = m.forward_pairs(batch, torch.Generator().manual_seed(0))
    total, count = aux["mmm"]
    (total / count).backward()
    unseen = (~m.token_seen).nonzero()[:, 0]
    assert m.token_embedding.weight.grad[unseen].abs().sum() == 0  # rows never in the data get no gradient
    assert int(m.token_seen.sum()) < 200


def test_compacted_checkpoint_reproduces_embeddings_exactly(tmp_path):
    m = H.model()
    pairs = H.pairs(10)
    m.prepare(pairs)
    with torch.no_grad():  # make the table unlike its init, everywhere
        m.token_embedding.weight.add_(torch.randn_like(m.token_embedding.weight))
    m.eval()
    batch = collate_pairs(pairs, m.token_cache(), m.config.context_length)
    before = torch.cat([m.encode_ids(batch["left_ids"]), m.encode_ids(batch["right_ids"])])
    save_model(m, tmp_path / "ck")
    full_bytes = sum(v.numel() * v.element_size() for v in m.state_dict().values())
    file_bytes = (tmp_path / "ck" / "model.safetensors").stat().st_size
    assert file_bytes < full_bytes / 5, (file_bytes, full_bytes)
    loaded = load_model(tmp_path / "ck")
    assert isinstance(loaded, FuseLIP) and loaded.compacted
    batch2 = collate_pairs(pairs, loaded.token_cache(), loaded.config.context_length)
    assert torch.equal(batch["left_ids"], batch2["left_ids"])  # the tokenizer came back too
    after = torch.cat([loaded.encode_ids(batch2["left_ids"]), loaded.encode_ids(batch2["right_ids"])])
    assert torch.equal(before, after)
    raw = loaded.encode(images=[pairs[0].left.image], texts=[pairs[1].left.text])
    assert torch.equal(raw, m.encode(images=[pairs[0].left.image], texts=[pairs[1].left.text]))
    with pytest.warns(UserWarning, match="never occurred in training"):
        loaded.encode(texts=["zebra xylophone"])


def test_saved_file_depends_on_training_only_not_on_what_was_encoded(tmp_path):
    m = H.model()
    m.prepare(H.pairs(10))
    m.eval()
    save_model(m, tmp_path / "before")
    m.encode(texts=["zebra xylophone quokka"])  # ids that no training input holds
    save_model(m, tmp_path / "after")
    before, after = (load_file(tmp_path / name / "model.safetensors") for name in ("before", "after"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(before["token_embedding.kept_ids"], m.token_seen.nonzero().squeeze(1))


def test_presets_build(recwarn):
    for name in ("tiny", "tiny-titok", "tiny-late"):
        cfg = load_preset("fuselip", name)
        cfg.tokenizer_checkpoint = UNTRAINED_TOKENIZER
        m = build_fuselip(cfg)
        assert m.config.width == 256 and m.config.layers == 4 and m.tokenizer.config.kind == cfg.tokenizer.kind
    for name, width in (("small", 384), ("base", 512)):
        cfg = load_preset("fuselip", name)
        cfg.tokenizer_checkpoint = UNTRAINED_TOKENIZER
        with torch.device("meta"):
            m = build_fuselip(cfg)
        assert m.config.width == width and m.config.context_length == 180
        assert m.tokenizer.num_tokens == 128 and m.vocab_size == vocab.IMAGE_OFFSET + cfg.tokenizer.codebook_size


def test_tokenizer_checkpoint_resolves_here_then_at_the_repository_root_else_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a preset's relative path, read from another folder (a notebook's, a test's)
    cfg = load_preset("fuselip", "tiny")
    assert cfg.tokenizer_checkpoint == "checkpoints/tokenizer-grid-tiny"
    shipped = load_model(ROOT / cfg.tokenizer_checkpoint)
    tokenizer = build_fuselip(cfg).tokenizer
    assert tokenizer.state_dict().keys() == shipped.state_dict().keys()
    assert all(torch.equal(v, shipped.state_dict()[k]) for k, v in tokenizer.state_dict().items())
    save_model(H.tokenizer(), tmp_path / "checkpoints" / "tokenizer-grid-tiny")  # the current folder comes first
    assert build_fuselip(cfg).tokenizer.config.image_size == H.IMAGE
    for setting in ("checkpoints/does-not-exist", str(tmp_path / "nothing"), ""):
        cfg.tokenizer_checkpoint = setting
        with pytest.raises(ConfigError, match=re.escape(f"tokenizer_checkpoint={setting!r}") + f".*{UNTRAINED_TOKENIZER}"):
            build_fuselip(cfg)


def test_length_buckets_change_nothing_but_the_padding():
    from fuselip.model import length_buckets
    lengths = torch.tensor([66, 12, 70, 9, 66, 14, 80, 10])
    buckets = length_buckets(lengths, 2)
    assert sorted(torch.cat(buckets).tolist()) == list(range(8)) and len(buckets) == 2
    assert set(buckets[0].tolist()) == {1, 3, 5, 7}  # the short texts
    assert len(length_buckets(torch.tensor([66, 67, 68]), 2)) == 1  # nothing to gain: one bucket
    m = H.model().eval()
    batch = collate_pairs(H.pairs(8), m.token_cache(), m.config.context_length)
    m.config.length_buckets = 1
    one = m.forward_pairs(batch)
    m.config.length_buckets = 2
    two = m.forward_pairs(batch)
    assert torch.allclose(one[0], two[0], atol=1e-5) and torch.allclose(one[1], two[1], atol=1e-5)


def test_score_fusion_splits_a_fused_sequence_into_its_image_and_its_text():
    from fuselip.model import split_modalities
    both = vocab.build_sequence([3, 1, 4], [320, 1929], 16)             # [i i i sot t t eot]
    image_only = vocab.build_sequence([2, 7, 1], None, 16)              # [i i i sot eot]
    text_only = vocab.build_sequence(None, [11, 12, 13, 14], 16)        # [sot t t t t eot]
    ids = vocab.pad_sequences([both, image_only, text_only])            # (3, 7)
    uniform = torch.arange(3 * 16, dtype=torch.float).reshape(3, 16)    # a distinct "draw" per fused position
    (image, u_image, has_image), (text, u_text, has_text) = split_modalities(ids, uniform)
    trim = lambda row: row[:row.tolist().index(vocab.EOT) + 1].tolist()
    assert trim(image[0]) == vocab.build_sequence([3, 1, 4], None, 16)
    assert trim(text[0]) == vocab.build_sequence(None, [320, 1929], 16)
    assert trim(image[1]) == image_only and trim(text[2]) == text_only
    assert has_image.tolist() == [True, True, False] and has_text.tolist() == [True, False, True]
    # every token keeps the mask draw of its fused position: the text part of row 0 starts at fused position 3
    assert u_text[0, :4].tolist() == uniform[0, 3:7].tolist() and torch.equal(u_image, uniform[:, :7])


def test_score_fusion_model_never_lets_image_and_text_tokens_meet():
    m = H.model(fusion="score").eval()
    ims = H.images(2)
    fused = m.encode(images=ims, texts=["red circle", "blue square"])
    image_alone, text_alone = m.encode(images=ims), m.encode(texts=["red circle", "blue square"])
    assert torch.allclose(fused, torch.nn.functional.normalize(image_alone + text_alone, dim=-1), atol=1e-5)
    assert torch.allclose(fused.norm(dim=1), torch.ones(2), atol=1e-5)
    early = H.model(fusion="early").eval()                               # same seed, same weights
    assert torch.allclose(image_alone, early.encode(images=ims), atol=1e-5)   # one modality: nothing to fuse
    assert not torch.allclose(fused, early.encode(images=ims, texts=["red circle", "blue square"]), atol=1e-3)
    with pytest.raises(ValueError, match="fusion='early'"):
        m.encode_ids(vocab.pad_sequences([vocab.build_sequence([1, 2], [320], 16)]), return_attention=True)
    with pytest.raises(ValueError, match="fusion must be"):
        H.model(fusion="middle")


def test_score_fusion_trains_with_the_masks_of_early_fusion():
    """The ablation changes only who attends to whom: the same tokens are masked for MMM as in early fusion."""
    batch = collate_pairs(H.pairs(8), H.model().token_cache(), 32)
    counts = {}
    for fusion in ("early", "score"):
        m = H.model(fusion=fusion, mmm_probability=0.3).train()
        left, right, aux = m.forward_pairs(batch, torch.Generator().manual_seed(0))
        ce, n = aux["mmm"]
        (left.sum() + right.sum() + ce).backward()
        assert left.shape == right.shape == (len(batch["left_ids"]), 32) and torch.isfinite(ce)
        assert m.blocks[0].qkv.weight.grad.abs().sum() > 0
        counts[fusion] = float(n)
    # both parts of a row with image and text carry its sot (the fused sot's draw): masked, it counts twice
    from fuselip.model import split_modalities
    generator, extra = torch.Generator().manual_seed(0), 0
    for side in ("left_ids", "right_ids"):
        ids = batch[side]
        uniform = torch.rand(len(ids), 32, generator=generator)                     # forward_pairs' draw
        (_, _, has_image), (_, _, has_text) = split_modalities(ids, uniform)
        sot_draw = uniform.gather(1, vocab.is_image(ids).sum(1, keepdim=True))[:, 0]  # (B,)
        extra += int((has_image & has_text & (sot_draw < 0.3)).sum())
    assert counts["score"] == counts["early"] + extra and counts["early"] > 0


def test_mmm_per_side_means_are_the_reference_reduction():
    """encoder.mmm_reduction="sides": one mean per side, added (the reference code) = the same masked cross-entropies
    as "tokens", reduced differently."""
    pairs = H.pairs(6)
    outs = {}
    for reduction in ("tokens", "sides"):
        m = H.model(mmm_reduction=reduction).train()
        batch = collate_pairs(pairs, m.token_cache(), m.config.context_length)
        outs[reduction] = m.forward_pairs(batch, torch.Generator().manual_seed(0))[2]
    (total, count), = outs["tokens"].values()
    (left_sum, left_n), (right_sum, right_n) = outs["sides"]["mmm_left"], outs["sides"]["mmm_right"]
    torch.testing.assert_close(left_sum + right_sum, total)
    assert left_n + right_n == count and left_n > 0 and right_n > 0
    assert left_sum / left_n + right_sum / right_n > total / count  # about twice the weight of one mean
    with pytest.raises(ValueError, match="mmm_reduction"):
        H.model(mmm_reduction="mean")


def test_mmm_clean_pass_embeds_whole_inputs_and_keeps_the_same_mmm_loss():
    """encoder.mmm_pass="clean": the contrastive embeddings are those of the unmasked inputs (= eval mode), the MMM
    loss is the shared pass's, mask for mask; "shared" embeds the masked inputs (they differ)."""
    pairs = H.pairs(6)
    out = {}
    for mode in ("shared", "clean"):
        m = H.model(mmm_pass=mode, mmm_probability=0.3).train()
        batch = collate_pairs(pairs, m.token_cache(), m.config.context_length)
        out[mode] = m.forward_pairs(batch, torch.Generator().manual_seed(0))
        with torch.no_grad():
            out[mode + "-eval"] = m.eval().forward_pairs(batch)
    for side in (0, 1):
        torch.testing.assert_close(out["clean"][side], out["clean-eval"][side])
        assert not torch.allclose(out["shared"][side], out["shared-eval"][side])
    (shared_sum, shared_n), = out["shared"][2].values()
    (clean_sum, clean_n), = out["clean"][2].values()
    torch.testing.assert_close(clean_sum, shared_sum)
    assert clean_n == shared_n > 0
    with pytest.raises(ValueError, match="mmm_pass"):
        H.model(mmm_pass="both")
