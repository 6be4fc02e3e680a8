"""Gallery index and top-k search, plus an on-disk cache of gallery embeddings.

Every model in the project speaks one encode API and returns L2-normalised vectors, so retrieval is
the same for all of them: score = inner product (= cosine), keep the k best. The search is exact and brute
force, by one of two kernels chosen by the number of queries:
  * a few queries (<= SCAN_MAX_QUERIES, the app's case): faiss' `IndexFlatIP` scan, when faiss-cpu is
    installed (it is a dependency); it reads a cache-resident gallery faster than a matrix product with
    a single row does;
  * more queries (evaluation, notebooks) or no faiss: one float32 matrix product `queries @ columns`
    followed by `torch.topk`, which reads the gallery once for the whole block of queries.
`python benchmarks/retrieval.py` measures `Index.search` against faiss' `IndexFlatIP` alone on 100,000 × 256
unit vectors, one query and 64 queries (figures in the README). Both kernels give the same top-k (tested).

Embedding a gallery is the expensive part, so `cached_embeddings` stores the result as safetensors,
keyed by (model content hash, gallery content hash): the same weights and the same items give a cache
hit; any change to either gives a miss and a fresh file.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from fuselip.contract import Configured, Encoder
from fuselip.data.types import Side

CACHE_ENV = "FUSELIP_CACHE"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / "cache" / "gallery"
EMBED_BATCH = 128           # sides per model.encode call while embedding a gallery
QUERY_CHUNK = 256           # query rows per matrix product (bounds the (chunk, N) score matrix)
SCAN_MAX_QUERIES = 2        # up to this many queries use faiss' scan; more use the matrix product


# ---------------------------------------------------------------------------------------------
# exact inner-product search


def normalise(vectors) -> torch.Tensor:
    """Anything (Q, D) or (D,) array-like -> contiguous float32 (Q, D) with unit rows (zero rows stay zero)."""
    x = torch.as_tensor(np.asarray(vectors) if not isinstance(vectors, torch.Tensor) else vectors)
    x = x.detach().to(device="cpu", dtype=torch.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"expected vectors of shape (N, D), got {tuple(x.shape)}")
    norms = x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    return (x / norms).contiguous()


@dataclass
class SearchResult:
    scores: torch.Tensor    # (Q, k) float32, best first
    indices: torch.Tensor   # (Q, k) int64 rows of the gallery


class Index:
    """Exact top-k inner-product search over a fixed set of gallery vectors.

    `Index(vectors)` L2-normalises the rows (pass `normalised=True` to skip that when they already are);
    `search(queries, k)` returns the k highest scores per query, best first.
    """

    def __init__(self, vectors, normalised: bool = False):
        vectors = normalise(vectors) if not normalised else torch.as_tensor(vectors, dtype=torch.float32)
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            raise ValueError(f"an index needs a non-empty (N, D) gallery, got {tuple(vectors.shape)}")
        # stored dimension-major: `queries @ columns` is a plain row-major product (no transposed operand)
        self.columns = vectors.T.contiguous()                                   # (D, N)
        self._scan: Any = None   # faiss IndexFlatIP over the same rows, built on the first small search

    @property
    def vectors(self) -> torch.Tensor:
        """The gallery rows (a (N, D) view of the stored columns)."""
        return self.columns.T

    def __len__(self) -> int:
        return self.columns.shape[1]

    @property
    def dim(self) -> int:
        return self.columns.shape[0]

    def search(self, queries, k: int, normalised: bool = False) -> SearchResult:
        q = normalise(queries) if not normalised else torch.as_tensor(queries, dtype=torch.float32)
        if q.ndim == 1:
            q = q[None]
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, the gallery has {self.dim}")
        k = max(1, min(int(k), len(self)))
        if q.shape[0] <= SCAN_MAX_QUERIES and self._faiss_scan() is not None:
            return self._search_scan(q, k)
        return self._search_product(q, k)

    def _search_product(self, q: torch.Tensor, k: int) -> SearchResult:
        """Exact top-k by matrix product + topk, QUERY_CHUNK queries at a time."""
        scores, indices = [], []
        with torch.inference_mode():
            for start in range(0, q.shape[0], QUERY_CHUNK):
                block = q[start:start + QUERY_CHUNK] @ self.columns             # (chunk, N)
                top = torch.topk(block, k, dim=1, largest=True, sorted=True)
                scores.append(top.values)
                indices.append(top.indices)
        return SearchResult(torch.cat(scores), torch.cat(indices))

    def _search_scan(self, q: torch.Tensor, k: int) -> SearchResult:
        """Exact top-k by faiss' flat inner-product scan, with torch's thread count."""
        import faiss
        faiss.omp_set_num_threads(torch.get_num_threads())
        scores, indices = self._faiss_scan().search(np.ascontiguousarray(q.detach().cpu().numpy()), k)
        return SearchResult(torch.from_numpy(scores), torch.from_numpy(indices))

    def _faiss_scan(self) -> Any:
        """The faiss index over the gallery rows (None when faiss-cpu is not installed)."""
        if self._scan is None:
            try:
                import faiss
            except ImportError:
                return None
            self._scan = faiss.IndexFlatIP(self.dim)
            self._scan.add(np.ascontiguousarray(self.vectors.numpy()))
        return self._scan

    def rank(self, query, row: int, normalised: bool = False) -> int:
        """1-based rank of gallery row `row` for one query (ties counted against it, as in evaluation)."""
        q = normalise(query) if not normalised else torch.as_tensor(query, dtype=torch.float32).reshape(1, -1)
        scores = self.vectors @ q[0]                                    # (N,)
        return int((scores >= scores[row]).sum())


def ties_against(rows: Sequence[int], scores: Sequence[float], correct_row: int | None) -> list[int]:
    """`rows` best first by score, the correct row after every row that ties with it: the order `Index.rank` and
    the evaluation count (ties against the model), so no row shown above the correct one scores below it."""
    return [row for row, _ in sorted(zip(rows, scores), key=lambda hit: (-hit[1], hit[0] == correct_row))]


def search(gallery, queries, k: int) -> SearchResult:
    """One-shot convenience: `Index(gallery).search(queries, k)`."""
    return Index(gallery).search(queries, k)


# ---------------------------------------------------------------------------------------------
# content hashes: what the embedding cache is keyed by


def model_fingerprint(model: object) -> str:
    """Hash of everything that determines a model's embeddings: its kind and config (fuselip.contract.Configured;
    else its class name) and every tensor of its state dict.

    Computed from the weights in memory (not the checkpoint file), so a model fine-tuned in a notebook
    never reuses the embeddings of the checkpoint it started from.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{type(model).__name__} is not a torch module: give its embeddings' cache key as model_hash")
    h = hashlib.blake2b(digest_size=20)
    if isinstance(model, Configured):
        h.update(str(model.checkpoint_kind).encode())
        h.update(json.dumps(model.config_dict(), sort_keys=True, default=str).encode())
    else:
        h.update(type(model).__name__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def gallery_fingerprint(items: Sequence[Side], keys: Sequence[bytes] | None = None) -> str:
    """Hash of a gallery's contents, in order (pixels and texts of every item; `keys`: their Side.key())."""
    h = hashlib.blake2b(digest_size=20)
    h.update(str(len(items)).encode())
    for key in (keys if keys is not None else (side.key() for side in items)):
        h.update(key)
        h.update(b"\x00")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# gallery embeddings, computed once per (model, gallery) and cached on disk


def cache_dir(path: str | Path | None = None) -> Path:
    return Path(path or os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)


def encode_sides(model: Encoder, sides: Sequence[Side]) -> torch.Tensor:
    """Sides -> (B, D) float32 embeddings in one `model.encode` call (a missing modality is passed as None)."""
    images = [s.image for s in sides]
    texts = [s.text if s.text else None for s in sides]
    with torch.inference_mode():
        emb = model.encode(images=images if any(i is not None for i in images) else None,
                           texts=texts if any(t is not None for t in texts) else None)
    return emb.detach().float().cpu()


def embed_sides(model: Encoder, items: Sequence[Side], batch_size: int = EMBED_BATCH) -> torch.Tensor:
    """(N,) sides -> (N, D) float32 embeddings through the model's encode API, in batches."""
    out = [encode_sides(model, items[start:start + batch_size]) for start in range(0, len(items), batch_size)]
    return torch.cat(out)


@dataclass
class CacheInfo:
    path: Path
    hit: bool


def cached_embeddings(model: Encoder, items: Sequence[Side], directory: str | Path | None = None,
                      batch_size: int = EMBED_BATCH, model_hash: str | None = None,
                      keys: Sequence[bytes] | None = None) -> tuple[torch.Tensor, CacheInfo]:
    """Gallery embeddings (N, D) for `model`, read from the cache or computed and written to it.

    The file name holds both hashes, so a changed model or gallery simply misses; the file's metadata
    repeats them and is checked on read (a renamed or truncated file is recomputed, never trusted).
    """
    if not items:
        raise ValueError("the gallery is empty: nothing to embed")
    m_hash = model_hash or model_fingerprint(model)
    g_hash = gallery_fingerprint(items, keys)
    folder = cache_dir(directory)
    path = folder / f"{m_hash[:16]}-{g_hash[:16]}.safetensors"
    if path.exists():
        try:
            tensors = load_file(str(path))
            with open(path, "rb") as f:  # safetensors header: 8-byte length + JSON with __metadata__
                header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
            meta = header.get("__metadata__", {})
            emb = tensors["embeddings"]
            if meta.get("model") == m_hash and meta.get("gallery") == g_hash and emb.shape[0] == len(items):
                return emb, CacheInfo(path, hit=True)
        except Exception:  # unreadable or foreign file: recompute below and overwrite it
            pass
    emb = normalise(embed_sides(model, items, batch_size))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    save_file({"embeddings": emb}, str(tmp), metadata={"model": m_hash, "gallery": g_hash, "items": str(len(items))})
    os.replace(tmp, path)
    return emb, CacheInfo(path, hit=False)


class GalleryIndex:
    """A gallery of sides (image and/or text) embedded by one model, searchable by any query side."""

    def __init__(self, model: Encoder, items: Sequence[Side], directory: str | Path | None = None,
                 model_hash: str | None = None):
        self.model = model
        self.items = list(items)
        self.keys = [side.key() for side in self.items]                  # content of each row
        self.rows = {key: row for row, key in reversed(list(enumerate(self.keys)))}  # first row per content
        embeddings, self.cache = cached_embeddings(model, self.items, directory, model_hash=model_hash,
                                                   keys=self.keys)
        self.index = Index(embeddings, normalised=True)

    def __len__(self) -> int:
        return len(self.items)

    def row_of(self, side: Side) -> int | None:
        """The gallery row holding exactly this content, if any."""
        return self.rows.get(side.key())

    def search(self, queries: Sequence[Side], k: int) -> SearchResult:
        """Query sides -> top-k gallery rows for each (embedded with the same model)."""
        return self.index.search(encode_sides(self.model, queries), k)
