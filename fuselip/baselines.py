"""Late fusion: a SigLIP dual encoder built with open_clip, plus the two fusions of shared/PAPER.md.

The dual encoder is `open_clip.model.CLIP` from a small config: a ViT over the pixels (standardised like
open_clip's SigLIP models: [0, 1] -> [-1, 1]) and a *bidirectional* text transformer over the same CLIP BPE ids
that FuseLIP uses (fuselip.text / fuselip.vocab: `[sot, t_1 … t_k, eot]`, pad 0). Each tower embeds its
own modality alone; the two vectors meet only at the end (*late fusion*):

- score fusion (SF, `kind="siglip-sf"`): `normalise(normalise(f_img) + normalise(f_txt))`;
  a sample with one side missing is the other side alone, `normalise(f)`.
- MagicLens-style fusion (MLF, `kind="siglip-mlf"`): the two projected vectors become a 2-token sequence
  (plus a learned modality embedding each) → a pre-LN transformer (open_clip's blocks) → attention
  pooling with one learned query → LayerNorm → normalise. A missing side is *masked out* (key-padding
  mask in every attention, the fusion blocks and the pooling), so an image alone is a function of that
  image only and never of some stand-in for the absent text. (A learned "empty" token would be the other
  choice; masking needs no extra parameter and cannot leak anything from the missing side.)

Both follow the engine protocol of fuselip/model.py: `prepare(pairs)`, `collate(pairs)`,
`forward_pairs(batch)`, `logit_scale`/`logit_bias`, `encode(images, texts)`, `config_dict()` / `from_config()`
(fuselip.contract: EmbeddingModel, ImageTower, Compactable, Checkpointable, TensorExport, TensorImport),
and the same checkpoint compaction as FuseLIP (fuselip/compaction.py): `prepare`
records every text id of the training set in the buffer `token_seen` and zeroes every other row, and
`export_tensors` keeps only the seen rows of the 49,408-row text table (the others are zeros, and load as
zeros), so a shipped checkpoint embeds even never-seen words bit-identically to the trained model.
An empty text (`""` or None) counts as a missing text side: CLIP has no meaning for "no words", and the
data contract writes an image-only side as `Side(image, "")`.

Why not `CLIP.encode_text`: in open_clip 3.3 `CLIPTextCfg` has `no_causal_mask` but no way to switch on
a padding mask, and `CLIP.encode_text` adds the positional embedding of the *full* context length. We
build the tower with open_clip and run its parts ourselves on batches trimmed to their longest text,
with a key-padding mask on pad (the same attention pattern as FuseLIP's encoder). The image tower's helpers
(input layer, pixel standardisation, attention kernel) are in fuselip/vit.py, shared with fuselip/mae.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from open_clip.model import CLIP, CLIPTextCfg
from open_clip.transformer import LayerNorm, Transformer
from torch import nn

from fuselip import vocab
from fuselip.checkpoint import CheckpointError, check_state_dict, register
from fuselip.compaction import check_kept, compact_table, expand_table
from fuselip.config import LateFusionConfig, RunConfig, from_dict, to_dict
from fuselip.contract import Compactable, Image, check_sides
from fuselip.data.collate import content_key
from fuselip.data.types import Pair, image_key
from fuselip.images import preprocess
from fuselip.mae import load_vision
from fuselip.text import default_tokenizer
from fuselip.vit import attention_backend, check_vision, set_vision_stem, standardise, vision_config

if TYPE_CHECKING:
    from typing import Self

SIDES = ("left", "right")


# ---------------------------------------------------------------------------------------------
# inputs: a list of sides -> unique images + unique texts + one index per sample (-1 = missing)


def _text_or_none(text: str | None) -> str | None:
    return text if text else None


def side_tensors(images: Sequence[np.ndarray | None], texts: Sequence[str | None], context_length: int,
                 prefix: str) -> dict[str, torch.Tensor]:
    """One side of a batch as CPU tensors. Identical images (or texts) are stored once.

    `{prefix}_pixels`: (Ni, H, W, 3) uint8 unique images; `{prefix}_image_index`: (B,) row of each sample's
    image in `pixels`, -1 when it has none; `{prefix}_text_ids`: (Nt, T) padded `[sot, …, eot]` ids of the
    unique texts; `{prefix}_text_index`: (B,) likewise. Within a batch of hard-negative groups the same
    input image recurs with every instruction, so the vision tower runs once per distinct image.
    """
    if len(images) != len(texts):
        raise ValueError(f"{prefix}: {len(images)} images but {len(texts)} texts; give one of each per sample")
    tokenizer = default_tokenizer()
    image_rows: dict[bytes, int] = {}
    text_rows: dict[str, int] = {}
    unique_images: list[np.ndarray] = []
    sequences: list[list[int]] = []
    image_index: list[int] = []
    text_index: list[int] = []
    for i, (image, text) in enumerate(zip(images, texts)):
        if image is None and text is None:
            raise ValueError(f"{prefix} sample {i}: both the image and the text are missing")
        if image is None:
            image_index.append(-1)
        else:
            key = image_key(image)
            if key not in image_rows:
                image_rows[key] = len(unique_images)
                unique_images.append(image)
            image_index.append(image_rows[key])
        if text is None:
            text_index.append(-1)
        else:
            if text not in text_rows:
                text_rows[text] = len(sequences)
                sequences.append(vocab.build_sequence(None, tokenizer.encode(text), context_length))
            text_index.append(text_rows[text])
    if unique_images:
        pixels = torch.from_numpy(np.ascontiguousarray(np.stack(unique_images)))  # (Ni, H, W, 3) uint8
    else:
        pixels = torch.zeros(0, 1, 1, 3, dtype=torch.uint8)
    text_ids = vocab.pad_sequences(sequences) if sequences else torch.zeros(0, 2, dtype=torch.long)
    return {f"{prefix}_pixels": pixels,
            f"{prefix}_image_index": torch.tensor(image_index, dtype=torch.long),
            f"{prefix}_text_ids": text_ids,
            f"{prefix}_text_index": torch.tensor(text_index, dtype=torch.long)}


# ---------------------------------------------------------------------------------------------
# the fusions


class ScoreFusion(nn.Module):
    """SF: normalise(normalise(f_img) + normalise(f_txt)); a missing side contributes nothing."""

    def forward(self, image: torch.Tensor, text: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        # image, text: (B, E) projected features (zeros where missing); present: (B, 2) bool [image, text]
        total = F.normalize(image, dim=-1) * present[:, :1] + F.normalize(text, dim=-1) * present[:, 1:]
        return F.normalize(total, dim=-1)  # (B, E)


class MagicLensFusion(nn.Module):
    """MLF: [f_img, f_txt] as a 2-token sequence → pre-LN transformer → attention pool → LayerNorm."""

    def __init__(self, dim: int, layers: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.modality_embedding = nn.Parameter(torch.zeros(2, dim))  # row 0: image token, row 1: text token
        self.transformer = Transformer(dim, layers, heads, mlp_ratio, batch_first=True)
        self.pool_query = nn.Parameter(torch.randn(1, 1, dim) * dim ** -0.5)
        self.pool_norm = LayerNorm(dim)  # pre-norm of the pooled keys/values
        self.pool = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_out = LayerNorm(dim)

    def forward(self, image: torch.Tensor, text: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        batch = image.shape[0]
        x = torch.stack([image, text], dim=1) + self.modality_embedding  # (B, 2, E)
        missing = ~present  # (B, 2): True = masked key
        additive = torch.zeros(batch, 2, 2, dtype=x.dtype, device=x.device)
        additive = additive.masked_fill(missing[:, None, :], float("-inf"))  # (B, Q=2, K=2)
        additive = additive.repeat_interleave(self.heads, dim=0)  # (B*heads, 2, 2)
        x = self.transformer(x, attn_mask=additive)  # (B, 2, E)
        kv = self.pool_norm(x)
        query = self.pool_query.expand(batch, -1, -1).to(kv.dtype)  # (B, 1, E)
        pooled, _ = self.pool(query, kv, kv, key_padding_mask=missing, need_weights=False)  # (B, 1, E)
        return F.normalize(self.ln_out(pooled[:, 0]), dim=-1)  # (B, E)


# ---------------------------------------------------------------------------------------------
# the dual encoder


class LateFusionSigLIP(nn.Module):
    """An open_clip SigLIP dual encoder whose two features are merged by `self.fusion`."""

    fusion_kind = ""  # "sf" | "mlf", set by the subclasses
    checkpoint_kind: str  # set by @register on each subclass
    token_seen: torch.Tensor  # (V,) bool buffer

    def __init__(self, encoder: LateFusionConfig, image_size: int):
        super().__init__()
        check_vision(encoder, image_size)
        self.encoder_config = encoder
        self.image_size = image_size
        self.context_length = encoder.context_length
        self.max_logit_scale = encoder.max_logit_scale
        self.embed_dim = encoder.embed_dim or encoder.width
        text_cfg = CLIPTextCfg(context_length=encoder.context_length, vocab_size=vocab.TEXT_VOCAB_SIZE,
                               width=encoder.width, heads=encoder.heads, layers=encoder.layers,
                               mlp_ratio=encoder.mlp_ratio, pad_id=vocab.PAD, eos_id=vocab.EOT,
                               no_causal_mask=True, pool_type="eos")
        self.clip = CLIP(self.embed_dim, vision_cfg=vision_config(encoder, image_size), text_cfg=text_cfg,
                         init_logit_scale=encoder.init_logit_scale, init_logit_bias=encoder.init_logit_bias)
        set_vision_stem(self.clip.visual, encoder)
        self.fusion = self.build_fusion(encoder)
        # text ids present in the training data (prepare()); drives the checkpoint compaction
        self.register_buffer("token_seen", torch.zeros(vocab.TEXT_VOCAB_SIZE, dtype=torch.bool))
        self.token_seen[[vocab.SOT, vocab.EOT]] = True
        self.compacted = False      # True after importing a compacted checkpoint (dropped rows are zeros)
        self.warned_unkept = False

    def build_fusion(self, encoder: LateFusionConfig) -> nn.Module:
        raise NotImplementedError

    # --- the engine protocol --------------------------------------------------------------

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.clip.logit_scale

    @property
    def logit_bias(self) -> nn.Parameter:
        return self.clip.logit_bias

    def config_dict(self) -> dict[str, Any]:
        return {"encoder": to_dict(self.encoder_config), "image_size": self.image_size}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Builds the architecture (weights come from import_tensors); extra keys (e.g. "run") are ignored."""
        for key in ("encoder", "image_size"):
            if key not in config:
                raise CheckpointError(f"{cls.checkpoint_kind} config has no {key!r} entry")
        return cls(from_dict(LateFusionConfig, config["encoder"], "encoder"), int(config["image_size"]))

    def prepare(self, pairs: Sequence[Pair]) -> None:
        """Called once by the engine with the whole training set: records every text id it contains, and
        sets the table rows of all other ids to zero. Those rows get no gradient (an embedding row moves only
        when its id is looked up) and weight decay keeps zero at zero, so they stay zero: the compacted
        checkpoint (zeros for rows not kept) then embeds a never-seen word (e.g. a held-out emoji's name in
        the test split) exactly like the model in memory did, instead of by a random row that was dropped."""
        tokenizer = default_tokenizer()
        texts = {side.text for p in pairs for side in (p.left, p.right) if side.text}
        ids = sorted({i for text in texts for i in tokenizer.encode(text)})
        self.token_seen[torch.tensor(ids, dtype=torch.long)] = True
        with torch.no_grad():
            self.clip.token_embedding.weight[~self.token_seen.to(self.clip.token_embedding.weight.device)] = 0.0

    def collate(self, pairs: Sequence[Pair]) -> dict[str, torch.Tensor]:
        batch = {}
        for name in SIDES:
            sides = [getattr(p, name) for p in pairs]
            batch.update(side_tensors([s.image for s in sides], [_text_or_none(s.text) for s in sides],
                                      self.context_length, name))
        right_key = torch.tensor([content_key(p.right) for p in pairs], dtype=torch.long)  # (B,)
        batch["right_key"] = right_key  # identical right sides are positives of each other (engine, DDP)
        batch["right_dup"] = right_key[:, None] == right_key[None, :]  # (B, B)
        return batch

    def forward_pairs(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None):
        """-> (left (B, E), right (B, E), aux losses {}): late fusion has no extra objective."""
        left = self.embed_side(batch, "left")
        right = self.embed_side(batch, "right")
        return left, right, {}

    @torch.no_grad()
    def encode(self, images: Sequence[Image] | None = None,
               texts: Sequence[str | None] | None = None) -> torch.Tensor:
        """(B, E) L2-normalised embeddings; `images[i]` or `texts[i]` may be None (not both)."""
        image_list, text_list = check_sides(images, texts)
        arrays = [None if im is None else preprocess(im, self.image_size) for im in image_list]
        batch = side_tensors(arrays, [_text_or_none(t) for t in text_list], self.context_length, "query")
        device = self.clip.logit_scale.device
        batch = {k: v.to(device) for k, v in batch.items()}
        return self.embed_side(batch, "query").float()

    # --- checkpoints: the text table keeps only the rows of ids seen in training ------------------

    TABLE = "clip.token_embedding.weight"

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return compact_table(self.state_dict(), self.TABLE, self.token_seen)

    def import_tensors(self, tensors: dict[str, torch.Tensor], where: str = "") -> None:
        """Loads a compacted (export_tensors) or a full (state_dict) set of tensors."""
        tensors, compacted = expand_table(tensors, self.TABLE, tuple(self.clip.token_embedding.weight.shape), where)
        check_state_dict(self.state_dict(), tensors, where)
        self.load_state_dict(tensors)
        self.compacted = compacted

    def effective_parameters(self) -> int:
        return effective_parameters(self)

    # --- towers and fusion --------------------------------------------------------------------

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) uint8 -> (N, E) projected image features (not normalised); pixels as `standardise`."""
        return self.clip.encode_image(standardise(pixels))

    def encode_text_ids(self, ids: torch.Tensor) -> torch.Tensor:
        """(N, T) `[sot, …, eot, pad…]` ids -> (N, E) projected text features at eot (not normalised)."""
        clip = self.clip
        length = ids.shape[1]
        if length > clip.positional_embedding.shape[0]:
            raise ValueError(f"text of {length} tokens exceeds context_length={clip.positional_embedding.shape[0]}")
        # real tokens run up to each row's eot; not `ids != PAD`, since pad id 0 is also the BPE token "!"
        eot = vocab.eot_positions(ids)  # (N,)
        keep = torch.arange(length, device=ids.device)[None, :] <= eot[:, None]  # (N, T)
        check_kept(self, ids[keep], "text")
        x = clip.token_embedding(ids) + clip.positional_embedding[:length]  # (N, T, W)
        additive = torch.zeros(ids.shape[0], length, length, dtype=x.dtype, device=x.device)
        additive = additive.masked_fill(~keep[:, None, :], float("-inf"))  # (N, Q, K)
        additive = additive.repeat_interleave(self.encoder_config.heads, dim=0)  # (N*heads, T, T)
        x = clip.transformer(x, attn_mask=additive)  # (N, T, W)
        x = clip.ln_final(x)
        pooled = x[torch.arange(ids.shape[0], device=ids.device), eot]  # (N, W)
        return pooled @ clip.text_projection  # (N, E)

    def embed_side(self, batch: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
        with attention_backend(batch[f"{prefix}_image_index"].device):
            return self._embed_side(batch, prefix)

    def _embed_side(self, batch: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
        image_index = batch[f"{prefix}_image_index"]  # (B,)
        text_index = batch[f"{prefix}_text_index"]  # (B,)
        present = torch.stack([image_index >= 0, text_index >= 0], dim=1)  # (B, 2)
        size = (image_index.shape[0], self.embed_dim)
        image = text = None
        if bool(present[:, 0].any()):
            image = self.encode_pixels(batch[f"{prefix}_pixels"])[image_index.clamp(min=0)]  # (B, E)
        if bool(present[:, 1].any()):
            text = self.encode_text_ids(batch[f"{prefix}_text_ids"])[text_index.clamp(min=0)]  # (B, E)
        reference = image if image is not None else text
        if reference is None:
            raise ValueError(f"{prefix}: no sample of the batch has an image or a text")
        image = image if image is not None else reference.new_zeros(size)
        text = text if text is not None else reference.new_zeros(size)
        return self.fusion(image, text, present)


@register("siglip-sf")
class ScoreFusionSigLIP(LateFusionSigLIP):
    fusion_kind = "sf"

    def build_fusion(self, encoder: LateFusionConfig) -> nn.Module:
        return ScoreFusion()


@register("siglip-mlf")
class MagicLensFusionSigLIP(LateFusionSigLIP):
    fusion_kind = "mlf"

    def build_fusion(self, encoder: LateFusionConfig) -> nn.Module:
        return MagicLensFusion(self.embed_dim, encoder.fusion_layers, encoder.fusion_heads or encoder.heads,
                               encoder.mlp_ratio)


def effective_parameters(model: nn.Module) -> int:
    """Trainable parameters that data can reach: a table indexed by token id (first dimension = the length
    of `model.token_seen`) counts only the rows of ids seen in training. Works for FuseLIP (token table
    and MMM bias over the joint vocabulary; its frozen image tokenizer is not trainable) and the baselines."""
    if not isinstance(model, Compactable):
        raise TypeError(f"{type(model).__name__} has no token table to count (fuselip.contract.Compactable)")
    seen = model.token_seen
    vocab_rows, kept = seen.shape[0], int(seen.sum())
    total = 0
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        if parameter.ndim and parameter.shape[0] == vocab_rows:
            total += kept * parameter[0].numel()
        else:
            total += parameter.numel()
    return total


BASELINES = {"siglip-sf": ScoreFusionSigLIP, "siglip-mlf": MagicLensFusionSigLIP}


def build_baseline(config: RunConfig | LateFusionConfig, image_size: int | None = None) -> LateFusionSigLIP:
    """The baseline named by `encoder.kind` ("siglip-sf" | "siglip-mlf"), for a run config (image size from
    `data.image_size`) or for an encoder config and an explicit image size. For a run config (a training run)
    with `encoder.vision_init` set, the image tower starts from that pretrained ViT (fuselip.mae.load_vision);
    from an encoder config alone it is the architecture only (weights come from a checkpoint)."""
    if isinstance(config, RunConfig):
        encoder, image_size = config.encoder, image_size or config.data.image_size
    else:
        encoder = config
        if image_size is None:
            raise ValueError("build_baseline(LateFusionConfig) needs the image_size")
    if not isinstance(encoder, LateFusionConfig):
        raise ValueError(f"encoder.kind={encoder.kind!r} is not a late-fusion baseline; "
                         f"choose one of {', '.join(BASELINES)}")
    model = BASELINES[encoder.kind](encoder, image_size)
    if isinstance(config, RunConfig) and encoder.vision_init:
        load_vision(model.clip.visual, encoder.vision_init, encoder, image_size)
    return model
