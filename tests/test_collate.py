"""Collation: image tokens computed once per image and cached, duplicate targets, the on-disk cache."""
import numpy as np
import torch

import fuselip_helpers as H
from fuselip import vocab
from fuselip.data.collate import TokenCache, cache_file, collate_pairs, training_ids
from fuselip.data.types import Pair, Side


class CountingTokenizer(torch.nn.Module):
    """Wraps a tokenizer and records the batch size of every encode call."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.calls = []

    def encode(self, x):
        self.calls.append(x.shape[0])
        return self.inner.encode(x)

    def config_dict(self):
        return self.inner.config_dict()

    def export_tensors(self):
        return self.inner.export_tensors()


def test_each_image_is_tokenised_once_in_bulk_batches():
    tok = CountingTokenizer(H.tokenizer())
    cache = TokenCache(tok, batch_size=5)
    pairs = H.pairs(12)
    distinct = {s.image.tobytes() for p in pairs for s in (p.left, p.right) if s.image is not None}
    cache.add_pairs(pairs)
    assert sum(tok.calls) == len(distinct) == len(cache) and max(tok.calls) <= 5
    for _ in range(3):  # collating (every step) never calls the tokenizer again
        collate_pairs(pairs, cache, 32)
    assert sum(tok.calls) == len(distinct)
    codes = cache.lookup([pairs[0].left.image])[0]
    direct = tok.inner.encode(torch.from_numpy(pairs[0].left.image).permute(2, 0, 1)[None].float() / 255)[0]
    assert np.array_equal(codes, direct.numpy())


def test_collate_shapes_and_duplicate_targets():
    model = H.model()
    img = H.images(2)
    pairs = [Pair(Side(img[0], "rotate"), Side(img[1], ""), "tgit", 0),
             Pair(Side(img[0], "flip"), Side(img[1].copy(), ""), "tgit", 0),   # same target content
             Pair(Side(img[1], ""), Side(None, "a red circle"), "caption", 1),
             Pair(Side(img[0], ""), Side(None, "a red circle"), "caption", 2)]  # same caption
    batch = collate_pairs(pairs, model.token_cache(), 32)
    assert batch["left_ids"].shape[0] == 4 and batch["right_ids"].shape[0] == 4
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(batch["right_dup"], expected)
    assert batch["right_key"].dtype == torch.int64
    # trimmed to the longest row, not padded to the context
    assert batch["right_ids"].shape[1] == model.tokenizer.num_tokens + 2 == 18


def test_training_ids_cover_every_id_of_the_batches():
    model = H.model()
    pairs = H.pairs(12)
    model.token_cache().add_pairs(pairs)
    ids = set(training_ids(pairs, model.token_cache(), 32).tolist())
    batch = collate_pairs(pairs, model.token_cache(), 32)
    used = set(batch["left_ids"].unique().tolist()) | set(batch["right_ids"].unique().tolist())
    assert used - {vocab.PAD} <= ids


def test_disk_cache_round_trip_and_staleness(tmp_path):
    tok = H.tokenizer()
    cache = TokenCache(tok)
    pairs = H.pairs(6)
    cache.add_pairs(pairs)
    path = cache_file(tmp_path, cache, H.run_config().data)
    assert cache.fingerprint()[:12] in path.name
    cache.save(path)
    again = TokenCache(CountingTokenizer(tok))
    assert again.load(path) and len(again) == len(cache)
    again.add_pairs(pairs)
    assert again.tokenizer.calls == []  # everything came from disk
    other = H.tokenizer(seed=1)  # different weights: the file is stale for it
    assert not TokenCache(other).load(path)
