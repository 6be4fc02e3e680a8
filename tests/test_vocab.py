import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

from fuselip import vocab


def test_ids_agree_with_open_clip_and_paper():
    tok = SimpleTokenizer()
    assert len(tok.encoder) == vocab.TEXT_VOCAB_SIZE == 49408
    assert tok.encoder["<start_of_text>"] == vocab.SOT == 49406
    assert tok.encoder["<end_of_text>"] == vocab.EOT == 49407
    assert vocab.MASK == 49408 and vocab.IMAGE_OFFSET == 49409 and vocab.PAD == 0
    assert vocab.joint_vocab_size(4096) == 49409 + 4096


def test_layouts():
    img = [0, 5, 511]
    both = vocab.build_sequence(img, [320, 736], context_length=180)
    assert both == [49409, 49414, 49920, vocab.SOT, 320, 736, vocab.EOT]
    assert vocab.build_sequence(img, None, 180) == [49409, 49414, 49920, vocab.SOT, vocab.EOT]  # empty text
    assert vocab.build_sequence(None, [320], 180) == [vocab.SOT, 320, vocab.EOT]


def test_truncation_keeps_eot_last():
    seq = vocab.build_sequence(list(range(64)), list(range(1, 500)), context_length=80)
    assert len(seq) == 80 and seq[-1] == vocab.EOT and seq[64] == vocab.SOT
    with pytest.raises(ValueError, match="context_length"):
        vocab.build_sequence(list(range(200)), [1], context_length=180)


def test_pad_and_eot_positions():
    ids = vocab.pad_sequences([[vocab.SOT, 5, vocab.EOT], [vocab.SOT, vocab.EOT]])
    assert ids.tolist() == [[vocab.SOT, 5, vocab.EOT], [vocab.SOT, vocab.EOT, vocab.PAD]]
    assert vocab.eot_positions(ids).tolist() == [2, 1]
    with pytest.raises(ValueError):
        vocab.eot_positions(torch.tensor([[vocab.SOT, 5]]))


def test_masks_partition_ids():
    ids = torch.tensor([vocab.PAD, 7, vocab.SOT, vocab.EOT, vocab.MASK, vocab.IMAGE_OFFSET + 3])
    assert vocab.is_image(ids).tolist() == [False] * 5 + [True]
    assert vocab.is_text(ids).tolist() == [True, True, True, True, False, False]
    assert vocab.image_codes(vocab.image_ids(torch.tensor([3]))).item() == 3


def test_bang_is_a_text_token():
    # id 0 is both the pad id and the BPE token "!" (inside a word): as an id it is text; padding is what follows
    # a row's eot (vocab.eot_positions), which is how the model finds it
    assert SimpleTokenizer().encode("!$") == [vocab.PAD, 259]
    ids = vocab.pad_sequences([vocab.build_sequence(None, [320, 0], 8), vocab.build_sequence(None, [], 8)])
    assert ids.tolist() == [[vocab.SOT, 320, 0, vocab.EOT], [vocab.SOT, vocab.EOT, vocab.PAD, vocab.PAD]]
    assert vocab.is_text(ids)[0].all()
