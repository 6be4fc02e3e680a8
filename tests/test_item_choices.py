"""fuselip.evaluate.item_choices: which candidate a model picks, consistent with score_items."""
import numpy as np
import torch

from fuselip.data.types import EvalItem, Side
from fuselip.evaluate import item_choices, score_items


def _image(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, dtype=np.uint8)


def test_choices_agree_with_scoring_including_duplicates_and_ties():
    rng = np.random.default_rng(0)
    items, embeddings = [], {}
    for i in range(40):
        query = Side(_image(200), f"query {i}")
        candidates = [Side(_image(v), "") for v in rng.choice(100, size=5, replace=False)]
        if i % 5 == 0:
            candidates.append(Side(candidates[0].image.copy(), ""))   # a duplicate of the correct one
        items.append(EvalItem(query, tuple(candidates), "tgit"))
        for side in (query, *candidates):
            embeddings.setdefault(side.key(), torch.as_tensor(rng.normal(size=3), dtype=torch.float32))
    tie = items[1]
    best = embeddings[tie.query.key()] * 10                       # both score highest, equally: a tie loses
    embeddings[tie.candidates[0].key()] = best
    embeddings[tie.candidates[2].key()] = best.clone()
    choices = item_choices(items, embeddings)
    correct = score_items(items, embeddings)
    assert [c == 0 for c in choices] == correct
    assert choices[1] == 2 and not correct[1]
    assert 0 < sum(correct) < len(items)           # both outcomes occur, so the agreement means something
    for item, choice in zip(items, choices):       # a wrong choice is the best-scoring candidate
        q = embeddings[item.query.key()]
        scores = [float(embeddings[c.key()] @ q) for c in item.candidates]
        assert scores[choice] == max(scores)
