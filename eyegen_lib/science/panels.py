"""The notebooks' interactive panels: controls above an output area that redraws when one changes."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

__all__ = ["control_panel"]


def control_panel(draw: Callable[..., None], controls: Mapping[str, object], *,
                  rows: Sequence[Sequence[str]] | None = None, extra: Sequence[object] = (),
                  before_redraw: Callable[[Mapping[str, object]], None] | None = None,
                  first_view: str = "inline"):
    """Show ``controls`` (name → ipywidget) above an output area that ``draw(**values)`` redraws
    whenever one of them changes (in a live kernel: the redraw runs in the kernel).

    ``rows``: the controls' names, one horizontal row each (default: all in one row); ``extra``:
    more widgets for the last row (e.g. a button). ``before_redraw(controls)`` may adjust controls
    first (e.g. pin a value the chosen model ignores). ``first_view``: ``"inline"`` draws the first
    view as the cell's own output, which every headless run (papermill, nbconvert) keeps;
    ``"panel"`` draws it inside the output area, so the first change replaces it. Returns
    ``(output area, redraw)``: call ``redraw()`` to draw the current setting again.
    """
    import ipywidgets as widgets
    from IPython.display import display

    if first_view not in ("inline", "panel"):
        raise ValueError(f"first_view is 'inline' or 'panel', got {first_view!r}")
    names = [list(r) for r in rows] if rows is not None else [list(controls)]
    unknown = [n for r in names for n in r if n not in controls]
    if unknown:
        raise KeyError(f"rows name controls that do not exist: {unknown}; the controls are {list(controls)}")
    area = widgets.Output()

    def values() -> dict:
        return {name: c.value for name, c in controls.items()}

    def redraw(change=None):  # runs only when a control changes (live kernel)
        if before_redraw is not None:
            before_redraw(controls)
        area.clear_output(wait=True)
        with area:
            draw(**values())

    for c in controls.values():
        c.observe(redraw, names="value")
    boxes = [widgets.HBox([controls[n] for n in r] + (list(extra) if k == len(names) - 1 else []))
             for k, r in enumerate(names)]
    display(widgets.VBox(boxes + [area]))
    if first_view == "panel":
        redraw()
    else:
        draw(**values())
    return area, redraw
