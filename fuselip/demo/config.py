"""DemoConfig: everything the app's computations depend on, and the environment variables that set it."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CHECKPOINTS_ENV = "FUSELIP_CHECKPOINTS"
MODEL_ENV = "FUSELIP_MODEL"                  # released models to show too (fuselip.pretrained), comma-separated
DOWNLOAD_ENV = "FUSELIP_DOWNLOAD"            # "1": a released model missing from the Hugging Face cache is downloaded
UNTRAINED_ENV = "FUSELIP_UNTRAINED"          # "0": no untrained stand-ins for missing checkpoints
THREADS_ENV = "FUSELIP_APP_THREADS"
GALLERY_ROOT_ENV = "FUSELIP_GALLERY_ROOT"    # the one server folder whose subfolders the page may search; unset: none
DEFAULT_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"  # fuselip/demo/config.py -> repo root


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
