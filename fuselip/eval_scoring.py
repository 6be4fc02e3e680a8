"""Scoring: whether the model ranks the correct candidate first, item by item, and a task's top-1 from that.

The rules are fuselip/evaluate.py's conventions: ties count against the model, duplicates of the correct
candidate are the correct one, a task with kinds is the mean over its kinds; retrieval ranks the caption gallery in
both directions, and the position twin row ranks each position target against its twin alone.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import torch

from fuselip.data.types import EvalItem, Side


def modality(side: Side) -> str:
    if side.image is not None and side.text:
        return "image+text"
    return "image" if side.image is not None else "text"


def item_correct(query: torch.Tensor, candidates: torch.Tensor) -> bool:
    """query (D,), candidates (C, D) with the correct one first -> correct iff strictly best (ties lose)."""
    scores = candidates @ query  # (C,)
    if scores.shape[0] < 2:
        return True  # nothing to confuse it with (all candidates were duplicates of the correct one)
    return bool(scores[0] > scores[1:].max())


def score_items(items: Sequence[EvalItem], embeddings: dict[bytes, torch.Tensor]) -> list[bool]:
    """One correct/wrong per item, duplicates of the correct candidate removed (see fuselip/evaluate.py)."""
    results = []
    for item in items:
        correct_key = item.candidates[0].key()
        keys = [correct_key] + list(dict.fromkeys(c.key() for c in item.candidates[1:] if c.key() != correct_key))
        candidates = torch.stack([embeddings[k] for k in keys])  # (C, D)
        results.append(item_correct(embeddings[item.query.key()], candidates))
    return results


def item_choices(items: Sequence[EvalItem], embeddings: dict[bytes, torch.Tensor]) -> list[int]:
    """The candidate each item's query picks: an index into `item.candidates`, 0 when the model is right.

    Same rules as `score_items` (which this agrees with: `choice == 0` iff correct): duplicates of the correct
    candidate are the correct one, and a tie with the correct candidate loses, to the first best competitor."""
    choices = []
    for item in items:
        correct_key = item.candidates[0].key()
        scores = torch.stack([embeddings[c.key()] for c in item.candidates]) @ embeddings[item.query.key()]  # (C,)
        others = [j for j, c in enumerate(item.candidates) if c.key() != correct_key]
        if not others or bool(scores[0] > scores[others].max()):
            choices.append(0)
        else:
            choices.append(others[int(scores[others].argmax())])
    return choices


def percent(scores: Sequence[float]) -> float:
    """The mean of per-item scores in [0, 1] (True/False for right/wrong, or a chance level) in percent."""
    return 100.0 * sum(scores) / len(scores) if scores else float("nan")


def task_accuracy(items: Sequence[EvalItem], correct: Sequence[float]) -> dict:
    """{"top1", "n", "kinds"}: top1 is the mean over kinds when items have kinds, else item accuracy. `correct`
    holds each item's score in [0, 1]: right/wrong as a bool, or (eval_chance) its chance of being right."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    for item, ok in zip(items, correct):
        by_kind[item.kind].append(ok)
    kinds = {k: {"top1": percent(v), "n": len(v)} for k, v in sorted(by_kind.items()) if k}
    if kinds and "" not in by_kind:
        top1 = sum(v["top1"] for v in kinds.values()) / len(kinds)
    else:
        top1 = percent(list(correct))
    return {"top1": top1, "n": len(items), "kinds": kinds}


def retrieval_accuracy(items: Sequence[EvalItem], embeddings: dict[bytes, torch.Tensor]) -> dict:
    """R@1 in both directions over the gallery of (query, correct candidate) pairs of `items`."""
    pairs = [(item.query, item.candidates[0]) for item in items]
    if not pairs:
        return {"top1": float("nan"), "n": 0, "kinds": {}}
    result = {}
    for direction, (a, b) in (("forward", (0, 1)), ("backward", (1, 0))):
        sources = list(dict.fromkeys(p[a].key() for p in pairs))
        targets = list(dict.fromkeys(p[b].key() for p in pairs))
        target_row = {k: i for i, k in enumerate(targets)}
        positives = torch.zeros(len(sources), len(targets), dtype=torch.bool)  # (S, T)
        source_row = {k: i for i, k in enumerate(sources)}
        for p in pairs:
            positives[source_row[p[a].key()], target_row[p[b].key()]] = True
        scores = torch.stack([embeddings[k] for k in sources]) @ torch.stack([embeddings[k] for k in targets]).T
        best_positive = scores.masked_fill(~positives, float("-inf")).max(dim=1).values  # (S,)
        best_negative = scores.masked_fill(positives, float("-inf")).max(dim=1).values  # (S,)
        correct = (best_positive > best_negative).tolist()  # strictly best; ties lose
        name = f"{modality(pairs[0][a])}_to_{modality(pairs[0][b])}"
        result[name] = {"top1": percent(correct), "n": len(sources)}
    top1 = sum(v["top1"] for v in result.values()) / len(result)
    return {"top1": top1, "n": len(pairs), "kinds": result}


def twin_accuracy(items: Sequence[EvalItem], embeddings: dict[bytes, torch.Tensor]) -> dict:
    """The position items with the twin as the only competitor: is the object the side word names preferred
    to the other object of the same phrase in the same image? (`item.meta["twin"]`, set by the position task.)

    The full position task also ranks crops of other objects and other scenes, so it mixes this binding with
    crop recognition (the crop task). Here the query can only be right by the side word: a late-fusion model
    reads the same image and a text that names both twins alike, so it sits near 50 % by construction."""
    scored = [item for item in items if "twin" in item.meta]
    correct = [item_correct(embeddings[item.query.key()],
                            torch.stack([embeddings[item.candidates[0].key()], embeddings[item.meta["twin"].key()]]))
               for item in scored]
    return task_accuracy(scored, correct)

