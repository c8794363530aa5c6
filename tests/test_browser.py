"""The notebooks' interactive widgets, checked in a real browser.

A JupyterLab server starts on localhost (token, free port) serving a temporary copy of
notebooks/, with the kernels under the ``smoke`` profile (``EYEGEN_PROFILE=smoke``, a throw-away
``EYEGEN_OUTPUT_DIR``, this environment's python first on PATH, as ``eyegen run`` does). A headless
Debian Chromium, driven by Playwright, then does what a person would, for each notebook checked:

* opens it, clears the committed outputs and runs Run > Run All Cells, waiting until every code cell
  has an execution count and the kernel is idle;
* moves an ipywidgets slider with the keyboard and changes a second control (a dropdown, or the
  toggle buttons where the notebook has no dropdown), and checks after each change that the image in
  the output belonging to those widgets is a different image;
* asserts that no cell, widget output or kernel log shows a traceback, and that the browser console
  shows no error and the page raised no exception.

Screenshots (the whole page, and the widgets' output before and after each change) go to
``$EYEGEN_SCREENSHOT_DIR``, else build/browser-screenshots/.

Needs /usr/bin/chromium (Debian: apt-get install chromium chromium-driver) and Playwright for
Python (the ``test`` extra); without them the tests skip, unless ``EYEGEN_REQUIRE_BROWSER=1`` (as in
.ci/run), which makes them fail instead.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
import time
from pathlib import Path

import pytest

from .browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    INSTALL_HINT,
    KERNEL_START_TIMEOUT_S,
    JupyterServer,
    browser_missing,
    copy_notebooks,
    error_texts,
    notebook_state,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
RUN_ALL_ATTEMPTS = 3  # Run All issued again when a loaded machine's JupyterLab drops it (see Page.run_all)
# Run All under smoke on two idle cores: 01 about 10 s, 05 about 50 s (140 s while other jobs ran)
RUN_ALL_TIMEOUT_S = 900
WIDGET_TIMEOUT_S = 180  # one redraw after a widget change
PAGE_TIMEOUT_MS = 60_000  # Playwright's own waits (clicks, selectors)

# Console messages of type "error" that say nothing about the notebooks or the widgets:
BENIGN_CONSOLE = [
    # the browser asks for /favicon.ico on its own; a missing one is not an error of the page
    re.compile(r"favicon\.ico"),
]


def _require_browser() -> None:
    why = browser_missing()
    if why is None:
        return
    if os.environ.get("EYEGEN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{why}, and EYEGEN_REQUIRE_BROWSER=1 asks for the browser tests: {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"{why}: {INSTALL_HINT} (EYEGEN_REQUIRE_BROWSER=1 makes this a failure)")


@pytest.fixture(scope="module")
def screenshot_dir() -> Path:
    folder = Path(os.environ.get("EYEGEN_SCREENSHOT_DIR") or REPO / "build" / "browser-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jupyter")
    env = dict(os.environ)
    env.update(
        EYEGEN_PROFILE="smoke",
        EYEGEN_OUTPUT_DIR=str(tmp / "outputs"),
        EYEGEN_WEIGHTS_DIR=os.environ.get("EYEGEN_WEIGHTS_DIR") or str(REPO.parent / "shared" / "weights"),
        # the kernelspec runs "python": this environment's, with eyegen_lib (see eyegen_lib.suite.runner)
        PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    )
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    server = JupyterServer(root=copy_notebooks(REPO / "notebooks", tmp / "notebooks"), state=tmp / "state", env=env)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(jupyter, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # a fresh profile folder: no first-run state, no earlier session's storage
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1600, "height": 1000})
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


class Page:
    """One browser tab on the server, with what its console and the page reported."""

    def __init__(self, context, server: JupyterServer):
        self.page = context.new_page()
        self.server = server
        self.console_errors: list[str] = []
        self.log_start = len(server.log())
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.console_errors.append(f"page error: {exc}"))

    def _on_console(self, msg) -> None:
        if msg.type != "error":
            return
        text = f"{msg.text} ({msg.location.get('url', '')})"
        if not any(p.search(text) for p in BENIGN_CONSOLE):
            self.console_errors.append(text)

    def menu(self, top: str, command: str) -> None:
        """Open a menu of the menu bar and click its item for ``command`` (a JupyterLab command id),
        once the item is enabled (it is disabled until the notebook's kernel session is ready)."""
        item = self.page.locator(f'.lm-Menu:not(.lm-MenuBar) .lm-Menu-item[data-command="{command}"]')

        def opened_enabled():
            self.page.locator("#jp-menu-panel").get_by_role("menuitem", name=top, exact=True).click()
            if "lm-mod-disabled" not in (item.get_attribute("class") or ""):
                return True
            self.page.keyboard.press("Escape")  # a menu shows its items' state as of its opening
            return False

        wait_for(opened_enabled, 60, f"menu {top} > {command} enabled", interval_s=1.0)
        item.click()

    def open_notebook(self, name: str) -> None:
        """Open ``name`` in a workspace of its own: the default workspace would reopen (and start
        kernels for) the notebooks an earlier test left open."""
        self.page.goto(self.server.url(f"lab/workspaces/{Path(name).stem}-{secrets.token_hex(4)}/tree/{name}"))
        self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for()
        self.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name).click()  # the current document
        wait_for(lambda: (notebook_state(self.page) or {}).get("kernel") == "idle", KERNEL_START_TIMEOUT_S,
                 f"{name}: kernel started and idle", describe=lambda: notebook_state(self.page))

    def run_all(self, name: str) -> float:
        """Clear the outputs, Run All Cells, and wait until every code cell ran (or one failed)."""
        self.menu("Edit", "editmenu:clear-all")
        wait_for(lambda: all(p == "[ ]:" for p in notebook_state(self.page)["prompts"]), 60, f"{name}: outputs cleared",
                 describe=lambda: notebook_state(self.page))
        start = time.monotonic()
        started = lambda: any(p != "[ ]:" for p in notebook_state(self.page)["prompts"])  # noqa: E731
        # On a loaded two-core machine JupyterLab sometimes drops the first Run All of a fresh page (the
        # kernel idle, no cell queued): the command is issued again, a few times, before the test fails
        for attempt in range(RUN_ALL_ATTEMPTS):
            self.menu("Run", "runmenu:run-all")
            try:
                wait_for(started, 60 if attempt == RUN_ALL_ATTEMPTS - 1 else 20, f"{name}: Run All Cells started",
                         describe=lambda: notebook_state(self.page))
                break
            except TimeoutError:
                if attempt == RUN_ALL_ATTEMPTS - 1:
                    raise

        def finished():
            state = notebook_state(self.page)
            if state["kernel"] != "idle" or any(p == "[*]:" for p in state["prompts"]):
                return False
            # every code cell numbered; or a failed cell stopped the run (the rest stay unnumbered)
            return all(re.fullmatch(r"\[\d+\]:", p) for p in state["prompts"]) or error_texts(self.page)

        wait_for(finished, RUN_ALL_TIMEOUT_S, f"{name}: Run All Cells finished", interval_s=1.0,
                 describe=lambda: notebook_state(self.page))
        return time.monotonic() - start

    def assert_clean(self, name: str) -> None:
        """No error output in the notebook, no browser console error, no traceback in the kernel's log."""
        errors = error_texts(self.page)
        assert not errors, f"{name}: error output in the notebook:\n" + "\n---\n".join(e[-3000:] for e in errors)
        assert not self.console_errors, f"{name}: browser console errors:\n" + "\n".join(self.console_errors)
        logged = self.server.tracebacks(self.log_start)
        assert not logged, f"{name}: traceback in the server's (kernels') log:\n" + "\n---\n".join(logged)


@pytest.fixture
def tab(browser, jupyter, screenshot_dir, request):
    page = Page(browser, jupyter)
    failed_before = request.session.testsfailed
    try:
        yield page
    finally:
        if request.session.testsfailed > failed_before:  # the page as the failure left it
            page.page.screenshot(path=str(screenshot_dir / f"{request.node.name}-failure.png"))
        page.page.close()
        # end this test's kernels, so the next notebook's kernel has the cores to itself
        jupyter.shutdown_kernels()


def browser_tab(request) -> Page:
    """The test's tab; first skips, or fails under EYEGEN_REQUIRE_BROWSER=1, when there is no browser
    (checked in the test itself, so that a required browser's absence is a failure, not a setup error)."""
    _require_browser()
    return request.getfixturevalue("tab")


def image_src(output) -> str | None:
    """The data: URL of the (last) image in an output area, or None while it has none."""
    imgs = output.locator(".jp-RenderedImage img")
    return imgs.last.get_attribute("src") if imgs.count() else None


def wait_new_image(tab: Page, output, before: str | None, what: str) -> str:
    """Wait until the output shows an image other than ``before``, the same one for three polls a
    second apart with the kernel idle throughout (a slider moved by several steps queues one redraw
    a step), and laid out; returns its data: URL."""
    seen = []

    def settled():
        seen.append((notebook_state(tab.page)["kernel"], image_src(output)))
        last = seen[-3:]
        return (len(last) == 3 and all(k == "idle" for k, _ in last) and len({src for _, src in last}) == 1
                and last[-1][1] not in (None, before))

    wait_for(settled, WIDGET_TIMEOUT_S, what, interval_s=1.0,
             describe=lambda: f"kernel {seen[-1][0]}, " + ("no image" if seen[-1][1] is None else
                                                          "the image before" if seen[-1][1] == before else "a new image"))
    # the new image decoded and laid out at its own proportions (a screenshot taken right after the
    # src changed once caught it squeezed to another width, mid-layout)
    boxes = []

    def laid_out():
        boxes.append(output.locator(".jp-RenderedImage img").last.evaluate(IMAGE_LAYOUT_JS))
        return boxes[-1] is not None and len(boxes) >= 2 and boxes[-1] == boxes[-2]

    wait_for(laid_out, 30, f"{what}: the image laid out")
    return seen[-1][1]


IMAGE_LAYOUT_JS = """img => {
    if (!img.complete || !img.naturalWidth) return null;
    const r = img.getBoundingClientRect();
    const drawn = r.width / r.height, natural = img.naturalWidth / img.naturalHeight;
    return Math.abs(drawn / natural - 1) < 0.02 ? [r.width, r.height] : null;
}"""


def slider(scope, label: str):
    """The ipywidgets slider whose description is ``label``."""
    return scope.locator(".widget-slider", has=scope.page.locator(".widget-label", has_text=label))


def readout(slider_box) -> float:
    # the readout writes negative numbers with a typographic minus: "−5.00"
    return float(slider_box.locator(".widget-readout").inner_text().replace("\u2212", "-"))


def move_slider(slider_box, key: str, presses: int, expect: float) -> None:
    """Move a slider with the keyboard on its focused handle, one step a press, to ``expect``."""
    handle = slider_box.locator(".noUi-handle")
    handle.focus()
    for _ in range(presses):
        handle.press(key)
    wait_for(lambda: readout(slider_box) == expect, 30, f"{presses} × {key} moves the slider to {expect}",
             describe=lambda: f"the readout says {readout(slider_box)}")


def shot(element, folder: Path, name: str) -> None:
    element.scroll_into_view_if_needed()
    element.screenshot(path=str(folder / name))


def run_all_cells(request, name: str):
    """Open a notebook in a fresh tab, Run All Cells, and check that no cell failed; returns the tab."""
    tab = browser_tab(request)
    tab.open_notebook(name)
    seconds = tab.run_all(name)
    print(f"{name}: Run All Cells took {seconds:.0f} s")
    tab.assert_clean(name)
    return tab


def test_dataset_eye_explorer_redraws_in_the_browser(request, screenshot_dir):
    """01_dataset: the interactive eye renderer redraws for the yaw slider and the NIR/RGB buttons."""
    name = "01_dataset.ipynb"
    tab = run_all_cells(request, name)

    page = tab.page
    interact = page.locator(".widget-interact").last
    output = interact.locator(".widget-output")
    first = wait_new_image(tab, output, None, f"{name}: the eye explorer draws its first image")
    shot(interact, screenshot_dir, "01_dataset-widget-before.png")

    yaw = 12.0
    move_slider(slider(interact, "yaw"), "ArrowRight", 12, expect=yaw)
    turned = wait_new_image(tab, output, first, f"{name}: the eye redrawn after yaw -> {yaw}")
    shot(interact, screenshot_dir, "01_dataset-widget-after-slider.png")

    interact.locator(".widget-toggle-buttons button", has_text="RGB").click()
    wait_new_image(tab, output, turned, f"{name}: the eye redrawn in RGB")
    shot(interact, screenshot_dir, "01_dataset-widget-after-toggle.png")
    page.screenshot(path=str(screenshot_dir / "01_dataset-page.png"))
    tab.assert_clean(name)


def test_deepwarp_redirection_panel_redraws_in_the_browser(request, screenshot_dir):
    """05_deepwarp: the redirection panel redraws for the Δpitch slider and the variant dropdown."""
    name = "05_deepwarp.ipynb"
    tab = run_all_cells(request, name)

    page = tab.page
    cell = page.locator(".jp-CodeCell", has=page.locator(".widget-dropdown"))
    controls = cell.locator(".widget-vbox").first
    panel = controls.locator(".widget-output")
    # the panel shows the default redirection (Δpitch 10°, cfw_lcm) before any control moves
    first = wait_for(lambda: image_src(panel), WIDGET_TIMEOUT_S, f"{name}: the default redirection is drawn in the panel")
    shot(controls, screenshot_dir, "05_deepwarp-widget-before.png")

    pitch = -5.0
    move_slider(slider(controls, "pitch"), "ArrowLeft", 15, expect=pitch)
    moved = wait_new_image(tab, panel, first, f"{name}: the panel redrawn after Δpitch -> {pitch}")
    assert cell.locator(".jp-OutputArea-output img").count() == 1, f"{name}: one figure, the panel's (no stale one below)"
    shot(controls, screenshot_dir, "05_deepwarp-widget-after-slider.png")

    dropdown = controls.locator(".widget-dropdown select")
    current = dropdown.evaluate("select => select.options[select.selectedIndex].textContent")
    options = [o for o in dropdown.locator("option").all_inner_texts() if o != current]
    assert options, f"{name}: the variant dropdown offers nothing but {current}"
    dropdown.select_option(label=options[0])
    wait_new_image(tab, panel, moved, f"{name}: the panel redrawn for variant {options[0]} (was {current})")
    shot(controls, screenshot_dir, "05_deepwarp-widget-after-dropdown.png")
    page.screenshot(path=str(screenshot_dir / "05_deepwarp-page.png"))
    tab.assert_clean(name)
