"""FuseLIP: one bidirectional transformer over image AND text tokens (early fusion), shared/PAPER.md.

Read top to bottom:
    ids (B, T) over the joint vocabulary (fuselip/vocab.py: text BPE ids, [MASK], then image codes)
      -> trim the batch to its longest sequence (everything after a row's eot is padding)
      -> token embedding + learned absolute positional embedding                       (B, T, D)
      -> `layers` pre-LN blocks: x += attn(ln(x)); x += mlp(ln(x)), bidirectional attention with
         a key-padding mask (no causal mask), computed by F.scaled_dot_product_attention (fuselip/block.py)
      -> h: the states BEFORE the final LayerNorm                                      (B, T, D)
         * embedding: final LayerNorm of h at each row's eot position, L2-normalised    (B, D)
           (no projection: the embedding dimension is the width)
         * MMM head (training only, masked positions only): Linear -> GELU -> LayerNorm -> product
           with the token-embedding matrix (tied) + its own bias -> logits over the vocabulary (M, V)

The ablation `encoder.fusion="score"` fuses late with all of the above unchanged: a side's image tokens and its text
run as two sequences and the side's embedding is normalise(e_image + e_text), as SigLIP-SF (fuselip/score_fusion.py).

The model owns its frozen image tokenizer (a submodule saved with the prefix `tokenizer.`), so
`encode(images, texts)` works from raw images: fuselip.images.preprocess -> tokenizer.encode ->
vocab.build_sequence -> the transformer.

Engine protocol (fuselip/pair_training.py): `collate(pairs)`, `prepare(pairs)`, `forward_pairs(batch, generator)`,
`encode(images, texts)`, `logit_scale`, `logit_bias`.

Checkpoints (`export_tensors` / `import_tensors`) keep only the token-table rows of the ids seen in training
(`token_seen`, filled by `prepare` and every training step): fuselip/compaction.py says how and why it is exact.
FuseLIP meets fuselip.contract's EmbeddingModel, Compactable, Checkpointable, TensorExport and TensorImport; its image
tokenizer is any fuselip.contract.Tokenizer.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Sequence, cast

import torch
import torch.nn.functional as F
from torch import nn

from fuselip import vocab
from fuselip.block import Block
from fuselip.buckets import length_buckets, run_in_buckets  # noqa: F401 (length_buckets: importable here)
from fuselip.checkpoint import CheckpointError, register
from fuselip.compaction import check_kept, export_fuselip, import_fuselip
from fuselip.config import ConfigError, FuseLIPConfig, RunConfig, TokenizerConfig, from_dict, to_dict
from fuselip.contract import Image, Tokenizer, check_sides
from fuselip.data.collate import TokenCache, collate_pairs, side_sequences, training_ids
from fuselip.losses import apply_mask, mmm_loss, mmm_mask
from fuselip.score_fusion import score_fused_side, split_modalities  # noqa: F401 (split_modalities: importable here)
from fuselip.tokenizers import UNTRAINED_TOKENIZER, build_tokenizer, load_tokenizer  # noqa: F401 (UNTRAINED_TOKENIZER)


@dataclass(frozen=True)
class TokenRows:
    """Embedding rows gathered for a training step: ids (S,), rows (S, D), index (V,) id -> row (-1: absent)."""
    ids: torch.Tensor
    rows: torch.Tensor
    index: torch.Tensor


@register("fuselip")
class FuseLIP(nn.Module):
    # True for the released models (fuselip.pretrained): as in the reference code, every id 0 is padding, so the BPE
    # token "!" (id 0) inside a text is hidden from attention too. This project's models find padding from eot only.
    pad_id_is_padding = False
    checkpoint_kind: str  # set by @register
    token_seen: torch.Tensor  # (V,) bool buffer

    def __init__(self, encoder: FuseLIPConfig, tokenizer: Tokenizer, tokenizer_checkpoint: str = ""):
        """`tokenizer`: an image tokenizer module (GridTokenizer / TiTokTokenizer); it is frozen here."""
        super().__init__()
        self.config = encoder  # its choices (mmm_*, fusion) were checked when it was made (fuselip.config)
        self.tokenizer_checkpoint = tokenizer_checkpoint
        self.tokenizer: Tokenizer = tokenizer.requires_grad_(False).eval()
        self.vocab_size = vocab.joint_vocab_size(tokenizer.codebook_size)
        width = encoder.width

        self.token_embedding = nn.Embedding(self.vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(encoder.context_length, width))
        self.blocks = nn.ModuleList(Block(width, encoder.heads, encoder.mlp_ratio) for _ in range(encoder.layers))
        self.ln_final = nn.LayerNorm(width)
        # masked multimodal modelling head; its output matrix is token_embedding.weight (tied)
        self.mmm_dense = nn.Linear(width, width)
        self.mmm_ln = nn.LayerNorm(width)
        self.mmm_bias = nn.Parameter(torch.zeros(self.vocab_size))
        self.logit_scale = nn.Parameter(torch.tensor(float(encoder.init_logit_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(encoder.init_logit_bias)))
        # ids present in the training data (prepare()); drives the checkpoint compaction and mmm_vocab="seen"
        self.register_buffer("token_seen", torch.zeros(self.vocab_size, dtype=torch.bool))
        for special in (vocab.PAD, vocab.SOT, vocab.EOT, vocab.MASK):
            self.token_seen[special] = True
        self.compacted = False      # True after importing a compacted checkpoint (dropped rows are zeros)
        self.warned_unkept = False
        self._token_cache: TokenCache | None = None  # built lazily
        self._init_weights()

    def _init_weights(self) -> None:
        """open_clip's TextTransformer initialisation."""
        width, layers = self.config.width, self.config.layers
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        attn_std = width ** -0.5
        proj_std = attn_std * (2 * layers) ** -0.5
        fc_std = (2 * width) ** -0.5
        for block in cast(Sequence[Block], self.blocks):
            nn.init.normal_(block.qkv.weight, std=attn_std)
            nn.init.zeros_(block.qkv.bias)
            nn.init.normal_(block.proj.weight, std=proj_std)
            nn.init.zeros_(block.proj.bias)
            nn.init.normal_(block.fc.weight, std=fc_std)
            nn.init.normal_(block.fc_out.weight, std=proj_std)
        nn.init.normal_(self.mmm_dense.weight, std=attn_std)

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen: always in inference mode
        return self

    @property
    def device(self) -> torch.device:
        return self.token_embedding.weight.device

    @property
    def embed_dim(self) -> int:
        return self.config.width

    @property
    def image_size(self) -> int:
        """The side in pixels of the images it reads: its tokenizer's."""
        return self.tokenizer.config.image_size

    # ------------------------------------------------------------------------------------------
    # the transformer

    def trim(self, ids: torch.Tensor) -> torch.Tensor:
        """Cut the padding columns that no row needs: (B, T) -> (B, T') with T' = longest row (incl. its eot)."""
        longest = int(vocab.eot_positions(ids).max()) + 1
        return ids[:, :longest]

    def hidden_states(self, ids: torch.Tensor, return_attention: bool = False, table: TokenRows | None = None):
        """(B, T) ids (already trimmed) -> h (B, T, D) before the final LayerNorm, keep (B, T), attentions.

        keep[b, t] is True for real tokens (up to and including the eot); the rest is padding. It is derived
        from the eot position, not from `ids == PAD`, because the pad id 0 is also the BPE token "!" (the released
        models, `pad_id_is_padding`, hide it as the reference does).
        table: read the token embeddings from these pre-gathered rows (training, see token_rows) instead.
        """
        B, T = ids.shape
        if T > self.config.context_length:
            raise ValueError(f"sequence of {T} tokens exceeds context_length {self.config.context_length}")
        if int(ids.max()) >= self.vocab_size or int(ids.min()) < 0:
            raise ValueError(f"token ids must be in [0, {self.vocab_size}); got [{int(ids.min())}, {int(ids.max())}]")
        eot = vocab.eot_positions(ids)                                          # (B,)
        keep = torch.arange(T, device=ids.device)[None, :] <= eot[:, None]      # (B, T)
        if self.pad_id_is_padding:
            keep = keep & (ids != vocab.PAD)
        tokens = self.token_embedding(ids) if table is None else F.embedding(table.index[ids], table.rows)
        x = tokens + self.positional_embedding[:T]                              # (B, T, D)
        attentions = []
        for block in self.blocks:
            x, weights = block(x, keep, return_attention)
            if return_attention:
                attentions.append(weights)
        return x, keep, eot, attentions

    def pool(self, h: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
        """Final LayerNorm at each row's eot, L2-normalised: (B, T, D) -> (B, D).

        LayerNorm acts per position, so normalising only the eot rows equals pooling after the LayerNorm.
        """
        pooled = h[torch.arange(h.shape[0], device=h.device), eot]              # (B, D)
        return F.normalize(self.ln_final(pooled).float(), dim=-1)

    def encode_ids(self, ids: torch.Tensor, return_attention: bool = False):
        """(B, T) joint-vocabulary ids -> (B, D) unit embeddings.

        return_attention=True also returns a list (one per layer) of (B, H, T', T') attention weights, T' the
        trimmed length: rows sum to 1 and padded keys get exactly 0. The normal path uses SDPA and keeps nothing.
        """
        ids = self.trim(ids.to(self.device))
        check_kept(self, ids, "token")
        if self.config.fusion == "score":
            if return_attention:
                raise ValueError("attention across modalities exists only with encoder.fusion='early'; this model "
                                 "runs image and text tokens as separate sequences (fusion='score')")
            return self._side(ids, None)[0]
        h, _, eot, attentions = self.hidden_states(ids, return_attention)
        embedding = self.pool(h, eot)
        return (embedding, attentions) if return_attention else embedding

    # ------------------------------------------------------------------------------------------
    # masked multimodal modelling

    def mmm_logits(self, h_masked: torch.Tensor, table: TokenRows | None = None) -> torch.Tensor:
        """(M, D) pre-LayerNorm states at masked positions -> (M, V) logits (tied to the token embedding).

        table: restrict the output to the gathered rows of the seen ids (mmm_vocab="seen"), logits (M, S);
        None = the whole joint vocabulary.
        """
        z = self.mmm_ln(F.gelu(self.mmm_dense(h_masked)))                       # (M, D)
        if table is None:
            return z @ self.token_embedding.weight.T + self.mmm_bias            # (M, V)
        return z @ table.rows.T + self.mmm_bias[table.ids]                      # (M, S)

    def token_rows(self) -> TokenRows:
        """The embedding rows of every seen id, gathered ONCE per training step. Every lookup of the step (both
        sides, every length bucket) and the "seen" MMM head read this (S, D) gather, so the backward writes
        one dense (V, D) gradient instead of one per lookup (~10% of a CPU step at tiny size)."""
        ids = self.token_seen.nonzero().squeeze(1)                              # (S,)
        index = torch.full((self.vocab_size,), -1, dtype=torch.long, device=self.device)
        index[ids] = torch.arange(len(ids), device=self.device)
        return TokenRows(ids, self.token_embedding.weight[ids], index)

    def _side(self, ids: torch.Tensor, uniform: torch.Tensor | None, table: TokenRows | None = None):
        """One side of a batch -> (embedding (B, D), summed MMM cross-entropy, number of masked tokens).

        fusion="early": the fused sequences as they are. fusion="score": each row's image tokens and text tokens
        run as two sequences of their own, every token keeping its mask draw (fuselip/score_fusion.py)."""
        if self.config.fusion == "early":
            return self._masked_side(ids, uniform, table)
        return score_fused_side(partial(self._masked_side, table=table), ids, uniform, self.embed_dim)

    def _masked_side(self, ids: torch.Tensor, uniform: torch.Tensor | None, table: TokenRows | None = None):
        """One side of a batch through the encoder, masked for MMM when `uniform` is given.

        Rows run in up to `length_buckets` groups of similar length, each trimmed to its own longest row: a side
        mixing short texts with image sequences then computes no image-length padding for the texts (every row's
        result is independent of the padding, fuselip/buckets.py). Returns (embedding (B, D), summed MMM
        cross-entropy, number of masked tokens)."""
        lengths = vocab.eot_positions(ids) + 1                                  # (B,)
        run = partial(self._masked_rows, table=table)
        return run_in_buckets(run, lengths, self.config.length_buckets, ids, uniform)

    def _masked_rows(self, ids: torch.Tensor, uniform: torch.Tensor | None, table: TokenRows | None):
        ids = self.trim(ids)
        if uniform is None:
            h, _, eot, _ = self.hidden_states(ids, table=table)
            zero = h.sum() * 0.0
            return self.pool(h, eot), zero, torch.zeros((), device=ids.device)
        mask = mmm_mask(ids, self.config.mmm_probability, uniform=uniform[:, :ids.shape[1]])  # (B, T)
        h, _, eot, _ = self.hidden_states(apply_mask(ids, mask), table=table)
        targets = ids[mask]                                                     # (M,)
        head_table = None
        if self.config.mmm_vocab == "seen":
            head_table = table if table is not None else self.token_rows()
            targets = head_table.index[targets]                                 # positions among the seen ids
        logits = self.mmm_logits(h[mask], head_table)                           # (M, V) or (M, S)
        return self.pool(h, eot), mmm_loss(logits, targets, reduction="sum"), mask.sum().float()

    # ------------------------------------------------------------------------------------------
    # engine protocol

    def forward_pairs(self, batch: dict, generator: torch.Generator | None = None):
        """A collated batch -> (left (B, D), right (B, D), aux).

        In training mode with mmm_probability > 0, both sides are masked and the same masked pass gives the
        contrastive embeddings (encoder.mmm_pass="shared"; "clean": a second, unmasked pass gives them).
        The mask of batch row r is drawn from uniforms of shape (rows_total, context) (left first, then right)
        taken at row `row_index[r]`: the engine sets these so that a DDP rank masks its rows exactly as a single
        process masks the same global batch.
        aux["mmm"] = (weight · Σ cross-entropy, number of masked tokens): the engine divides the sum by the
        count (over all ranks). With encoder.mmm_reduction="sides" (the reference code) each side has its own
        mean: aux["mmm_left"] and aux["mmm_right"], about twice the weight of one mean over both sides.
        """
        left_ids = batch["left_ids"].to(self.device)
        right_ids = batch["right_ids"].to(self.device)
        if self.training:
            self.mark_seen(left_ids)  # normally already recorded by prepare(); keeps compaction safe without it
            self.mark_seen(right_ids)
        if not (self.training and self.config.mmm_probability > 0):
            left, _, _ = self._side(left_ids, None)
            right, _, _ = self._side(right_ids, None)
            return left, right, {}
        B = left_ids.shape[0]
        rows = batch.get("row_index", torch.arange(B)).cpu()  # the uniforms are drawn on the CPU generator
        total = int(batch.get("rows_total", B))
        context = self.config.context_length
        uniforms = [torch.rand(total, context, generator=generator)[rows].to(self.device) for _ in range(2)]
        table = self.token_rows()
        left, ce_left, n_left = self._side(left_ids, uniforms[0], table)
        right, ce_right, n_right = self._side(right_ids, uniforms[1], table)
        if self.config.mmm_pass == "clean":  # the masked pass only trains MMM; the contrastive loss sees whole inputs
            left, _, _ = self._side(left_ids, None, table)
            right, _, _ = self._side(right_ids, None, table)
        weight = self.config.mmm_weight
        if self.config.mmm_reduction == "sides":  # the reference code: one mean per side, added
            return left, right, {"mmm_left": (weight * ce_left, n_left), "mmm_right": (weight * ce_right, n_right)}
        return left, right, {"mmm": (weight * (ce_left + ce_right), n_left + n_right)}

    def token_cache(self) -> TokenCache:
        """The image-token cache (fuselip.data.collate.TokenCache) of this model's tokenizer."""
        if self._token_cache is None:
            self._token_cache = TokenCache(self.tokenizer)
        return self._token_cache

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        if self._token_cache is not None and not self._token_cache.is_valid():
            self._token_cache = None  # the tokenizer's weights changed: cached codes are stale
        return result

    def collate(self, pairs) -> dict:
        return collate_pairs(pairs, self.token_cache(), self.config.context_length)

    def prepare(self, pairs) -> None:
        """Called once by the engine with the whole training set: tokenises every image once (cached) and
        records every id of the training data in `token_seen`."""
        cache = self.token_cache()
        cache.add_pairs(pairs)
        self.mark_seen(training_ids(pairs, cache, self.config.context_length))

    def mark_seen(self, ids: torch.Tensor) -> None:
        self.token_seen[ids.to(self.device).flatten()] = True

    # ------------------------------------------------------------------------------------------
    # the encode API (every model in the project speaks it)

    @torch.no_grad()
    def encode(self, images: Sequence[Image] | None = None, texts: Sequence[str | None] | None = None,
               batch_size: int = 256) -> torch.Tensor:
        """Embeds B samples, each (image or None, text or None) -> (B, D) float32 unit vectors.

        images: list of anything fuselip.images.preprocess takes (numpy HWC, PIL, path) or None per sample;
        texts: list of str or None. Either list may be None (that side missing for every sample), but each
        sample needs at least one of the two.
        """
        image_list, text_list = check_sides(images, texts)
        out = []
        for start in range(0, len(text_list), batch_size):
            chunk_images, chunk_texts = image_list[start:start + batch_size], text_list[start:start + batch_size]
            sequences = side_sequences(chunk_images, chunk_texts, self.token_cache(), self.config.context_length)
            out.append(self.encode_ids(vocab.pad_sequences(sequences)).cpu())
        return torch.cat(out)                                                   # (B, D)

    # ------------------------------------------------------------------------------------------
    # checkpoints

    def config_dict(self) -> dict:
        return {"encoder": to_dict(self.config), "tokenizer": to_dict(self.tokenizer.config),
                "tokenizer_checkpoint": self.tokenizer_checkpoint}

    @classmethod
    def from_config(cls, config: dict) -> "FuseLIP":
        """Builds the architecture (weights come from import_tensors); extra keys (e.g. "run") are ignored."""
        for key in ("encoder", "tokenizer"):
            if key not in config:
                raise CheckpointError(f"fuselip config has no {key!r} section")
        encoder = from_dict(FuseLIPConfig, config["encoder"], "encoder")
        tokenizer = build_tokenizer(from_dict(TokenizerConfig, config["tokenizer"], "tokenizer"))
        return cls(encoder, tokenizer, config.get("tokenizer_checkpoint", ""))

    def export_tensors(self) -> dict[str, torch.Tensor]:
        """The weights with the token table compacted to the rows of ids seen in training (fuselip/compaction.py)."""
        return export_fuselip(self)

    def import_tensors(self, tensors: dict[str, torch.Tensor], where: str = "") -> None:
        """Loads a compacted (export_tensors) or a full (state_dict) set of tensors."""
        import_fuselip(self, tensors, where)
        self._token_cache = None


def build_fuselip(config: RunConfig, tokenizer: Tokenizer | None = None) -> FuseLIP:
    """A FuseLIP for a run, reading images with `tokenizer` or else with the frozen tokenizer that
    `config.tokenizer_checkpoint` names: a checkpoint folder, or "untrained" (fuselip.tokenizers.load_tokenizer)."""
    if not isinstance(config.encoder, FuseLIPConfig):
        raise ConfigError(f"encoder.kind={config.encoder.kind!r} is a late-fusion baseline (train/train_baseline.py), "
                          f"not FuseLIP")
    if tokenizer is None:
        return FuseLIP(config.encoder, load_tokenizer(config.tokenizer_checkpoint, config.tokenizer),
                       config.tokenizer_checkpoint)
    return FuseLIP(config.encoder, tokenizer, config.tokenizer_checkpoint)
