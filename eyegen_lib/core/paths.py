"""Where things live: the project root, the outputs folder, the notebooks (artifact files: :mod:`eyegen_lib.runs.registry`)."""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]   # eyegen_lib/


def project_root() -> Path | None:
    """The checkout that holds ``pyproject.toml`` and ``notebooks/`` (None for a non-editable install)."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").exists() and (root / "notebooks").is_dir() else None


def output_dir() -> Path:
    """Root of everything a run writes: ``$EYEGEN_OUTPUT_DIR``, else ``<project>/outputs``, else ``./outputs``."""
    env = os.environ.get("EYEGEN_OUTPUT_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = project_root()
    return (root / "outputs") if root else Path.cwd() / "outputs"


@contextlib.contextmanager
def empty_outputs() -> Iterator[Path]:
    """An empty temporary outputs folder for the block: registry requests inside it see no local
    artifacts, so only the zoo can serve them (``eyegen zoo``'s checks)."""
    old = os.environ.get("EYEGEN_OUTPUT_DIR")
    with tempfile.TemporaryDirectory(prefix="eyegen-zoo-verify-") as tmp:
        os.environ["EYEGEN_OUTPUT_DIR"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("EYEGEN_OUTPUT_DIR", None)
            else:
                os.environ["EYEGEN_OUTPUT_DIR"] = old


def notebooks_dir() -> Path:
    root = project_root()
    if root is None:
        raise FileNotFoundError("the notebooks live in the eyegen checkout; install it with `pip install -e .` from a clone")
    return root / "notebooks"


def list_notebooks(only: Sequence[str] | None = None, folder: Path | None = None) -> list[Path]:
    """The suite's notebooks in order; ``only`` keeps those named exactly by an item: the number
    ("04" or "4"), the full name ("04_seg2eye") or the name without its number ("seg2eye")."""
    folder = folder or notebooks_dir()
    books = sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    if only:
        names = {p.stem: p for p in books}
        for p in books:
            number, _, rest = p.stem.partition("_")
            names.setdefault(number, p)
            names.setdefault(rest, p)
            if number.isdigit():
                names.setdefault(str(int(number)), p)   # "4" for "04"
        unknown = [o for o in only if o not in names]
        if unknown:
            raise ValueError(f"unknown notebook {unknown[0]!r}: give a number or a name, one of "
                             + ", ".join(p.stem for p in books))
        wanted = {names[o] for o in only}
        books = [p for p in books if p in wanted]
    return books
