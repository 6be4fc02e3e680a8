"""The group-aware batch sampler: every hard-negative group in one batch, deterministic from its seed."""
from fuselip import sampler


def test_group_sampler_keeps_groups_together_and_is_deterministic():
    group_ids = [g for g in range(300) for _ in range(1 + g % 5)]  # groups of 1..5 pairs
    drawn = sampler.GroupBatchSampler(group_ids, batch_size=32, seed=3)
    batches = drawn.epoch(0)
    assert all(len(b) == 32 for b in batches)
    assert len({i for b in batches for i in b}) == sum(len(b) for b in batches)  # no pair twice in an epoch
    assert sum(len(b) for b in batches) > 0.9 * len(group_ids)
    where = {i: k for k, b in enumerate(batches) for i in b}
    split = sum(len({where.get(i) for i in g if i in where}) > 1 for g in sampler.contiguous_groups(group_ids))
    assert split == drawn.split_groups and split <= 3
    assert batches == sampler.GroupBatchSampler(group_ids, 32, 3).epoch(0)
    assert batches != drawn.epoch(1) and batches != sampler.GroupBatchSampler(group_ids, 32, 4).epoch(0)
