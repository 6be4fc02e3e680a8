"""Attention across modalities: how image tokens and text tokens look at each other inside FuseLIP.

FuseLIP feeds `[img_1 … img_N, sot, t_1 … t_k, eot]` to one bidirectional transformer, so every layer has
an attention matrix A (T × T, rows = queries, each row sums to 1) that mixes both modalities. This module
reads those matrices (from `FuseLIP.encode_ids(ids, return_attention=True)`: one (B, H, T, T) tensor per
layer) and answers the questions the app and the notebooks ask:

- `cross_modal_share`: per layer and head, how much of its attention a text token spends on image tokens
  (text → image) and an image token on text tokens (image → text); `uniform_share` is what attention that
  ignored content would give (keys counted, nothing learned), the line to compare against.
- `text_to_image`: the attention of one chosen text token over the N image tokens, then as a picture:
  `grid_map` (grid tokenizer: token i is cell i of a g×g grid, row by row) or `influence_map` (TiTok: a
  token is not tied to a region, so each token's weight is spread over the pixels it influences).
- `image_to_text`: how much the image tokens attend to each text token.

Everything here is a pure function on tensors, except `probe(model, image, text)`, which runs the model once
and returns a `Probe` holding the ids, the readable token labels and the stacked attention (L, H, T, T).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from fuselip import vocab
from fuselip.contract import Image, Tokenizer
from fuselip.losses import apply_mask
from fuselip.text import default_tokenizer
from fuselip.tokenizers.grid import GridTokenizer
from fuselip.vocab import token_label

if TYPE_CHECKING:
    from fuselip.model import FuseLIP


# ---------------------------------------------------------------------------------------------
# which position holds what


@dataclass(frozen=True)
class Layout:
    """Masks over the T positions of ONE sequence."""
    image: torch.Tensor   # (T,) bool: image tokens
    text: torch.Tensor    # (T,) bool: sot, text tokens, eot
    real: torch.Tensor    # (T,) bool: everything up to and including eot (not padding)

    @property
    def num_image(self) -> int:
        return int(self.image.sum())

    @property
    def num_text(self) -> int:
        return int(self.text.sum())


def layout(ids: torch.Tensor) -> Layout:
    """(T,) ids of one sequence -> where its image and text tokens are.

    Positions after the eot are padding (the pad id 0 is also the BPE token "!", so padding is found from
    the eot position, as the model does).
    """
    ids = torch.as_tensor(ids)
    if ids.ndim != 1:
        raise ValueError(f"layout takes the ids of one sequence, shape (T,), got {tuple(ids.shape)}")
    eot = int(vocab.eot_positions(ids[None])[0])
    real = torch.arange(len(ids)) <= eot
    image = vocab.is_image(ids) & real
    return Layout(image=image, text=real & ~image, real=real)


def stack_attentions(attentions: Sequence[torch.Tensor] | torch.Tensor, sample: int = 0) -> torch.Tensor:
    """Per-layer attention of a batch (list of L tensors (B, H, T, T), or (L, B, H, T, T)) -> (L, H, T, T)
    float32 for one sample of the batch."""
    a = torch.stack(list(attentions)) if not isinstance(attentions, torch.Tensor) else attentions
    if a.ndim != 5 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"expected per-layer attention (L, B, H, T, T), got {tuple(a.shape)}")
    return a[:, sample].detach().float().cpu()                       # (L, H, T, T)


def select(attention: torch.Tensor, layer: int | None = None, head: int | None = None) -> torch.Tensor:
    """(L, H, T, T) -> (T, T): one layer (or the mean over layers) and one head (or the mean over heads).

    A mean of row-stochastic matrices is row-stochastic, so rows still sum to 1.
    """
    L, H = attention.shape[:2]
    if layer is not None and not -L <= layer < L:
        raise ValueError(f"layer {layer} out of range: the model has {L} layers (0..{L - 1})")
    if head is not None and not -H <= head < H:
        raise ValueError(f"head {head} out of range: the model has {H} heads (0..{H - 1})")
    a = attention[layer][None] if layer is not None else attention  # (L', H, T, T)
    a = a[:, head][:, None] if head is not None else a              # (L', H', T, T)
    return a.mean(dim=(0, 1))                                       # (T, T)


# ---------------------------------------------------------------------------------------------
# cross-modal attention


@dataclass
class Shares:
    """Attention mass that crosses modalities, per layer and head, each value in [0, 1]."""
    text_to_image: torch.Tensor   # (L, H): mean over text queries of the attention on image keys
    image_to_text: torch.Tensor   # (L, H): mean over image queries of the attention on text keys
    uniform_text_to_image: float  # what uniform attention would give: N_image / T_real
    uniform_image_to_text: float  # N_text / T_real

    def per_layer(self) -> dict[str, list[float]]:
        """Means over heads, one value per layer (what the app plots)."""
        return {"text → image": self.text_to_image.mean(dim=1).tolist(),
                "image → text": self.image_to_text.mean(dim=1).tolist()}


def cross_modal_share(attention: torch.Tensor, ids: torch.Tensor) -> Shares:
    """(L, H, T, T) attention of one sequence + its (T,) ids -> `Shares`.

    A side without an image (or without words) has no cross-modal attention: that direction is all zeros.
    """
    lay = layout(ids)
    on_image = attention[..., lay.image].sum(dim=-1)                 # (L, H, T): mass each query puts on images
    on_text = attention[..., lay.text].sum(dim=-1)                   # (L, H, T)
    L, H = attention.shape[:2]
    zeros = torch.zeros(L, H)
    t2i = on_image[..., lay.text].mean(dim=-1) if lay.num_text and lay.num_image else zeros
    i2t = on_text[..., lay.image].mean(dim=-1) if lay.num_image and lay.num_text else zeros
    n_real = int(lay.real.sum())
    return Shares(t2i.clamp(0, 1), i2t.clamp(0, 1), lay.num_image / n_real, lay.num_text / n_real)


def text_to_image(attention: torch.Tensor, ids: torch.Tensor, text_index: int,
                  renormalise: bool = False) -> torch.Tensor:
    """(T, T) attention (one layer/head, see `select`) -> (N,) attention of the `text_index`-th text token
    (0 = sot, −1 = eot) over the N image tokens, in image-token order.

    The raw weights sum to the share this token spends on the image (≤ 1); `renormalise=True` rescales them
    to sum to 1 (only where the image is looked at; what matters then is *where*, not *how much*).
    """
    lay = layout(ids)
    text_positions = lay.text.nonzero().squeeze(1)
    if not -len(text_positions) <= text_index < len(text_positions):
        raise ValueError(f"text token {text_index} out of range: this sequence has {len(text_positions)} "
                         f"text tokens (sot, words, eot)")
    row = attention[text_positions[text_index]]                      # (T,)
    weights = row[lay.image]                                         # (N,)
    if renormalise:
        weights = weights / weights.sum().clamp_min(torch.finfo(weights.dtype).tiny)
    return weights


def image_to_text(attention: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(T, T) attention -> (N, K): the attention of each image token (rows) on each text token (columns, sot
    … eot). `.mean(0)` gives how much the image as a whole attends to each text token."""
    lay = layout(ids)
    return attention[lay.image][:, lay.text]                         # (N, K)


# ---------------------------------------------------------------------------------------------
# token weights -> pictures


def grid_map(weights: torch.Tensor, grid: int) -> torch.Tensor:
    """(N,) weights of a grid tokenizer's tokens -> (grid, grid) map (tokens are stored row by row)."""
    weights = torch.as_tensor(weights).float().reshape(-1)
    if weights.numel() != grid * grid:
        raise ValueError(f"{weights.numel()} token weights cannot fill a {grid}×{grid} grid")
    return weights.reshape(grid, grid)                               # (g, g)


def influence_map(weights: torch.Tensor, influence: torch.Tensor) -> torch.Tensor:
    """(N,) token weights + (N, S, S) per-token influence maps -> (S, S) pixel map.

    Each token's influence is normalised to sum to 1 over the pixels, then spread with the token's weight:
    the map's total equals the total weight, and a token that controls a large area spreads its weight thin.
    """
    weights = torch.as_tensor(weights).float().reshape(-1)
    influence = torch.as_tensor(influence).float()
    if influence.ndim != 3 or influence.shape[0] != weights.numel():
        raise ValueError(f"need (N, S, S) influence maps for {weights.numel()} tokens, got {tuple(influence.shape)}")
    per_token = influence / influence.sum(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    return torch.einsum("n,nhw->hw", weights, per_token)             # (S, S)


# ---------------------------------------------------------------------------------------------
# one model run


@dataclass
class Probe:
    """Everything the attention views need about one (image, text) input."""
    ids: torch.Tensor                 # (T,) joint-vocabulary ids
    attention: torch.Tensor           # (L, H, T, T) float32
    image: np.ndarray | None          # (S, S, 3) uint8: the image as the model saw it
    codes: torch.Tensor | None        # (N,) image-tokenizer codes
    text_labels: list[str]            # one label per text token: "<sot>", words…, "<eot>"
    tokenizer_kind: str               # "grid" | "titok"
    grid: int | None                  # g for a grid tokenizer (N = g²), else None
    truncated: bool                   # the text did not fit the context and was cut
    _tokenizer: Tokenizer | None = field(default=None, repr=False)
    _influence: torch.Tensor | None = field(default=None, repr=False)

    @property
    def layers(self) -> int:
        return self.attention.shape[0]

    @property
    def heads(self) -> int:
        return self.attention.shape[1]

    def select(self, layer: int | None = None, head: int | None = None) -> torch.Tensor:
        return select(self.attention, layer, head)

    def shares(self) -> Shares:
        return cross_modal_share(self.attention, self.ids)

    def influence(self) -> torch.Tensor:
        """(N, h, w) map of each image token (computed once): for our tokenizers its influence on the pixels (by
        decoding N variants), for the released TiTok where it reads from (tokenizer.token_maps)."""
        if self._influence is None:
            if self._tokenizer is None or self.image is None or self.codes is None:
                raise ValueError("this probe has no image: its text has no image tokens to map")
            self._influence = self._tokenizer.token_maps(self.image, self.codes).float().cpu()
        return self._influence

    def text_map(self, text_index: int, layer: int | None = None, head: int | None = None,
                 renormalise: bool = True) -> torch.Tensor:
        """The chosen text token's attention as a picture: (g, g) for a grid tokenizer, (S, S) for TiTok."""
        weights = text_to_image(self.select(layer, head), self.ids, text_index, renormalise)
        if self.grid is not None:
            return grid_map(weights, self.grid)
        return influence_map(weights, self.influence())

    def text_weights(self, text_index: int, layer: int | None = None, head: int | None = None) -> torch.Tensor:
        """(N,) raw attention of a text token over the image tokens (TiTok: shown as per-token bars)."""
        return text_to_image(self.select(layer, head), self.ids, text_index)

    def image_to_text(self, layer: int | None = None, head: int | None = None) -> torch.Tensor:
        """(K,) mean attention of the image tokens on each text token."""
        return image_to_text(self.select(layer, head), self.ids).mean(dim=0)


def text_labels(ids: torch.Tensor) -> list[str]:
    """Readable label per text position of one sequence: "<sot>", the BPE pieces, "<eot>"."""
    lay = layout(ids)
    labels = []
    for token in ids[lay.text].tolist():
        if token == vocab.SOT:
            labels.append("<sot>")
        elif token == vocab.EOT:
            labels.append("<eot>")
        else:
            labels.append(default_tokenizer().token_strings([token])[0])
    return labels


@torch.no_grad()
def probe(model: FuseLIP, image: Image | None, text: str | None) -> Probe:
    """Runs FuseLIP once on (image, text) with attention kept. `image`: anything fuselip.images.preprocess
    takes, or None; `text`: a string (may be empty when there is an image)."""
    if image is None and not text:
        raise ValueError("probe needs an image, a text, or both")
    tokenizer = model.tokenizer
    array = tokenizer.prepare(image) if image is not None else None
    codes = model.token_cache().lookup([array])[0] if array is not None else None
    words = default_tokenizer().encode(text) if text else []
    context = model.config.context_length
    sequence = vocab.build_sequence(codes, words, context)
    truncated = len(sequence) - (len(codes) if codes is not None else 0) - 2 < len(words)
    ids = vocab.pad_sequences([sequence])                            # (1, T)
    _, attentions = model.encode_ids(ids, return_attention=True)
    ids = ids[0, :attentions[0].shape[-1]].cpu()                     # (T,) as trimmed by the model
    kind = tokenizer.config.kind
    return Probe(ids=ids, attention=stack_attentions(attentions), image=array,
                 codes=torch.as_tensor(np.asarray(codes)).long() if codes is not None else None,
                 text_labels=text_labels(ids), tokenizer_kind=kind,
                 grid=tokenizer.grid_size if isinstance(tokenizer, GridTokenizer) else None,
                 truncated=truncated, _tokenizer=tokenizer)


# ---------------------------------------------------------------------------------------------
# what the masked-modelling head predicts (notebook 04)


@torch.no_grad()
def masked_predictions(model: FuseLIP, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(T,) ids of one sequence + (T,) bool mask -> (M, V) log-probabilities of FuseLIP's MMM head over the joint
    vocabulary at the M masked positions (in position order), the masked ids having been replaced by [MASK].

    This is the training-time computation (fuselip/model.py `_masked_side`) with a mask of your choice. With
    `mmm_vocab="seen"` the head was trained as a softmax over the ids seen in training only, so every other id
    gets probability 0 (log-probability -inf). `eot` and padding cannot be masked.
    """
    ids = torch.as_tensor(ids).long().reshape(-1)
    mask = torch.as_tensor(mask, dtype=torch.bool).reshape(-1)
    if mask.shape != ids.shape:
        raise ValueError(f"mask {tuple(mask.shape)} and ids {tuple(ids.shape)} must have the same length")
    lay = layout(ids)
    if bool((mask & ~lay.real).any()) or bool((mask & (ids == vocab.EOT)).any()):
        raise ValueError("only real tokens before eot can be masked (eot holds the embedding; padding is no token)")
    if not bool(mask.any()):
        raise ValueError("the mask selects no token")
    masked = model.trim(apply_mask(ids, mask)[None].to(model.device))              # (1, T')
    h, _, _, _ = model.hidden_states(masked)                                       # (1, T', D)
    states = h[0, mask[:masked.shape[1]].to(model.device)]                         # (M, D)
    if model.config.mmm_vocab == "seen":
        table = model.token_rows()                                                 # the seen ids and their rows
        logits = torch.full((states.shape[0], model.vocab_size), float("-inf"), device=states.device)
        logits[:, table.ids] = model.mmm_logits(states, table).float()
    else:
        logits = model.mmm_logits(states).float()                                  # (M, V)
    return logits.log_softmax(dim=-1).cpu()


@dataclass(frozen=True)
class MaskedWord:
    """What the MMM head guesses for one masked word of a query, with the query's image and without it."""
    text: str                                   # the query with the masked word written as [MASK]
    answer: str                                 # the word that was masked (one BPE token)
    top: dict[str, list[tuple[str, float]]]     # "with image" / "text only" -> the k best (token, probability)
    p_answer: dict[str, float]                  # "with image" / "text only" -> probability of the answer
    pick: dict[str, str]                        # "with image" / "text only" -> the likeliest of `candidates`


@torch.no_grad()
def masked_word(model: FuseLIP, image: Image | None, text: str, word: str, candidates: Sequence[str] = (),
                k: int = 5) -> MaskedWord:
    """Masks `word` (one BPE token of `text`; its first occurrence) in the query (image, text) and in the text
    alone, and reads FuseLIP's MMM head at that position both times (`masked_predictions`). `candidates`: the
    words the answer is one of (e.g. every shape name); `pick` is the likeliest of them, so that a guess can be
    scored against chance = 1 / len(candidates)."""
    bpe = default_tokenizer()
    words = bpe.encode(text)
    pieces = bpe.token_strings(words)
    if word not in pieces:
        raise ValueError(f"{word!r} is not one BPE token of {text!r} (its tokens: {pieces})")
    position = pieces.index(word)
    candidate_ids = []
    for c in candidates:
        pieces_of_c = bpe.encode(c)
        if len(pieces_of_c) != 1:
            raise ValueError(f"candidate {c!r} is {len(pieces_of_c)} BPE tokens; only one-token words can be "
                             "compared")
        candidate_ids.append(pieces_of_c[0])
    codes = model.token_cache().lookup([model.tokenizer.prepare(image)])[0] if image is not None else None
    top, p_answer, pick = {}, {}, {}
    for name, image_codes in (("with image", codes), ("text only", None)):
        ids = torch.tensor(vocab.build_sequence(image_codes, words, model.config.context_length))
        mask = torch.zeros_like(ids, dtype=torch.bool)
        mask[(len(image_codes) if image_codes is not None else 0) + 1 + position] = True    # after image and sot
        probs = masked_predictions(model, ids, mask)[0].exp()                                 # (V,)
        best = probs.topk(k)
        top[name] = [(token_label(int(i)), float(v)) for v, i in zip(best.values, best.indices)]
        p_answer[name] = float(probs[words[position]])
        if candidate_ids:
            pick[name] = list(candidates)[int(probs[candidate_ids].argmax())]
    shown = " ".join("[MASK]" if i == position else p for i, p in enumerate(pieces))
    return MaskedWord(text=shown, answer=word, top=top, p_answer=p_answer, pick=pick)


def masked_word_scores(results: Sequence[MaskedWord], n_candidates: int) -> dict:
    """Over many `masked_word` results: per condition the % of items whose pick among the candidates is the
    answer and the mean probability of the answer; `chance` = 100 / n_candidates (%)."""
    conditions = list(results[0].top) if results else []
    return {"items": len(results), "chance": 100.0 / n_candidates,
            "pick_right": {c: 100.0 * float(np.mean([r.pick[c] == r.answer for r in results])) for c in conditions},
            "p_answer": {c: float(np.mean([r.p_answer[c] for r in results])) for c in conditions}}


def object_cells(image: np.ndarray, grid: int, background: int = 240) -> torch.Tensor:
    """(H, W, 3) uint8 image on a white background -> (grid * grid,) bool, row by row: the cells of a grid
    tokenizer that hold any pixel darker than `background` in every channel's minimum (i.e. part of an object)."""
    image = np.asarray(image)
    cell = image.shape[0] // grid
    ink = image[:cell * grid, :cell * grid].min(axis=-1) < background                  # (H, W) not background
    return torch.from_numpy(ink.reshape(grid, cell, grid, cell).any(axis=(1, 3)).reshape(-1))


@torch.no_grad()
def fill_masked_cells(model: FuseLIP, image: Image, text: str, hidden) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks the image tokens selected by `hidden` ((N,) bool) in the query (image, text) (`text` may be empty:
    the image alone) and lets FuseLIP's MMM head fill them in: -> (codes (N,), filled (N,)), the image's codes and
    the same with each hidden one replaced by the head's likeliest image code. `tokenizer.decode(filled[None])`
    draws what the head predicts."""
    codes = torch.as_tensor(model.token_cache().lookup([model.tokenizer.prepare(image)])[0]).long().reshape(-1)
    hidden = torch.as_tensor(hidden, dtype=torch.bool).reshape(-1)
    if hidden.shape != codes.shape:
        raise ValueError(f"hidden has {hidden.numel()} entries for {codes.numel()} image tokens")
    words = default_tokenizer().encode(text) if text else []
    ids = torch.tensor(vocab.build_sequence(codes.tolist(), words, model.config.context_length))
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:len(codes)] = hidden
    logp = masked_predictions(model, ids, mask)                                      # (M, V)
    filled = codes.clone()
    filled[hidden] = logp[:, vocab.IMAGE_OFFSET:].argmax(dim=-1)                     # best image code per cell
    return codes, filled
