"""The benchmark suite: top-1 accuracy on every task of both worlds, for ANY model with the encode API.

Every task of fuselip/data/tasks.py yields evaluation items: a query side and a candidate list with the
correct candidate first (shared/PAPER.md, "Evaluation"). A model embeds the query and the candidates with
`model.encode(images, texts)` and is right when the correct candidate scores highest. The same code
measures FuseLIP and the late-fusion baselines, so a difference in the table is a difference in the model.

Conventions (each a decision, tested in tests/test_evaluate.py):
- **Ties count against the model.** An item is correct only when the correct candidate's score is
  *strictly* above every other candidate's. A model that maps everything to one vector scores 0, not 100.
- **Identical candidates are one candidate.** A candidate with the same content as the correct one
  (`Side.key()`: same pixels and text, e.g. the flip of a symmetric scene) is dropped from the list, so
  it can neither tie with nor beat the correct one (DESIGN.md: duplicates count as correct).
- **Each distinct side is encoded once** per (world, task): queries and candidates are de-duplicated by
  content, sorted so that similar sequences share a batch, and encoded in batches in float32.
- **A task's `top1`** is the plain item accuracy; for a task with sub-kinds (tgit's crop/rotate/…,
  vqa's question types) it is the *mean over its kinds* (the paper's TGIT = mean over the five kinds),
  so the mix in which items were sampled does not weigh the kinds.
- **Retrieval** uses the caption items as a gallery: every image against every distinct caption
  (image→text R@1) and every distinct caption against every image (text→image R@1); when several
  images share one caption, any of them is a correct answer. `top1` is the mean of both directions.

`evaluate(model, ...)` returns a nested dict (all accuracies in percent):
    {"split", "seed", "n_items", "worlds": {world: {task: {"top1", "n", "kinds": {kind: {"top1", "n"}}}}},
     "mean": {task: mean of the worlds' top1}}
`to_markdown(results)` renders one model; `compare({name: results})` renders models side by side.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Callable, Iterable, Sequence

import torch

from fuselip.data.tasks import (DEFAULT_TASK_CONFIG, TASKS, WORLDS, eval_items, position_query,
                                position_size_question)
from fuselip.data.types import EvalItem, Side

RETRIEVAL = "retrieval"
RETRIEVAL_SOURCE = "caption"   # the task whose items form the retrieval gallery
TWIN = "position_twin"         # the position items ranked against the twin alone (twin_accuracy)
TWIN_SOURCE = "position"
ENCODE_BATCH = 256             # sides per model.encode call
SLICE_ITEMS = 8                # items per (world, task) of the reproducibility slice kept in metrics.json


# ---------------------------------------------------------------------------------------------
# embedding every distinct side once


def _modality(side: Side) -> str:
    if side.image is not None and side.text:
        return "image+text"
    return "image" if side.image is not None else "text"


def embed_unique(model, sides: Iterable[Side], batch_size: int = ENCODE_BATCH) -> dict[bytes, torch.Tensor]:
    """Sides -> {Side.key(): (D,) float32 embedding}, each distinct content encoded exactly once."""
    unique: dict[bytes, Side] = {}
    for side in sides:
        unique.setdefault(side.key(), side)
    # similar sequences in one batch (image or not, then text length): less padding for token models
    order = sorted(unique, key=lambda k: (unique[k].image is None, len(unique[k].text)))
    out: dict[bytes, torch.Tensor] = {}
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                keys = order[start:start + batch_size]
                batch = [unique[k] for k in keys]
                images = [s.image for s in batch]
                texts = [s.text if s.text else None for s in batch]
                emb = model.encode(images=images if any(i is not None for i in images) else None,
                                   texts=texts if any(t is not None for t in texts) else None)
                emb = torch.as_tensor(emb).detach().float().cpu()
                if emb.shape[0] != len(batch):
                    raise ValueError(f"model.encode returned {emb.shape[0]} rows for {len(batch)} inputs")
                out.update(zip(keys, emb))
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return out


# ---------------------------------------------------------------------------------------------
# scoring


def item_correct(query: torch.Tensor, candidates: torch.Tensor) -> bool:
    """query (D,), candidates (C, D) with the correct one first -> correct iff strictly best (ties lose)."""
    scores = candidates @ query  # (C,)
    if scores.shape[0] < 2:
        return True  # nothing to confuse it with (all candidates were duplicates of the correct one)
    return bool(scores[0] > scores[1:].max())


def score_items(items: Sequence[EvalItem], embeddings: dict[bytes, torch.Tensor]) -> list[bool]:
    """One correct/wrong per item, duplicates of the correct candidate removed (see module docstring)."""
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


def _percent(flags: Sequence[bool]) -> float:
    return 100.0 * sum(flags) / len(flags) if flags else float("nan")


def task_accuracy(items: Sequence[EvalItem], correct: Sequence[bool]) -> dict:
    """{"top1", "n", "kinds"}: top1 is the mean over kinds when items have kinds, else item accuracy."""
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for item, ok in zip(items, correct):
        by_kind[item.kind].append(ok)
    kinds = {k: {"top1": _percent(v), "n": len(v)} for k, v in sorted(by_kind.items()) if k}
    if kinds and "" not in by_kind:
        top1 = sum(v["top1"] for v in kinds.values()) / len(kinds)
    else:
        top1 = _percent(list(correct))
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
        name = f"{_modality(pairs[0][a])}_to_{_modality(pairs[0][b])}"
        result[name] = {"top1": _percent(correct), "n": len(sources)}
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


# ---------------------------------------------------------------------------------------------
# the suite


ItemSource = Callable[[str, str], Sequence[EvalItem]]


def benchmark_twins(position_twins: str | None = None) -> str:
    """What the benchmark's position twins differ in: `position_twins`, or by default the task default
    (fuselip.data.tasks.TaskConfig.position_twins, "appearance": colour where a world has colours, else two emoji
    of one category; see fuselip.data.tasks.twin_attribute)."""
    return position_twins or DEFAULT_TASK_CONFIG.position_twins


def benchmark_items(split: str, n_items: int, seed: int, image_size: int = 64,
                    position_twins: str | None = None, objects: Sequence[int] = ()) -> ItemSource:
    """The item source of the benchmark: fuselip.data.tasks.eval_items for one split and seed.
    position_twins: what the position task's twins differ in (fuselip.data.tasks.twin_attribute; None: the
    benchmark default, `benchmark_twins()`). objects: the scenes' object counts, e.g. (5,) for the 5-object
    stratum of the bottleneck study (fuselip/bottleneck.py; () = each world's own range, the benchmark)."""
    config = dataclasses.replace(DEFAULT_TASK_CONFIG, position_twins=benchmark_twins(position_twins))
    objects = tuple(objects)

    def source(world: str, task: str) -> Sequence[EvalItem]:
        return eval_items(world, task, split, n_items, seed, image_size=image_size, config=config, objects=objects)
    return source


def default_tasks() -> tuple[str, ...]:
    return tuple(TASKS)


def default_worlds() -> tuple[str, ...]:
    return tuple(WORLDS)


def _frame(items, worlds, tasks, split, n_items, seed, image_size, position_twins):
    """What evaluate and chance_levels share: the tasks, worlds, item source and the empty results record."""
    tasks = tuple(tasks) if tasks is not None else default_tasks()
    worlds = tuple(worlds) if worlds is not None else default_worlds()
    source = items or benchmark_items(split, n_items, seed, image_size, position_twins)
    results: dict = {"split": split, "seed": seed, "n_items": n_items, "worlds": {}, "mean": {}}
    if items is None:
        results["position_twins"] = benchmark_twins(position_twins)
    return tasks, worlds, source, results


def evaluate(model, items: ItemSource | None = None, *, worlds: Sequence[str] | None = None,
             tasks: Sequence[str] | None = None, split: str = "test", n_items: int = 500, seed: int = 0,
             image_size: int = 64, batch_size: int = ENCODE_BATCH, retrieval: bool = True,
             progress: Callable[[str], None] | None = None, position_twins: str | None = None) -> dict:
    """Every (world, task) top-1 accuracy of `model`, plus caption retrieval R@1 (see module docstring).

    `items(world, task)` supplies the evaluation items; by default the `split` test set of `seed` with
    `n_items` per (world, task) (position twins differing in `position_twins`, default `benchmark_twins()`).
    One (world, task) is generated, encoded and scored at a time. The position task also reports
    `position_twin` (see `twin_accuracy`).
    """
    tasks, worlds, source, results = _frame(items, worlds, tasks, split, n_items, seed, image_size, position_twins)
    for world in worlds:
        per_task = {}
        for task in tasks:
            task_items = list(source(world, task))
            if not task_items:
                continue
            if progress:
                progress(f"{world}/{task}: {len(task_items)} items")
            sides = [item.query for item in task_items] + [c for item in task_items for c in item.candidates]
            embeddings = embed_unique(model, sides, batch_size)
            per_task[task] = task_accuracy(task_items, score_items(task_items, embeddings))
            if task == TWIN_SOURCE:
                per_task[TWIN] = twin_accuracy(task_items, embeddings)
            if retrieval and task == RETRIEVAL_SOURCE:
                per_task[RETRIEVAL] = retrieval_accuracy(task_items, embeddings)
            del embeddings, sides, task_items
        results["worlds"][world] = per_task
    results["mean"] = summary(results)
    return results


def summary(results: dict) -> dict[str, float]:
    """{task: mean over the worlds of its top1} (only over worlds that have the task)."""
    values: dict[str, list[float]] = defaultdict(list)
    for per_task in results["worlds"].values():
        for task, entry in per_task.items():
            values[task].append(entry["top1"])
    return {task: sum(v) / len(v) for task, v in values.items()}


def flat_metrics(results: dict, prefix: str = "") -> dict[str, float]:
    """{"mean/tgit": …, "shapes/tgit": …, "shapes/tgit/crop": …}: one number per row, for logs and metrics."""
    flat = {f"{prefix}mean/{task}": value for task, value in results["mean"].items()}
    for world, per_task in results["worlds"].items():
        for task, entry in per_task.items():
            flat[f"{prefix}{world}/{task}"] = entry["top1"]
            for kind, sub in entry["kinds"].items():
                flat[f"{prefix}{world}/{task}/{kind}"] = sub["top1"]
    return flat


def model_image_size(model) -> int:
    """The pixel size a model reads: a baseline's `image_size`, or FuseLIP's tokenizer's."""
    if hasattr(model, "image_size"):
        return int(model.image_size)
    return int(model.tokenizer.config.image_size)


def measure_slice(model, split: str = "test", seed: int = 0, worlds: Sequence[str] | None = None,
                  n_items: int = SLICE_ITEMS, position_twins: str | None = None) -> dict:
    """A small fixed slice of the benchmark, stored in a shipped checkpoint's metrics.json
    ("benchmark_slice") and re-measured by the tests: {"settings": …, "results": flat_metrics}."""
    worlds = list(worlds) if worlds is not None else list(default_worlds())
    twins = benchmark_twins(position_twins)
    settings = {"split": split, "seed": seed, "worlds": worlds, "n_items": n_items, "position_twins": twins}
    results = evaluate(model, split=split, seed=seed, worlds=worlds, n_items=n_items,
                       image_size=model_image_size(model), position_twins=twins)
    return {"settings": settings, "results": flat_metrics(results)}


# ---------------------------------------------------------------------------------------------
# tables


def _rows(*results: dict) -> list[tuple[str, str, str]]:
    """(task, kind, label) rows in the task order of the results, each task followed by its kinds."""
    kinds_by_task: dict[str, list[str]] = {}
    for result in results:
        for per_task in result["worlds"].values():
            for task, entry in per_task.items():
                known = kinds_by_task.setdefault(task, [])
                known += [kind for kind in entry["kinds"] if kind not in known]
    rows = []
    for task, kinds in kinds_by_task.items():
        rows.append((task, "", task))
        rows += [(task, kind, f"{task}: {kind}") for kind in kinds]
    return rows


def _cell(results: dict, world: str, task: str, kind: str) -> float | None:
    if world == "mean":
        if kind:
            values = [_cell(results, w, task, kind) for w in results["worlds"]]
            values = [v for v in values if v is not None]
            return sum(values) / len(values) if values else None
        return results["mean"].get(task)
    entry = results["worlds"].get(world, {}).get(task)
    if entry is None:
        return None
    if kind:
        return entry["kinds"].get(kind, {}).get("top1")
    return entry["top1"]


def _fmt(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.1f}"


def to_markdown(results: dict, kinds: bool = True) -> str:
    """One model: a row per task (and per kind), a column per world and their mean; top-1 in %."""
    worlds = list(results["worlds"])
    lines = ["| task | " + " | ".join(worlds) + " | mean |", "|---|" + "---:|" * (len(worlds) + 1)]
    for task, kind, label in _rows(results):
        if kind and not kinds:
            continue
        cells = [_fmt(_cell(results, w, task, kind)) for w in worlds + ["mean"]]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(results_by_model: dict[str, dict], world: str = "mean", kinds: bool = True,
            delta: bool = False) -> str:
    """Models side by side: a row per task (and kind), a column per model; `world` = "mean" or a world.
    `delta` adds the column "Δ" = last − first model (e.g. the same checkpoint on two test seeds)."""
    names = list(results_by_model)
    if not names:
        raise ValueError("compare needs at least one model's results")
    rows = _rows(*results_by_model.values())
    header = names + (["Δ"] if delta else [])
    lines = [f"| task ({world}) | " + " | ".join(header) + " |", "|---|" + "---:|" * len(header)]
    for task, kind, label in rows:
        if kind and not kinds:
            continue
        values = [_cell(results_by_model[n], world, task, kind) for n in names]
        cells = [_fmt(v) for v in values]
        if delta:
            first, last = values[0], values[-1]
            cells.append("–" if first is None or last is None else f"{last - first:+.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def max_delta(first: dict, second: dict) -> tuple[float, str]:
    """Largest |difference| of any task's top1 (per world and mean) between two results, and where."""
    a, b = flat_metrics(first), flat_metrics(second)
    common = [k for k in a if k in b and k.count("/") == 1]  # task rows, not kinds
    if not common:
        raise ValueError("the two results share no task")
    key = max(common, key=lambda k: abs(a[k] - b[k]))
    return abs(a[key] - b[key]), key


# ---------------------------------------------------------------------------------------------
# a diagnostic for the position task: does the query depend on "left" / "right" at all?


PROBE_TRAIN_FRACTION = 0.75  # linear probes fit on the first 75 % of the items, score on the rest
PROBE_RIDGE = 1.0            # ridge penalty of the least-squares probe (features are standardised first)


def probe_design(features: torch.Tensor, labels: torch.Tensor, train_fraction: float) -> tuple[torch.Tensor, int]:
    """The linear probes' inputs: features standardised with the mean and std of the first `train_fraction` rows
    (the fitting rows) plus a bias column, (N, D + 1) float64; and the number of fitting rows."""
    if features.ndim != 2 or labels.shape != (features.shape[0],):
        raise ValueError(f"linear probe: features must be (N, D) and labels (N,), got {tuple(features.shape)} "
                         f"and {tuple(labels.shape)}")
    n_train = int(features.shape[0] * train_fraction)
    if n_train < 2 or n_train >= features.shape[0]:
        raise ValueError(f"linear probe: {features.shape[0]} rows leave no train or no test rows "
                         f"(train_fraction={train_fraction})")
    x = features.double()
    mean, std = x[:n_train].mean(0), x[:n_train].std(0).clamp_min(1e-6)
    return torch.cat([(x - mean) / std, torch.ones(len(x), 1, dtype=x.dtype)], dim=1), n_train


def linear_probe_accuracy(features: torch.Tensor, labels: torch.Tensor,
                          train_fraction: float = PROBE_TRAIN_FRACTION, ridge: float = PROBE_RIDGE) -> float:
    """Held-out accuracy (percent) of a linear read-out of a binary label from features (N, D).

    Ridge least squares on ±1 targets, fitted on the first `train_fraction` of the rows (standardised with
    their mean and std, plus a bias column) and scored on the rest: closed form, so deterministic. It asks
    whether the information is in the vectors at all, whatever the model does with it; 50 % is chance."""
    x, n_train = probe_design(features, labels, train_fraction)                     # (N, D + 1)
    y = labels.double() * 2 - 1                                                      # (N,) in {-1, +1}
    a, b = x[:n_train], y[:n_train]
    w = torch.linalg.solve(a.T @ a + ridge * torch.eye(a.shape[1], dtype=x.dtype), a.T @ b)  # (D + 1,)
    predicted = (x[n_train:] @ w) > 0
    return 100.0 * float((predicted == labels[n_train:].bool()).double().mean())


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


# ---------------------------------------------------------------------------------------------
# chance levels: what a model that ranks the candidates at random scores on the same items


def item_chance(item: EvalItem) -> float:
    """1 / the number of candidates `score_items` ranks for `item` (duplicates of the correct one merged into it,
    repeated wrong ones counted once): the probability that a random ranking puts the correct one first."""
    correct_key = item.candidates[0].key()
    others = {c.key() for c in item.candidates[1:]} - {correct_key}
    return 1.0 / (1 + len(others))


def task_chance(items: Sequence[EvalItem]) -> dict:
    """`task_accuracy`'s {"top1", "n", "kinds"} with each item's chance in place of right/wrong (percent; a task
    with kinds is the mean over its kinds, as its accuracy is)."""
    return task_accuracy(items, [item_chance(item) for item in items])


def twin_chance(items: Sequence[EvalItem]) -> dict:
    """`twin_accuracy`'s chance: the target against its twin alone, 1/2 for every item that has a twin."""
    scored = [item for item in items if "twin" in item.meta]
    return task_accuracy(scored, [0.5] * len(scored))


def retrieval_chance(items: Sequence[EvalItem]) -> dict:
    """`retrieval_accuracy`'s chance on the same gallery: per source, its positives / the distinct targets
    (a random ranking puts one of its positives first), averaged over sources; the mean of both directions."""
    pairs = [(item.query, item.candidates[0]) for item in items]
    if not pairs:
        return {"top1": float("nan"), "n": 0, "kinds": {}}
    result = {}
    for a, b in ((0, 1), (1, 0)):
        positives: dict[bytes, set[bytes]] = defaultdict(set)
        for p in pairs:
            positives[p[a].key()].add(p[b].key())
        n_targets = len({p[b].key() for p in pairs})
        name = f"{_modality(pairs[0][a])}_to_{_modality(pairs[0][b])}"
        result[name] = {"top1": _percent([len(t) / n_targets for t in positives.values()]), "n": len(positives)}
    top1 = sum(v["top1"] for v in result.values()) / len(result)
    return {"top1": top1, "n": len(pairs), "kinds": result}


def chance_levels(items: ItemSource | None = None, *, worlds: Sequence[str] | None = None,
                  tasks: Sequence[str] | None = None, split: str = "test", n_items: int = 500, seed: int = 0,
                  image_size: int = 64, position_twins: str | None = None, retrieval: bool = True) -> dict:
    """The chance level of every (world, task) of `evaluate` on the same items, in the same format (percent), so
    it can stand beside a model's results (e.g. in `compare`). No model is needed: only the candidate lists.
    `retrieval=False` leaves out caption retrieval, as `evaluate(..., retrieval=False)` does."""
    tasks, worlds, source, results = _frame(items, worlds, tasks, split, n_items, seed, image_size, position_twins)
    for world in worlds:
        per_task = {}
        for task in tasks:
            task_items = list(source(world, task))
            if not task_items:
                continue
            per_task[task] = task_chance(task_items)
            if task == TWIN_SOURCE:
                per_task[TWIN] = twin_chance(task_items)
            if retrieval and task == RETRIEVAL_SOURCE:
                per_task[RETRIEVAL] = retrieval_chance(task_items)
        results["worlds"][world] = per_task
    results["mean"] = summary(results)
    return results
