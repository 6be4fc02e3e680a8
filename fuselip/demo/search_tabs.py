"""The retrieval and VQA tabs: a fused query (image, text or both) ranked against a gallery by FuseLIP, SF and MLF,
side by side.

Retrieval searches the benchmark's galleries ("images" or "answers"), the user's uploaded images, or a server folder
under $FUSELIP_GALLERY_ROOT; VQA ranks every candidate answer of the benchmark, each answer's probability the softmax
of its similarity to the query at the model's learned logit scale. A benchmark query knows its correct item: each
column marks it and gives its rank.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from fuselip import viz
from fuselip.data.types import Side
from fuselip.demo.benchmark import Benchmark
from fuselip.demo.config import DemoConfig
from fuselip.demo.errors import DemoError
from fuselip.demo.galleries import folder_gallery, server_folder, upload_gallery
from fuselip.demo.indexes import IndexCache
from fuselip.demo.inputs import read_image, read_text
from fuselip.demo.registry import Registry
from fuselip.retrieval import encode_sides, ties_against


@dataclass
class Hit:
    image: np.ndarray                # display picture (text items drawn as a card)
    caption: str
    correct: bool


@dataclass
class Column:
    label: str                       # model label
    hits: list[Hit]
    correct_rank: int | None         # rank of the correct item in the whole gallery (benchmark queries)
    message: str                     # why the column is empty, or a one-line summary


@dataclass
class RetrievalView:
    columns: list[Column]
    summary: str
    notes: list[str]


@dataclass
class Answers:
    label: str
    ranked: list[tuple[str, float]]  # (answer, probability), best first
    correct_rank: int | None
    message: str


@dataclass
class VQAView:
    columns: list[Answers]
    summary: str
    notes: list[str]


class SearchTabs:
    """The retrieval tab (Demo.retrieve) and the VQA tab (Demo.vqa), over the registry's retrieval models."""

    def __init__(self, config: DemoConfig, registry: Registry, benchmark: Benchmark, indexes: IndexCache):
        self.config = config
        self.registry = registry
        self.benchmark = benchmark
        self.indexes = indexes

    def _indexed_models(self, which: str, items: list[Side] | None = None):
        """(column label, entry key, the gallery `which` embedded by its model, "") for FuseLIP, SF and MLF, one at
        a time; a model that is missing or cannot embed the gallery comes with None and the reason instead."""
        for label, key in self.registry.retrieval_models():
            if key is None:
                yield label, key, None, f"No {label} checkpoint in {self.registry.root}."
                continue
            try:
                index = self.indexes.get(key, which, items)
            except DemoError as e:
                yield label, key, None, str(e)
                continue
            yield label, key, index, ""

    def _query(self, image, text: str, what: str) -> tuple[Side, list[str]]:
        array, notes = read_image(image, self.config.image_size)
        text, text_notes = read_text(text, what, self.config.max_text_chars)
        notes += text_notes
        if array is None and not text:
            raise DemoError(f"The query is empty: give an image, a text ({what}), or both.")
        if array is not None and not text:
            notes.append(f"The {what} is empty: the query is the image alone.")
        if array is None:
            notes.append(f"No image: the query is the {what} alone.")
        return Side(array, text), notes

    def retrieve(self, image, text: str, gallery: str = "images", k: int | None = None,
                 folder: str = "", uploads: Sequence | None = None) -> RetrievalView:
        """gallery: "images" | "answers" (the benchmark's), "uploads" (the images in `uploads`, uploaded by the
        user) or "folder" (the server folder `folder`, only under `config.gallery_root`)."""
        query, notes = self._query(image, text, "instruction")
        k = int(k or self.config.top_k)
        if not 1 <= k <= 50:
            raise DemoError(f"top-k must be between 1 and 50, got {k}.")
        items, which = None, gallery
        if gallery == "uploads":  # one cache slot per model: the next upload replaces it (IndexCache compares content)
            items, upload_notes = upload_gallery(uploads, self.config.image_size, self.config.max_folder_images)
            notes += upload_notes
        elif gallery == "folder":
            if not folder:
                raise DemoError("Type the path of a folder of images to search in, or choose another gallery.")
            items = folder_gallery(folder, self.config.image_size, self.config.max_folder_images,
                                   self.config.gallery_root)
            which = f"folder:{server_folder(folder, self.config.gallery_root)}"
        item = self.benchmark.lookup(query) if items is None else None
        correct = item.candidates[0] if item is not None else None
        columns = []
        for label, key, index, why in self._indexed_models(which, items):
            columns.append(Column(label, [], None, why) if index is None
                           else self._column(label, key, index, query, k, correct))
        if item is not None:
            target = item.candidates[0]
            summary = (f"Benchmark query ({item.world} / {item.task} / {item.kind}): the correct item is marked ✓. "
                       + "; ".join(f"{c.label}: rank {c.correct_rank}" for c in columns if c.correct_rank) + "."
                       + (f" Correct answer: *{target.text}*." if target.image is None else ""))
        else:
            summary = "Not a benchmark query (or edited): there is no known correct item; the top results are shown."
        return RetrievalView(columns, summary, notes)

    def _column(self, label: str, key: str, index, query: Side, k: int, correct: Side | None) -> Column:
        entry = self.registry.entries[key]
        q = encode_sides(index.model, [query])                               # (1, D)
        correct_row = index.row_of(correct) if correct is not None else None
        result = index.index.search(q, k + 1)      # one more than shown (clamped to the gallery size), for a tie at k
        score_of = dict(zip(result.indices[0].tolist(), result.scores[0].tolist()))
        shown = ties_against(list(score_of), list(score_of.values()), correct_row)[:k]
        hits = []
        size = self.config.display_size
        for rank, row in enumerate(shown, start=1):
            score = score_of[row]
            side = index.items[row]
            ok = row == correct_row
            picture = viz.enlarge(side.image, size) if side.image is not None else viz.text_card(side.text, size)
            picture = viz.frame(picture, ok) if correct_row is not None else picture
            caption = f"#{rank}  {score:.3f}" + (f"  {side.text}" if side.text else "") + \
                ("  ✓ correct" if ok else "")
            hits.append(Hit(picture, caption, ok))
        correct_rank = int(index.index.rank(q[0], correct_row)) if correct_row is not None else None
        message = f"{entry.label}: {len(index.items)} gallery items" + \
                  ("" if entry.trained else " (untrained: results are random)")
        return Column(f"{label}: {entry.label}", hits, correct_rank, message)

    def vqa(self, image, question: str, k: int | None = None) -> VQAView:
        array, notes = read_image(image, self.config.image_size)
        question, text_notes = read_text(question, "question", self.config.max_text_chars)
        notes += text_notes
        if array is None:
            raise DemoError("The VQA probe needs an image.")
        if not question:
            raise DemoError("Type a question about the image (the question is empty).")
        k = int(k or self.config.top_k)
        query = Side(array, question)
        item = self.benchmark.lookup(query)
        correct = item.candidates[0].text if item is not None and item.task == "vqa" else None
        columns = []
        for label, key, index, why in self._indexed_models("answers"):
            if index is None:
                columns.append(Answers(label, [], None, why))
                continue
            model = index.model
            q = encode_sides(model, [query])[0]                              # (D,)
            scores = index.index.vectors @ q                                 # (A,)
            probs = torch.softmax(scores * float(model.logit_scale.detach().exp()), dim=0)
            row = index.row_of(Side(None, correct)) if correct is not None else None
            order = ties_against(range(len(index.items)), scores.tolist(), row)
            ranked = [(index.items[i].text, float(probs[i])) for i in order[:k]]
            rank = int((scores >= scores[row]).sum()) if row is not None else None
            entry = self.registry.entries[key]
            columns.append(Answers(f"{label}: {entry.label}", ranked, rank,
                                   f"{len(index.items)} candidate answers" +
                                   ("" if entry.trained else " (untrained: ranking is random)")))
        if item is not None and correct is not None:
            summary = (f"Benchmark question ({item.world} / {item.kind}); correct answer: **{correct}**. "
                       + "; ".join(f"{c.label}: rank {c.correct_rank}" for c in columns if c.correct_rank) + ".")
        else:
            summary = "Not a benchmark question: there is no known answer; each model's top answers are shown."
        return VQAView(columns, summary, notes)
