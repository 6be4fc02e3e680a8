"""The page: four tabs, their examples, and the wiring from components to fuselip.demo.Demo methods.

Every handler is `guarded`: a DemoError (bad input, missing model) becomes a gr.Error toast with its message,
any other exception becomes a gr.Error naming it (the server keeps running), and the notes a view returns
(odd but usable input) become gr.Warning toasts plus a line under the inputs. Events run with
preprocess=False (see `image_input`): handlers receive raw values (the image as an uploaded-file dict).
API names (for gradio_client): /tokens, /attention, /retrieve, /vqa, /status.
"""
from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import tempfile
import traceback
from pathlib import Path

import gradio as gr
import pandas as pd

from fuselip.demo import Demo, DemoError

log = logging.getLogger("fuselip.app")

CSS = """
.pixelated img { image-rendering: pixelated; }
.pixelated img:not([class*=icon]) { width: 100%; height: 100%; object-fit: contain; }
"""
GALLERIES = {"benchmark images": "images", "benchmark answers (texts)": "answers", "my images (upload)": "uploads",
             "a folder on the server": "folder"}  # the last only when the operator set FUSELIP_GALLERY_ROOT
INTRO = """# FuseLIP, early fusion, in small
One transformer reads **image tokens and text tokens together** ([FuseLIP](https://arxiv.org/abs/2506.03096)).
Tabs: how an image becomes tokens · how text and image tokens attend to each other · what a fused
(image + text) query retrieves under early fusion (FuseLIP) vs late fusion (SigLIP SF / MLF) · VQA answers ranked."""


def gallery_for(task: str) -> str:
    """The gallery a benchmark query of `task` is searched in (VQA targets are answers, the rest images)."""
    return "benchmark answers (texts)" if task == "vqa" else "benchmark images"


def image_input(label: str, value=None) -> gr.Image:
    """An upload box (showing `value`, a uint8 picture, on load: a tab's worked example). Its events run with preprocess=False: the handler gets the uploaded file as is and
    fuselip.demo.read_image decides what is usable, so a file that is not an image gets a readable message
    (Gradio's own preprocessing would fail first, with a generic one)."""
    return gr.Image(value=None if value is None else as_file(value), label=label, type="filepath", image_mode=None,
                    format="png", height=224, sources=["upload", "clipboard"], elem_classes=["pixelated"])


def picture(label: str, height: int = 224, elem_id: str | None = None) -> gr.Image:
    return gr.Image(label=label, format="png", interactive=False, height=height, elem_id=elem_id)


OUTPUT_DIR = Path(tempfile.gettempdir()) / "fuselip-app"


def as_file(image) -> str:
    """A picture (uint8 array) -> path of a PNG named by its content, written once and atomically.

    Handlers return paths rather than arrays: Gradio re-writes an array's cache file on every request
    (truncate, then write), so a client still downloading the same picture from an earlier request can get
    a truncated file (seen with 20 concurrent identical queries); a path is copied atomically, once.
    """
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    data = buffer.getvalue()
    path = OUTPUT_DIR / f"{hashlib.sha256(data).hexdigest()[:32]}.png"
    if not path.exists():
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=OUTPUT_DIR, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return str(path)


def guarded(fn):
    """Runs a handler; turns failures into messages, never into a dead server."""
    @functools.wraps(fn)
    def wrapper(*args):
        try:
            return fn(*args)
        except gr.Error:
            raise
        except DemoError as e:
            raise gr.Error(str(e)) from None
        except Exception as e:  # a bug: say so, log it, keep serving
            log.error("handler %s failed:\n%s", fn.__name__, traceback.format_exc())
            raise gr.Error(f"Unexpected error in {fn.__name__} ({type(e).__name__}: {e}). "
                           f"The app keeps running; the traceback is in the server log.") from None
    return wrapper


def show_notes(notes: list[str]) -> str:
    for note in notes:
        gr.Warning(note, duration=8)
    return "\n".join(f"⚠️ {n}" for n in notes)


def build(demo: Demo) -> gr.Blocks:
    """The whole page for one Demo (examples are generated here, models load lazily)."""
    with gr.Blocks(title="FuseLIP demo", analytics_enabled=False) as blocks:
        gr.Markdown(INTRO)
        missing = bool(demo.registry.missing)
        with gr.Accordion("Models" + (" (some are UNTRAINED stand-ins)" if missing else ""), open=missing):
            status = gr.Markdown(demo.registry.status())
        with gr.Tabs():
            with gr.Tab("1 · Image tokens", id="tokens"):
                _tokens_tab(demo, blocks)
            with gr.Tab("2 · Attention across modalities", id="attention"):
                _attention_tab(demo, blocks)
            with gr.Tab("3 · Fused-query retrieval", id="retrieval"):
                _retrieval_tab(demo, blocks)
            with gr.Tab("4 · VQA probe", id="vqa"):
                _vqa_tab(demo, blocks)
        status_button = gr.Button("refresh model status", size="sm", visible=False)
        status_button.click(lambda: demo.registry.status(), None, status, api_name="status")
    return blocks


# ---------------------------------------------------------------------------------------------
# tab 1


def _tokens_tab(demo: Demo, blocks: gr.Blocks) -> None:
    gr.Markdown("A discrete tokenizer turns the image into integer codes. **Grid** (VQ-VAE): one code per "
                "8×8-pixel cell. **TiTok**: 32 tokens not tied to a region; the influence maps show which pixels "
                "each token changes when it is replaced. A **released** TiTok (`FUSELIP_MODEL`): 128 tokens of a "
                "256-px image; its maps show where each token reads from.")
    names = demo.tokenizer_names()
    with gr.Row():
        with gr.Column(scale=1):
            tokenizer = gr.Dropdown(names, value=names[0] if names else None, label="tokenizer")
            scenes = demo.benchmark.scenes()
            image = image_input("image", scenes[0][0])  # the page opens on the first scene, tokenized
            run = gr.Button("Tokenize", variant="primary", elem_id="tokens-run")
            notes = gr.Markdown()
            gr.Examples([[img] for img, _ in scenes], inputs=[image], label="test scenes of both worlds",
                        examples_per_page=len(scenes), elem_id="tokens-examples")
        with gr.Column(scale=2):
            summary = gr.Markdown()
            with gr.Row():
                tokens = picture("tokens (code ids)", height=310, elem_id="tokens-picture")
                recon = picture("reconstruction (decode)", height=310)
                highlight = picture("tokens with the selected code", height=310)
            code = gr.Dropdown([], label="highlight a code", allow_custom_value=False)
            influence = gr.Gallery(label="TiTok: one map per token (pixels it changes when replaced; released "
                                         "TiTok: where it reads from)",
                                   columns=8, height=300, format="png", visible=False)

    @guarded
    def tokens_handler(tokenizer_name, image_file, selected_code):
        view = demo.tokens(tokenizer_name, image_file, selected_code)
        return (as_file(view.token_picture), as_file(view.reconstruction), as_file(view.highlight),
                gr.update(choices=view.code_choices, value=view.selected),
                gr.update(value=[(as_file(m), c) for m, c in view.influence], visible=bool(view.influence)),
                view.summary,
                show_notes(view.notes))

    outputs = [tokens, recon, highlight, code, influence, summary, notes]
    run.click(tokens_handler, [tokenizer, image, code], outputs, api_name="tokens", preprocess=False)
    blocks.load(tokens_handler, [tokenizer, image, code], outputs, api_visibility="private", preprocess=False)
    for control in (code, tokenizer):
        control.input(tokens_handler, [tokenizer, image, code], outputs, api_visibility="private",
                      preprocess=False)


# ---------------------------------------------------------------------------------------------
# tab 2


def _attention_tab(demo: Demo, blocks: gr.Blocks) -> None:
    gr.Markdown("FuseLIP feeds `[image tokens…, sot, words…, eot]` to one transformer. Pick a text token to see "
                "where it looks in the image, and how much attention crosses between the modalities per layer.")
    names = demo.fuselip_names()
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(names, value=names[0] if names else None, label="model")
            first = demo.benchmark.worked_example("attention")  # the page opens on it, with its attention shown
            image = image_input("image", first.image)
            text = gr.Textbox(first.text, label="text", placeholder="e.g. the red circle on the left", max_lines=3)
            with gr.Row():
                layer = gr.Dropdown(["mean"], value="mean", label="layer", allow_custom_value=True)
                head = gr.Dropdown(["mean"], value="mean", label="head", allow_custom_value=True)
            token = gr.Dropdown([], label="text token", allow_custom_value=True)
            run = gr.Button("Show attention", variant="primary", elem_id="attention-run")
            notes = gr.Markdown()
            examples = demo.benchmark.tab_examples("attention")
            gr.Examples([[e.image, e.text, f"{e.task} · {e.world}"] for e in examples],
                        inputs=[image, text, gr.Textbox(visible=False, label="example")], label="examples (test split)",
                        examples_per_page=len(examples), elem_id="attention-examples")
        with gr.Column(scale=2):
            summary = gr.Markdown()
            with gr.Row():
                heatmap = picture("attention of the text token over the image", height=260,
                                  elem_id="attention-heatmap")
                shares = gr.LinePlot(x="layer", y="share", color="direction", y_lim=[0, 1], height=260,
                                     title="share of attention that crosses modalities", x_title="layer",
                                     y_title="share")
            image_to_text = gr.BarPlot(x="token", y="attention", height=220, sort=None,
                                       title="image tokens' mean attention on each text token")
            per_token = gr.BarPlot(x="image token", y="attention", height=200, sort=None, visible=False,
                                   title="TiTok: the text token's attention on each image token")

    @guarded
    def attention_handler(model_name, image_file, text_value, layer_value, head_value, token_value):
        view = demo.attention(model_name, image_file, text_value, layer_value, head_value, token_value)
        return (as_file(view.heatmap), gr.update(choices=view.token_choices, value=view.token),
                gr.update(choices=view.layer_choices), gr.update(choices=view.head_choices),
                pd.DataFrame(view.shares, columns=["layer", "direction", "share"]),
                pd.DataFrame(view.image_to_text, columns=["token", "attention"]),
                gr.update(value=pd.DataFrame(view.per_token, columns=["image token", "attention"]),
                          visible=bool(view.per_token)),
                view.summary, show_notes(view.notes))

    inputs = [model, image, text, layer, head, token]
    outputs = [heatmap, token, layer, head, shares, image_to_text, per_token, summary, notes]
    run.click(attention_handler, inputs, outputs, api_name="attention", preprocess=False)
    blocks.load(attention_handler, inputs, outputs, api_visibility="private", preprocess=False)
    text.submit(attention_handler, inputs, outputs, api_visibility="private", preprocess=False)
    for control in (layer, head, token):
        control.input(attention_handler, inputs, outputs, api_visibility="private", preprocess=False)


# ---------------------------------------------------------------------------------------------
# tab 3


def _retrieval_tab(demo: Demo, blocks: gr.Blocks) -> None:
    cfg = demo.config
    gr.Markdown("A fused query (image + instruction) against a gallery. The gallery is every candidate of the "
                "test-set items (the targets and their hard negatives: all transformations, edits, crops of the "
                "same scene), or images you upload. Benchmark queries mark the correct item ✓.")
    choices = [name for name, which in GALLERIES.items() if which != "folder" or cfg.gallery_root]
    with gr.Row():
        with gr.Column(scale=1):
            first = demo.benchmark.worked_example("retrieval")  # the page opens on it, searched by every model
            image = image_input("query image", first.image)
            text = gr.Textbox(first.text, label="instruction", placeholder="e.g. rotate 90 degrees clockwise",
                              max_lines=3)
            gallery = gr.Radio(choices, value=gallery_for(first.task), label="search in")
            uploads = gr.File(file_count="multiple", file_types=["image"], type="filepath", elem_id="retrieval-uploads",
                              label="my images (for 'my images': select several at once)")
            folder = gr.Textbox(label="folder on the server (inside the gallery root the operator set)", max_lines=1,
                                visible=bool(cfg.gallery_root))
            k = gr.Slider(1, 12, value=cfg.top_k, step=1, label="top-k")
            run = gr.Button("Search", variant="primary", elem_id="retrieval-run")
            notes = gr.Markdown()
            examples = demo.benchmark.tab_examples("retrieval")
            rows = [[e.image, e.text, gallery_for(e.task), f"{e.task} · {e.world} · {e.kind}"] for e in examples]
            gr.Examples(rows,
                        inputs=[image, text, gallery, gr.Textbox(visible=False, label="example")], label="queries from the test split",
                        examples_per_page=len(examples), elem_id="retrieval-examples")
        with gr.Column(scale=3):
            summary = gr.Markdown()
            columns = []
            with gr.Row():
                for label, _ in demo.retrieval_models():
                    with gr.Column(min_width=200):
                        head = gr.Markdown(f"**{label}**")
                        results = gr.Gallery(label=label, columns=2, height=520, format="png", object_fit="contain",
                                             elem_classes=["retrieval-results"])
                        columns += [head, results]

    @guarded
    def retrieval_handler(image_file, text_value, gallery_value, k_value, folder_value, upload_files):
        view = demo.retrieve(image_file, text_value, GALLERIES.get(gallery_value, gallery_value), int(k_value),
                             folder_value or "", upload_files or [])
        out = []
        for column in view.columns:
            rank = f" · correct item at rank **{column.correct_rank}**" if column.correct_rank else ""
            hits = [(as_file(h.image), h.caption) for h in column.hits]
            out += [f"**{column.label}**{rank}  \n{column.message}", hits]
        return (*out, view.summary, show_notes(view.notes))

    inputs = [image, text, gallery, k, folder, uploads]
    outputs = columns + [summary, notes]
    run.click(retrieval_handler, inputs, outputs, api_name="retrieve", preprocess=False)
    blocks.load(retrieval_handler, inputs, outputs, api_visibility="private", preprocess=False)
    text.submit(retrieval_handler, inputs, outputs, api_visibility="private", preprocess=False)


# ---------------------------------------------------------------------------------------------
# tab 4


def _vqa_tab(demo: Demo, blocks: gr.Blocks) -> None:
    cfg = demo.config
    gr.Markdown("An image and a question → every candidate answer of the test set, ranked by each model "
                "(softmax over the answers at the model's learned temperature).")
    with gr.Row():
        with gr.Column(scale=1):
            first = demo.benchmark.worked_example("vqa")  # the page opens on it, answered by every model
            image = image_input("image", first.image)
            question = gr.Textbox(first.text, label="question", placeholder="e.g. what colour is the star?",
                                  max_lines=2)
            k = gr.Slider(1, 10, value=cfg.top_k, step=1, label="answers shown")
            run = gr.Button("Ask", variant="primary", elem_id="vqa-run")
            notes = gr.Markdown()
            examples = demo.benchmark.tab_examples("vqa")
            gr.Examples([[e.image, e.text, f"{e.kind} · {e.world}"] for e in examples],
                        inputs=[image, question, gr.Textbox(visible=False, label="example")], label="questions from the test split",
                        examples_per_page=len(examples), elem_id="vqa-examples")
        with gr.Column(scale=3):
            summary = gr.Markdown()
            outputs = []
            with gr.Row():
                for label, _ in demo.retrieval_models():
                    with gr.Column(min_width=200):
                        head = gr.Markdown(f"**{label}**")
                        answers = gr.Label(label=label, num_top_classes=10, elem_classes=["vqa-answers"])
                        outputs += [head, answers]

    @guarded
    def vqa_handler(image_file, question_value, k_value):
        view = demo.vqa(image_file, question_value, int(k_value))
        out = []
        for column in view.columns:
            rank = f" · correct answer at rank **{column.correct_rank}**" if column.correct_rank else ""
            out += [f"**{column.label}**{rank}  \n{column.message}", {a: p for a, p in column.ranked}]
        return (*out, view.summary, show_notes(view.notes))

    inputs, outputs = [image, question, k], outputs + [summary, notes]
    run.click(vqa_handler, inputs, outputs, api_name="vqa", preprocess=False)
    blocks.load(vqa_handler, inputs, outputs, api_visibility="private", preprocess=False)
    question.submit(vqa_handler, inputs, outputs, api_visibility="private", preprocess=False)
