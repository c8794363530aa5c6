"""Executed notebooks as HTML pages the report links to, readable with no network.

nbconvert's lab page loads require.js, the Jupyter widget manager and mermaid from CDNs and points
MathJax at one too: offline, widget and progress outputs vanish and math shows as raw LaTeX. Here
the page needs nothing from outside its output folder:

* widget outputs (ipywidgets controls, tqdm's progress bars) are reduced to the static
  representations they carry beside the widget view — a progress bar's final text line, the
  figure an interactive cell drew; controls that have no static form become one line saying so —
  and the template (``html_template/eyegen``) loads no widget manager, require.js or mermaid;
* MathJax comes from the ``jupyter_server_mathjax`` package (MathJax 2.7, the copy Jupyter's
  classic server ships), copied once per output tree beside the pages (the parts a page uses,
  2.8 of its 12 MB) and set to the STIX-Web fonts that copy has: its TeX fonts are missing, and MathJax's
  fallback for them drew accents a line above their letters.
"""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

from ..core.files import atomic_write_text

__all__ = ["export_html", "static_outputs", "MATHJAX_CONFIG", "TEMPLATE_DIR"]

MATHJAX_CONFIG = "TeX-AMS-MML_HTMLorMML-full,Safe"
TEMPLATE_DIR = Path(__file__).parent / "html_template"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NO_STATIC_FORM = "[interactive controls: open the notebook in JupyterLab to use them]"
# the parts of the MathJax copy a page loads (the rest — accessibility, localisations, SVG output
# and its fonts — is 9 of its 12 MB)
_MATHJAX_PARTS = ("MathJax.js", "config", "extensions", "jax/input", "jax/element", "jax/output/HTML-CSS",
                  "fonts/HTML-CSS/STIX-Web")
_MATHJAX_SKIP = ("a11y",)


def _mathjax_copy(folder: Path) -> Path:
    import jupyter_server_mathjax

    source = Path(jupyter_server_mathjax.__file__).parent / "static"
    target = folder / "mathjax"
    if not (target / "MathJax.js").is_file():
        for part in _MATHJAX_PARTS:
            src, dst = source / part, target / part
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_MATHJAX_SKIP))
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
    return target


def static_outputs(nb):
    """A copy of notebook ``nb`` whose outputs need no widget manager: each widget view is dropped
    where the output carries another representation, and replaced by :data:`NO_STATIC_FORM` where it
    does not; the notebook's saved widget state goes too."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if not data or WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            # ipywidgets' plain-text fallback of a control is its repr ("interactive(children=…)"): not for a reader
            plain = data.get("text/plain", "")
            plain = "".join(plain) if isinstance(plain, list) else plain
            if set(data) <= {"text/plain"} and (not plain or "children=" in plain or plain.startswith(("Output(", "VBox(", "HBox("))):
                data.clear()
                data["text/plain"] = NO_STATIC_FORM
    return nb


def export_html(notebook: Path) -> Path:
    """Write ``<notebook>.html`` beside an executed notebook (JupyterLab's look, figures inline,
    static widget outputs, MathJax from a local copy); returns its path."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = Path(notebook)
    _mathjax_copy(notebook.parent)
    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATE_DIR)], template_name="eyegen",
                            mathjax_url=f"mathjax/MathJax.js?config={MATHJAX_CONFIG}")
    body, _ = exporter.from_notebook_node(static_outputs(nbformat.read(notebook, as_version=4)))
    return atomic_write_text(notebook.with_suffix(".html"), body)
