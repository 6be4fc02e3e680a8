"""fuselip.retrieval: exact top-k equals a brute-force argsort; the embedding cache hits, misses and invalidates."""
import sys

import numpy as np
import pytest
import torch

from fuselip.data.types import Side
from fuselip.retrieval import (GalleryIndex, Index, cached_embeddings, gallery_fingerprint, model_fingerprint,
                               normalise, search, ties_against)


def brute_force(gallery: np.ndarray, queries: np.ndarray, k: int):
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = q.astype(np.float64) @ g.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


@pytest.mark.parametrize("kernel", ["product", "scan"])
@pytest.mark.parametrize("n,d,q,k", [(1, 4, 1, 1), (50, 8, 3, 5), (1000, 32, 300, 17), (7, 3, 2, 100)])
def test_search_equals_brute_force(n, d, q, k, kernel, monkeypatch):
    import fuselip.retrieval as retrieval
    monkeypatch.setattr(retrieval, "SCAN_MAX_QUERIES", 0 if kernel == "product" else 10_000)
    rng = np.random.default_rng(n + d + q)
    gallery = rng.standard_normal((n, d)).astype(np.float32) * rng.uniform(0.1, 10, (n, 1)).astype(np.float32)
    queries = rng.standard_normal((q, d)).astype(np.float32)
    result = search(gallery, queries, k)
    want_scores, want_idx = brute_force(gallery, queries, k)
    assert result.indices.shape == (q, min(k, n)) and result.scores.dtype == torch.float32
    np.testing.assert_array_equal(result.indices.numpy(), want_idx)
    np.testing.assert_allclose(result.scores.numpy(), want_scores, atol=1e-5)
    assert (result.scores[:, :-1] >= result.scores[:, 1:]).all(), "best first"


def test_one_query_uses_the_scan_and_without_faiss_the_product(monkeypatch):
    import fuselip.retrieval as retrieval
    rng = np.random.default_rng(2)
    index = Index(rng.standard_normal((500, 16)).astype(np.float32))
    query = rng.standard_normal((1, 16)).astype(np.float32)
    scanned = index.search(query, 7)
    assert index._scan is not None and index._scan.ntotal == 500  # faiss-cpu is a dependency
    monkeypatch.setattr(retrieval, "SCAN_MAX_QUERIES", 0)
    product = index.search(query, 7)
    assert torch.equal(scanned.indices, product.indices)
    torch.testing.assert_close(scanned.scores, product.scores)
    monkeypatch.setattr(retrieval, "SCAN_MAX_QUERIES", 2)
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    fresh = Index(index.vectors, normalised=True)
    assert torch.equal(fresh.search(query, 7).indices, product.indices) and fresh._scan is None


def test_query_chunks_do_not_change_results(monkeypatch):
    import fuselip.retrieval as retrieval
    rng = np.random.default_rng(1)
    gallery, queries = rng.standard_normal((200, 16)), rng.standard_normal((37, 16))
    whole = search(gallery, queries, 5)
    monkeypatch.setattr(retrieval, "QUERY_CHUNK", 4)
    chunked = search(gallery, queries, 5)
    assert torch.equal(whole.indices, chunked.indices)


def test_normalise_and_errors():
    x = normalise(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    torch.testing.assert_close(x, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="non-empty"):
        Index(np.zeros((0, 4)))
    with pytest.raises(ValueError, match="dimension 3"):
        Index(np.ones((5, 4))).search(np.ones((1, 3)), 2)


class CountingModel(torch.nn.Module):
    """A stand-in with the encode API: embeds pixels' mean colour and the text length; counts calls."""
    checkpoint_kind = "counting"

    def __init__(self, dim: int = 8):
        super().__init__()
        self.proj = torch.nn.Linear(4, dim)
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.3))  # a 0-d tensor must hash too
        self.calls = 0

    def config_dict(self):
        return {"dim": self.proj.out_features}

    def encode(self, images=None, texts=None):
        self.calls += 1
        n = len(images if images is not None else texts)
        feats = torch.zeros(n, 4)
        for i in range(n):
            if images is not None and images[i] is not None:
                feats[i, :3] = torch.as_tensor(images[i], dtype=torch.float32).mean(dim=(0, 1)) / 255
            if texts is not None and texts[i] is not None:
                feats[i, 3] = len(texts[i]) / 10
        return torch.nn.functional.normalize(self.proj(feats), dim=-1)


def make_gallery(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return [Side(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8), "" if i % 3 else f"item {i}") for i in range(n)]


def test_cache_hit_miss_and_invalidation(tmp_path):
    torch.manual_seed(0)
    model, items = CountingModel(), make_gallery(10)
    first, info = cached_embeddings(model, items, tmp_path, batch_size=4)
    assert not info.hit and info.path.exists() and model.calls == 3  # ceil(10 / 4) encode calls
    second, info = cached_embeddings(model, items, tmp_path, batch_size=4)
    assert info.hit and model.calls == 3, "a hit never calls the model"
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first.norm(dim=1), torch.ones(10))

    # another gallery (one pixel changed) -> miss, new file
    changed = list(items)
    img = changed[0].image.copy()
    img[0, 0, 0] ^= 1
    changed[0] = Side(img, changed[0].text)
    assert gallery_fingerprint(changed) != gallery_fingerprint(items)
    _, info2 = cached_embeddings(model, changed, tmp_path, batch_size=4)
    assert not info2.hit and info2.path != info.path

    # changed weights -> miss, and the embeddings follow the new weights
    old_hash = model_fingerprint(model)
    with torch.no_grad():
        model.proj.weight.add_(1.0)
    assert model_fingerprint(model) != old_hash
    third, info3 = cached_embeddings(model, items, tmp_path, batch_size=4)
    assert not info3.hit and not torch.allclose(third, first)

    # a corrupt cache file is recomputed, not trusted
    info3.path.write_bytes(b"garbage")
    fourth, info4 = cached_embeddings(model, items, tmp_path, batch_size=4)
    assert not info4.hit
    torch.testing.assert_close(fourth, third)


def test_gallery_index_finds_each_item_itself(tmp_path):
    torch.manual_seed(0)
    model, items = CountingModel(dim=16), make_gallery(12, seed=3)
    index = GalleryIndex(model, items, tmp_path)
    result = index.search(items, k=1)
    assert result.indices[:, 0].tolist() == list(range(12))
    assert not index.cache.hit and GalleryIndex(model, items, tmp_path).cache.hit


def test_ties_against_puts_the_correct_row_after_the_rows_it_ties_with():
    """The shown order agrees with Index.rank: a tied correct row comes last among its ties, others keep their order."""
    rows, scores = [4, 7, 2, 9], [0.9, 0.5, 0.5, 0.5]
    assert ties_against(rows, scores, correct_row=7) == [4, 2, 9, 7]
    assert ties_against(rows, scores, correct_row=4) == [4, 7, 2, 9]     # strictly best: stays first
    assert ties_against(rows, scores, correct_row=None) == [4, 7, 2, 9]
    assert ties_against([1, 0], [0.1, 0.3], correct_row=None) == [0, 1]
    vectors = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    index = Index(vectors)
    query = torch.tensor([1.0, 0.0])
    assert index.rank(query, 0) == ties_against([0, 1, 2], (vectors @ query).tolist(), 0).index(0) + 1 == 2
