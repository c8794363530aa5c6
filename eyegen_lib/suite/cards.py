"""One card per notebook: what it reproduces, what it needs, what it makes, and how long it ran.

The cards are the one place these facts live. ``eyegen list`` prints them, the README's table and
the card cell at the top of every notebook are rendered from them (``eyegen notebooks cards``
rewrites the cells; a test keeps both in step), and ``eyegen run`` takes a notebook's timeout from
its measured time. Times are wall seconds of a whole notebook as measured on a 2-core AMD EPYC
(see ``MEASURED_ON``); ``None`` where that run has not been timed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.files import atomic_write_text
from ..core.paths import list_notebooks, project_root

__all__ = ["NotebookCard", "CARDS", "card", "notebooks_taking", "card_fields", "card_markdown", "card_text", "cards_table", "timeout_for", "MEASURED_ON",
           "TIMEOUT_FACTOR", "MIN_TIMEOUT_S"]

MEASURED_ON = "a 2-core AMD EPYC (no GPU), eyegen run from a fresh clone"
TIMEOUT_FACTOR = 3.0  # a notebook may take this many times its measured time before eyegen run stops it
MIN_TIMEOUT_S = 600.0  # ... and never less than this: a slower machine must not fail a healthy run


@dataclass(frozen=True)
class NotebookCard:
    notebook: str
    reproduces: str
    needs: str
    makes: str
    # {profile: {"zoo": seconds, "no_zoo": seconds}}; without models both are the same run
    seconds: dict[str, dict[str, float | None]] = field(default_factory=dict)
    timing_note: str = ""
    data: tuple[str, ...] = ("renderer",)  # the data sources (DATA) it runs on; see profiles.DATA_SOURCES
    data_note: str = ""  # what the Data line adds: how the notebook reads its datasets

    def takes(self, data: str) -> bool:
        return data in self.data

    @property
    def number(self) -> str:
        return self.notebook.partition("_")[0]

    def measured(self, profile: str, pretrained: bool = True) -> float | None:
        return self.seconds.get(profile, {}).get("zoo" if pretrained else "no_zoo")


def _t(smoke: float | None, cpu_zoo: float | None, cpu_no_zoo: float | None) -> dict:
    return {"smoke": {"zoo": smoke, "no_zoo": smoke}, "cpu": {"zoo": cpu_zoo, "no_zoo": cpu_no_zoo}}


_MPIIGAZE_NOTE = "on Columbia, also your MPIIGaze copy as the cross-dataset test when $EYEGEN_MPIIGAZE_DIR is set"
CARDS: dict[str, NotebookCard] = {c.notebook: c for c in (
    NotebookCard("00_setup", "nothing: checks the environment, weights and datasets",
                 "—", "—", _t(5.4, 6.9, 6.9)),
    NotebookCard("01_dataset", "the data: the procedural eye renderer standing in for OpenEDS, Columbia Gaze and "
                 "MPIIGaze, and the real datasets' readers", "—", "—", _t(10.0, 12.1, 12.1)),
    NotebookCard("02_ranking", "Seg2Eye §4.1 (Buhler et al., ICCVW 2019): pseudo-labels and similarity ranking",
                 "—", "the DeepLab v3+ segmenter", _t(10.8, 37.1, None),
                 "without the zoo, 01–03 took about 4.5 min together at cpu", data=("renderer", "openeds")),
    NotebookCard("03_refiner", "Seg2Eye §4.2, §5.1: the refiner that won the OpenEDS challenge",
                 "02's segmenter", "the refiner; its outputs on the OpenEDS protocol (read by 04 and 07)",
                 _t(8.4, 22.8, None), "without the zoo, 01–03 took about 4.5 min together at cpu",
                 data=("renderer", "openeds")),
    NotebookCard("04_seg2eye", "Seg2Eye §4.3, §5.2: SPADE + AdaIN style generation and its ablations",
                 "03's refiner outputs (for the Seg2Eye-vs-refiner claim)",
                 "Seg2Eye, its ablations; its outputs on the OpenEDS protocol (read by 07)", _t(20.0, 90.9, 720.0),
                 data=("renderer", "openeds")),
    NotebookCard("05_deepwarp", "DeepWarp (Ganin et al., ECCV 2016): coarse-to-fine warping, lightness correction",
                 "—", "the DeepWarp variants; its outputs on the redirection protocol (read by 06, 07)",
                 _t(40.1, 88.6, 1140.0), data=("renderer", "columbia"),
                 data_note="on Columbia its anchors are a template eye placed by He et al.'s crop (photographs carry no "
                           "landmarks) and the LCM's eye-white analysis is left out (no masks)"),
    NotebookCard("06_gaze_gan", "He et al., ICCV 2019: GAN gaze redirection, its ablations, against DeepWarp",
                 "05's protocol DeepWarp, 07's gaze estimator (both taken or trained through the registry)",
                 "the GAN and its ablations; its outputs on the redirection protocol (read by 07, 08)",
                 _t(42.0, 858.5, None), "without the zoo, the GAN alone trains 73 min at cpu; not timed end to end. With the zoo it trains "
                 "nothing and spends its time scoring every GAN variant and DeepWarp on the protocol", data=("renderer", "columbia")),
    NotebookCard("07_evaluation", "the metrics (challenge L2, LPIPS, blurriness, gaze error), He et al.'s Table 1, "
                 "and every method side by side", "the saved outputs of 03–06 (each left out until made)",
                 "the independent gaze estimator", _t(15.8, 69.0, 90.0),
                 data=("renderer", "openeds", "columbia"),
                 data_note="each of its parts reads the data of its kind, the other stays on the renderer; " + _MPIIGAZE_NOTE),
    NotebookCard("08_augmentation", "He et al. §5.6: redirected eyes as training data for gaze estimation",
                 "06's GAN", "gaze estimators on raw, GAN-augmented and oracle sets", _t(24.0, 17.8, None),
                 "without the zoo it trains 06's GAN first when 06 has not run", data=("renderer", "columbia"),
                 data_note=_MPIIGAZE_NOTE),
)}


_DATASET_NAMES = {"openeds": "your OpenEDS copy", "columbia": "your Columbia Gaze copy", "mpiigaze": "your MPIIGaze copy"}


def notebooks_taking(data: str) -> list[str]:
    """The notebooks that run on data source ``data``."""
    return [name for name, c in CARDS.items() if c.takes(data)]


def card(notebook: str) -> NotebookCard:
    """The card of a notebook named by its full name ("04_seg2eye")."""
    try:
        return CARDS[notebook]
    except KeyError:
        raise KeyError(f"no card for {notebook!r}: add one to eyegen_lib/suite/cards.py (notebooks: {', '.join(CARDS)})") from None


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "not timed"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _times(c: NotebookCard) -> str:
    parts = []
    for profile, runs in c.seconds.items():
        zoo, no_zoo = runs.get("zoo"), runs.get("no_zoo")
        parts.append(f"{profile} {_duration(zoo)}" if zoo == no_zoo else
                     f"{profile} {_duration(zoo)} with the zoo, {_duration(no_zoo)} without")
    return "; ".join(parts) + "; gpu and paper not timed yet"


def card_fields(notebook: str) -> list[tuple[str, str]]:
    """A card as (label, text) rows: the notebook cell, ``eyegen list`` and the README draw from these."""
    c = card(notebook)
    data = "the renderer" + "".join(f"; {_DATASET_NAMES[d]} (eyegen run --data {d})" for d in c.data if d != "renderer")
    if c.data_note:
        data += "; " + c.data_note
    return [("Reproduces", c.reproduces), ("Needs", c.needs), ("Makes", c.makes), ("Data", data),
            ("Run time", f"{_times(c)}" + (f" ({c.timing_note})" if c.timing_note else "") + f"; on {MEASURED_ON}"),
            ("Run it", f"eyegen run --only {c.number}")]


def card_markdown(notebook: str) -> str:
    """The card cell at the top of a notebook (rendered from CARDS, never edited by hand)."""
    rows = [f"> **{label}** " + (f"`{text}`" if label == "Run it" else text) + "  " for label, text in card_fields(notebook)]
    return "\n".join(["> **Notebook card** (`eyegen list`)", ">", *rows]).rstrip()


def card_text(notebook: str) -> str:
    """The card as plain text for the terminal (``eyegen list``)."""
    return "\n".join([notebook] + [f"  {label + ':':<11} {text}" for label, text in card_fields(notebook)])


def cards_table() -> str:
    """The README's table of notebooks (Markdown)."""
    rows = ["| notebook | reproduces | needs | makes | run time (2-core CPU) |", "|---|---|---|---|---|"]
    for c in CARDS.values():
        rows.append(f"| `{c.notebook}` | {c.reproduces} | {c.needs} | {c.makes} | {_times(c)} |")
    return "\n".join(rows)


def timeout_for(notebook: str, profile: str, pretrained: bool = True) -> float | None:
    """Seconds ``eyegen run`` allows a notebook: its measured time × TIMEOUT_FACTOR, at least
    MIN_TIMEOUT_S; None (no limit) where that run has not been timed."""
    seconds = CARDS[notebook].measured(profile, pretrained) if notebook in CARDS else None
    return None if seconds is None else max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * seconds)


README_START, README_END = "<!-- cards: eyegen notebooks cards -->", "<!-- /cards -->"


def refresh_cards(notebooks: list | None = None, readme=None) -> list:
    """Write each notebook's card cell (tagged ``card``, right under the title cell) and the README's
    table between its markers from CARDS; returns the files changed. ``eyegen notebooks cards``."""
    import nbformat

    changed = []
    for path in notebooks if notebooks is not None else list_notebooks():
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if "card" not in c.get("metadata", {}).get("tags", [])]
        cell = nbformat.v4.new_markdown_cell(card_markdown(path.stem), metadata={"tags": ["card"]})
        old = [c for c in nb.cells if "card" in c.get("metadata", {}).get("tags", [])]
        if old:
            cell["id"] = old[0].get("id", cell["id"])
        if old and old[0].source == cell.source and nb.cells.index(old[0]) == 1:
            continue
        nb.cells = cells[:1] + [cell] + cells[1:]
        nbformat.write(nb, path)
        changed.append(path)
    readme = readme or (project_root() / "README.md")
    text = readme.read_text()
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        new = head + README_START + "\n" + cards_table() + "\n" + README_END + rest.split(README_END, 1)[1]
        if new != text:
            atomic_write_text(readme, new)
            changed.append(readme)
    return changed
