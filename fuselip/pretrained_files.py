"""Finding and reading a release's files (fuselip/pretrained.py): config.json and the weights, from a folder or the
Hugging Face cache (the hub only when asked), and PretrainedError, the one-line error of everything that loads one.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

import torch

from fuselip.checkpoint import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")  # FuseLIP releases: the second; TiTok's: either, the
                                                             # safetensors first (no pickle at all)
OFFLINE_ENV = "HF_HUB_OFFLINE"


class PretrainedError(CheckpointError):
    """A released model that cannot be found or does not fit its config; the message is one line."""


def locate(name_or_path: str | os.PathLike, weights: Sequence[str] | None = None, download: bool = False,
           cache_dir: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(config.json, weights file) of a release: from a folder, else from the Hugging Face cache (or the hub when
    `download`). `weights`: the candidate file names, the first one found wins."""
    candidates = list(weights or WEIGHTS_FILES)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        found = [path / name for name in candidates if (path / name).is_file()]
        if not (path / CONFIG_FILE).is_file() or not found:
            has = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
            raise PretrainedError(f"{path}: a released model folder needs {CONFIG_FILE} and one of "
                                  f"{', '.join(candidates)}; it has {has}")
        return path / CONFIG_FILE, found[0]
    name = str(name_or_path)
    if path.exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+", name) or name.startswith("."):
        raise PretrainedError(f"{name}: no such folder, and not a Hugging Face model name (owner/name)")
    return _from_hub(name, candidates, download, cache_dir)


def _from_hub(name: str, candidates: list[str], download: bool, cache_dir) -> tuple[Path, Path]:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise PretrainedError(f"{name}: reading the Hugging Face cache needs huggingface_hub: "
                              f"pip install 'fuselip[hub]' (or pass a folder)") from None
    how = (f"on a machine with internet run `python -m fuselip.pretrained --download {name}` (or pass the folder "
           f"holding {CONFIG_FILE} + {' or '.join(candidates)})")
    if download and os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "on", "yes", "true"):
        raise PretrainedError(f"{name}: download asked for, but {OFFLINE_ENV} is set: unset it, or {how}")

    def fetch(filename: str) -> Path:
        return Path(hf_hub_download(name, filename, cache_dir=cache_dir, local_files_only=not download))

    where = f"the Hugging Face cache ({cache_dir or _default_cache()})"
    try:
        config = fetch(CONFIG_FILE)
    except Exception as e:  # LocalEntryNotFoundError, RepositoryNotFoundError, network errors, …
        if not download:
            raise PretrainedError(f"{name} is not in {where} and downloading was not asked for; {how}") from None
        raise PretrainedError(f"{name}: could not download {CONFIG_FILE} ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    for filename in candidates:
        try:
            return config, fetch(filename)
        except Exception:
            continue
    raise PretrainedError(f"{name}: {where} has its {CONFIG_FILE} but none of {', '.join(candidates)}"
                          + ("" if download else f"; {how}"))


def _default_cache() -> str:
    try:
        from huggingface_hub import constants
        return str(constants.HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"


def read_config(path: Path) -> dict:
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise PretrainedError(f"{path}: unreadable config ({e})") from None
    if not isinstance(config, dict):
        raise PretrainedError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from pytorch_model.bin (torch.load, weights_only: no code runs) or model.safetensors."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PretrainedError(f"{path}: not a readable weights file ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint wraps the weights
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedError(f"{path}: expected a state dict (names -> tensors)")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}

