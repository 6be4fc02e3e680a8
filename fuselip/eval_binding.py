"""A diagnostic for the position task: does the query depend on "left" / "right" at all?

`position_binding` measures, on the position items, how much the side word moves a model's query and whether it
binds that side to one object (its size, asked as a question and read out by linear probes).
"""
from __future__ import annotations

from typing import Sequence

import torch

from fuselip.data.task_scenes import position_query, position_size_question
from fuselip.data.types import Side
from fuselip.eval_embed import embed_unique
from fuselip.eval_sources import benchmark_items, default_worlds
from fuselip.linear_probes import linear_probe_accuracy


def position_binding(model, split: str = "test", n_items: int = 200, seed: int = 0,
                     worlds: Sequence[str] | None = None, image_size: int = 64) -> dict:
    """Four measurements on the position items of each world, for any model with the encode API:

    - `left_right_cosine`: mean cosine between the query "the star on the left" and the same image with
      "the star on the right". 1.0 means the position word changes nothing: the model cannot pick a twin,
      whatever its crops look like (a late-fusion model is near 1 by construction: the text is a class phrase).
    - `size_question_top1`: "what size is the star on the left?" ranked against the answers "small" and
      "large": 50 % is chance. It needs the same binding of a side to one object, with a text target instead
      of a crop. (All four run on the size twins, whatever the benchmark's position_twins.)
    - `crop_size_probe` / `query_size_probe`: held-out linear probes (`linear_probe_accuracy`) of the target
      twin's size, read from its crop's embedding (does the model see the size at all?) and from the query's
      embedding (does "on the left" pull that twin's size into the query?). Items alternate left and right,
      so a query that ignores the side word, or only records both twins' sizes, probes at about 50 %.
    Returns {world: {"left_right_cosine", "size_question_top1", "crop_size_probe", "query_size_probe", "n"}}."""
    worlds = tuple(worlds) if worlds is not None else default_worlds()
    source = benchmark_items(split, n_items, seed, image_size, position_twins="size")  # the probes ask about size
    out = {}
    for world in worlds:
        items = list(source(world, "position"))
        answers = [Side(None, "small"), Side(None, "large")]
        triples = []
        for item in items:
            phrase, side = item.meta["phrase"], item.kind
            flipped = Side(item.query.image, position_query(phrase, "right" if side == "left" else "left"))
            question = Side(item.query.image, position_size_question(phrase, side))
            triples.append((item.query, flipped, question, item.meta["object"].size))
        sides = [s for query, flipped, question, _ in triples for s in (query, flipped, question)] + answers
        sides += [item.candidates[0] for item in items]  # the target crops
        emb = embed_unique(model, sides)
        small, large = emb[answers[0].key()], emb[answers[1].key()]
        large_target = torch.tensor([size == "large" for *_, size in triples])
        probes = {name: linear_probe_accuracy(torch.stack([emb[s.key()] for s in probed]), large_target)
                  for name, probed in (("crop_size_probe", [item.candidates[0] for item in items]),
                                       ("query_size_probe", [item.query for item in items]))}
        cosines, right = [], 0
        for query, flipped, question, size in triples:
            cosines.append(float(emb[query.key()] @ emb[flipped.key()]))
            q = emb[question.key()]
            score_small, score_large = float(q @ small), float(q @ large)
            right += (score_small > score_large) if size == "small" else (score_large > score_small)
        n = len(triples)
        out[world] = {"left_right_cosine": sum(cosines) / max(n, 1), "size_question_top1": 100.0 * right / max(n, 1),
                      **probes, "n": n}
    return out

