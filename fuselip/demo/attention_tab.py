"""The attention tab: where a FuseLIP model's text tokens look in the image, per layer and head (fuselip.probe).

One probe run per (model, image, text) is kept (config.probe_cache of them), so changing the layer, head or token
costs nothing. fuselip.text is imported where it is used: it loads open_clip (seconds), which the app's cold start
leaves to the first request that needs it.
"""
from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from fuselip import viz, vocab
from fuselip.data.types import image_key
from fuselip.demo.config import DemoConfig
from fuselip.demo.errors import DemoError
from fuselip.demo.inputs import context_note, read_image, read_text, unseen_note
from fuselip.demo.registry import Registry
from fuselip.probe import probe

FUNCTION_WORDS = {"the", "a", "an", "on", "in", "of", "to", "is", "are", "what", "which", "how", "many", "and"}
# words the attention tab does not open on: their attention says little about where the text looks


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


class AttentionTab:
    """The attention tab (Demo.attention): view(model, image, text, layer, head, token) -> AttentionView."""

    def __init__(self, config: DemoConfig, registry: Registry):
        self.config = config
        self.registry = registry
        self._probes: OrderedDict = OrderedDict()
        self._probe_lock = threading.Lock()

    def _probe(self, model_key: str, array: np.ndarray | None, text: str):
        key = (model_key, image_key(array), text)
        with self._probe_lock:
            if key in self._probes:
                self._probes.move_to_end(key)
                return self._probes[key]
        result = probe(self.registry.fuselip(model_key), array, text)
        with self._probe_lock:
            self._probes[key] = result
            while len(self._probes) > self.config.probe_cache:
                self._probes.popitem(last=False)
        return result

    def view(self, model: str, image, text: str, layer: str | None = "mean", head: str | None = "mean",
             token: str | None = None) -> AttentionView:
        from fuselip.text import default_tokenizer  # open_clip: seconds to import, see the module docstring
        fuselip = self.registry.fuselip(model)
        tok = fuselip.tokenizer
        array, notes = read_image(image, tok.config.image_size, tok.resize_mode)
        text, text_notes = read_text(text, "text", self.config.max_text_chars)
        notes += text_notes
        if array is None:
            raise DemoError("The attention view needs an image (text alone has no image tokens to look at).")
        if not text:
            notes.append("The text is empty: the model sees the image followed by the empty text [sot, eot], "
                         "so only those two text tokens can be chosen.")
        room = fuselip.config.context_length - fuselip.tokenizer.num_tokens - 2
        notes += context_note(text, room, "text") + unseen_note(fuselip, text, "text")
        if fuselip.pad_id_is_padding and vocab.PAD in default_tokenizer().encode(text):
            notes.append('This released model treats "!" as padding, as its reference code does: the "!" tokens '
                         "receive no attention.")
        with warnings.catch_warnings():  # the same fact, already in the notes
            warnings.filterwarnings("ignore", message="token ids .* never occurred in training")
            p = self._probe(model, array, text)
        if fuselip.compacted:
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
