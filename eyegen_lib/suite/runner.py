"""Run the notebooks headless with papermill: the project's main job (``eyegen run``).

Each notebook gets its profile twice — as the ``PROFILE`` parameter papermill injects into the
cell tagged ``parameters``, and as ``$EYEGEN_PROFILE`` for anything that reads the environment —
and writes its executed copy to ``<out>/notebooks/`` and its metrics to ``<out>/metrics/``.
"""
from __future__ import annotations

import ast
import atexit
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from ..core.files import atomic_write_json
from ..core.paths import list_notebooks, output_dir
from ..core.profiles import resolve_profile
from ..core.runtime import tqdm
from ..runs.staleness import stale_reasons
from ..science.data.sources import check_data_source
from .cards import card, notebooks_taking, timeout_for
from .notebook_html import export_html
from .report import build_report, collect_results

__all__ = ["list_notebooks", "check_output_folder", "run_notebook", "run_notebooks", "refresh_committed_outputs", "CHECK_MARK",
           "NotebookTimeout"]

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"  # cells whose committed outputs nbval compares


def check_output_folder(out: Path) -> Path:
    """``out`` as a folder a run can write, or a ValueError saying why not — before anything is created."""
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder: name a folder (it is created if missing)")
    existing = out
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file, so the folder cannot be created there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {existing} is not writable by this user: choose another folder")
    return out


@contextlib.contextmanager
def _kernel_environment(profile: str, out: Path, data: str | None = None) -> Iterator[None]:
    """Environment the kernels inherit; the running interpreter's folder first on PATH so the
    kernel is this environment's python (with eyegen_lib), not whatever ``python`` is first."""
    saved = dict(os.environ)
    os.environ["EYEGEN_PROFILE"] = profile
    if data is not None:
        os.environ["EYEGEN_DATA"] = data
    os.environ["EYEGEN_OUTPUT_DIR"] = str(out)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _ipc_kernel_manager(started: list | None = None):
    """Kernels talk over local unix sockets instead of TCP ports: no open ports, and no
    "running over TCP without encryption" warning from every kernel. Each manager made is appended
    to ``started`` (the watch stops its kernel at the notebook's deadline)."""
    from jupyter_client.manager import AsyncKernelManager

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("transport", "ipc")
            # each kernel's sockets in a folder of its own: by default they are kernel-ipc-N in the working
            # folder, N the first free number, and two runs from one checkout took each other's sockets
            folder = tempfile.mkdtemp(prefix="eyegen-kernel-")
            atexit.register(shutil.rmtree, folder, True)
            kwargs.setdefault("ip", os.path.join(folder, "ipc"))
            super().__init__(*args, **kwargs)
            if started is not None:
                started.append(self)

    return IPCKernelManager


class NotebookTimeout(RuntimeError):
    """A notebook ran past its time (its card's measured time × margin, or ``--timeout``)."""


class _CellWatch(threading.Thread):
    """Shows which cell of a running notebook executes and for how long — papermill saves the
    executed copy at every cell start — and stops the kernel once the notebook's time is up."""

    def __init__(self, target: Path, name: str, kernels: list, deadline_s: float | None, every_s: float = 2.0):
        super().__init__(daemon=True)
        self.target, self.name, self.kernels, self.deadline_s, self.every_s = target, name, kernels, deadline_s, every_s
        self.started_at, self.timed_out = time.monotonic(), False
        self._stop_event = threading.Event()
        self._seen_mtime, self._total, self._done, self._running = None, None, 0, None

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)

    def _read(self) -> None:
        """Re-read the executed copy only when papermill has saved it again (a cell started or ended):
        it embeds every figure so far, too large to parse every two seconds for nothing."""
        try:
            mtime = self.target.stat().st_mtime_ns
            if mtime == self._seen_mtime:
                return
            cells = [c for c in nbformat.read(self.target, as_version=4).cells if c.cell_type == "code"]
        except Exception:  # not written yet, or papermill is writing it right now: look again next time
            return
        self._seen_mtime = mtime
        self._total = len(cells)
        self._done = sum(c.metadata.get("papermill", {}).get("status") == "completed" for c in cells)
        self._running = None
        for i, c in enumerate(cells, 1):
            pm_meta = c.metadata.get("papermill", {})
            if pm_meta.get("status") == "running" and pm_meta.get("start_time"):
                started = datetime.fromisoformat(pm_meta["start_time"])
                first = next((line for line in c.source.splitlines() if line.strip() and not line.startswith("#")), "")
                self._running = (i, started if started.tzinfo else started.replace(tzinfo=timezone.utc), first[:48])

    def _show(self, bar) -> None:
        self._read()
        bar.total = self._total
        bar.update(self._done - bar.n)
        if self._running:
            i, started, first = self._running
            seconds = (datetime.now(timezone.utc) - started).total_seconds()
            bar.set_postfix_str(f"cell {i}/{self._total} running {seconds:.0f} s: {first}", refresh=False)

    def _stop_kernel(self) -> None:
        self.timed_out = True
        for km in self.kernels:
            pid = getattr(getattr(km, "provisioner", None), "pid", None)
            if pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def run(self) -> None:
        with tqdm(total=None, desc=f"  {self.name}", unit="cell", leave=False, mininterval=2) as bar:
            while not self._stop_event.wait(self.every_s):
                self._show(bar)
                bar.refresh()
                if self.deadline_s is not None and time.monotonic() - self.started_at > self.deadline_s:
                    self._stop_kernel()
                    return


def run_notebook(notebook: Path, profile: str, out: Path, *, parameters: dict | None = None,
                 timeout: float | None = None, watch: bool = False, data: str | None = None) -> Path:
    """Execute one notebook with papermill; returns the executed copy's path. Raises on a failed cell,
    and :class:`NotebookTimeout` once the notebook has run ``timeout`` seconds in all (no cell may
    take longer either). ``watch`` shows the running cell and its time."""
    import papermill as pm

    target = out / "notebooks" / notebook.name
    target.parent.mkdir(parents=True, exist_ok=True)
    kernels: list = []
    watcher = _CellWatch(target, notebook.stem, kernels, timeout) if (watch or timeout) else None
    with _kernel_environment(profile, out, data):
        if watcher is not None:
            watcher.start()
        try:
            pm.execute_notebook(str(notebook), str(target), parameters={"PROFILE": profile, **(parameters or {})},
                                cwd=str(notebook.parent), kernel_name="python3", progress_bar=False,
                                execution_timeout=None if timeout is None else int(timeout) + 1,
                                kernel_manager_class=_ipc_kernel_manager(kernels))
        except Exception as exc:
            from nbclient.exceptions import CellTimeoutError

            if (watcher is not None and watcher.timed_out) or isinstance(exc, CellTimeoutError):
                raise NotebookTimeout(f"{notebook.stem} ran past its {timeout:.0f} s; the executed copy shows the "
                                      "cell it stopped in (raise the limit with --timeout SECONDS)") from exc
            raise
        finally:
            if watcher is not None:
                watcher.stop()
    return target


def _parameters_of(notebook: Path) -> str:
    nb = nbformat.read(notebook, as_version=4)
    return "\n".join(c.source for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))


# set by their own options (--profile, --seed, --data, --no-pretrained), never by --set
RUN_PARAMETERS = ("PROFILE", "SEED", "DATA", "PRETRAINED")


def parameter_names(notebook: Path) -> list[str]:
    """The names a notebook's ``parameters`` cell assigns (read with ``ast``, never executed)."""
    names = []
    for node in ast.parse(_parameters_of(notebook)).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def check_parameters(parameters: dict | None, books: Sequence[Path]) -> None:
    """Each of ``parameters`` must be a parameter of at least one of ``books`` and not one of
    :data:`RUN_PARAMETERS`; else one ValueError naming the notebooks' parameters."""
    for name in parameters or {}:
        if name in RUN_PARAMETERS:
            raise ValueError(f"--set {name}=…: {name} has its own option (--{name.lower().replace('pretrained', 'no-pretrained')})")
        if not any(name in parameter_names(nb) for nb in books):
            known = sorted({n for nb in books for n in parameter_names(nb)} - set(RUN_PARAMETERS))
            raise ValueError(f"--set {name}=…: no notebook of this run has a parameter {name}; theirs: {', '.join(known)}")


def select_notebooks(only: Sequence[str] | None, data: str | None = None) -> list[Path]:
    """The notebooks a run executes: ``only`` (all by default); on a dataset (``data``), the ones whose
    card takes it, and a ValueError naming any named notebook that does not — before any work."""
    books = list_notebooks(only)
    if data in (None, "renderer"):
        return books
    takers = notebooks_taking(data)
    if not takers:
        raise ValueError(f"no notebook runs on --data {data} yet: run on the renderer, or on "
                         + ", ".join(sorted({d for c in map(card, [b.stem for b in books]) for d in c.data} - {"renderer"})))
    refused = [b.stem for b in books if b.stem not in takers]
    if only and refused:
        raise ValueError(f"{', '.join(refused)} cannot run on --data {data}: it takes {' or '.join(card(refused[0]).data)}; "
                         f"the notebooks that take {data}: {' '.join(t[:2] for t in takers)}")
    return [b for b in books if b.stem in takers]


def run_notebooks(profile: str = "auto", *, only: Sequence[str] | None = None, out: Path | None = None,
                  timeout: float | None = None, seed: int | None = None, pretrained: bool = True,
                  data: str | None = None, parameters: dict | None = None) -> dict:
    """Run the suite, then write ``run_summary.json`` and ``report.html``. Returns the summary.

    ``data`` runs the notebooks on a dataset (``openeds`` …: every notebook's ``DATA``); without
    ``only`` that is the notebooks whose card takes it. The dataset folder is opened and checked
    before any notebook runs.
    ``seed`` sets every notebook's ``SEED`` (default: the notebooks' own, 0); a run with another
    seed trains and saves its own models beside the others (see :mod:`eyegen_lib.runs.registry`).
    ``pretrained=False`` sets every notebook's ``PRETRAINED``: nothing is taken from the model zoo.
    ``parameters`` ({name: value}, ``eyegen run --set``) are set in each notebook whose parameters cell
    has that name (e.g. ``{"ABLATIONS": ["no_gaze"]}`` trains one of 06's ablations); the summary
    records them per notebook.
    A failing notebook does not stop the others; its error is in the summary and the report.
    """
    if seed is not None and (not isinstance(seed, int) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    resolved = resolve_profile(profile, data)
    profile_name, data = resolved.name, resolved.data
    books = select_notebooks(only, data)  # an unknown name or source fails before the output folder is made
    check_parameters(parameters, books)
    if data != "renderer":
        check_data_source(resolved)  # an unset variable or a malformed folder: one error, no work done
    out = check_output_folder(out if out is not None else output_dir())
    out.mkdir(parents=True, exist_ok=True)
    run_seed = seed if seed is not None else 0
    suite_order = {p.stem: i for i, p in enumerate(list_notebooks())}
    summary = {"profile": profile_name, "data": data, "seed": run_seed, "pretrained": bool(pretrained), "ran": [],
               "notebooks": _earlier_runs(out)}
    for nb in tqdm(books, desc=f"notebooks ({profile_name})", unit="nb"):
        start = time.perf_counter()
        entry = {"notebook": nb.stem, "output": str(Path("notebooks") / nb.name), "profile": profile_name,
                 "data": data, "seed": run_seed, "pretrained": bool(pretrained)}
        params = {} if seed is None else {"SEED": seed}
        if data != "renderer":
            params["DATA"] = data
        own = parameter_names(nb)  # its parameters cell, parsed once
        if not pretrained and "PRETRAINED" in own:
            params["PRETRAINED"] = False
        chosen = {k: v for k, v in (parameters or {}).items() if k in own}
        if chosen:
            params.update(chosen)
            entry["parameters"] = chosen
        limit = timeout if timeout is not None else timeout_for(nb.stem, profile_name, pretrained)
        entry["timeout_s"] = limit
        try:
            run_notebook(nb, profile_name, out, timeout=limit, parameters=params or None, watch=True, data=data)
            entry["status"] = "ok"
        except NotebookTimeout as exc:
            entry["status"] = "timed out"
            entry["error"] = str(exc)
        except Exception as exc:  # papermill raises PapermillExecutionError with the failing cell
            entry["status"] = "failed"
            entry["error"] = failure_cause(exc)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        executed = out / entry["output"]
        if executed.is_file():  # a failed run's page shows the failing cell
            try:
                export_html(executed)
            except Exception as exc:  # the page is a convenience; the run's record must not depend on it
                print(f"note: {nb.stem} ran, but its HTML page could not be written ({type(exc).__name__}: {exc})")
        entry["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        summary["ran"].append(nb.stem)
        summary["notebooks"] = [e for e in summary["notebooks"] if e["notebook"] != nb.stem] + [entry]
        summary["notebooks"].sort(key=lambda e: (suite_order.get(e["notebook"], len(suite_order)), e["notebook"]))
        atomic_write_json(out / "run_summary.json", summary, indent=2)
    # notebooks whose inputs changed since they ran (this run's outputs, say): the report and the CLI name them
    summary["stale"] = {res["notebook"]: reasons for res in collect_results(out) if (reasons := stale_reasons(res))}
    summary["report"] = str(build_report(out, stale=summary["stale"]))
    atomic_write_json(out / "run_summary.json", summary, indent=2)
    return summary


def failure_cause(exc: BaseException, limit: int = 600) -> str:
    """One line for a failed notebook: the exception raised *inside* it (papermill's ``ename`` and
    ``evalue``, every line of its message) rather than papermill's wrapper or the message's last line."""
    name = getattr(exc, "ename", None) or type(exc).__name__
    message = getattr(exc, "evalue", None)
    if message is None:
        message = str(exc)
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    text = f"{name}: {text}" if text else name
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _earlier_runs(out: Path) -> list[dict]:
    """The last run of each notebook recorded in ``out`` by earlier ``eyegen run``s: a run of some
    notebooks adds to the folder's record instead of replacing it."""
    path = out / "run_summary.json"
    try:
        earlier = json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        print(f"note: {path} is not readable JSON; the earlier runs it listed are left out of the report")
        return []
    entries = earlier.get("notebooks", []) if isinstance(earlier, dict) else []
    for e in entries:  # summaries before runs accumulated had the profile and seed once, for all
        e.setdefault("profile", earlier.get("profile"))
        e.setdefault("seed", earlier.get("seed"))
    return [e for e in entries if isinstance(e, dict) and "notebook" in e]


def refresh_committed_outputs(only: Sequence[str] | None = None) -> list[Path]:
    """Maintainers: re-execute notebooks under ``smoke`` and keep only the outputs of cells marked
    ``# NBVAL_CHECK_OUTPUT`` (the ones nbval compares); every other output is stripped."""
    import tempfile

    changed = []
    with tempfile.TemporaryDirectory() as tmp:
        for nb in list_notebooks(only):
            executed = nbformat.read(run_notebook(nb, "smoke", Path(tmp)), as_version=4)
            original = nbformat.read(nb, as_version=4)
            by_id = {c.get("id"): c for c in executed.cells}
            for cell in original.cells:
                if cell.cell_type != "code":
                    continue
                cell.execution_count = None
                cell.outputs = []
                cell.metadata.pop("execution", None)
                if CHECK_MARK in cell.source and cell.get("id") in by_id:
                    # nbval skips a cell without an execution count as "unrun", so checked cells keep theirs
                    ran = by_id[cell["id"]]
                    cell.execution_count = ran.execution_count
                    cell.outputs = [o for o in ran.outputs if o.get("output_type") in ("stream", "execute_result")]
            nbformat.write(original, nb)
            changed.append(nb)
    return changed
