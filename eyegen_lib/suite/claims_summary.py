"""``eyegen claims``: every claim a run recorded, in one table — its state, margin and seed spread, the
training length its margin is at, and the length and seeds its spread was measured at — and, given an
earlier run (``--against``), each claim's state and margin there, so that what changed reads at a glance.

    eyegen claims                          # the run in outputs/
    eyegen claims --out RUN --against OLD --markdown
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from ..runs.claim_spread import SPREAD_SDS
from ..runs.record import STATE_LABELS, state_of
from .report import collect_results

__all__ = ["COLUMNS", "claim_rows", "claims_text", "counts_text"]

COLUMNS = ("notebook", "claim", "state", "margin", "spread", "length", "spread measured at", "seeds")
_SEEDS_IN_NOTE = re.compile(r"over seeds ([\d, ]+)")   # records from before spread_seeds was stored


def _claims(out: Path) -> Iterator[tuple[str, dict]]:
    if not (Path(out) / "metrics").is_dir():
        raise FileNotFoundError(f"{out} holds no recorded run (no metrics/ folder): name the folder an "
                                "`eyegen run --out` wrote, or run the notebooks first")
    for result in collect_results(out):
        for claim in result.get("claims", []):
            yield result["notebook"], claim


def _seeds(claim: Mapping) -> str:
    seeds = claim.get("spread_seeds")
    if seeds is None and claim.get("spread") is not None:
        found = _SEEDS_IN_NOTE.search(claim.get("spread_note", ""))
        seeds = [int(s) for s in found.group(1).replace(" ", "").split(",") if s] if found else None
    if not seeds:
        return "—"
    seeds = sorted(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def _number(value, fmt: str) -> str:
    return "—" if value is None else format(value, fmt)


def _state(claim: Mapping) -> str:
    return STATE_LABELS[state_of(claim)]


def claim_rows(out: Path, against: Path | None = None) -> list[dict[str, str]]:
    """One row per recorded claim of the run in ``out`` (notebook order), its cells as text: the
    :data:`COLUMNS`, and ``before`` (state and margin in the run in ``against``; "new" where it
    recorded no such claim) when ``against`` is given. A spread measured at another length than the
    claim's margin is marked "!"."""
    before = {(nb, c["name"]): c for nb, c in _claims(against)} if against is not None else None
    rows = []
    for notebook, claim in _claims(out):
        length = claim.get("length") or "—"
        spread_at = claim.get("spread_length") if claim.get("spread") is not None else None
        if spread_at and spread_at != claim.get("length"):
            spread_at += " !"
        row = {"notebook": notebook, "claim": claim["name"], "state": _state(claim),
               "margin": _number(claim.get("margin"), "+.3g"), "spread": _number(claim.get("spread"), ".2g"),
               "length": length, "spread measured at": spread_at or ("—" if claim.get("spread") is None else "?"),
               "seeds": _seeds(claim)}
        if before is not None:
            old = before.get((notebook, claim["name"]))
            row["before"] = "new" if old is None else f"{_state(old)} {_number(old.get('margin'), '+.3g')}"
            row["changed"] = "yes" if old is None or state_of(old) != state_of(claim) else "no"  # not a column
        rows.append(row)
    return rows


def counts_text(rows: list[dict[str, str]]) -> str:
    """"22 claims: 9 hold, 6 do not hold, 7 inconclusive" (and how many changed state, against a run)."""
    states = [r["state"] for r in rows]
    text = (f"{len(rows)} claims: {states.count(STATE_LABELS['holds'])} hold, {states.count(STATE_LABELS['fails'])} "
            f"do not hold, {states.count(STATE_LABELS['inconclusive'])} inconclusive")
    if rows and "before" in rows[0]:
        changed = sum(1 for r in rows if r["changed"] == "yes")
        text += f"; {changed} changed state against the earlier run"
    return text


def claims_text(rows: list[dict[str, str]], *, markdown: bool = False) -> str:
    """The rows as an aligned plain-text table, or a Markdown one (for notes and issues)."""
    columns = list(COLUMNS[:3]) + (["before"] if rows and "before" in rows[0] else []) + list(COLUMNS[3:])
    cells = [columns] + [[r[c] for c in columns] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in cells]
        lines.insert(1, "|" + "|".join("---" for _ in columns) + "|")
    else:
        widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    legend = (f"length: the training steps its margin rests on; spread: {SPREAD_SDS:g} sd of the margin over the "
              "seeds, measured at that length (! at another length: the nearest one measured)")
    return "\n".join(lines + ["", counts_text(rows), legend])
