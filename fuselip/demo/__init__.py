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

One concept per file, in the order they build on each other:
    errors.py config.py     DemoError; DemoConfig and the FUSELIP_* environment variables
    inputs.py               the user's image and text -> model inputs and notes
    registry.py             every model loaded once; untrained stand-ins; released models
    benchmark.py            example queries and the benchmark galleries
    galleries.py            the user's galleries: uploads, a server folder under the gallery root
    indexes.py              every gallery embedded once per model
    tokens_tab.py attention_tab.py search_tabs.py   each tab's view and how it is computed (search: retrieval, VQA)
    handlers.py             Demo: the state and one method per tab
"""
from fuselip.demo.attention_tab import FUNCTION_WORDS, AttentionView
from fuselip.demo.benchmark import Benchmark, Example
from fuselip.demo.config import (CHECKPOINTS_ENV, DEFAULT_CHECKPOINTS, DOWNLOAD_ENV, GALLERY_ROOT_ENV, MODEL_ENV,
                                 THREADS_ENV, UNTRAINED_ENV, DemoConfig)
from fuselip.demo.errors import DemoError
from fuselip.demo.galleries import folder_gallery, server_folder, upload_gallery
from fuselip.demo.handlers import Demo
from fuselip.demo.inputs import context_note, describe_image, read_image, read_text, unseen_note
from fuselip.demo.registry import MODEL_LABELS, ROLES, STAND_INS, Entry, Registry
from fuselip.demo.search_tabs import Answers, Column, Hit, RetrievalView, VQAView
from fuselip.demo.tokens_tab import TokensView

__all__ = ["Demo", "DemoConfig", "DemoError", "Registry", "Entry", "Benchmark", "Example",
           "read_image", "describe_image", "read_text", "unseen_note", "context_note",
           "upload_gallery", "server_folder", "folder_gallery",
           "TokensView", "AttentionView", "Hit", "Column", "RetrievalView", "Answers", "VQAView",
           "ROLES", "STAND_INS", "MODEL_LABELS", "FUNCTION_WORDS",
           "CHECKPOINTS_ENV", "MODEL_ENV", "DOWNLOAD_ENV", "UNTRAINED_ENV", "THREADS_ENV", "GALLERY_ROOT_ENV",
           "DEFAULT_CHECKPOINTS"]
