"""fuselip.probe on tiny untrained FuseLIPs: shapes, rows that sum to 1, shares in [0, 1], maps that add up."""
import numpy as np
import pytest
import torch

from fuselip import vocab
from fuselip.config import FuseLIPConfig, TokenizerConfig
from fuselip.probe import (cross_modal_share, grid_map, image_to_text, influence_map, layout, probe, select,
                           stack_attentions, text_to_image)


def tiny_fuselip(kind: str):
    from fuselip.model import FuseLIP
    from fuselip.tokenizers import build_tokenizer
    torch.manual_seed(0)
    tok = TokenizerConfig(kind=kind, image_size=16, codebook_size=32, code_dim=8, channels=[8, 8], res_blocks=1,
                          patch_size=4, num_latent_tokens=6, width=16, layers=1, heads=2)
    return FuseLIP(FuseLIPConfig(width=32, layers=3, heads=2, context_length=40), build_tokenizer(tok)).eval()


@pytest.fixture(scope="module", params=["grid", "titok"])
def model(request):
    return tiny_fuselip(request.param)


def scene(seed=0):
    return np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)


def test_probe_shapes_and_rows(model):
    p = probe(model, scene(), "a red circle on the left")
    n = model.tokenizer.num_tokens
    k = len(p.text_labels)
    assert p.text_labels[0] == "<sot>" and p.text_labels[-1] == "<eot>" and k == 2 + 6
    assert p.attention.shape == (3, 2, n + k, n + k) and p.ids.shape == (n + k,)
    torch.testing.assert_close(p.attention.sum(-1), torch.ones(3, 2, n + k))
    for layer, head in [(None, None), (0, None), (None, 1), (2, 0), (-1, -1)]:
        a = p.select(layer, head)
        assert a.shape == (n + k, n + k)
        torch.testing.assert_close(a.sum(-1), torch.ones(n + k))
    with pytest.raises(ValueError, match="layer 3 out of range"):
        p.select(3)
    assert p.image.shape == (16, 16, 3) and p.codes.shape == (n,)


def test_shares_in_unit_interval_and_match_definition(model):
    p = probe(model, scene(1), "rotate 90 degrees clockwise")
    s = p.shares()
    assert s.text_to_image.shape == s.image_to_text.shape == (3, 2)
    for t in (s.text_to_image, s.image_to_text):
        assert float(t.min()) >= 0 and float(t.max()) <= 1
    # by hand for layer 1, head 0
    lay = layout(p.ids)
    a = p.attention[1, 0]
    want = a[lay.text][:, lay.image].sum(1).mean()
    torch.testing.assert_close(s.text_to_image[1, 0], want)
    n, k = lay.num_image, lay.num_text
    assert s.uniform_text_to_image == pytest.approx(n / (n + k))
    assert s.uniform_image_to_text == pytest.approx(k / (n + k))
    assert set(s.per_layer()) == {"text → image", "image → text"} and len(s.per_layer()["text → image"]) == 3


def test_text_only_has_no_cross_modal_share_and_image_only_keeps_sot_eot(model):
    s = probe(model, None, "three small stars").shares()
    assert float(s.text_to_image.abs().sum()) == 0 and float(s.image_to_text.abs().sum()) == 0
    p = probe(model, scene(2), "")  # an image alone is followed by the empty text [sot, eot]
    assert p.text_labels == ["<sot>", "<eot>"] and float(p.shares().text_to_image.min()) > 0


def test_text_token_maps(model):
    p = probe(model, scene(3), "the dog on the right")
    n = model.tokenizer.num_tokens
    raw = p.text_weights(2, layer=0, head=1)
    assert raw.shape == (n,) and 0 < float(raw.sum()) <= 1 + 1e-6
    m = p.text_map(2, layer=0, head=1)
    if p.grid is not None:
        assert m.shape == (p.grid, p.grid)
    else:
        assert m.shape == (16, 16) and p.influence().shape == (n, 16, 16)
    torch.testing.assert_close(m.sum(), torch.tensor(1.0))  # renormalised by default
    i2t = p.image_to_text(layer=None)
    assert i2t.shape == (len(p.text_labels),) and float(i2t.min()) >= 0
    with pytest.raises(ValueError, match="text tokens"):
        p.text_map(99)


def test_long_text_is_truncated_to_context(model):
    p = probe(model, scene(4), "word " * 500)
    assert p.truncated and p.ids.shape[0] == model.config.context_length and p.text_labels[-1] == "<eot>"
    assert not probe(model, scene(4), "short").truncated


def test_pure_functions_on_a_handmade_matrix():
    # 2 image tokens, then sot, one word, eot
    ids = torch.tensor([vocab.IMAGE_OFFSET + 3, vocab.IMAGE_OFFSET + 5, vocab.SOT, 320, vocab.EOT, vocab.PAD])
    a = torch.zeros(1, 1, 6, 6)
    a[0, 0, :, :5] = torch.tensor([[.5, .5, 0, 0, 0], [0, 1, 0, 0, 0],  # image rows: 0 on text, 0 on text
                                  [.25, .25, .5, 0, 0], [0, 0, 0, 1, 0], [.1, .1, .2, .3, .3],
                                  [.2, .2, .2, .2, .2]])
    lay = layout(ids)
    assert lay.image.tolist() == [True, True, False, False, False, False]
    assert lay.text.tolist() == [False, False, True, True, True, False]
    s = cross_modal_share(a, ids)
    torch.testing.assert_close(s.text_to_image, torch.tensor([[(0.5 + 0 + 0.2) / 3]]))
    torch.testing.assert_close(s.image_to_text, torch.tensor([[0.0]]))
    t = select(a)
    torch.testing.assert_close(text_to_image(t, ids, 0), torch.tensor([.25, .25]))
    torch.testing.assert_close(text_to_image(t, ids, -1, renormalise=True), torch.tensor([.5, .5]))
    assert image_to_text(t, ids).shape == (2, 3)
    torch.testing.assert_close(grid_map(torch.arange(4.0), 2), torch.tensor([[0., 1.], [2., 3.]]))
    infl = torch.zeros(2, 2, 2)
    infl[0, 0, 0], infl[1] = 2.0, 1.0
    m = influence_map(torch.tensor([0.6, 0.4]), infl)
    torch.testing.assert_close(m, torch.tensor([[0.7, 0.1], [0.1, 0.1]]))
    assert stack_attentions([a[0:1], a[0:1]]).shape == (2, 1, 6, 6)


def test_masked_word_reads_the_head_at_the_word_with_and_without_the_image(model):
    from fuselip.probe import masked_predictions, masked_word
    from fuselip.text import default_tokenizer
    image, text = scene(3), "what colour is the star?"
    result = masked_word(model, image, text, "star", candidates=("star", "circle", "square"), k=4)
    assert result.text == "what colour is the [MASK] ?" and result.answer == "star"
    assert set(result.top) == set(result.p_answer) == set(result.pick) == {"with image", "text only"}
    for name, top in result.top.items():
        probs = [p for _, p in top]
        assert len(top) == 4 and probs == sorted(probs, reverse=True) and all(0 <= p <= 1 for p in probs)
        assert result.pick[name] in ("star", "circle", "square")
    # the "with image" number is masked_predictions at the word's position after the image and sot
    words = default_tokenizer().encode(text)
    codes = model.token_cache().lookup([model.tokenizer.prepare(image)])[0]
    ids = torch.tensor(vocab.build_sequence(codes, words, model.config.context_length))
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[len(codes) + 1 + 4] = True
    expected = masked_predictions(model, ids, mask)[0].exp()[words[4]]
    assert result.p_answer["with image"] == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="not one BPE token"):
        masked_word(model, image, text, "tyrannosaurus")


def test_masked_word_scores_count_right_picks_against_chance():
    from fuselip.probe import MaskedWord, masked_word_scores
    def result(answer, with_pick, text_pick):
        return MaskedWord("", answer, {"with image": [], "text only": []}, {"with image": 0.5, "text only": 0.1},
                          {"with image": with_pick, "text only": text_pick})
    scores = masked_word_scores([result("a", "a", "b"), result("b", "a", "b")], n_candidates=4)
    assert scores["items"] == 2 and scores["chance"] == 25.0
    assert scores["pick_right"] == {"with image": 50.0, "text only": 50.0}
    assert scores["p_answer"] == pytest.approx({"with image": 0.5, "text only": 0.1})


def test_object_cells_marks_the_cells_that_hold_ink():
    from fuselip.probe import object_cells
    image = np.full((16, 16, 3), 255, dtype=np.uint8)
    image[5, 13] = (200, 255, 255)            # cell (row 1, col 3) of a 4 × 4 grid of 4-pixel cells
    cells = object_cells(image, 4)
    assert cells.shape == (16,) and cells.dtype == torch.bool
    assert cells.nonzero().squeeze(1).tolist() == [1 * 4 + 3]


def test_fill_masked_cells_changes_only_the_hidden_cells(model):
    from fuselip.probe import fill_masked_cells, masked_predictions
    image = scene(4)
    n = model.tokenizer.num_tokens
    hidden = torch.arange(n) % 3 == 0
    codes, filled = fill_masked_cells(model, image, "the star on the left", hidden)
    assert codes.shape == filled.shape == (n,)
    assert torch.equal(filled[~hidden], codes[~hidden])
    assert int(filled.min()) >= 0 and int(filled.max()) < model.tokenizer.codebook_size
    # image alone: the head's argmax over image codes at each hidden cell
    codes, alone = fill_masked_cells(model, image, "", hidden)
    ids = torch.tensor(vocab.build_sequence(codes.tolist(), [], model.config.context_length))
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:n] = hidden
    expected = masked_predictions(model, ids, mask)[:, vocab.IMAGE_OFFSET:].argmax(-1)
    assert torch.equal(alone[hidden], expected)
    with pytest.raises(ValueError, match="image tokens"):
        fill_masked_cells(model, image, "", torch.ones(n + 1, dtype=torch.bool))
