"""How a notebook records its headline numbers, the paper claims it checks, and its key figures.

Everything lands in ``<outputs>/metrics/<notebook>.json`` (rewritten after every call, so a
notebook that dies half-way still leaves what it measured); the tests read it back and the
report (``eyegen report``) turns all of them into one page.
"""
from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.files import atomic_write_json
from ..core.paths import output_dir
from ..core.profiles import Profile
from ..science.data.errors import listen_for_data_sources
from ..science.margins import rising_margin
from .claim_context import paper_value
from .claim_spread import PROFILE_LENGTHS, UNTRAINED, claim_spread, length_key
from .environment import machine_description

__all__ = ["Recorder", "read_metrics", "artifact_origin", "claim_state", "rising_margin", "ClaimsTable", "RENDERER_SOURCE", "state_of",
           "margin_text", "lengths_text", "STATE_LABELS", "LENGTHS_LEGEND", "spread_legend"]

RENDERER_SOURCE = "eyegen's procedural eye renderer (OpenEDS-like NIR, Columbia-like RGB)"


def _plain(value: Any, what: str) -> Any:
    """JSON-safe scalars: numpy/torch scalars → float/int; NaN or inf is a bug, not a result."""
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} is {value}: a non-finite number is a failure to report, not a result")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, what) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{what}[{k}]") for k, v in value.items()}
    raise TypeError(f"{what}: cannot record a {type(value).__name__}; pass a number, string, bool, list or dict")


class Recorder:
    """Collects one notebook's metrics, claims, figures and the artifacts it used.

    The last Recorder made in a process is :meth:`current`: the artifact registry notes there
    every model and prediction file a notebook loads or trains (:meth:`artifact`).

    >>> rec = Recorder("03_refiner", profile)
    >>> rec.metric("refiner_score", 0.012, unit="challenge L2", lower_is_better=True)
    >>> rec.claim("refiner beats copy", paper="Seg2Eye §5.1", statement="refiner < copy-reference",
    ...           measured={"refiner": 0.012, "copy": 0.015}, holds=True)
    """

    _current: "Recorder | None" = None

    def __init__(self, notebook: str, profile: Profile | str | None = None, out: str | os.PathLike | None = None,
                 *, seed: int | None = None):
        self.notebook = notebook
        self.root = Path(out) if out is not None else output_dir()
        self.path = self.root / "metrics" / f"{notebook}.json"
        self.figure_dir = self.root / "figures" / notebook
        name = profile.name if isinstance(profile, Profile) else profile
        data = profile.data if isinstance(profile, Profile) else "renderer"
        self.data: dict[str, Any] = {
            "notebook": notebook,
            "profile": name,
            "seed": seed,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "metrics": {},
            "claims": [],
            "figures": [],
            "artifacts": [],
            "absent_inputs": [],  # files it looked for that no notebook had made yet (see :meth:`absent`)
            "produced": [],
            "machine": machine_description(),
            "data": data,  # the run's data source (DATA): the renderer, or a dataset named by its reader
            # a renderer run draws its eyes from the renderer; a reader of a dataset adds itself (data_read)
            "data_sources": [RENDERER_SOURCE] if data == "renderer" else [],
        }
        self._write()
        Recorder._current = self
        listen_for_data_sources(self)   # the data readers tell the running notebook what they read

    @classmethod
    def current(cls) -> "Recorder | None":
        """The notebook's recorder (the last one made in this process), or None."""
        return cls._current

    def artifact(self, name: str, *, file: str, sha256: str, seed: int | None, profile: str | None,
                 fingerprint: str | None, trained_now: bool, train_seconds: float | None = None,
                 step: int | None = None, resumed_from: int | None = None, source: str | None = None) -> None:
        """Note an artifact this notebook used: which file (and its sha256), for which seed and data,
        and where it came from (``source``: "zoo", "trained here" — with its training time;
        ``resumed_from``: the step a saved training state let it resume at — or "loaded")."""
        source = source or ("trained here" if trained_now else "loaded")
        entry = {"name": name, "file": str(file), "sha256": sha256, "seed": seed, "profile": profile,
                 "data_fingerprint": fingerprint, "trained_now": bool(trained_now), "source": source,
                 "train_seconds": None if train_seconds is None else round(float(train_seconds), 2),
                 "step": None if step is None else int(step),
                 "resumed_from": None if resumed_from is None else int(resumed_from)}
        # one entry per file: its first use (trained here, or loaded) stands unless the file changed since
        same = [a for a in self.data["artifacts"] if a["file"] == entry["file"]]
        if same and same[0]["sha256"] == entry["sha256"]:
            return
        self.data["artifacts"] = [a for a in self.data["artifacts"] if a["file"] != entry["file"]] + [entry]
        self._write()

    def absent(self, name: str, *, file: str | os.PathLike) -> None:
        """Note an input this notebook looked for and did not find (another notebook's saved outputs,
        not made yet): once that file exists, the report marks this notebook's run stale."""
        entry = {"name": name, "file": str(file)}
        if entry not in self.data["absent_inputs"]:
            self.data["absent_inputs"].append(entry)
            self._write()

    def produced(self, name: str, *, file: str | os.PathLike, sha256: str) -> None:
        """Note a file this notebook wrote for others to read (saved predictions)."""
        self.data["produced"] = [p for p in self.data["produced"] if p["file"] != str(file)] + \
            [{"name": name, "file": str(file), "sha256": sha256}]
        self._write()

    def renderer_used(self) -> None:
        """Note that the renderer made some of this notebook's eyes (a dataset run's section that has no
        dataset of its kind yet: 07's redirection part on OpenEDS, say)."""
        if RENDERER_SOURCE not in self.data["data_sources"]:
            self.data["data_sources"].append(RENDERER_SOURCE)
            self._write()

    def data_read(self, dataset: str, root: str | os.PathLike, *, synthetic: bool) -> None:
        """Note a dataset folder a reader opened: a licensed copy, or (``synthetic``) the renderer's
        export in that dataset's layout."""
        source = f"{dataset} at {root}" + (" (the renderer's export in its layout)" if synthetic else "")
        if source not in self.data["data_sources"]:
            self.data["data_sources"].append(source)
            self._write()

    def metric(self, name: str, value: Any, *, unit: str = "", description: str = "",
               lower_is_better: bool | None = None) -> Any:
        """Record a named metric (a number, or a small dict/list of numbers). Returns ``value``."""
        self.data["metrics"][name] = {
            "value": _plain(value, f"metric {name!r}"),
            "unit": unit,
            "description": description,
            "lower_is_better": lower_is_better,
        }
        self._write()
        return value

    def claim(self, name: str, *, paper: str, statement: str, measured: dict, holds: bool, note: str = "",
              margin: float | None = None, spread: float | None = None, spread_note: str = "",
              by_length: Mapping[int, Mapping] | None = None, data: str | None = None,
              length: int | Mapping[str, int] | None = None) -> bool:
        """Record a paper claim with what was measured and whether it holds here. Returns ``holds``.

        ``margin`` is by how much it holds (> 0) or fails (< 0), in the units of its measured quantity;
        ``spread`` the seed-to-seed spread of that margin (``spread_note``: how it was measured; by
        default the profile's measured spread, :mod:`eyegen_lib.runs.claim_spread`). A claim
        whose margin lies within its spread is recorded as **inconclusive** (``state``), neither holding
        nor failing. ``by_length`` holds the claim at other training lengths: ``{step: {"holds": bool,
        "margin": float, "measured": {...}}}`` (a long run's snapshots). ``data``: the data source it was
        measured on, where a notebook's sections read different ones (default: the notebook's).
        ``length``: the training steps of the models its margin rests on — one number, ``{model: steps}``
        where they differ, 0 for none trained (:func:`~eyegen_lib.runs.claim_spread.length_key`); the
        spread is the one measured at that length, or the nearest one measured, which ``spread_note`` and
        ``spread_length`` then name (``spread_seeds``: the seeds it was measured over)."""
        data = data or self.data.get("data", "renderer")
        for what, value in (("holds", holds), *((f"by_length[{k}].holds", v.get("holds")) for k, v in (by_length or {}).items())):
            if not isinstance(value, bool) and not (hasattr(value, "item") and isinstance(value.item(), bool)):
                raise TypeError(f"claim {name!r}: {what} must be True or False, got {value!r}")
        # the shipped spreads were measured on the renderer: a run on a dataset keeps its plain holds / fails
        key = length_key(length)
        spread_length = spread_seeds = None
        if spread is None and margin is not None and self.data.get("profile") and data == "renderer":
            found = claim_spread(self.data["profile"], name, key)
            if found is not None:
                spread, spread_note = found["spread"], found["note"]
                spread_length, spread_seeds = found["length"], found["seeds"]
        if spread is not None and (not math.isfinite(float(spread)) or spread < 0):
            raise ValueError(f"claim {name!r}: spread must be a finite number ≥ 0, got {spread!r}")
        entry = {"name": name, "paper": paper, "statement": statement,
                 "measured": _plain(dict(measured), f"claim {name!r}"), "holds": bool(holds), "note": note,
                 "margin": None if margin is None else float(margin), "spread": None if spread is None else float(spread),
                 "spread_note": spread_note, "state": claim_state(bool(holds), margin, spread),
                 "data": data, "length": key, "spread_length": spread_length,
                 "spread_seeds": spread_seeds}
        if by_length:
            entry["by_length"] = {str(int(k)): {"holds": bool(v["holds"]),
                                                "margin": None if v.get("margin") is None else float(v["margin"]),
                                                "state": claim_state(bool(v["holds"]), v.get("margin"), spread),
                                                "measured": _plain(dict(v.get("measured", {})), f"claim {name!r}")}
                                  for k, v in sorted(by_length.items())}
        self.data["claims"] = [c for c in self.data["claims"] if c["name"] != name] + [entry]
        self._write()
        return bool(holds)

    def figure(self, fig, name: str, caption: str = "", *, dpi: int = 110) -> Path:
        """Save a matplotlib figure as PNG for the report (the notebook still shows it inline)."""
        self.figure_dir.mkdir(parents=True, exist_ok=True)
        path = self.figure_dir / f"{name}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        entry = {"name": name, "path": str(path.relative_to(self.root)), "caption": caption}
        self.data["figures"] = [f for f in self.data["figures"] if f["name"] != name] + [entry]
        self._write()
        return path

    def claims_table(self) -> "ClaimsTable":
        """The claims recorded so far as a table for the notebook's closing cell: one row per claim with
        its paper reference, state (holds / fails / inconclusive), margin ± spread, what was measured and
        the full statement (never truncated). Shows as an HTML table in Jupyter and nbconvert, as plain
        text elsewhere; ``.frame`` is the same as a DataFrame."""
        return ClaimsTable(self.data["claims"])

    def _write(self) -> None:
        self.data["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_json(self.path, self.data, indent=2, allow_nan=False)


def _compact(value: Any) -> str:
    """A measured value, short: floats to 4 significant figures, dicts as ``k=v, …``, lists as ``[a, b]``."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_compact(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return str(value)


def _measured_parts(measured: Mapping) -> list[str]:
    """One short string per measured quantity; a nested group reads ``name: k=v, …``."""
    return [f"{k}: {_compact(v)}" if isinstance(v, Mapping) else f"{k}={_compact(v)}" for k, v in measured.items()]


def state_of(claim: Mapping) -> str:
    """A recorded claim's state: "holds", "fails" or "inconclusive" (records from before states: holds/fails)."""
    return claim.get("state") or ("holds" if claim["holds"] else "fails")


# One word per state wherever a claim is shown (notebooks, report, text): the record keeps "fails"
STATE_LABELS = {"holds": "holds", "fails": "does not hold", "inconclusive": "inconclusive"}
LENGTHS_LEGEND = ("at other lengths: the claim at the zoo's snapshots of the same long run, by training step — "
                  "✓ holds, ✗ does not hold, ? inconclusive")


def spread_legend(claims: list[Mapping]) -> tuple[dict[str, str], list[str]]:
    """How each claim's seed spread was measured, said once: ``({claim name: marker}, legend lines)``
    with one marker ("a", "b", …) per distinct ``spread_note``."""
    notes: dict[str, str] = {}
    markers = {}
    for c in claims:
        note = c.get("spread_note")
        if note:
            markers[c["name"]] = notes.setdefault(note, chr(ord("a") + len(notes)))
    lines = [f"({m}) ± is {note}" for note, m in notes.items()]
    if any(c.get("spread_length") and c["spread_length"] != c.get("length") for c in claims):
        lines.append("! its spread was measured at another training length than its margin (the note says which)")
    return markers, lines


def margin_text(claim: Mapping) -> str:
    """"+0.1 ± 0.2": a claim's margin and its seed spread, as the notebooks and the report print them —
    with the training length it is at where the claim states one ("+27 ± 1.9 at 4000 steps"; "untrained"),
    and a "!" where its spread was measured at another length."""
    if claim.get("margin") is None:
        return ""
    text = f"{claim['margin']:+.3g}"
    if claim.get("spread") is not None:
        text += f" ± {claim['spread']:.2g}"
    length = claim.get("length")
    if length and length != PROFILE_LENGTHS:
        text += " untrained" if length == UNTRAINED else f" at {length} steps"
    if claim.get("spread_length") and claim["spread_length"] != length:
        text += " !"
    return text


def lengths_text(claim: Mapping) -> str:
    """The claim at a long run's snapshots: "1000: ✗ · 5000: ✓" ("?" inconclusive)."""
    marks = {"holds": "✓", "fails": "✗", "inconclusive": "?"}
    return " · ".join(f"{step}: {marks[state_of(r)]}" for step, r in (claim.get("by_length") or {}).items())


class ClaimsTable:
    """A notebook's recorded claims, for display (:meth:`Recorder.claims_table`): HTML in Jupyter and
    nbconvert (text wraps, nothing is cut), readable plain text otherwise, ``.frame`` as a DataFrame."""

    _STATE_COLOUR = {"holds": "#0a7a28", "fails": "#b3141b", "inconclusive": "#a15c00"}

    def __init__(self, claims: list[dict]):
        self.claims = [dict(c) for c in claims]
        self.with_lengths = any(c.get("by_length") for c in self.claims)  # the column shows only when used

    def rows(self) -> list[dict]:
        """One dict per claim: claim, paper, state, margin (± spread), measured, statement, note (and the
        states at other training lengths where a claim has them)."""
        rows = []
        for c in self.claims:
            nested = any(isinstance(v, Mapping) for v in c.get("measured", {}).values())
            row = {"claim": c["name"], "paper": c["paper"], "state": STATE_LABELS[state_of(c)], "margin": margin_text(c),
                   "measured": ("; " if nested else ", ").join(_measured_parts(c.get("measured", {}))),
                   "statement": c["statement"], "note": c.get("note", ""),
                   # what the paper shows, on its data, beside what was measured here, on ours
                   "paper's value": paper_value(c["name"]), "measured on": c.get("data", "renderer")}
            if self.with_lengths:
                row["at other lengths"] = lengths_text(c)
            rows.append(row)
        return rows

    @property
    def frame(self):
        """The table as a pandas DataFrame (one row per claim)."""
        import pandas as pd

        return pd.DataFrame(self.rows(), columns=["claim", "paper", "paper's value", "state", "margin", "measured",
                                                  "measured on", "statement", "note"]
                            + (["at other lengths"] if self.with_lengths else []))

    def __len__(self) -> int:
        return len(self.claims)

    def __repr__(self) -> str:
        if not self.claims:
            return "No claims recorded."
        blocks = []
        for c, row in zip(self.claims, self.rows()):
            head = f"{row['claim']} ({row['paper']}): {row['state']}" + (f", margin {row['margin']}" if row["margin"] else "")
            lines = [head, f"  {row['statement']}", f"  measured on {row['measured on']}: {row['measured']}"]
            if row["paper's value"]:
                lines.append("  the paper: " + row["paper's value"])
            if row.get("at other lengths"):
                lines.append(f"  at other lengths: {row['at other lengths']}")
            if row["note"]:
                lines.append(f"  note: {row['note']}")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks)

    def _repr_html_(self) -> str:
        from html import escape

        if not self.claims:
            return "<p>No claims recorded.</p>"
        # inline styles: Jupyter and nbconvert keep them (a <style> block is dropped from untrusted output);
        # text wraps in its cell instead of being cut, and the wide columns keep a readable width
        cell = "text-align:left;vertical-align:top;white-space:normal;overflow-wrap:break-word;padding:.3em .5em"
        wide = {"measured here": ";min-width:12em", "statement": ";min-width:18em", "paper's value": ";min-width:10em"}
        head = ["claim", "paper", "paper's value", "state", "margin ± spread", "measured here", "statement"]
        if self.with_lengths:
            head.append("at other lengths")
        markers, legend = spread_legend(self.claims)
        html = ["<table class='eyegen-claims' style='border-collapse:collapse;table-layout:auto;width:100%'>",
                "<thead><tr>" + "".join(f"<th style='{cell}{wide.get(h, '')}'>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
        for c, row in zip(self.claims, self.rows()):
            nested = any(isinstance(v, Mapping) for v in c.get("measured", {}).values())
            measured = ("<br>" if nested else ", ").join(escape(p) for p in _measured_parts(c.get("measured", {})))
            note = f"<br><small style='color:#555'>{escape(row['note'])}</small>" if row["note"] else ""
            spread_note = f"<sup>({markers[c['name']]})</sup>" if c["name"] in markers else ""
            colour = self._STATE_COLOUR[state_of(c)]
            on = f"<br><small>on {escape(row['measured on'])}</small>"
            cells = [f"<b>{escape(row['claim'])}</b>", escape(row["paper"]), escape(row["paper's value"]),
                     f"<span style='color:{colour};font-weight:600'>{escape(row['state'])}</span>",
                     f"<span style='white-space:nowrap'>{escape(row['margin'])}</span>{spread_note}", measured + on,
                     escape(row["statement"]) + note]
            if self.with_lengths:
                cells.append(escape(row["at other lengths"]))
            html.append("<tr>" + "".join(f"<td style='{cell}'>{v}</td>" for v in cells) + "</tr>")
        html.append("</tbody></table>")
        small = "<p style='font-size:.85em;color:#555;margin:.2em 0'>{}</p>"
        html.extend(small.format(escape(line)) for line in legend + ([LENGTHS_LEGEND] if self.with_lengths else []))
        return "".join(html)


def claim_state(holds: bool, margin: float | None = None, spread: float | None = None) -> str:
    """"holds", "fails", or "inconclusive" when the margin lies within the seed-to-seed spread."""
    if margin is not None and spread is not None and abs(float(margin)) <= float(spread):
        return "inconclusive"
    return "holds" if holds else "fails"


def read_metrics(notebook: str, out: str | os.PathLike | None = None) -> dict:
    """What a notebook recorded (the tests and the evaluation notebook read it back)."""
    path = (Path(out) if out is not None else output_dir()) / "metrics" / f"{notebook}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no recorded metrics for {notebook!r} at {path}: run the notebook first (eyegen run --only {notebook})")
    return json.loads(path.read_text())


def artifact_origin(a: dict) -> str:
    """Where an artifact came from, as the report says it: "zoo, 10000 steps", "trained here (212 s), 1000
    steps", "loaded, 1000 steps"."""
    if a.get("source") == "zoo":
        origin = "zoo"
    elif a.get("trained_now"):
        secs = a.get("train_seconds")
        origin = f"trained here ({secs:.0f} s)" if isinstance(secs, (int, float)) else "trained here"
        if a.get("resumed_from") is not None:
            origin += f", resumed at step {a['resumed_from']}"
    else:
        origin = "loaded"
    if a.get("step"):
        origin += f", {a['step']} steps"
    return origin
