"""Executed notebooks as HTML pages the report links to, their math rendered offline.

nbconvert's HTML points MathJax at a CDN, which shows raw LaTeX on a machine without internet.
Here MathJax comes from the ``jupyter_server_mathjax`` package (MathJax 2.7, the copy Jupyter's
classic server ships), copied once beside the pages so the output folder stays self-contained.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from .files import atomic_write_text

__all__ = ["export_html", "MATHJAX_CONFIG"]

MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"


def _mathjax_copy(folder: Path) -> Path:
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = folder / "mathjax"
    if not (target / "MathJax.js").is_file():
        shutil.copytree(source, target, dirs_exist_ok=True)
    return target


def export_html(notebook: Path) -> Path:
    """Write ``<notebook>.html`` beside an executed notebook (JupyterLab's look, figures inline,
    MathJax from a local copy); returns its path."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    _mathjax_copy(notebook.parent)
    exporter = HTMLExporter(template_name="lab", mathjax_url=f"mathjax/MathJax.js?config={MATHJAX_CONFIG}")
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target = notebook.with_suffix(".html")
    return atomic_write_text(target, body)
