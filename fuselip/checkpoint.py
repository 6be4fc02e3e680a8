"""Checkpoint folders: `config.json` + `model.safetensors` (+ `metrics.json`). No pickle.

Every model class registers itself under a `kind` with `@register("kind")` and provides
`config_dict()` / `from_config(config_dict)` (fuselip.contract.Checkpointable); `save_model` / `load_model` then work
for all of them, with the model's `export_tensors` / `import_tensors` where it has them (fuselip.contract.TensorExport
/ TensorImport) and its state dict otherwise, and loading names every tensor that is missing, unexpected or of the
wrong shape.
Folders are written atomically: into a temporary sibling first, then renamed into place, so an
interrupted write never leaves a half checkpoint where a good one was.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch
from safetensors.torch import load_file, save_file

from fuselip.contract import Checkpointable, TensorImport, saved_tensors

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
FORMAT_VERSION = 1
KIND_KEY = "checkpoint_kind"  # the registry key; a model's own config may have a field called "kind"
REPO_ROOT = Path(__file__).resolve().parents[1]  # where the presets' relative checkpoint paths point

_REGISTRY: dict[str, type[Checkpointable]] = {}
C = TypeVar("C", bound=Checkpointable)
M = TypeVar("M", bound=torch.nn.Module)


class CheckpointError(ValueError):
    pass


def register(kind: str) -> Callable[[type[C]], type[C]]:
    """Class decorator: `kind` names the class in checkpoint folders, and becomes its `checkpoint_kind`."""
    def wrap(cls: type[C]) -> type[C]:
        _REGISTRY[kind] = cls
        cls.checkpoint_kind = kind
        return cls
    return wrap


@dataclass
class Checkpoint:
    path: Path
    kind: str
    config: dict
    tensors: dict[str, torch.Tensor]
    metrics: dict | None


def write_json_atomic(path: Path, data: Any) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def save(path: str | Path, *, kind: str, config: dict, tensors: dict[str, torch.Tensor],
         metrics: dict | None = None, extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Writes a checkpoint folder atomically. `extra` tensors go to `extra.safetensors` (e.g. train state)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=path.name + ".tmp-"))
    try:
        if KIND_KEY in config or "format_version" in config:
            raise CheckpointError(f"config may not use the reserved keys {KIND_KEY!r} / 'format_version'")
        write_json_atomic(tmp / CONFIG_FILE, {KIND_KEY: kind, "format_version": FORMAT_VERSION, **config})
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp / WEIGHTS_FILE))
        if extra:
            save_file({k: v.detach().contiguous().cpu() for k, v in extra.items()}, str(tmp / "extra.safetensors"))
        if metrics is not None:
            write_json_atomic(tmp / METRICS_FILE, metrics)
        old = None
        if path.exists():
            old = path.with_name(path.name + ".tmp-old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)  # the new folder did not move into place: the old one goes back
            raise
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def checkpoint_candidates(path: str | Path) -> list[Path]:
    """Where a setting's checkpoint folder is looked for: `path` as given (absolute, or relative to the current
    folder), then a relative `path` under the repository root (a preset's path read from another folder)."""
    path = Path(path)
    return [path] if path.is_absolute() else [path, REPO_ROOT / path]


def find_checkpoint(path: str | Path) -> Path | None:
    """The first of `checkpoint_candidates(path)` that holds a config.json; None when none does."""
    return next((f for f in checkpoint_candidates(path) if (f / CONFIG_FILE).is_file()), None)


def _read_json(path: Path, what: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing {what}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def read(path: str | Path, *, with_extra: bool = False) -> Checkpoint:
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a checkpoint folder (expected {CONFIG_FILE} + {WEIGHTS_FILE})")
    config = _read_json(path / CONFIG_FILE, "config")
    if KIND_KEY not in config:
        raise CheckpointError(f"{path / CONFIG_FILE}: no {KIND_KEY!r} field; cannot tell which model it holds")
    weights = path / WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointError(f"{path}: missing {WEIGHTS_FILE}")
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"{weights}: unreadable safetensors file ({e})") from None
    if with_extra and (path / "extra.safetensors").exists():
        tensors.update({f"extra:{k}": v for k, v in load_file(str(path / "extra.safetensors")).items()})
    metrics = _read_json(path / METRICS_FILE, "metrics") if (path / METRICS_FILE).exists() else None
    kind = config.pop(KIND_KEY)
    config.pop("format_version", None)
    return Checkpoint(path, kind, config, tensors, metrics)


def check_state_dict(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], where: str) -> None:
    """Raises with a readable list of what differs between a model's state dict and a checkpoint's."""
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"missing tensors: {', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}")
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected[:10])}{' …' if len(unexpected) > 10 else ''}")
    for key in sorted(set(expected) & set(found)):
        if tuple(expected[key].shape) != tuple(found[key].shape):
            problems.append(f"{key}: checkpoint has shape {tuple(found[key].shape)}, "
                            f"config builds {tuple(expected[key].shape)}")
    if problems:
        raise CheckpointError(f"{where}: config and weights disagree: " + "; ".join(problems))


def compact_rows(state: dict[str, torch.Tensor], key: str, kept: torch.Tensor) -> dict[str, torch.Tensor]:
    """Replaces the table `state[key]` (V, ...) by only its rows `kept`, for checkpoints.

    A 49k-row token table of which the data touches a few hundred rows would dominate a small model's
    file. The table becomes `<prefix>.kept_ids` (K,) + `<prefix>.kept_rows` (K, ...), prefix = `key`
    without its last part (`token_embedding.weight` -> `token_embedding.kept_ids`). `expand_rows` undoes it.
    """
    state = dict(state)
    table = state.pop(key)
    prefix = key.rsplit(".", 1)[0]
    kept = kept.detach().long().flatten().cpu()
    state[f"{prefix}.kept_ids"] = kept
    state[f"{prefix}.kept_rows"] = table.detach()[kept.to(table.device)].cpu()
    return state


def expand_rows(tensors: dict[str, torch.Tensor], key: str, shape: tuple[int, ...],
                where: str = "") -> torch.Tensor | None:
    """Inverse of `compact_rows`, in place on `tensors`: rebuilds `tensors[key]` of `shape`, zeros in the rows
    that were not kept, and returns the (V,) bool mask of kept rows; returns None when `key` was not compacted."""
    prefix = key.rsplit(".", 1)[0]
    if f"{prefix}.kept_ids" not in tensors:
        return None
    kept = tensors.pop(f"{prefix}.kept_ids").long()
    rows = tensors.pop(f"{prefix}.kept_rows", None)
    if rows is None:
        raise CheckpointError(f"{where}: {prefix}.kept_ids without {prefix}.kept_rows")
    if tuple(rows.shape) != (len(kept), *shape[1:]) or (len(kept) and not 0 <= int(kept.min()) <= int(kept.max()) < shape[0]):
        raise CheckpointError(f"{where}: {prefix}.kept_rows {tuple(rows.shape)} / kept_ids (max "
                              f"{int(kept.max()) if len(kept) else '-'}) do not fit a {tuple(shape)} table")
    table = torch.zeros(shape, dtype=rows.dtype)
    table[kept] = rows
    tensors[key] = table
    mask = torch.zeros(shape[0], dtype=torch.bool)
    mask[kept] = True
    return mask


def save_model(model: Checkpointable, path: str | Path, metrics: dict | None = None,
               dtype: torch.dtype | None = None) -> Path:
    """Writes `model`'s export (or state dict); `dtype` (e.g. torch.float16) casts the floating-point tensors on
    disk only: loading copies them back into the model's own dtype."""
    tensors = saved_tensors(model)
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    return save(path, kind=model.checkpoint_kind, config=model.config_dict(), tensors=tensors, metrics=metrics)


def load_model(path: str | Path) -> torch.nn.Module:
    """Loads any registered model from its checkpoint folder, in eval mode."""
    _import_model_modules()
    ckpt = read(path)
    if ckpt.kind not in _REGISTRY:
        raise CheckpointError(f"{ckpt.path}: unknown kind {ckpt.kind!r}; known: {', '.join(sorted(_REGISTRY))}")
    cls = _REGISTRY[ckpt.kind]
    model = cls.from_config(ckpt.config)
    if not isinstance(model, torch.nn.Module):
        raise CheckpointError(f"{ckpt.path}: kind {ckpt.kind!r} built a {type(model).__name__}, not a torch module")
    if isinstance(model, TensorImport):
        model.import_tensors(ckpt.tensors, where=str(ckpt.path))
    else:
        check_state_dict(model.state_dict(), ckpt.tensors, str(ckpt.path))
        model.load_state_dict(ckpt.tensors)
    model.eval()
    # what a loaded model tells about its folder (torch types a module's attribute assignment as tensor/module only)
    setattr(model, "checkpoint_path", str(ckpt.path))
    setattr(model, "metrics", ckpt.metrics)
    return model


def load_model_as(path: str | Path, cls: type[M]) -> M:
    """`load_model`, for a caller that needs a `cls` (e.g. fuselip.tokenizers.ImageTokenizer): raises
    CheckpointError when the folder holds another kind of model."""
    model = load_model(path)
    if not isinstance(model, cls):
        raise CheckpointError(f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
    return model


def _import_model_modules() -> None:
    import importlib
    for name in ("fuselip.tokenizers", "fuselip.model", "fuselip.baselines", "fuselip.mae"):
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
