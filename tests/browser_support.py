"""Helpers for tests/test_browser.py: a JupyterLab server under the smoke profile, a headless
Debian Chromium driven by Playwright, and the few JupyterLab page operations the test needs
(open a notebook, Run All Cells, wait for the kernel, read outputs and widgets).

Everything here waits on conditions (polling the page or the server), never on fixed sleeps, so
the test holds on a slow two-core machine; every wait has a generous, named timeout.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = ("install Debian's browser and driver (apt-get install -y chromium chromium-driver) and "
                "Playwright for Python (pip install -e '.[test]'); no `playwright install` is needed")
# Chromium's background services (updates, sync, field trials, QUIC) try to reach the internet;
# on a closed network they only add noise and delays, so they are switched off.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-extensions", "--mute-audio"]

SERVER_START_TIMEOUT_S = 180
KERNEL_START_TIMEOUT_S = 180

# JupyterLab user settings for the test server: no news / update checks (they would fetch from
# the internet and pop a notification over the notebook), and every cell kept in the DOM
# (JupyterLab 4's windowing would leave off-screen cells out of the page, hiding their prompts).
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None when it can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found"
    try:
        found = importlib.util.find_spec("playwright") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return "Playwright for Python is not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class JupyterServer:
    """A JupyterLab server on localhost serving ``root``; kernels inherit ``env``."""
    root: Path
    state: Path  # settings, runtime files and the server's log live here
    env: dict
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.state / "server.log"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> "JupyterServer":
        settings = self.state / "user-settings"
        for name, value in USER_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        for sub in ("config", "data", "runtime", "workspaces", "ipython"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        env = dict(self.env)
        # the server's own user folders in the temporary state folder: a person's ~/.jupyter
        # config or IPython startup files cannot change what the test sees
        env.update(JUPYTER_CONFIG_DIR=str(self.state / "config"), JUPYTER_DATA_DIR=str(self.state / "data"),
                   JUPYTER_RUNTIME_DIR=str(self.state / "runtime"), IPYTHONDIR=str(self.state / "ipython"))
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={self.state / 'workspaces'}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.news_url=None", "--LabApp.extension_manager=readonly"]
        self._log_file = open(self.log_path, "wb")
        # a session of its own: a Ctrl-C meant for pytest does not reach it; stop() ends it, and the
        # server ends its kernels (the REST API's shutdown, or on its own way out)
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"jupyter lab did not answer within {SERVER_START_TIMEOUT_S} s:\n{self.log()[-4000:]}")

    def _api(self, method: str, path: str):
        req = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """End every kernel the server runs (the REST API's DELETE /api/kernels/<id>)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for kernel in self._api("GET", "api/kernels"):
            self._api("DELETE", f"api/kernels/{kernel['id']}")

    def tracebacks(self, since: int = 0) -> list[str]:
        """Tracebacks in the server's log after character ``since``: the kernels' stderr goes there,
        with any exception a widget callback raised outside a cell."""
        log = self.log()[since:]
        # the indented frames, then the exception's own line
        return re.findall(r"Traceback \(most recent call last\):(?:\n[ \t].*)*(?:\n.*)?", log)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # twice: jupyter asks for confirmation after the first
            time.sleep(0.2)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        try:  # whatever else the server started in its process group (kernels start their own)
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._log_file.close()
        self.proc = None


def copy_notebooks(src: Path, dst: Path) -> Path:
    """The notebooks alone (no kernel sockets or checkpoints), so saving never touches tracked files."""
    dst.mkdir(parents=True, exist_ok=True)
    for nb in sorted(src.glob("*.ipynb")):
        shutil.copy2(nb, dst / nb.name)
    return dst


# -- the page ----------------------------------------------------------------------------------

# JupyterLab 4 renders an error output (and a stderr stream) with this mime type; a traceback's
# text contains "Traceback", a widget that failed to render shows "Error displaying widget".
STDERR_OUTPUTS = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'

NOTEBOOK_STATE_JS = """() => {
    const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
    if (!nb) return null;
    const prompts = [...nb.querySelectorAll('.jp-CodeCell > .jp-Cell-inputWrapper .jp-InputPrompt')]
        .map(p => p.textContent.trim());
    const status = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
    return {prompts, kernel: status ? status.getAttribute('data-status') : null};
}"""


def notebook_state(page) -> dict | None:
    """Input prompts of the visible notebook's code cells ("[3]:", "[*]:", "[ ]:") and the kernel status."""
    return page.evaluate(NOTEBOOK_STATE_JS)


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.5, describe=None):
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``
    (and, when given, what ``describe()`` says of the state at the end)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise TimeoutError(f"{what}: not within {timeout_s:.0f} s" + (f"; at the end: {describe()}" if describe else ""))


def error_texts(scope) -> list[str]:
    """Texts of error outputs (tracebacks, failed widget renders) inside ``scope`` (a page or locator)."""
    found = []
    for text in scope.locator(STDERR_OUTPUTS).all_inner_texts():
        if "Traceback" in text or "Error" in text.split("\n", 1)[0]:
            found.append(text)
    for text in scope.locator(".jp-OutputArea-output").all_inner_texts():
        if "Error displaying widget" in text:
            found.append(text)
    return found
