"""The app in a real browser: Debian's Chromium, headless, driven by Playwright (never a downloaded browser).

First view: the page opens with a worked example computed in every tab (nobody clicks anything); each tab's
output pictures must load (img elements with naturalWidth > 0) with no error toast, and that first view is
saved to docs/screenshots/ (the README shows them). Then, for each tab: click its first example, run it, and
check the same. Last, several images uploaded through the retrieval tab's multi-file input are searched.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1400, "height": 1000}
ERROR_TOAST = "[data-testid=toast-body].error"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium (/usr/bin/chromium) is not installed; "
                                                     "`make test` installs it with apt-get (needs root)"),
]

# tab label, element-id prefix, CSS of the output pictures that must render, how many of them at least
TABS = [
    ("1 · Image tokens", "tokens", "#tokens-picture img", 1),
    ("2 · Attention across modalities", "attention", "#attention-heatmap img", 1),
    ("3 · Fused-query retrieval", "retrieval", ".retrieval-results img", 3),
    ("4 · VQA probe", "vqa", ".vqa-answers .bar", 3),
]


@pytest.fixture(scope="module")
def page(app_server):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--headless", "--no-sandbox", "--disable-gpu",
                                          "--disable-background-networking"])
        page = browser.new_page(viewport=VIEWPORT)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(app_server.url)
        page.wait_for_selector("button[role=tab]", timeout=TIMEOUT_MS)
        page.js_errors = errors
        yield page
        browser.close()


def close_toasts(page) -> None:
    page.eval_on_selector_all("[data-testid=toast-close]", "els => els.forEach(e => e.click())")
    page.wait_for_function("() => !document.querySelector('[data-testid=toast-body]')", timeout=TIMEOUT_MS)


def loaded_images(page, selector: str) -> int:
    """How many <img> matched by `selector` have actually decoded (naturalWidth > 0)."""
    return page.eval_on_selector_all(selector, "els => els.filter(e => e.complete && e.naturalWidth > 0).length")


def wait_for_outputs(page, outputs: str, minimum: int) -> None:
    """Waits until `minimum` outputs matched by `outputs` have rendered (or an error toast shows), then checks
    that there is no error toast, no JavaScript error, and (pictures) that they decoded."""
    ready = (f"[...document.querySelectorAll({outputs!r})].filter(e => e.complete && e.naturalWidth > 0).length"
             if outputs.endswith("img") else f"document.querySelectorAll({outputs!r}).length")
    # wait for the outputs, or stop early at an error toast
    page.wait_for_function(f"() => {ready} >= {minimum} || document.querySelector('{ERROR_TOAST}')",
                           timeout=TIMEOUT_MS)
    page.wait_for_timeout(300)  # let a late toast appear, if any
    errors = page.locator(ERROR_TOAST)
    assert errors.count() == 0, errors.first.inner_text()
    if outputs.endswith("img"):
        assert loaded_images(page, outputs) >= minimum
    assert not page.js_errors, page.js_errors


@pytest.mark.parametrize("label,prefix,outputs,minimum", TABS, ids=[t[1] for t in TABS])
def test_first_view_shows_a_worked_example(page, label, prefix, outputs, minimum):
    """Before any click, every tab already shows its worked example's result (these run first, on the page as
    loaded)."""
    close_toasts(page)
    page.get_by_role("tab", name=label).click()
    wait_for_outputs(page, outputs, minimum)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{prefix}.png"), full_page=True)


@pytest.mark.parametrize("label,prefix,outputs,minimum", TABS, ids=[t[1] for t in TABS])
def test_tab_runs_an_example(page, label, prefix, outputs, minimum):
    """Click the tab's last example (not the worked example it opened on) and run it: new outputs replace the
    first view's."""
    close_toasts(page)  # a toast left by another tab is not this tab's
    page.get_by_role("tab", name=label).click()
    examples = page.locator(f"#{prefix}-examples")
    examples.wait_for(timeout=TIMEOUT_MS)
    signature = (f"() => [...document.querySelectorAll({outputs!r})]"
                 f".map(e => e.src || e.parentElement.innerText).join('|')")
    before = page.evaluate(signature)
    examples.locator("button.gallery-item, tbody tr").last.click()
    # the example's image reached the input component
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#{prefix}-examples')].length && "
        f"[...document.querySelectorAll('img')].some(e => e.src.includes('/file=') && e.naturalWidth > 0 "
        f"&& !e.closest('#{prefix}-examples'))", timeout=TIMEOUT_MS)
    page.locator(f"#{prefix}-run").click()
    page.wait_for_function(f"() => ({signature[6:]}) !== {json.dumps(before)} || document.querySelector('{ERROR_TOAST}')",
                           timeout=TIMEOUT_MS)
    wait_for_outputs(page, outputs, minimum)


def test_uploaded_images_are_searched(page, tmp_path, benchmark):
    """Three PNGs uploaded through the page (the multi-file input), "my images" chosen, Search: every model's
    column shows results from those three images."""
    from PIL import Image
    close_toasts(page)
    page.get_by_role("tab", name="3 · Fused-query retrieval").click()
    paths = []
    for i, (image, _) in enumerate(benchmark.scenes()[:3]):
        paths.append(str(tmp_path / f"upload_{i}.png"))
        Image.fromarray(image).save(paths[-1])
    page.get_by_label("my images (upload)").check()
    page.locator("#retrieval-uploads input[type=file]").set_input_files(paths)
    for i in range(3):  # each file listed in the input (Gradio labels the file-name cell with the name)
        page.locator(f'#retrieval-uploads td.filename[aria-label="upload_{i}.png"]').wait_for(timeout=TIMEOUT_MS)
    outputs = ".retrieval-results img"
    signature = f"() => [...document.querySelectorAll({outputs!r})].map(e => e.src).join('|')"
    before = page.evaluate(signature)
    page.locator("#retrieval-run").click()
    page.wait_for_function(f"() => ({signature[6:]}) !== {json.dumps(before)} || document.querySelector('{ERROR_TOAST}')",
                           timeout=TIMEOUT_MS)
    wait_for_outputs(page, outputs, 3)
    page.wait_for_function("() => document.body.innerText.split('3 gallery items').length > 3", timeout=TIMEOUT_MS)
