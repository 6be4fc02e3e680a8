"""What the Gradio app computes, as plain functions on plain data (app/ holds only layout and wiring).

`Demo` is the app's state: a `Registry` that finds the shipped checkpoints and loads each one ONCE (or, when
a checkpoint is missing, builds a tiny *untrained* model from the presets and says so), a `Benchmark` with
example queries from every task of both worlds (fuselip.data.tasks.eval_items) and the galleries made of
their candidates, and one method per tab:

    tokens(tokenizer, image, code)                   -> TokensView     image -> codes, reconstruction, highlights
    attention(model, image, text, layer, head, tok)  -> AttentionView  cross-modal attention (fuselip.probe)
    retrieve(image, text, gallery, k, folder, uploads) -> RetrievalView  top-k for FuseLIP, SF and MLF side by
                                                                     side, in a benchmark gallery, the user's
                                                                     uploaded images, or a server folder under
                                                                     $FUSELIP_GALLERY_ROOT
    vqa(image, question, k)                          -> VQAView        answers ranked by each model

Inputs are whatever a user sends: any image file (or none), any text. Anything unusable raises `DemoError`
with a message meant for the user; anything usable but odd (RGBA, grayscale, 1×1, 6000×4000, a text that
does not fit the context, emoji, right-to-left script) comes back as `notes` that the app shows as warnings.
Nothing here imports gradio.
"""
from __future__ import annotations

import json
import os
import random
import threading
import unicodedata
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fuselip import checkpoint, viz
from fuselip.data.types import EvalItem, Side, image_key
from fuselip.images import ImageError, open_image, preprocess, squash

CHECKPOINTS_ENV = "FUSELIP_CHECKPOINTS"
MODEL_ENV = "FUSELIP_MODEL"                  # released models to show too (fuselip.pretrained), comma-separated
DOWNLOAD_ENV = "FUSELIP_DOWNLOAD"            # "1": a released model missing from the Hugging Face cache is downloaded
UNTRAINED_ENV = "FUSELIP_UNTRAINED"          # "0": no untrained stand-ins for missing checkpoints
THREADS_ENV = "FUSELIP_APP_THREADS"
GALLERY_ROOT_ENV = "FUSELIP_GALLERY_ROOT"    # the one server folder whose subfolders the page may search; unset: none
DEFAULT_CHECKPOINTS = Path(__file__).resolve().parents[1] / "checkpoints"


FUNCTION_WORDS = {"the", "a", "an", "on", "in", "of", "to", "is", "are", "what", "which", "how", "many", "and"}
# words the attention tab does not open on: their attention says little about where the text looks


@dataclass
class DemoConfig:
    """Everything the app's computations depend on (sizes of galleries and example lists, display size)."""
    checkpoints: str = ""               # folder of checkpoint folders; "" -> $FUSELIP_CHECKPOINTS or ./checkpoints
    untrained_fallback: bool = True     # build an untrained preset model when a checkpoint is missing
    fuselip: str = "fuselip-tiny"       # preferred checkpoint names for the three retrieval columns
    sf: str = "siglip-sf-tiny"
    mlf: str = "siglip-mlf-tiny"
    image_size: int = 64
    split: str = "test"
    seed: int = 0
    worlds: tuple[str, ...] = ("shapes", "emoji")
    retrieval_tasks: tuple[str, ...] = ("tgit", "edit", "position", "vqa", "crop")
    gallery_items: int = 8              # eval items per (world, task) whose candidates form the galleries
    examples_per_task: int = 1          # example queries per (world, task) offered in the app
    token_examples: int = 3             # example scenes per world in the image-tokens tab
    first_view: dict[str, str] = field(default_factory=lambda: {
        "attention": "position", "retrieval": "tgit", "vqa": "vqa"})  # the task of the worked example each tab
                                        # shows on load (Benchmark.worked_example), so a first visit sees a result
    top_k: int = 5
    display_size: int = 192             # side of every picture the app shows (pixel art is upscaled)
    token_display_size: int = 256       # side of the token-grid pictures (room for readable code ids)
    max_text_chars: int = 2000          # longer texts are cut before tokenising (the context is far shorter)
    max_folder_images: int = 5000       # a user gallery (uploads or a server folder) is read up to this many images
    gallery_root: str = ""              # server folders under this one can be searched ("" = none: uploads only)
    probe_cache: int = 32               # attention runs kept in memory (changing layer/head/token is free)
    threads: int = 1                    # torch threads for the app (tiny models: more threads only contend)
    released: tuple[str, ...] = ()      # released models (folders or Hugging Face names) for the tokens and
                                        # attention tabs; the retrieval and VQA columns keep the tiny models
    download: bool = False              # fetch a released model that is not in the Hugging Face cache
    released_bf16: bool = True          # the released TiTok encodes under bf16 autocast (~2x faster on CPU)

    def checkpoint_dir(self) -> Path:
        return Path(self.checkpoints or os.environ.get(CHECKPOINTS_ENV) or DEFAULT_CHECKPOINTS)

    @classmethod
    def from_env(cls) -> "DemoConfig":
        released = tuple(n.strip() for n in os.environ.get(MODEL_ENV, "").split(",") if n.strip())
        return cls(untrained_fallback=os.environ.get(UNTRAINED_ENV, "1") != "0",
                   gallery_root=os.environ.get(GALLERY_ROOT_ENV, ""),
                   threads=int(os.environ.get(THREADS_ENV) or cls.threads), released=released,
                   download=os.environ.get(DOWNLOAD_ENV, "0") == "1")


class DemoError(ValueError):
    """A problem with the user's input or with a missing model, phrased for the user."""


# ---------------------------------------------------------------------------------------------
# user input: images and texts


def read_image(source, size: int, resize: str = "crop") -> tuple[np.ndarray | None, list[str]]:
    """Anything image-like (path, file payload dict, PIL, array) or None -> ((size, size, 3) uint8, notes).

    resize: "crop" (this project's models: shorter side to `size`, centre square) or "squash" (the released models:
    the whole image resized to size×size, fuselip.images.squash)."""
    if source is None:
        return None, []
    name = None
    if isinstance(source, dict):  # an uploaded-file payload (Gradio FileData): path + the user's file name
        name = source.get("orig_name")
        source = source.get("path")
        if source is None:
            return None, []
    name = name or (Path(source).name if isinstance(source, (str, Path)) else "the image")
    try:
        raw = open_image(source)
        notes = describe_image(raw, size, resize)
        array = squash(raw, size) if resize == "squash" else preprocess(raw, size)
    except ImageError as e:
        message = str(e).replace(str(source), name) if isinstance(source, (str, Path)) else str(e)
        raise DemoError(f"Could not use the uploaded file: {message}") from None
    except (OSError, ValueError) as e:
        raise DemoError(f"Could not use the uploaded file {name}: {e}") from None
    return array, notes


def describe_image(image, size: int, resize: str = "crop") -> list[str]:
    """What preprocessing will do to an image that is not already a size×size RGB picture."""
    notes = []
    w, h = image.size
    mode = image.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        notes.append(f"The image has an alpha channel ({mode}): transparent pixels were composited onto white.")
    if mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"):
        notes.append(f"The image is grayscale ({mode}): it was converted to RGB (three equal channels).")
    if w * h == 1:
        notes.append(f"The image is 1×1 pixel: it became a flat {size}×{size} square of one colour.")
    elif min(w, h) < size:
        notes.append(f"The image is small ({w}×{h}): it was upscaled to {size}×{size}; it carries little detail.")
    elif max(w, h) > 8 * size:
        notes.append(f"The image is large ({w}×{h}): the models see it shrunk to {size}×{size}.")
    if w != h and w * h > 1:
        notes.append(f"The image is not square ({w}×{h}): " + ("it was squashed to a square, as the released model "
                     "saw its training images." if resize == "squash" else "its centre square was kept."))
    return notes


def read_text(text, what: str, max_chars: int) -> tuple[str, list[str]]:
    """A user text -> (cleaned text, notes). Never fails: an empty text is allowed, the caller decides."""
    text = "" if text is None else str(text)
    notes = []
    if len(text) > max_chars:
        notes.append(f"The {what} has {len(text):,} characters; only the first {max_chars:,} were read "
                     f"(the model's context holds far fewer tokens).")
        text = text[:max_chars]
    text = " ".join(text.split())  # newlines and runs of spaces -> one space
    if any(unicodedata.bidirectional(c) in ("R", "AL") for c in text):
        notes.append(f"The {what} contains right-to-left script: the English-only tiny models never saw it; "
                     f"the tokenizer splits it into byte-level pieces.")
    elif any(ord(c) > 127 for c in text):
        notes.append(f"The {what} contains characters outside plain English (emoji, accents, other scripts): "
                     f"the tokenizer splits them into byte-level pieces the tiny models never saw in training.")
    return text, notes


def unseen_note(model, text: str, what: str) -> list[str]:
    """A note naming the text's tokens that never occurred in the model's training data (a compacted checkpoint
    stores zeros for them, fuselip/model.py)."""
    from fuselip.text import default_tokenizer
    seen = getattr(model, "token_seen", None)
    if seen is None or not getattr(model, "compacted", False) or not text:
        return []
    ids = default_tokenizer().encode(text)
    unseen = [i for i in dict.fromkeys(ids) if not bool(seen[i])]
    if not unseen:
        return []
    pieces = ", ".join(repr(p) for p in default_tokenizer().token_strings(unseen[:8]))
    return [f"The {what} has {len(unseen)} token(s) the model never saw in training ({pieces}"
            f"{', …' if len(unseen) > 8 else ''}): their embeddings are zeros, they carry no meaning for it."]


def context_note(text: str, room: int, what: str) -> list[str]:
    """A note when `text` has more BPE tokens than the `room` left in the model's context."""
    from fuselip.text import default_tokenizer
    n = len(default_tokenizer().encode(text))
    if n > room:
        return [f"The {what} has {n} tokens; only the first {room} fit the model's context, the rest was cut."]
    return []


# ---------------------------------------------------------------------------------------------
# models: every checkpoint loaded once, untrained stand-ins for missing ones

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
        from fuselip.pretrained import release_kind
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
        return (tiny or names or [None])[0]

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

    def _load(self, entry: Entry):
        if entry.source.startswith("tokenizer-of:"):
            return self.get(entry.source[len("tokenizer-of:"):]).tokenizer
        if entry.source:
            from fuselip.pretrained import load_pretrained
            return load_pretrained(entry.source, download=self.config.download, bf16=self.config.released_bf16)
        if entry.path is not None:
            from fuselip.checkpoint import load_model
            return load_model(entry.path)
        return self._stand_in(entry.kind)

    def _stand_in(self, kind: str):
        """A tiny untrained model of `kind` from the presets, seeded so that it is the same in every run
        (its gallery embeddings are then cached like a checkpoint's)."""
        from fuselip.config import ConfigError, EncoderConfig, RunConfig, load_preset
        family, preset = STAND_INS[kind][1]
        try:
            run = load_preset(family, preset)
        except ConfigError:
            run = RunConfig(encoder=EncoderConfig(kind=kind))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            if kind.startswith("tokenizer-"):
                from fuselip.tokenizers import build_tokenizer
                model = build_tokenizer(run.tokenizer)
            elif kind == "fuselip":
                from fuselip.model import FuseLIP
                tokenizer_key = self.pick("tokenizer-" + run.tokenizer.kind)  # the trained one when present
                tokenizer = self.get(tokenizer_key) if tokenizer_key else None
                if tokenizer is None:
                    from fuselip.tokenizers import build_tokenizer
                    tokenizer = build_tokenizer(run.tokenizer)
                model = FuseLIP(run.encoder, tokenizer)
            else:
                from fuselip.baselines import build_baseline
                model = build_baseline(run.encoder, run.data.image_size)
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


# ---------------------------------------------------------------------------------------------
# the benchmark: example queries and the galleries made of their candidates


@dataclass
class Example:
    image: np.ndarray
    text: str
    task: str
    world: str
    kind: str


class Benchmark:
    """Evaluation items of the worlds' test split: examples for the app, and the galleries to search.

    The image gallery holds every distinct image candidate of the retrieval tasks' items (the correct
    targets and their hard negatives), the answer gallery every distinct VQA answer. A query that is an
    item's query (same pixels, same text) knows its correct candidate.
    """

    def __init__(self, config: DemoConfig):
        self.config = config
        self._items: dict[tuple[str, str], list[EvalItem]] = {}
        self._lock = threading.Lock()
        self._galleries: dict[str, list[Side]] = {}
        self._answers: dict[bytes, EvalItem] | None = None

    def items(self, world: str, task: str) -> list[EvalItem]:
        with self._lock:
            if (world, task) not in self._items:
                from fuselip.data.tasks import eval_items
                c = self.config
                self._items[(world, task)] = eval_items(world, task, c.split, c.gallery_items, c.seed, c.image_size)
            return self._items[(world, task)]

    def examples(self, tasks: Sequence[str], per_task: int | None = None) -> list[Example]:
        """The first items of each (task, world), alternating worlds, as app examples."""
        per_task = self.config.examples_per_task if per_task is None else per_task
        out = []
        for task in tasks:
            for i in range(per_task):
                for world in self.config.worlds:
                    items = self.items(world, task)
                    if i < len(items):
                        q = items[i].query
                        out.append(Example(q.image, q.text, task, world, items[i].kind))
        return out

    def tab_examples(self, tab: str) -> list[Example]:
        """The examples a tab offers: "attention", "retrieval" (every retrieval task) or "vqa" (four per world)."""
        if tab == "attention":
            return self.attention_examples()
        if tab == "retrieval":
            return self.examples(self.config.retrieval_tasks)
        if tab == "vqa":
            return self.examples(["vqa"], per_task=4)
        raise DemoError(f"unknown tab {tab!r}: choose 'attention', 'retrieval' or 'vqa'")

    def worked_example(self, tab: str) -> Example:
        """The example a tab ("attention", "retrieval" or "vqa") opens on: the first of its examples whose task is
        config.first_view[tab] (the tab's first example when that task is not among them)."""
        if tab not in self.config.first_view:
            raise DemoError(f"no worked example for tab {tab!r}: config.first_view has {sorted(self.config.first_view)}")
        examples = self.tab_examples(tab)
        task = self.config.first_view[tab]
        return next((e for e in examples if e.task == task), examples[0])

    def attention_examples(self) -> list[Example]:
        """(image, text) pairs to look at attention with: each caption item's image with its correct caption
        (words that name what is in the image), then queries of the instruction tasks."""
        out = []
        for world in self.config.worlds:
            item = self.items(world, "caption")[0]
            out.append(Example(item.query.image, item.candidates[0].text, "caption", world, item.kind))
        return out + self.examples(["position", "vqa", "tgit", "crop"], per_task=1)

    def scenes(self) -> list[tuple[np.ndarray, str]]:
        """A few rendered test scenes per world with their captions (image-tokens tab)."""
        from fuselip.data.tasks import make_world
        out = []
        for world_name in self.config.worlds:
            world = make_world(world_name, self.config.image_size)
            rng = random.Random(f"demo-scenes-{self.config.seed}-{world_name}")
            for _ in range(self.config.token_examples):
                scene = world.sample_scene(rng, self.config.split)
                out.append((world.render(scene), world.caption(scene)))
        return out

    def gallery(self, which: str) -> list[Side]:
        """"images": every distinct image candidate of the retrieval tasks; "answers": every distinct VQA answer."""
        if which not in ("images", "answers"):
            raise DemoError(f"unknown gallery {which!r}: choose 'images' or 'answers'")
        with self._lock:
            cached = self._galleries.get(which)
        if cached is not None:
            return cached
        tasks = ["vqa"] if which == "answers" else [t for t in self.config.retrieval_tasks if t != "vqa"]
        seen: dict[bytes, Side] = {}
        for task in tasks:
            for world in self.config.worlds:
                for item in self.items(world, task):
                    for side in item.candidates:
                        if (side.image is not None) == (which == "images"):
                            seen.setdefault(side.key(), side)
        with self._lock:
            self._galleries[which] = list(seen.values())
            return self._galleries[which]

    def lookup(self, query: Side) -> EvalItem | None:
        """The benchmark item whose query has exactly this content, if any."""
        with self._lock:
            if self._answers is None:
                self._answers = {}
                for (world, task), items in self._items.items():
                    for item in items:
                        self._answers.setdefault(item.query.key(), item)
            return self._answers.get(query.key())

    def load_all(self) -> None:
        """Generates every item the app uses (so that `lookup` knows all benchmark queries)."""
        for task in self.config.retrieval_tasks:
            for world in self.config.worlds:
                self.items(world, task)
        with self._lock:
            self._answers = None


_FOLDERS: dict[Path, tuple[tuple, list[Side]]] = {}
_FOLDERS_LOCK = threading.Lock()


def upload_gallery(files, image_size: int, limit: int) -> tuple[list[Side], list[str]]:
    """The images a user uploaded (file payloads or paths, as `read_image` takes them) as a gallery of image sides,
    in upload order; files that are not usable images are skipped with a note."""
    if not files:
        raise DemoError("Upload some images to search in (several at once), or choose another gallery.")
    items, skipped = [], []
    for source in list(files)[:limit]:
        try:
            array, _ = read_image(source, image_size)
        except DemoError:
            array = None
        if array is None:
            skipped.append(source.get("orig_name") if isinstance(source, dict) else Path(str(source)).name)
            continue
        items.append(Side(array, ""))
    if not items:
        raise DemoError("None of the uploaded files is an image this app can read.")
    notes = [f"Skipped {len(skipped)} file(s) that are not readable images: {', '.join(map(str, skipped[:5]))}."] \
        if skipped else []
    if len(files) > limit:
        notes.append(f"Only the first {limit} of {len(files)} uploaded files are searched.")
    return items, notes


def server_folder(folder: str, root: str) -> Path:
    """The folder a user typed, allowed only inside the operator's gallery root ($FUSELIP_GALLERY_ROOT); a relative
    path is taken inside the root. Anything else is refused, so a visitor can never read the rest of the disk."""
    if not root:
        raise DemoError(f"Searching a folder on the server is off: the operator has not set {GALLERY_ROOT_ENV}. "
                        "Upload your images instead.")
    base = Path(root).expanduser().resolve()
    path = (base / Path(folder).expanduser()).resolve()  # an absolute `folder` replaces base; `..` and links resolved
    if not path.is_relative_to(base):
        raise DemoError(f"Folder {folder!r} is outside the gallery root the operator set ({GALLERY_ROOT_ENV}): "
                        "only folders inside it can be searched. Upload your images instead.")
    return path


def folder_gallery(folder: str, image_size: int, limit: int, root: str = "") -> list[Side]:
    """A folder of images under the gallery root (recursively, sorted) as a gallery of image sides; read again
    only when a file in it was added, removed or modified. Files that lead outside the root (links) are refused."""
    path = server_folder(folder, root)
    if not path.is_dir():
        raise DemoError(f"Gallery folder {folder!r} does not exist or is not a folder.")
    from fuselip.data.files import IMAGE_EXTENSIONS
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    base = Path(root).expanduser().resolve()
    if any(not p.resolve().is_relative_to(base) for p in files):
        raise DemoError(f"Gallery folder {folder!r} holds links that lead outside the gallery root.")
    signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    with _FOLDERS_LOCK:
        cached = _FOLDERS.get(path)
    if cached is not None and cached[0] == signature:
        return cached[1]
    items = _read_folder(path, image_size, limit)
    with _FOLDERS_LOCK:
        _FOLDERS[path] = (signature, items)
    return items


def _read_folder(path: Path, image_size: int, limit: int) -> list[Side]:
    from fuselip.data.files import DataFileError, read_folder
    folder = str(path)
    try:
        data = read_folder(path, image_size, captions="none", skip_bad=True)
    except DataFileError as e:
        raise DemoError(f"Gallery folder {folder!r}: {e}") from None
    if not data.images:
        raise DemoError(f"Gallery folder {folder!r} holds no readable images.")
    return [Side(image, "") for image in data.images[:limit]]


# ---------------------------------------------------------------------------------------------
# views: what each tab shows


@dataclass
class TokensView:
    token_picture: np.ndarray        # the codes drawn over the image
    reconstruction: np.ndarray       # decode(encode(image))
    highlight: np.ndarray            # the tokens that use the selected code
    codes: list[int]                 # (N,) the image's codes
    code_choices: list[str]          # one per distinct code, "code 17 (×3)"
    selected: str
    influence: list[tuple[np.ndarray, str]]  # TiTok: per-token influence maps; grid: empty
    summary: str
    notes: list[str]


@dataclass
class AttentionView:
    heatmap: np.ndarray              # the chosen text token's attention over the image
    token_choices: list[str]         # "1: red" …
    token: str
    image_to_text: list[tuple[str, float]]   # (token label, mean attention of the image tokens on it)
    per_token: list[tuple[str, float]]       # TiTok: (image token, attention of the chosen text token)
    shares: list[tuple[int, str, float]]     # (layer, direction, share) incl. the uniform reference
    layer_choices: list[str]
    head_choices: list[str]
    summary: str
    notes: list[str]


@dataclass
class Hit:
    image: np.ndarray                # display picture (text items drawn as a card)
    caption: str
    correct: bool


@dataclass
class Column:
    label: str                       # model label
    hits: list[Hit]
    correct_rank: int | None         # rank of the correct item in the whole gallery (benchmark queries)
    message: str                     # why the column is empty, or a one-line summary


@dataclass
class RetrievalView:
    columns: list[Column]
    summary: str
    notes: list[str]


@dataclass
class Answers:
    label: str
    ranked: list[tuple[str, float]]  # (answer, probability), best first
    correct_rank: int | None
    message: str


@dataclass
class VQAView:
    columns: list[Answers]
    summary: str
    notes: list[str]


def _parse_choice(choice, count: int, what: str) -> int | None:
    """"mean" / None -> None; "3" (1-based) -> 2."""
    if choice in (None, "", "mean"):
        return None
    try:
        index = int(str(choice).split(":")[0]) - 1
    except ValueError:
        raise DemoError(f"{what} must be 'mean' or a number from 1 to {count}, got {choice!r}") from None
    if not 0 <= index < count:
        raise DemoError(f"{what} {choice} is out of range: choose 1 to {count} (or 'mean').")
    return index


class Demo:
    """The app's state and one method per tab (see the module docstring)."""

    def __init__(self, config: DemoConfig | None = None):
        self.config = config or DemoConfig.from_env()
        self.registry = Registry(self.config)
        self.benchmark = Benchmark(self.config)
        self._indexes: dict[tuple[str, str], object] = {}
        self._index_lock = threading.Lock()
        self._index_builders: dict[tuple[str, str], threading.Lock] = {}
        self._probes: OrderedDict = OrderedDict()
        self._probe_lock = threading.Lock()

    # ---- choices the layout needs
    def tokenizer_names(self) -> list[str]:
        """Tokenizers for the tokens tab: released ones first (when FUSELIP_MODEL asks for them), then ours."""
        return self.registry.names("released-tokenizer") + self.registry.names("tokenizer-grid", "tokenizer-titok")

    def fuselip_names(self) -> list[str]:
        """FuseLIP models for the attention tab: released ones first (when FUSELIP_MODEL asks for them), then ours."""
        return self.registry.names("released-fuselip") + self.registry.names("fuselip")

    def retrieval_models(self) -> list[tuple[str, str | None]]:
        """(column label, entry key or None) for FuseLIP, SF and MLF."""
        c = self.config
        return [(MODEL_LABELS[kind], self.registry.pick(kind, preferred))
                for kind, preferred in (("fuselip", c.fuselip), ("siglip-sf", c.sf), ("siglip-mlf", c.mlf))]

    def warm_up(self) -> None:
        """Loads every model and embeds both galleries for the retrieval models (cached on disk after the
        first run). Called in a background thread when the app starts; errors surface later, in the tabs."""
        self.benchmark.load_all()
        for key in self.tokenizer_names() + self.fuselip_names():
            try:
                self.registry.get(key)
            except DemoError:
                pass
        for _, key in self.retrieval_models():
            for which in ("images", "answers"):
                if key is not None:
                    try:
                        self._index(key, which)
                    except DemoError:
                        pass

    # ---- tab 1: image tokens
    def tokens(self, tokenizer: str, image, code: str | None = None) -> TokensView:
        if image is None:
            raise DemoError("Choose an example or upload an image first.")
        tok = self.registry.get(tokenizer)
        array, notes = read_image(image, tok.config.image_size, getattr(tok, "resize_mode", "crop"))
        if array is None:
            raise DemoError("Choose an example or upload an image first.")
        from fuselip.images import to_tensor, to_uint8
        size = self.config.token_display_size
        with torch.inference_mode():
            codes = tok.encode(to_tensor([array]))                           # (1, N)
            if getattr(tok, "can_decode", True):
                recon = viz.enlarge(to_uint8(tok.decode(codes))[0], size)    # (S, S, 3) -> display size
            else:
                recon = viz.text_card("no decoder in this release: the codes cannot be turned back into pixels",
                                      size)
        codes = codes[0].tolist()
        counts: dict[int, int] = {}
        for c in codes:
            counts[c] = counts.get(c, 0) + 1
        choices = [f"code {c} (×{n})" for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
        selected = code if code in choices else choices[0]
        chosen = int(selected.split()[1])
        grid = getattr(tok, "grid_size", None) if tok.config.kind == "grid" else None
        if grid is not None:
            picture = viz.token_grid_image(array, codes, grid, size=size)
            highlight = viz.highlight_cells(array, [c == chosen for c in codes], grid, size=size)
            influence = []
        else:
            maps = tok.token_maps(array, torch.tensor(codes)).float()       # (N, h, w)
            picture = viz.token_strip_image(codes, size=size)
            chosen_mask = torch.tensor([c == chosen for c in codes])
            highlight = viz.heatmap_overlay(array, maps[chosen_mask].sum(0), size=size, smooth=True)
            influence = [(viz.heatmap_overlay(array, m, size=self.config.display_size // 2, smooth=True),
                          f"token {i}: code {c}")
                         for i, (m, c) in enumerate(zip(maps, codes))]
        entry = self.registry.entries[tokenizer]
        summary = (f"**{entry.label}** ({MODEL_LABELS[entry.kind]}): {len(codes)} tokens, "
                   f"**{len(counts)} distinct codes** of a codebook of {tok.codebook_size}. "
                   f"Code {chosen} is used by {counts[chosen]} token(s)."
                   + ("" if entry.trained else " *Untrained tokenizer: codes and reconstruction are noise.*")
                   + (" The maps show where each token *reads* from (attention rollout through the encoder), "
                      "not which pixels it changes." if getattr(tok, "resize_mode", "crop") == "squash" else ""))
        return TokensView(picture, recon, highlight, codes, choices, selected, influence, summary, notes)

    # ---- tab 2: attention across modalities
    def _probe(self, model_key: str, array: np.ndarray | None, text: str):
        from fuselip.probe import probe
        key = (model_key, image_key(array), text)
        with self._probe_lock:
            if key in self._probes:
                self._probes.move_to_end(key)
                return self._probes[key]
        result = probe(self.registry.get(model_key), array, text)
        with self._probe_lock:
            self._probes[key] = result
            while len(self._probes) > self.config.probe_cache:
                self._probes.popitem(last=False)
        return result

    def attention(self, model: str, image, text: str, layer: str | None = "mean", head: str | None = "mean",
                  token: str | None = None) -> AttentionView:
        from fuselip import vocab
        from fuselip.text import default_tokenizer
        fuselip = self.registry.get(model)
        tok = fuselip.tokenizer
        array, notes = read_image(image, tok.config.image_size, getattr(tok, "resize_mode", "crop"))
        text, text_notes = read_text(text, "text", self.config.max_text_chars)
        notes += text_notes
        if array is None:
            raise DemoError("The attention view needs an image (text alone has no image tokens to look at).")
        if not text:
            notes.append("The text is empty: the model sees the image followed by the empty text [sot, eot], "
                         "so only those two text tokens can be chosen.")
        room = fuselip.config.context_length - fuselip.tokenizer.num_tokens - 2
        notes += context_note(text, room, "text") + unseen_note(fuselip, text, "text")
        if getattr(fuselip, "pad_id_is_padding", False) and vocab.PAD in default_tokenizer().encode(text):
            notes.append('This released model treats "!" as padding, as its reference code does: the "!" tokens '
                         "receive no attention.")
        with warnings.catch_warnings():  # the same fact, already in the notes
            warnings.filterwarnings("ignore", message="token ids .* never occurred in training")
            p = self._probe(model, array, text)
        if getattr(fuselip, "compacted", False):
            image_ids = p.ids[vocab.is_image(p.ids)]
            unseen = int((~fuselip.token_seen[image_ids]).sum())
            if unseen:
                notes.append(f"{unseen} of the image's {len(image_ids)} tokens use codes that never occurred in "
                             f"training: the model reads them as zeros.")
        layer_i = _parse_choice(layer, p.layers, "Layer")
        head_i = _parse_choice(head, p.heads, "Head")
        token_choices = [f"{i}: {label}" for i, label in enumerate(p.text_labels)]
        words = [i for i, label in enumerate(p.text_labels[1:-1], start=1) if label.lower() not in FUNCTION_WORDS]
        default = words[0] if words else (1 if len(p.text_labels) > 2 else len(p.text_labels) - 1)  # first content
        # word ("diamond" in "the diamond on the left"), else the first word, else eot
        token = token if token in token_choices else token_choices[default]
        t = int(token.split(":")[0])
        size = self.config.display_size
        heat = p.text_map(t, layer_i, head_i)                                # (g, g) or (S, S)
        heatmap = viz.heatmap_overlay(p.image, heat, size=size, smooth=p.grid is None)
        i2t = p.image_to_text(layer_i, head_i)
        image_to_text = [(f"{i:02d} {label}", float(v)) for i, (label, v) in enumerate(zip(p.text_labels, i2t))]
        per_token = []
        if p.grid is None:
            weights = p.text_weights(t, layer_i, head_i)
            per_token = [(f"{i:02d}", float(w)) for i, w in enumerate(weights)]
        s = p.shares()
        shares = []
        for direction, values in s.per_layer().items():
            shares += [(i + 1, direction, float(v)) for i, v in enumerate(values)]
        shares += [(i + 1, "uniform text → image", s.uniform_text_to_image) for i in range(p.layers)]
        entry = self.registry.entries[model]
        where = ("mean over layers" if layer_i is None else f"layer {layer_i + 1}") + ", " + \
                ("mean over heads" if head_i is None else f"head {head_i + 1}")
        t2i = float(s.text_to_image.mean())
        summary = (f"**{entry.label}** ({where}): text token *{p.text_labels[t]}* puts "
                   f"{float(p.text_weights(t, layer_i, head_i).sum()):.0%} of its attention on the "
                   f"{p.attention.shape[-1] - len(p.text_labels)} image tokens. Averaged over layers, text tokens "
                   f"give {t2i:.0%} of their attention to the image (uniform attention would give "
                   f"{s.uniform_text_to_image:.0%})."
                   + ("" if entry.trained else " *Untrained model: the pattern is random.*"))
        return AttentionView(heatmap, token_choices, token, image_to_text, per_token, shares,
                             ["mean"] + [str(i + 1) for i in range(p.layers)],
                             ["mean"] + [str(i + 1) for i in range(p.heads)], summary, notes)

    # ---- tab 3: fused-query retrieval
    def _index(self, model_key: str, which: str, items: list[Side] | None = None):
        """The searchable gallery `which` for one model, embedded once (one builder per (model, gallery):
        a request that arrives while the warm-up thread embeds the same gallery waits for it)."""
        from fuselip.retrieval import GalleryIndex
        items = self.benchmark.gallery(which) if items is None else items
        cache_key = (model_key, which)
        with self._index_lock:
            build_lock = self._index_builders.setdefault(cache_key, threading.Lock())
        with build_lock:
            with self._index_lock:
                index = self._indexes.get(cache_key)
            if index is not None and (index.items is items or index.keys == [s.key() for s in items]):
                return index
            index = GalleryIndex(self.registry.get(model_key), items)
            index.items = items  # the very list the benchmark holds: later requests compare by identity
            with self._index_lock:
                self._indexes[cache_key] = index
            return index

    def _query(self, image, text: str, what: str) -> tuple[Side, list[str]]:
        array, notes = read_image(image, self.config.image_size)
        text, text_notes = read_text(text, what, self.config.max_text_chars)
        notes += text_notes
        if array is None and not text:
            raise DemoError(f"The query is empty: give an image, a text ({what}), or both.")
        if array is not None and not text:
            notes.append(f"The {what} is empty: the query is the image alone.")
        if array is None:
            notes.append(f"No image: the query is the {what} alone.")
        return Side(array, text), notes

    def retrieve(self, image, text: str, gallery: str = "images", k: int | None = None,
                 folder: str = "", uploads: Sequence | None = None) -> RetrievalView:
        """gallery: "images" | "answers" (the benchmark's), "uploads" (the images in `uploads`, uploaded by the
        user) or "folder" (the server folder `folder`, only under `config.gallery_root`)."""
        query, notes = self._query(image, text, "instruction")
        k = int(k or self.config.top_k)
        if not 1 <= k <= 50:
            raise DemoError(f"top-k must be between 1 and 50, got {k}.")
        items, which = None, gallery
        if gallery == "uploads":  # one cache slot per model: the next upload replaces it (_index compares content)
            items, upload_notes = upload_gallery(uploads, self.config.image_size, self.config.max_folder_images)
            notes += upload_notes
        elif gallery == "folder":
            if not folder:
                raise DemoError("Type the path of a folder of images to search in, or choose another gallery.")
            items = folder_gallery(folder, self.config.image_size, self.config.max_folder_images,
                                   self.config.gallery_root)
            which = f"folder:{server_folder(folder, self.config.gallery_root)}"
        item = self.benchmark.lookup(query) if items is None else None
        correct = item.candidates[0] if item is not None else None
        columns = []
        for label, key in self.retrieval_models():
            if key is None:
                columns.append(Column(label, [], None, f"No {label} checkpoint in {self.registry.root}."))
                continue
            try:
                index = self._index(key, which, items)
            except DemoError as e:
                columns.append(Column(label, [], None, str(e)))
                continue
            columns.append(self._column(label, key, index, query, k, correct))
        if item is not None:
            target = item.candidates[0]
            summary = (f"Benchmark query ({item.world} / {item.task} / {item.kind}): the correct item is marked ✓. "
                       + "; ".join(f"{c.label}: rank {c.correct_rank}" for c in columns if c.correct_rank) + "."
                       + (f" Correct answer: *{target.text}*." if target.image is None else ""))
        else:
            summary = "Not a benchmark query (or edited): there is no known correct item; the top results are shown."
        return RetrievalView(columns, summary, notes)

    def _column(self, label: str, key: str, index, query: Side, k: int, correct: Side | None) -> Column:
        from fuselip.retrieval import encode_sides, ties_against
        entry = self.registry.entries[key]
        q = encode_sides(index.model, [query])                               # (1, D)
        correct_row = index.row_of(correct) if correct is not None else None
        result = index.index.search(q, k + 1)      # one more than shown (clamped to the gallery size), for a tie at k
        score_of = dict(zip(result.indices[0].tolist(), result.scores[0].tolist()))
        shown = ties_against(list(score_of), list(score_of.values()), correct_row)[:k]
        hits = []
        size = self.config.display_size
        for rank, row in enumerate(shown, start=1):
            score = score_of[row]
            side = index.items[row]
            ok = row == correct_row
            picture = viz.enlarge(side.image, size) if side.image is not None else viz.text_card(side.text, size)
            picture = viz.frame(picture, ok) if correct_row is not None else picture
            caption = f"#{rank}  {score:.3f}" + (f"  {side.text}" if side.text else "") + \
                ("  ✓ correct" if ok else "")
            hits.append(Hit(picture, caption, ok))
        rank = None
        if correct_row is not None:
            rank = int(index.index.rank(q[0], correct_row))
        message = f"{entry.label}: {len(index.items)} gallery items" + \
                  ("" if entry.trained else " (untrained: results are random)")
        return Column(f"{label}: {entry.label}", hits, rank, message)

    # ---- tab 4: VQA probe
    def vqa(self, image, question: str, k: int | None = None) -> VQAView:
        array, notes = read_image(image, self.config.image_size)
        question, text_notes = read_text(question, "question", self.config.max_text_chars)
        notes += text_notes
        if array is None:
            raise DemoError("The VQA probe needs an image.")
        if not question:
            raise DemoError("Type a question about the image (the question is empty).")
        k = int(k or self.config.top_k)
        query = Side(array, question)
        item = self.benchmark.lookup(query)
        correct = item.candidates[0].text if item is not None and item.task == "vqa" else None
        columns = []
        for label, key in self.retrieval_models():
            if key is None:
                columns.append(Answers(label, [], None, f"No {label} checkpoint in {self.registry.root}."))
                continue
            try:
                index = self._index(key, "answers")
            except DemoError as e:
                columns.append(Answers(label, [], None, str(e)))
                continue
            from fuselip.retrieval import encode_sides, ties_against
            model = index.model
            q = encode_sides(model, [query])[0]                              # (D,)
            scores = index.index.vectors @ q                                 # (A,)
            probs = torch.softmax(scores * float(model.logit_scale.detach().exp()), dim=0)
            row = index.row_of(Side(None, correct)) if correct is not None else None
            order = ties_against(range(len(index.items)), scores.tolist(), row)
            ranked = [(index.items[i].text, float(probs[i])) for i in order[:k]]
            rank = int((scores >= scores[row]).sum()) if row is not None else None
            entry = self.registry.entries[key]
            columns.append(Answers(f"{label}: {entry.label}", ranked, rank,
                                   f"{len(index.items)} candidate answers" +
                                   ("" if entry.trained else " (untrained: ranking is random)")))
        if correct is not None:
            summary = (f"Benchmark question ({item.world} / {item.kind}); correct answer: **{correct}**. "
                       + "; ".join(f"{c.label}: rank {c.correct_rank}" for c in columns if c.correct_rank) + ".")
        else:
            summary = "Not a benchmark question: there is no known answer; each model's top answers are shown."
        return VQAView(columns, summary, notes)
