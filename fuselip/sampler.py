"""Which training pairs go into which batch: every hard-negative group whole, in one global batch.

A group (the data contract, fuselip/data/types.py) is a run of pairs with the same group id: the crops of one
image, the answers to one question, … Put together they are each other's hard negatives, which is the point
of them, so the sampler never splits one unless it must (and counts it when it does).
"""
from __future__ import annotations

from typing import Sequence

import torch

from fuselip.config import RunConfig

MAX_OPEN_BATCHES = 8  # group packing: how many partly filled batches the sampler keeps open


def contiguous_groups(group_ids: Sequence[int]) -> list[range]:
    """Runs of equal group id -> index ranges (pairs of one group are contiguous by the data contract)."""
    groups, start = [], 0
    for i in range(1, len(group_ids) + 1):
        if i == len(group_ids) or group_ids[i] != group_ids[start]:
            groups.append(range(start, i))
            start = i
    return groups


class GroupBatchSampler:
    """Full batches of exactly `batch_size` pair indices with every hard-negative group kept together.

    Each epoch shuffles the groups (deterministically from (seed, epoch)) and packs them first-fit into up to
    MAX_OPEN_BATCHES open batches; a batch is emitted when full. A group that fits nowhere (rare: only when all
    open batches are nearly full, or the group is larger than a batch) is split, and `split_groups` counts it.
    The incomplete batches left at the end of an epoch are dropped (their pairs come back next epoch).
    """

    def __init__(self, group_ids: Sequence[int], batch_size: int, seed: int, positions: Sequence[int] | None = None):
        """positions: the training-set index of each entry of group_ids (default 0, 1, …), for a sampler over a
        subset of the pairs (a curriculum's first phase)."""
        self.groups = contiguous_groups(list(group_ids))
        self.batch_size = batch_size
        self.seed = seed
        self.positions = list(positions) if positions is not None else None
        self.split_groups = 0
        if sum(len(g) for g in self.groups) < batch_size:
            raise ValueError(f"{sum(len(g) for g in self.groups)} training pairs cannot fill one batch of {batch_size}")

    def epoch(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.groups), generator=generator).tolist()
        batches: list[list[int]] = []
        open_batches: list[list[int]] = []
        for g in order:
            members = list(self.groups[g])
            while members:
                target = next((b for b in open_batches if len(b) + len(members) <= self.batch_size), None)
                if target is None and len(open_batches) < MAX_OPEN_BATCHES:
                    target = []
                    open_batches.append(target)
                if target is None:  # split: fill the fullest open batch with the first part of the group
                    self.split_groups += 1
                    target = max(open_batches, key=len)
                take = min(len(members), self.batch_size - len(target))
                target.extend(members[:take])
                members = members[take:]
                if len(target) == self.batch_size:
                    open_batches.remove(target)
                    batches.append(target)
        if self.positions is not None:
            batches = [[self.positions[i] for i in batch] for batch in batches]
        return batches


def curriculum(pairs: Sequence, cfg: RunConfig) -> tuple[GroupBatchSampler | None, int]:
    """The first phase of a curriculum (data.curriculum_first, data.curriculum_until): a sampler over the pairs whose
    world or task is named there, used for the first curriculum_until x train.steps steps; (None, 0) without one."""
    first, until = cfg.data.curriculum_first, cfg.data.curriculum_until
    if not first or until <= 0:
        return None, 0
    chosen = [i for i, p in enumerate(pairs) if p.world in first or p.task in first]
    if not chosen:
        raise ValueError(f"data.curriculum_first={first}: no training pair has one of these worlds or tasks")
    sampler = GroupBatchSampler([pairs[i].group for i in chosen], cfg.train.batch_size, cfg.train.seed, chosen)
    return sampler, round(until * cfg.train.steps)
