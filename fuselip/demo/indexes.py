"""The searchable galleries, each embedded once per model (fuselip.retrieval.GalleryIndex) and kept for the app's life.

The benchmark's galleries ("images", "answers") and a server folder each keep their slot; uploads share one slot per
model, which the next upload replaces (a slot is reused only for the same content).
"""
from __future__ import annotations

import threading

from fuselip.data.types import Side
from fuselip.demo.benchmark import Benchmark
from fuselip.demo.registry import Registry
from fuselip.retrieval import GalleryIndex


class IndexCache:
    """One GalleryIndex per (model entry key, gallery name), built on first use."""

    def __init__(self, registry: Registry, benchmark: Benchmark):
        self.registry = registry
        self.benchmark = benchmark
        self._indexes: dict[tuple[str, str], GalleryIndex] = {}
        self._lock = threading.Lock()
        self._builders: dict[tuple[str, str], threading.Lock] = {}

    def get(self, model_key: str, which: str, items: list[Side] | None = None) -> GalleryIndex:
        """The searchable gallery `which` for one model, embedded once (one builder per (model, gallery):
        a request that arrives while the warm-up thread embeds the same gallery waits for it)."""
        items = self.benchmark.gallery(which) if items is None else items
        cache_key = (model_key, which)
        with self._lock:
            build_lock = self._builders.setdefault(cache_key, threading.Lock())
        with build_lock:
            with self._lock:
                index = self._indexes.get(cache_key)
            if index is not None and (index.items is items or index.keys == [s.key() for s in items]):
                return index
            index = GalleryIndex(self.registry.get(model_key), items)
            index.items = items  # the very list the benchmark holds: later requests compare by identity
            with self._lock:
                self._indexes[cache_key] = index
            return index
