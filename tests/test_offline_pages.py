"""An executed notebook's HTML page, opened in a headless Chromium with every network request
refused: its math renders with the local MathJax in the fonts that copy ships, and its widget and
progress outputs show as text, with nothing asked of the network. Skips without Chromium and
Playwright unless ``EYEGEN_REQUIRE_BROWSER=1`` (as in .ci/run)."""
from __future__ import annotations

import os

import nbformat
import pytest

from eyegen_lib.suite.notebook_html import NO_STATIC_FORM, export_html, static_outputs

from .browser_support import CHROMIUM, CHROMIUM_ARGS, INSTALL_HINT, browser_missing

WIDGET = "application/vnd.jupyter.widget-view+json"


def executed_notebook():
    """What an executed notebook holds: math with accents, a tqdm bar (widget view + its text line),
    an interact control (widget view + its repr), and the figure that control drew."""
    bar = nbformat.v4.new_output("display_data", data={
        WIDGET: {"model_id": "m1", "version_major": 2, "version_minor": 0},
        "text/plain": "training: 100%|██████████| 30/30 [00:04<00:00, 7.1it/s]"})
    control = nbformat.v4.new_output("display_data", data={
        WIDGET: {"model_id": "m2", "version_major": 2, "version_minor": 0},
        "text/plain": "interactive(children=(FloatSlider(value=0.0, description='yaw'), Output()))"})
    code = nbformat.v4.new_code_cell("train()", outputs=[bar, control], execution_count=1)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("The generator's loss: $-D(\\hat{x}_t) + \\lambda \\lVert \\hat x - x \\rVert_1$"),
        code])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    return nb


def test_widget_outputs_become_their_static_text():
    nb = static_outputs(executed_notebook())
    bar, control = nb.cells[1].outputs
    assert "widgets" not in nb.metadata and WIDGET not in bar.data and WIDGET not in control.data
    assert bar.data["text/plain"].startswith("training: 100%") and control.data["text/plain"] == NO_STATIC_FORM


def test_a_page_needs_no_network_for_math_and_widget_outputs(tmp_path):
    why = browser_missing()
    if why is not None:
        if os.environ.get("EYEGEN_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{why}: {INSTALL_HINT}", pytrace=False)
        pytest.skip(f"{why}: {INSTALL_HINT}")
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(executed_notebook(), folder / "97_demo.ipynb")
    page_path = export_html(folder / "97_demo.ipynb")
    html = page_path.read_text()
    assert "require.js" not in html and "embed-amd" not in html and "cdn" not in html.lower()
    size = sum(p.stat().st_size for p in (folder / "mathjax").rglob("*") if p.is_file())
    assert size < 4e6, f"the MathJax copy is {size / 1e6:.1f} MB: only the parts a page loads belong there"

    asked = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()

            def refuse_network(route):
                if not route.request.url.startswith("file://"):
                    asked.append(route.request.url)
                    return route.abort()
                return route.continue_()
            page.route("**/*", refuse_network)
            page.goto(page_path.as_uri())
            page.wait_for_function("window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                                   "&& document.querySelectorAll('.MathJax').length > 0", timeout=60_000)
            font = page.evaluate("MathJax.OutputJax['HTML-CSS'].fontInUse")
            text = page.inner_text("body")
            raw_math = page.evaluate("document.body.innerText.includes('\\\\hat')")
        finally:
            browser.close()
    assert asked == [], f"the page asked the network for {asked}"
    assert font == "STIX-Web", f"MathJax drew with {font!r}, not the STIX-Web fonts its local copy ships"
    assert not raw_math, "math left as raw LaTeX"
    assert "training: 100%" in text and NO_STATIC_FORM in text
