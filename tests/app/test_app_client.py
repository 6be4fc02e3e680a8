"""The real app server driven through gradio_client: every tab, every bad input, 20 concurrent retrievals.

Results are checked for what they must be whatever the weights (trained checkpoints or untrained stand-ins):
the shapes of what comes back, the benchmark queries recognised with their correct item ranked, the right
message for each bad input, and concurrent answers identical to sequential ones.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

EMOJI_TEXT = "rotate the 🐶 90 degrees clockwise 🙂"
RTL_TEXT = "סובב את התמונה ב-90 מעלות"  # Hebrew: "rotate the image by 90 degrees"
LONG_TEXT = ("make the red circle blue " * 500)[:10_000]


@pytest.fixture(scope="module")
def client(app_server):
    """Downloads the pictures it gets back (the tests that look at them use this one)."""
    return Client(app_server.url, verbose=False)


@pytest.fixture(scope="module")
def fast_client(app_server):
    """Leaves result pictures on the server (for the many requests that only check texts)."""
    return Client(app_server.url, verbose=False, download_files=False)


@pytest.fixture(scope="module")
def api(client):
    """Default choices for the dropdowns, read from the server's API description."""
    info = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/tokens", "/attention", "/retrieve", "/vqa", "/status"} <= set(info)

    def choices(endpoint, name):
        param = next(p for p in info[endpoint]["parameters"] if p["parameter_name"] == name)
        return param["python_type"]["type"]
    return {"tokenizers": re.findall(r"'([^']+)'", choices("/tokens", "tokenizer_name")),
            "models": re.findall(r"'([^']+)'", choices("/attention", "model_name"))}


@pytest.fixture(scope="module")
def queries(benchmark, tmp_path_factory):
    """One benchmark query per retrieval task and world, saved as PNG files."""
    d = tmp_path_factory.mktemp("queries")
    out = []
    for i, e in enumerate(benchmark.examples(["tgit", "edit", "position", "vqa", "crop"], per_task=1)):
        out.append((save_png(e.image, d / f"q{i}.png"), e.text, e.task))
    return out


def save_png(image: np.ndarray, path):
    Image.fromarray(image).save(path)
    return path


def gallery_of(task: str) -> str:
    return "benchmark answers (texts)" if task == "vqa" else "benchmark images"


def retrieve(client, path, text, task, k=4):
    return client.predict(handle_file(str(path)), text, gallery_of(task), k, "", None, api_name="/retrieve")


def assert_image_file(path) -> np.ndarray:
    image = np.asarray(Image.open(path))
    assert image.ndim == 3 and image.shape[0] > 0 and image.shape[1] > 0
    return image


# ---------------------------------------------------------------------------------------------
# every tab


def test_status_lists_models(client):
    status = client.predict(api_name="/status")
    assert "FuseLIP" in status and "SigLIP SF" in status and "SigLIP MLF" in status


def test_tokens_tab(client, api, queries):
    for tokenizer in api["tokenizers"]:
        out = client.predict(tokenizer, handle_file(str(queries[0][0])), None, api_name="/tokens")
        tokens, recon, highlight, code, influence, summary, notes = out
        for picture in (tokens, recon, highlight):
            assert_image_file(picture)
        assert code["choices"] and code["value"] == code["choices"][0][0]
        assert "distinct codes" in summary and notes == ""
        if "titok" in tokenizer:
            assert len(influence) > 1  # one influence map per token
        # choosing another code highlights other tokens
        other = code["choices"][-1][0]
        again = client.predict(tokenizer, handle_file(str(queries[0][0])), other, api_name="/tokens")
        assert again[3]["value"] == other


def test_attention_tab(client, api, queries):
    path, text, _ = queries[0]
    model = api["models"][0]
    out = client.predict(model, handle_file(str(path)), text, "mean", "mean", None, api_name="/attention")
    heatmap, token, layer, head, shares, image_to_text, per_token, summary, notes = out
    assert_image_file(heatmap)
    labels = [c[0] for c in token["choices"]]
    assert labels[0] == "0: <sot>" and labels[-1].endswith("<eot>") and len(labels) == len(text.split()) + 2
    n_layers = len(layer["choices"]) - 1
    rows = shares["data"]
    assert len(rows) == 3 * n_layers and all(0 <= r[2] <= 1 for r in rows)
    assert [r[0] for r in image_to_text["data"]] == [f"{i:02d} {l.split(': ')[1]}" for i, l in enumerate(labels)]
    # a chosen layer, head and token
    out = client.predict(model, handle_file(str(path)), text, "1", str(len(head["choices"]) - 1), labels[-1],
                         api_name="/attention")
    assert out[1]["value"] == labels[-1] and "layer 1" in out[7]


def test_retrieval_tab_marks_benchmark_answers(client, queries):
    for path, text, task in queries:
        out = retrieve(client, path, text, task)
        headers, galleries = out[0:6:2], out[1:6:2]
        summary = out[6]
        assert "Benchmark query" in summary, (task, summary)
        for header, gallery in zip(headers, galleries):
            rank = int(re.search(r"correct item at rank \*\*(\d+)\*\*", header).group(1))
            assert len(gallery) == 4 and all(g["caption"].startswith(f"#{i + 1} ") for i, g in enumerate(gallery))
            marked = [i for i, g in enumerate(gallery) if "✓ correct" in g["caption"]]
            assert marked == ([rank - 1] if rank <= 4 else []), (header, [g["caption"] for g in gallery])
            assert_image_file(gallery[0]["image"])


def test_vqa_tab(client, benchmark, tmp_path):
    example = benchmark.examples(["vqa"], per_task=1)[0]
    path = save_png(example.image, tmp_path / "vqa.png")
    out = client.predict(handle_file(str(path)), example.text, 5, api_name="/vqa")
    summary = out[6]
    assert "correct answer" in summary
    for header, label in zip(out[0:6:2], out[1:6:2]):
        assert re.search(r"correct answer at rank \*\*\d+\*\*", header)
        confidences = [c["confidence"] for c in label["confidences"]]
        assert len(confidences) == 5 and confidences == sorted(confidences, reverse=True)


# ---------------------------------------------------------------------------------------------
# bad input: a clear message, never a dead server

IMAGE_NOTES = {"huge": "large (6000×4000)", "rgba": "alpha channel", "gray": "grayscale", "one_pixel": "1×1 pixel"}


def test_image_that_is_not_an_image(fast_client, api, files, app_server):
    calls = {
        "/tokens": (api["tokenizers"][0], handle_file(str(files["not_image"])), None),
        "/attention": (api["models"][0], handle_file(str(files["not_image"])), "a star", "mean", "mean", None),
        "/retrieve": (handle_file(str(files["not_image"])), "a star", "benchmark images", 3, "", None),
        "/vqa": (handle_file(str(files["not_image"])), "what is it?", 3),
    }
    for endpoint, args in calls.items():
        with pytest.raises(AppError, match="not an image"):
            fast_client.predict(*args, api_name=endpoint)
    assert app_server.alive()


@pytest.mark.parametrize("name", list(IMAGE_NOTES))
def test_odd_images_work_with_a_note(fast_client, api, files, name, app_server):
    image = handle_file(str(files[name]))
    c, model = fast_client, api["models"][0]
    notes = [c.predict(api["tokenizers"][0], image, None, api_name="/tokens")[-1],
             c.predict(model, image, "the red circle", "mean", "mean", None, api_name="/attention")[-1],
             c.predict(image, "rotate 90 degrees clockwise", "benchmark images", 3, "", None,
                       api_name="/retrieve")[-1],
             c.predict(image, "what colour is the circle?", 3, api_name="/vqa")[-1]]
    for note in notes:
        assert IMAGE_NOTES[name] in note, note
    assert app_server.alive()


TEXTS = {"empty": ("", "empty"), "long": (LONG_TEXT, "10,000 characters"),
         "emoji": (EMOJI_TEXT, "outside plain English"), "rtl": (RTL_TEXT, "right-to-left")}


@pytest.mark.parametrize("name", list(TEXTS))
def test_odd_texts(fast_client, api, queries, name, app_server):
    text, expected = TEXTS[name]
    image = handle_file(str(queries[0][0]))
    out = fast_client.predict(api["models"][0], image, text, "mean", "mean", None, api_name="/attention")
    assert expected in out[-1]
    if name == "long":
        assert "fit the model's context" in out[-1]
    out = fast_client.predict(image, text, "benchmark images", 3, "", None, api_name="/retrieve")
    assert expected in out[-1] and len(out[1]) == 3
    if name == "empty":
        with pytest.raises(AppError, match="question is empty"):
            fast_client.predict(image, text, 3, api_name="/vqa")
    else:
        assert expected in fast_client.predict(image, text, 3, api_name="/vqa")[-1]
    assert app_server.alive()


def test_missing_inputs_are_explained(fast_client, api):
    with pytest.raises(AppError, match="needs an image"):
        fast_client.predict(api["models"][0], None, "a star", "mean", "mean", None, api_name="/attention")
    with pytest.raises(AppError, match="query is empty"):
        fast_client.predict(None, "", "benchmark images", 3, "", None, api_name="/retrieve")
    # no gallery root set (the default): no folder of the server can be searched, whatever the path
    for path in ("/etc", "/no/such/folder", "checkpoints"):
        with pytest.raises(AppError, match="has not set FUSELIP_GALLERY_ROOT"):
            fast_client.predict(None, "a star", "a folder on the server", 3, path, None, api_name="/retrieve")
    with pytest.raises(AppError, match="Upload some images"):
        fast_client.predict(None, "a star", "my images (upload)", 3, "", None, api_name="/retrieve")


def test_uploaded_gallery(fast_client, tmp_path, benchmark):
    scenes = benchmark.scenes()
    uploads = [handle_file(str(save_png(image, tmp_path / f"scene_{i}.png"))) for i, (image, _) in enumerate(scenes)]
    (tmp_path / "readme.txt").write_text("not an image, skipped")
    uploads.append(handle_file(str(tmp_path / "readme.txt")))
    out = fast_client.predict(uploads[0], "", "my images (upload)", 3, "", uploads, api_name="/retrieve")
    assert all(len(g) == 3 for g in out[1:6:2]) and f"{len(scenes)} gallery items" in out[0]
    assert "Skipped 1 file" in out[-1] and "readme.txt" in out[-1]


# ---------------------------------------------------------------------------------------------
# concurrency


def test_twenty_concurrent_retrievals_match_sequential(client, queries):
    """20 requests at once (each query 4 times), pictures downloaded as a browser would: every answer equals
    the sequential answer to the same query, down to the bytes of each result picture."""
    def answer(result):
        headers, galleries = result[0:6:2], result[1:6:2]
        return (list(headers), [[(g["caption"], hashlib.sha256(Path(g["image"]).read_bytes()).hexdigest())
                                 for g in gallery] for gallery in galleries])

    k = 2
    expected = [answer(retrieve(client, path, text, task, k)) for path, text, task in queries]
    jobs = []
    for i in range(20):
        path, text, task = queries[i % len(queries)]
        jobs.append((i % len(queries), client.submit(handle_file(str(path)), text, gallery_of(task), k, "", None,
                                                     api_name="/retrieve")))
    for q, job in jobs:
        assert answer(job.result(timeout=120)) == expected[q]
