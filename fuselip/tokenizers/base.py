"""What every discrete image tokenizer shares: the encode / decode / forward interface and checkpoints.

A subclass provides three pieces:
    encode_latents(x (B, 3, S, S) in [-1, 1]) -> z (B, N, D)     continuous encoder outputs, one per token
    decode_latents(z_q (B, N, D)) -> (B, 3, S, S)                 pixels in [0, 1] (not clamped)
    num_tokens                                                    N
and gets:
    encode(x in [0, 1]) -> codes (B, N) long       fast: inference mode, bf16 autocast, no gradient
    decode(codes (B, N)) -> (B, 3, S, S) in [0, 1]
    forward(x) -> (reconstruction, codes, losses)  for training: losses["recon"], losses["vq"], losses["loss"]
    prepare(image) -> (S, S, 3) uint8              any image-like object (fuselip.images.preprocess)
    token_maps(image, codes) -> (N, h, w)          per-token maps for pictures (here: influence_maps)
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fuselip.checkpoint import check_state_dict
from fuselip.config import TokenizerConfig, from_dict, to_dict
from fuselip.images import preprocess
from fuselip.tokenizers.influence import influence_maps
from fuselip.tokenizers.quantizer import VectorQuantizer

ENCODE_BATCH = 256


class ImageTokenizer(nn.Module):
    config: TokenizerConfig
    checkpoint_kind: str  # set by @register on each subclass

    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config
        self.quantizer = VectorQuantizer(
            config.codebook_size, config.code_dim, l2_codes=config.l2_codes, commitment=config.commitment,
            dead_code_threshold=config.dead_code_threshold, dead_code_every=config.dead_code_every,
            recent_codes=config.recent_codes)

    # ---- to be provided by the subclass
    num_tokens: int

    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # ---- the common interface
    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def _check_input(self, x: torch.Tensor) -> None:
        s = self.config.image_size
        if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != s or x.shape[3] != s:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"{type(self).__name__} expects images as a (B, 3, {s}, {s}) float tensor in [0, 1], "
                             f"got {shape}; use fuselip.images.preprocess / to_tensor first")
        if not x.is_floating_point():
            raise ValueError(f"{type(self).__name__} expects float pixels in [0, 1], got dtype {x.dtype}")

    def _autocast(self):
        on = self.config.encode_bf16 and not self.training
        return torch.autocast(self.device_type, dtype=torch.bfloat16) if on else contextlib.nullcontext()

    @property
    def device_type(self) -> str:
        return self.quantizer.codebook.device.type

    @torch.inference_mode()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, N) long codes in [0, codebook_size)."""
        self._check_input(x)
        out = []
        for chunk in x.split(ENCODE_BATCH):
            chunk = chunk.to(self.quantizer.codebook.device, non_blocking=True)
            with self._autocast():
                z = self.encode_latents(chunk * 2 - 1)  # (b, N, D)
            out.append(self.quantizer.nearest(z.reshape(-1, z.shape[-1])).view(z.shape[:2]))
        return torch.cat(out)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, N) codes -> (B, 3, S, S) float in [0, 1]."""
        codes = torch.as_tensor(codes)
        if codes.ndim != 2 or codes.shape[1] != self.num_tokens:
            raise ValueError(f"decode expects (B, {self.num_tokens}) codes, got {tuple(codes.shape)}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"codes must lie in [0, {self.codebook_size}), got range "
                             f"[{int(codes.min())}, {int(codes.max())}]")
        codes = codes.long().to(self.quantizer.codebook.device)
        out = []
        for chunk in codes.split(ENCODE_BATCH):
            with self._autocast():
                out.append(self.decode_latents(self.quantizer.codes_from_indices(chunk)).float().clamp(0, 1))
        return torch.cat(out)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Training pass: (reconstruction (B, 3, S, S), codes (B, N), losses incl. the total `loss`)."""
        self._check_input(x)
        z = self.encode_latents(x * 2 - 1)  # (B, N, D)
        z_q, codes, losses = self.quantizer(z)
        recon = self.decode_latents(z_q).float()
        losses["recon"] = F.mse_loss(recon, x.float())
        losses["loss"] = losses["recon"] + self.config.codebook_weight * losses["vq"]
        return recon, codes, losses

    # ---- training (fuselip.engine with fuselip.image_training.ImagePool; contract: fuselip.image_training.ImageModel)
    reconstruct = True  # set on the steps the engine logs: a forward whose loss needs no reconstruction
                        # (TiTok on proxy codes) may then skip it and return None
    no_weight_decay = ("codebook", "pos")  # never decayed: the codes and the position tables

    def training_loss(self, pixels: torch.Tensor, generator: torch.Generator | None = None):
        """(B, S, S, 3) uint8 -> (loss, the other scalar losses of forward)."""
        x = pixels.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, S, S) in [0, 1], as fuselip.images.to_tensor
        _, _, losses = self(x)
        return losses["loss"], {k: v for k, v in losses.items()
                                if k != "loss" and torch.is_tensor(v) and v.ndim == 0}

    def begin_step(self, step: int, steps: int, logged: bool = True) -> None:
        """Before every step, as a function of the step alone (so that a resumed run continues exactly): the
        model's own stages (training_phase), z passed unquantised for the first tokenizer.vq_warmup of the steps
        (then every code re-seeded from encoder outputs), a reconstruction on the logged steps."""
        self.training_phase(step, steps)
        self.reconstruct = logged
        vq_from = int(self.config.vq_warmup * steps)
        self.quantizer.bypass = step < vq_from
        if step == vq_from and vq_from > 0:
            self.quantizer.reseed_all_codes()

    def end_step(self, step: int, steps: int) -> None:
        """After every optimiser step: dead codes re-seeded until tokenizer.dead_code_until of the steps."""
        until = self.config.dead_code_until
        self.quantizer.reseeding = step < (int(until * steps) if until > 0 else steps)
        self.after_step()

    def prepare_training(self) -> None:
        """Called once after building the model, before a resume: load what training needs besides the model's
        own weights (TiTok: its frozen proxy tokenizer)."""

    def training_phase(self, step: int, steps: int) -> None:
        """A model trained in stages switches them here (begin_step), as a function of the step alone."""

    def after_step(self) -> int:
        """Dead-code re-seeding after an optimiser step (end_step)."""
        return self.quantizer.reseed_dead_codes()

    def influence_maps(self, codes: torch.Tensor, replacement: torch.Tensor | None = None) -> torch.Tensor:
        """codes (N,) of one image -> (N, S, S): how much each pixel changes when token i alone is replaced
        (fuselip.tokenizers.influence; drawn by fuselip.viz.influence_sheet)."""
        return influence_maps(self, codes, replacement)

    def token_maps(self, image, codes: torch.Tensor) -> torch.Tensor:
        """What the app and the probe draw for each token of one image: (N, h, w) maps. Here the decoder-based
        influence maps of `codes`; the released TiTok (titok_official.py) shows where each token reads from instead."""
        return self.influence_maps(codes)

    def prepare(self, image) -> np.ndarray:
        """Anything image-like -> the (S, S, 3) uint8 array this tokenizer encodes (fuselip.images.preprocess)."""
        return preprocess(image, self.config.image_size)

    # ---- checkpoints (fuselip.checkpoint)
    def config_dict(self) -> dict:
        return {"tokenizer": to_dict(self.config)}  # nested: the checkpoint's own top-level "kind" stays unique

    @classmethod
    def from_config(cls, config: dict):
        if "tokenizer" not in config:
            raise ValueError(f"tokenizer checkpoint config has no 'tokenizer' section (keys: {sorted(config)})")
        return cls(from_dict(TokenizerConfig, config["tokenizer"], "tokenizer"))

    resize_mode = "crop"  # how `prepare` makes an image square (fuselip.demo.read_image says so to the user)
    can_decode = True     # `decode` reaches pixels (the released TiTok without its decoder cannot)

    def exported(self, key: str) -> bool:
        """Whether state-dict entry `key` is a weight of the model (saved) or train state (not saved)."""
        return key not in {f"quantizer.{name}" for name in VectorQuantizer.TRAINING_BUFFERS}

    def export_tensors(self) -> dict[str, torch.Tensor]:
        """The weights only: the quantiser's training buffers are train state, not model."""
        return {k: v for k, v in self.state_dict().items() if self.exported(k)}

    def import_tensors(self, tensors: dict[str, torch.Tensor], where: str) -> None:
        """The weights of a shipped folder, or of a training run's checkpoint (whose train state is left out)."""
        tensors = {k: v for k, v in tensors.items() if self.exported(k)}
        check_state_dict(self.export_tensors(), tensors, where)
        self.load_state_dict(tensors, strict=False)  # copies into the model's own dtype (fp16 files -> fp32)

    def extra_repr(self) -> str:
        return f"tokens={self.num_tokens}, codebook={self.codebook_size}x{self.config.code_dim}"

