"""Linear read-outs: is a piece of information in a set of vectors at all, whatever the model does with it?

Ridge least squares in closed form (deterministic), fitted on the first rows and scored on the rest, on features
standardised with the fitting rows' mean and std plus a bias column: a binary label (`linear_probe_accuracy`; the
position diagnostic, fuselip/eval_binding.py) or a class (`linear_probe_multiclass`, with `majority_chance` as its
chance level; the bottleneck probe, fuselip/bottleneck_probe.py).
"""
from __future__ import annotations

import torch

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


def linear_probe_multiclass(features: torch.Tensor, labels: torch.Tensor,
                            train_fraction: float = PROBE_TRAIN_FRACTION, ridge: float = PROBE_RIDGE) -> float:
    """Held-out accuracy (%) of a linear read-out of a class (labels (N,) int) from features (N, D).

    The multiclass form of linear_probe_accuracy: the same standardisation, bias column, ridge and split (fit on
    the first `train_fraction` rows, score on the rest), with one-hot targets and the arg-max as the answer (for two
    classes it is the same read-out). Closed form, so deterministic."""
    x, n_train = probe_design(features, labels, train_fraction)                     # (N, D + 1)
    labels = labels.long()
    classes = int(labels.max()) + 1
    y = torch.nn.functional.one_hot(labels, classes).double()                        # (N, C)
    a, b = x[:n_train], y[:n_train]
    w = torch.linalg.solve(a.T @ a + ridge * torch.eye(a.shape[1], dtype=x.dtype), a.T @ b)  # (D + 1, C)
    predicted = (x[n_train:] @ w).argmax(dim=1)
    return 100.0 * float((predicted == labels[n_train:]).double().mean())


def majority_chance(labels: torch.Tensor, train_fraction: float = PROBE_TRAIN_FRACTION) -> float:
    """Accuracy (%) on the scored rows of always answering the most frequent class of the fitted rows."""
    n_train = int(labels.shape[0] * train_fraction)
    values, counts = labels[:n_train].unique(return_counts=True)
    return 100.0 * float((labels[n_train:] == values[counts.argmax()]).double().mean())

