"""The model registry: every checkpoint loaded once, untrained stand-ins for missing ones, released models on request.

`Registry` reads only the config.json of each folder under the checkpoint folder when the app starts; a model is
loaded on its first use, once, behind its own lock. The late-fusion baselines are imported where they are built:
fuselip.baselines loads open_clip (seconds), which the app's cold start leaves to the first request that needs it.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fuselip import checkpoint
from fuselip.config import ConfigError, FuseLIPConfig, RunConfig, from_dict, load_preset
from fuselip.contract import Tokenizer
from fuselip.demo.config import DemoConfig
from fuselip.demo.errors import DemoError
from fuselip.model import FuseLIP
from fuselip.pretrained import load_pretrained, release_kind
from fuselip.tokenizers import build_tokenizer

ROLES = {"tokenizer-grid": "tokenizer", "tokenizer-titok": "tokenizer", "fuselip": "fuselip",
         "siglip-sf": "late", "siglip-mlf": "late",
         "released-fuselip": "fuselip", "released-tokenizer": "tokenizer"}  # fuselip.pretrained, by FUSELIP_MODEL
# name of the untrained stand-in per kind, and the preset it is built from (family, name)
STAND_INS = {"tokenizer-grid": ("tokenizer-grid-tiny", ("tokenizer", "tiny-grid")),
             "tokenizer-titok": ("tokenizer-titok-tiny", ("tokenizer", "tiny-titok")),
             "fuselip": ("fuselip-tiny", ("fuselip", "tiny")),
             "siglip-sf": ("siglip-sf-tiny", ("baseline", "tiny-sf")),
             "siglip-mlf": ("siglip-mlf-tiny", ("baseline", "tiny-mlf"))}
MODEL_LABELS = {"fuselip": "FuseLIP", "siglip-sf": "SigLIP SF", "siglip-mlf": "SigLIP MLF",
                "tokenizer-grid": "grid VQ-VAE", "tokenizer-titok": "TiTok",
                "released-fuselip": "released FuseLIP", "released-tokenizer": "released TiTok"}


@dataclass
class Entry:
    name: str                  # checkpoint folder name (or the stand-in's name)
    kind: str                  # checkpoint kind (fuselip/checkpoint.py)
    path: Path | None          # None for an untrained stand-in
    model: object = None
    source: str = ""           # a released model's folder or Hugging Face name (fuselip.pretrained)
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def trained(self) -> bool:
        return self.path is not None or bool(self.source)

    @property
    def label(self) -> str:
        return f"{self.name}" + ("" if self.trained else " (untrained)")


class Registry:
    """Finds checkpoint folders (reading only their config.json) and loads each model on first use, once; adds the
    released models of `config.released` (FUSELIP_MODEL, fuselip.pretrained) for the tokens and attention tabs."""

    def __init__(self, config: DemoConfig):
        self.config = config
        self.root = config.checkpoint_dir()
        self.entries: dict[str, Entry] = {}
        self.missing: list[str] = []
        self.skipped: list[str] = []   # folders that are not checkpoints this app can use, and why
        for folder in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if not folder.is_dir():
                continue
            kind = _checkpoint_kind(folder)
            if kind in ROLES:
                self.entries[folder.name] = Entry(folder.name, kind, folder)
            else:
                why = "no readable config.json" if kind is None else f"kind {kind!r}"
                self.skipped.append(f"`{folder.name}` ({why})")
        for source in config.released:
            self._add_released(source)
        for kind, (name, _) in STAND_INS.items():
            if not any(e.kind == kind for e in self.entries.values()):
                self.missing.append(f"{kind} ({name})")
                if config.untrained_fallback:
                    self.entries[name + " (untrained)"] = Entry(name, kind, None)

    def _add_released(self, source: str) -> None:
        """A released model (nothing is read but its config.json): a FuseLIP release also lends its TiTok encoder
        to the tokens tab."""
        name = f"{Path(source).name if Path(source).expanduser().is_dir() else source} (released)"
        if release_kind(source) == "tokenizer":
            self.entries[name] = Entry(name, "released-tokenizer", None, source=source)
            return
        self.entries[name] = Entry(name, "released-fuselip", None, source=source)
        tokenizer = f"{name[:-len(' (released)')]} · its TiTok (released)"
        self.entries[tokenizer] = Entry(tokenizer, "released-tokenizer", None, source=f"tokenizer-of:{name}")

    def names(self, *kinds: str) -> list[str]:
        """Keys of the entries of these kinds, trained ones first."""
        found = [k for k, e in self.entries.items() if e.kind in kinds]
        return sorted(found, key=lambda k: (not self.entries[k].trained, k))

    def pick(self, kind: str, preferred: str = "") -> str | None:
        """The entry for one retrieval column: the preferred checkpoint name if present, else the first trained
        one of its kind whose name says "tiny" (the CPU models), else the first of its kind."""
        names = self.names(kind)
        if preferred in names:
            return preferred
        tiny = [n for n in names if "tiny" in n and self.entries[n].trained]
        candidates = tiny or names
        return candidates[0] if candidates else None

    def retrieval_models(self) -> list[tuple[str, str | None]]:
        """(column label, entry key or None) for FuseLIP, SF and MLF."""
        c = self.config
        return [(MODEL_LABELS[kind], self.pick(kind, preferred))
                for kind, preferred in (("fuselip", c.fuselip), ("siglip-sf", c.sf), ("siglip-mlf", c.mlf))]

    def get(self, key: str):
        """The loaded model for an entry key (loads it on first use; thread-safe)."""
        if key not in self.entries:
            raise DemoError(f"No model named {key!r}. Available: {', '.join(self.entries) or 'none'} "
                            f"(checkpoints are read from {self.root}).")
        entry = self.entries[key]
        with entry.lock:
            if entry.model is None and not entry.error:
                try:
                    entry.model = self._load(entry)
                except Exception as e:  # a broken checkpoint must not take the app down
                    entry.error = f"{type(e).__name__}: {e}"
            if entry.error:
                raise DemoError(f"Model {entry.label} could not be loaded: {entry.error}")
            return entry.model

    def fuselip(self, key: str) -> FuseLIP:
        """`get` for the attention tab, which needs a FuseLIP (one of ours or a released one)."""
        model = self.get(key)
        if not isinstance(model, FuseLIP):
            raise DemoError(f"{key!r} is a {type(model).__name__}, not a FuseLIP model.")
        return model

    def tokenizer(self, key: str) -> Tokenizer:
        """`get` for the tokens tab, which needs an image tokenizer (fuselip.contract.Tokenizer)."""
        model = self.get(key)
        if not isinstance(model, Tokenizer):
            raise DemoError(f"{key!r} is a {type(model).__name__}, not an image tokenizer.")
        return model

    def _load(self, entry: Entry):
        if entry.source.startswith("tokenizer-of:"):
            return self.get(entry.source[len("tokenizer-of:"):]).tokenizer
        if entry.source:
            return load_pretrained(entry.source, download=self.config.download, bf16=self.config.released_bf16)
        if entry.path is not None:
            return checkpoint.load_model(entry.path)
        return self._stand_in(entry.kind)

    def _stand_in(self, kind: str):
        """A tiny untrained model of `kind` from the presets, seeded so that it is the same in every run
        (its gallery embeddings are then cached like a checkpoint's)."""
        family, preset = STAND_INS[kind][1]
        try:
            run = load_preset(family, preset)
        except ConfigError:
            run = from_dict(RunConfig, {"encoder": {"kind": kind}})
        model: torch.nn.Module
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            if kind.startswith("tokenizer-"):
                model = build_tokenizer(run.tokenizer)
            elif kind == "fuselip":
                tokenizer_key = self.pick("tokenizer-" + run.tokenizer.kind)  # the trained one when present
                tokenizer = self.get(tokenizer_key) if tokenizer_key else None
                if tokenizer is None:
                    tokenizer = build_tokenizer(run.tokenizer)
                if not isinstance(run.encoder, FuseLIPConfig):
                    raise ConfigError(f"{family}/{preset}: not a FuseLIP preset")
                model = FuseLIP(run.encoder, tokenizer)
            else:
                from fuselip.baselines import build_baseline
                model = build_baseline(run)
        return model.eval()

    def status(self) -> str:
        """Markdown: which models are trained checkpoints and which are untrained stand-ins."""
        lines = []
        for key in self.names(*ROLES):
            e = self.entries[key]
            owner = e.source[len("tokenizer-of:"):] if e.source.startswith("tokenizer-of:") else ""
            where = (f"`{e.path}`" if e.path is not None else f"the image tokenizer of {owner}" if owner
                     else f"released, `{e.source}`" if e.source
                     else "**untrained** stand-in (random weights, preset config)")
            lines.append(f"- **{MODEL_LABELS[e.kind]}** `{e.name}`: {where}")
        if self.skipped:
            lines.append(f"\nIgnored folders in `{self.root}` (not a checkpoint of a kind this app shows): "
                         f"{', '.join(self.skipped)}.")
        if self.missing:
            lines.append(f"\nMissing checkpoints in `{self.root}`: {', '.join(self.missing)}. "
                         + ("Untrained stand-ins are used: their results are meaningless until trained."
                            if self.config.untrained_fallback else "The tabs that need them say so."))
        return "\n".join(lines)


def _checkpoint_kind(folder: Path) -> str | None:
    try:
        with open(folder / "config.json") as f:
            return json.load(f).get(checkpoint.KIND_KEY)
    except (OSError, ValueError, AttributeError):
        return None
