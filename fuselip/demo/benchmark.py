"""The benchmark the app shows: example queries from every task of both worlds, and the galleries of their candidates.

Items come from fuselip.data.tasks.eval_items on the worlds' test split; a query with exactly an item's content
(same pixels, same text) knows its correct candidate.
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fuselip.data import eval_items, make_world
from fuselip.data.types import EvalItem, Side
from fuselip.demo.config import DemoConfig
from fuselip.demo.errors import DemoError


@dataclass
class Example:
    image: np.ndarray | None
    text: str
    task: str
    world: str
    kind: str


class Benchmark:
    """Evaluation items of the worlds' test split: examples for the app, and the galleries to search.

    The image gallery holds every distinct image candidate of the retrieval tasks' items (the correct
    targets and their hard negatives), the answer gallery every distinct VQA answer. A query that is an
    item's query (same pixels, same text) knows its correct candidate.
    """

    def __init__(self, config: DemoConfig):
        self.config = config
        self._items: dict[tuple[str, str], list[EvalItem]] = {}
        self._lock = threading.Lock()
        self._galleries: dict[str, list[Side]] = {}
        self._answers: dict[bytes, EvalItem] | None = None

    def items(self, world: str, task: str) -> list[EvalItem]:
        with self._lock:
            if (world, task) not in self._items:
                c = self.config
                self._items[(world, task)] = eval_items(world, task, c.split, c.gallery_items, c.seed, c.image_size)
            return self._items[(world, task)]

    def examples(self, tasks: Sequence[str], per_task: int | None = None) -> list[Example]:
        """The first items of each (task, world), alternating worlds, as app examples."""
        per_task = self.config.examples_per_task if per_task is None else per_task
        out = []
        for task in tasks:
            for i in range(per_task):
                for world in self.config.worlds:
                    items = self.items(world, task)
                    if i < len(items):
                        q = items[i].query
                        out.append(Example(q.image, q.text, task, world, items[i].kind))
        return out

    def tab_examples(self, tab: str) -> list[Example]:
        """The examples a tab offers: "attention", "retrieval" (every retrieval task) or "vqa" (four per world)."""
        if tab == "attention":
            return self.attention_examples()
        if tab == "retrieval":
            return self.examples(self.config.retrieval_tasks)
        if tab == "vqa":
            return self.examples(["vqa"], per_task=4)
        raise DemoError(f"unknown tab {tab!r}: choose 'attention', 'retrieval' or 'vqa'")

    def worked_example(self, tab: str) -> Example:
        """The example a tab ("attention", "retrieval" or "vqa") opens on: the first of its examples whose task is
        config.first_view[tab] (the tab's first example when that task is not among them)."""
        if tab not in self.config.first_view:
            raise DemoError(f"no worked example for tab {tab!r}: config.first_view has {sorted(self.config.first_view)}")
        examples = self.tab_examples(tab)
        task = self.config.first_view[tab]
        return next((e for e in examples if e.task == task), examples[0])

    def attention_examples(self) -> list[Example]:
        """(image, text) pairs to look at attention with: each caption item's image with its correct caption
        (words that name what is in the image), then queries of the instruction tasks."""
        out = []
        for world in self.config.worlds:
            item = self.items(world, "caption")[0]
            out.append(Example(item.query.image, item.candidates[0].text, "caption", world, item.kind))
        return out + self.examples(["position", "vqa", "tgit", "crop"], per_task=1)

    def scenes(self) -> list[tuple[np.ndarray, str]]:
        """A few rendered test scenes per world with their captions (image-tokens tab)."""
        out = []
        for world_name in self.config.worlds:
            world = make_world(world_name, self.config.image_size)
            rng = random.Random(f"demo-scenes-{self.config.seed}-{world_name}")
            for _ in range(self.config.token_examples):
                scene = world.sample_scene(rng, self.config.split)
                out.append((world.render(scene), world.caption(scene)))
        return out

    def gallery(self, which: str) -> list[Side]:
        """"images": every distinct image candidate of the retrieval tasks; "answers": every distinct VQA answer."""
        if which not in ("images", "answers"):
            raise DemoError(f"unknown gallery {which!r}: choose 'images' or 'answers'")
        with self._lock:
            cached = self._galleries.get(which)
        if cached is not None:
            return cached
        tasks = ["vqa"] if which == "answers" else [t for t in self.config.retrieval_tasks if t != "vqa"]
        seen: dict[bytes, Side] = {}
        for task in tasks:
            for world in self.config.worlds:
                for item in self.items(world, task):
                    for side in item.candidates:
                        if (side.image is not None) == (which == "images"):
                            seen.setdefault(side.key(), side)
        with self._lock:
            self._galleries[which] = list(seen.values())
            return self._galleries[which]

    def lookup(self, query: Side) -> EvalItem | None:
        """The benchmark item whose query has exactly this content, if any."""
        with self._lock:
            if self._answers is None:
                self._answers = {}
                for (world, task), items in self._items.items():
                    for item in items:
                        self._answers.setdefault(item.query.key(), item)
            return self._answers.get(query.key())

    def load_all(self) -> None:
        """Generates every item the app uses (so that `lookup` knows all benchmark queries)."""
        for task in self.config.retrieval_tasks:
            for world in self.config.worlds:
                self.items(world, task)
        with self._lock:
            self._answers = None
