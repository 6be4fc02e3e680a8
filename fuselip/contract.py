"""The contract between the models and the code that uses them, as `typing.Protocol` classes.

A protocol names what a caller reads; a class meets it by having those members (no base class to inherit), and
mypy (run by `make test`) checks every annotated use against it. Where code must ask at run time whether an
object has an optional part, it asks `isinstance(obj, Protocol)` of a `@runtime_checkable` protocol below, never
`hasattr` with a string.

Embedding models. Every embedding model of the project (FuseLIP, a released FuseLIP, the late-fusion baselines
SigLIP-SF and SigLIP-MLF) speaks one encode API, `Encoder`: `encode(images, texts)` embeds B samples, each an
image, a text or both (`check_sides`), into a (B, D) float32 tensor of L2-normalised rows. Retrieval and the
benchmark need nothing else, so a test may hand them any object with that one method. The project's own models
also have a training mode to switch off for inference (`ModeSwitch`, `eval_mode`), the pixel size they read images
at and their embedding width (`EmbeddingModel`); those with a token table record the ids seen in training
(`Compactable`, fuselip/compaction.py), and a late-fusion model embeds an image by its image tower alone
(`ImageTower`). How a model trains (collate, prepare, forward_pairs, ...) is the engine's contract, not this one.

Image tokenizers. FuseLIP reads an image as the codes of a frozen image tokenizer, `Tokenizer`: this project's
trained tokenizers (fuselip/tokenizers/base.py) and the released TiTok (fuselip/tokenizers/titok_official.py).

Checkpoints (fuselip/checkpoint.py). A saved model is `Checkpointable`: its class is registered under a
`checkpoint_kind`, `config_dict()` describes the architecture as JSON and the class method `from_config(config)`
rebuilds it. The file holds the model's state dict, unless the model is also `TensorExport`: then
`export_tensors()` chooses what the file holds (a compacted token table, the weights without train state), and
`import_tensors(tensors, where)` (`TensorImport`) reads exactly that back, naming `where` in its errors.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

import numpy as np
import torch

if TYPE_CHECKING:
    from typing import Self  # Python 3.11; the annotations are never evaluated at run time

Image = Any  # anything fuselip.images.preprocess reads: a numpy HWC array, a PIL image, a path


class Encoder(Protocol):
    """The encode API: B samples -> (B, D) float32 unit rows. `images[i]` or `texts[i]` may be None (that side is
    missing for sample i), and so may either whole list, but every sample needs an image or a text."""

    def encode(self, images: Sequence[Image] | None = None,
               texts: Sequence[str | None] | None = None) -> torch.Tensor: ...


@runtime_checkable
class ModeSwitch(Protocol):
    """A model with a training mode (a torch module): `eval_mode` switches it off while embedding."""

    training: bool

    def eval(self) -> Self: ...

    def train(self, mode: bool = True) -> Self: ...


class EmbeddingModel(Encoder, ModeSwitch, Protocol):
    """One of the project's embedding models: the encode API, a training mode, the side in pixels that it reads
    images at (`fuselip.images.preprocess(image, image_size)`) and the width D of its embeddings."""

    @property
    def image_size(self) -> int: ...

    @property
    def embed_dim(self) -> int: ...


@runtime_checkable
class Compactable(Protocol):
    """A model with a token table whose checkpoint keeps only the rows of the ids seen in training
    (fuselip/compaction.py): `token_seen` (V,) bool marks them, `compacted` says the loaded weights were compacted
    (every other row is zeros), `warned_unkept` that the one warning about an unkept id was given."""

    token_seen: torch.Tensor
    compacted: bool
    warned_unkept: bool


@runtime_checkable
class ImageTower(Protocol):
    """A late-fusion model's image tower alone: (N, H, W, 3) uint8 pixels at `image_size` -> (N, E) features."""

    image_size: int

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor: ...


class TokenizerSettings(Protocol):
    """What every image tokenizer's config (fuselip.config.TokenizerConfig, the released TiTok's own) tells: its
    kind ("grid", "patch", "titok"), the side of the images it reads and the size of its codebook."""

    @property
    def kind(self) -> str: ...  # read-only here, so that a Literal-typed field meets it

    @property
    def image_size(self) -> int: ...

    @property
    def codebook_size(self) -> int: ...


@runtime_checkable
class Tokenizer(Protocol):
    """A frozen image tokenizer as FuseLIP, the token cache, the probe and the app use it: an image becomes
    `num_tokens` codes in [0, codebook_size), and (when `can_decode`) codes become pixels again."""

    @property
    def config(self) -> TokenizerSettings: ...

    @property
    def codebook_size(self) -> int: ...

    @property
    def num_tokens(self) -> int: ...

    @property
    def can_decode(self) -> bool: ...

    resize_mode: str  # how `prepare` makes an image square: "crop" or "squash"

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float pixels in [0, 1] -> (B, N) long codes."""

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, N) codes -> (B, 3, S, S) float pixels in [0, 1]."""

    def prepare(self, image: Image) -> np.ndarray:
        """Anything image-like -> the (S, S, 3) uint8 array that `encode` reads (after fuselip.images.to_tensor)."""

    def token_maps(self, image: Image, codes: torch.Tensor) -> torch.Tensor:
        """The (N, h, w) maps that show each token of one image's `codes`."""

    def config_dict(self) -> dict[str, Any]: ...

    # the torch module parts its owner calls
    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any: ...

    def requires_grad_(self, requires_grad: bool = True) -> Self: ...

    def eval(self) -> Self: ...


@runtime_checkable
class Configured(Protocol):
    """A model that says what it is: the `checkpoint_kind` it is registered under (`@fuselip.checkpoint.register(kind)`
    sets it) and `config_dict()`, its architecture as JSON (which may not use the keys "checkpoint_kind" and
    "format_version"). fuselip.retrieval.model_fingerprint hashes both."""

    checkpoint_kind: str

    def config_dict(self) -> dict[str, Any]: ...


class Checkpointable(Configured, Protocol):
    """A model that fuselip.checkpoint saves and loads: `Configured`, and `from_config(config)` builds the
    architecture again from `config_dict()` (the weights follow)."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any: ...

    def eval(self) -> Self: ...


@runtime_checkable
class TensorExport(Protocol):
    """A model whose checkpoint file holds `export_tensors()` instead of its state dict (a compacted token table,
    the weights without train state). The token cache fingerprints a tokenizer by the same tensors."""

    def export_tensors(self) -> dict[str, torch.Tensor]: ...


@runtime_checkable
class TensorImport(Protocol):
    """The other half of `TensorExport`: `import_tensors` loads such a set (a full state dict too), raising
    fuselip.checkpoint.CheckpointError with `where` in the message when it does not fit. Every saved model that
    exports also imports; a module that is only ever read from elsewhere (the released TiTok) may just export."""

    def import_tensors(self, tensors: dict[str, torch.Tensor], where: str = "") -> None: ...


def saved_tensors(model: object) -> dict[str, torch.Tensor]:
    """What a checkpoint of `model` holds: `export_tensors()` for a TensorExport, else its state dict."""
    if isinstance(model, TensorExport):
        return model.export_tensors()
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{type(model).__name__} is neither a torch module nor a TensorExport: no tensors to save")
    return model.state_dict()


@contextmanager
def eval_mode(model: object) -> Iterator[None]:
    """Inference mode for a `ModeSwitch` model for the duration of the block; a model that was training trains
    again afterwards, even after an exception. Any other object (a test's stand-in with only `encode`) is used as
    it is."""
    if not isinstance(model, ModeSwitch):
        yield
        return
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()


T = TypeVar("T")


def check_sides(images: Sequence[T | None] | None,
                texts: Sequence[str | None] | None) -> tuple[list[T | None], list[str | None]]:
    """The inputs of `Encoder.encode` as two lists of the same length, B (image or None, text or None) samples;
    raises ValueError for a sample with neither an image nor a text (an empty text counts as none), or for lists
    of different lengths, and TypeError for a text that is not a str."""
    if images is None and texts is None:
        raise ValueError("encode needs images, texts, or both")
    n = len(images) if images is not None else len(texts or ())
    image_list: list[T | None] = list(images) if images is not None else [None] * n
    text_list: list[str | None] = list(texts) if texts is not None else [None] * n
    if len(image_list) != len(text_list):
        raise ValueError(f"encode got {len(image_list)} images but {len(text_list)} texts; pass None for a missing "
                         "side")
    for i, (image, text) in enumerate(zip(image_list, text_list)):
        if image is None and not text:
            raise ValueError(f"sample {i} has neither an image nor a text")
        if text is not None and not isinstance(text, str):
            raise TypeError(f"texts[{i}] must be a str or None, got {type(text).__name__}")
    return image_list, text_list
