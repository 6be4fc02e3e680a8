"""Checkpoint compaction: a saved token table keeps only the rows of the ids seen in training.

FuseLIP's token table has 49,409 + codebook rows and the baselines' text table 49,408, but the training data only
ever contains a few hundred of those ids. Training records every id present in the training set in the model's
persistent buffer `token_seen` (FuseLIP: `prepare(pairs)` and every training step, plus pad/sot/eot/[MASK]; the
baselines: `prepare(pairs)`, which also zeroes every other row of their table). The exported file keeps only the
rows of those ids (`token_embedding.kept_ids` + `token_embedding.kept_rows`, fuselip.checkpoint.compact_rows);
importing restores every other row as zeros (fuselip.checkpoint.expand_rows). What is saved depends on training only:
embedding other ids (`encode`, validation) before saving changes nothing (tests/test_model.py).

Why this is honest: the embedding of any input made of kept ids reads only kept rows, so it is bit-identical to the
full model's (tests/test_model.py checks it; `pair_training.ship_run` re-runs the validation on the loaded copy and
reports the largest difference as `export_shift`). A row that is not kept belongs to an id that appeared in no
training input: in FuseLIP it holds its random initialisation, shrunk by weight decay (and, with `mmm_vocab="full"`,
nudged only through the MMM softmax denominator); it carries no learned information, and zeros carry none either. A
compacted model warns once when it meets an id it did not keep (`check_kept`). FuseLIP's MMM head bias is stored in
full (V floats). The full, uncompacted state is what the training checkpoints in runs/ hold (exact resume needs it).
FuseLIP and the baselines are both fuselip.contract.Compactable, and both export and import their table through
`compact_table` / `expand_table`.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch

from fuselip.checkpoint import check_state_dict, compact_rows, expand_rows
from fuselip.contract import Compactable, TensorImport, saved_tensors

if TYPE_CHECKING:
    from fuselip.model import FuseLIP

TABLE = "token_embedding.weight"  # FuseLIP's token table in its state dict
TOKENIZER = "tokenizer."          # the prefix of FuseLIP's image tokenizer in its state dict and file


def check_kept(model: Compactable, ids: torch.Tensor, what: str) -> None:
    """Warns once (per model) when a compacted `model` reads the zero row of an id it did not keep. `what` names the
    ids in the message ("token", "text"); the warning points at the caller of the model method that calls this."""
    if model.compacted and not model.warned_unkept and not bool(model.token_seen[ids].all()):
        missing = sorted(set(ids[~model.token_seen[ids]].tolist()))[:10]
        warnings.warn(f"{what} ids {missing} never occurred in training; this compacted checkpoint stores their "
                      f"(untrained) embedding rows as zeros (see fuselip/compaction.py)", stacklevel=3)
        model.warned_unkept = True


def compact_table(state: dict[str, torch.Tensor], table: str, seen: torch.Tensor) -> dict[str, torch.Tensor]:
    """A state dict as a compacted checkpoint holds it: the (V, ...) table `state[table]` cut to the rows where
    `seen` (V,) is True (fuselip.checkpoint.compact_rows), and no `token_seen` (the kept ids are it)."""
    state = {k: v for k, v in state.items() if k != "token_seen"}
    return compact_rows(state, table, seen.nonzero().squeeze(1))


def expand_table(tensors: dict[str, torch.Tensor], table: str, shape: tuple[int, ...],
                 where: str = "") -> tuple[dict[str, torch.Tensor], bool]:
    """Inverse of `compact_table` on a copy of `tensors`: the table rebuilt at `shape` (zeros in the rows not kept)
    and `token_seen` = the kept rows; returns (tensors, whether they were compacted). Full tensors pass unchanged."""
    tensors = dict(tensors)
    kept = expand_rows(tensors, table, shape, where)
    if kept is not None:
        tensors["token_seen"] = kept
    return tensors, kept is not None


def export_fuselip(model: FuseLIP) -> dict[str, torch.Tensor]:
    """FuseLIP's weights with the token table compacted to the rows of `token_seen`, + its tokenizer's own export,
    prefixed `tokenizer.`."""
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(TOKENIZER)}
    state = compact_table(own, TABLE, model.token_seen)
    state.update({f"{TOKENIZER}{k}": v for k, v in saved_tensors(model.tokenizer).items()})
    return state


def import_fuselip(model: FuseLIP, tensors: dict[str, torch.Tensor], where: str = "") -> None:
    """Loads a compacted (`export_fuselip`) or a full (state_dict) set of tensors into FuseLIP `model`."""
    tokenizer = {k[len(TOKENIZER):]: v for k, v in tensors.items() if k.startswith(TOKENIZER)}
    own_tensors = {k: v for k, v in tensors.items() if not k.startswith(TOKENIZER)}
    own_tensors, compacted = expand_table(own_tensors, TABLE, (model.vocab_size, model.config.width), where)
    own = {k: v for k, v in model.state_dict().items() if not k.startswith(TOKENIZER)}
    check_state_dict(own, own_tensors, where)
    model.load_state_dict(own_tensors, strict=False)
    if isinstance(model.tokenizer, TensorImport) and compacted:
        model.tokenizer.import_tensors(tokenizer, where=f"{where} (tokenizer.*)")
    else:
        check_state_dict(model.tokenizer.state_dict(), tokenizer, f"{where} (tokenizer.*)")
        model.tokenizer.load_state_dict(tokenizer)
    model.compacted = compacted
