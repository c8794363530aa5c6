"""How much a claim's margin moves from seed to seed — so a margin inside that spread is recorded as
*inconclusive*, neither holding nor failing.

``eyegen zoo spread --profile cpu --seeds 0 1 2 --only 05 07`` (:func:`eyegen_lib.suite.zoo_cli.measure_spread`,
which keeps the notebook runner out of this module) runs those notebooks once per seed
(models trained here, nothing from the zoo: each seed is its own run), reads every claim's margin
back from the records and writes ``zoo/<profile>/claim_spread.json``:

    {"format": "eyegen-claim-spread/1", "profile": "cpu",
     "claims": {"gan_beats_deepwarp_lpips": {"margins": {"0": -0.12, "1": -0.10, "2": -0.15}, "sd": 0.025,
                                             "notebook": "06_gaze_gan", "length": "the profile's own", …}}}

:meth:`~eyegen_lib.runs.record.Recorder.claim` then takes a claim's spread from there (``SPREAD_SDS`` ×
the margin's sample standard deviation) unless the notebook gives one. Spreads are measured at the
profile's own training lengths (the zoo's models are longer: their spread is, if anything, smaller),
and a claim with no spread on file keeps its plain holds / fails state.
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.files import atomic_write_json
from .zoo import ZooError, zoo_dir

__all__ = ["SPREAD_SDS", "SPREAD_FORMAT", "spread_path", "read_spread", "claim_spread", "margins_of", "write_spread"]

SPREAD_FORMAT = "eyegen-claim-spread/1"
SPREAD_SDS = 2.0  # a margin within two seed-to-seed standard deviations is inconclusive


def spread_path(profile: str, folder: Path | None = None) -> Path:
    return (folder or zoo_dir()) / profile / "claim_spread.json"


def read_spread(profile: str, folder: Path | None = None) -> dict:
    """The profile's spread file (empty claims when there is none or no zoo folder)."""
    try:
        path = spread_path(profile, folder)
    except ZooError:
        return {"format": SPREAD_FORMAT, "profile": profile, "claims": {}}
    if not path.exists():
        return {"format": SPREAD_FORMAT, "profile": profile, "claims": {}}
    data = json.loads(path.read_text())
    if data.get("format") != SPREAD_FORMAT:
        raise ValueError(f"{path} is not a claim-spread file of format {SPREAD_FORMAT}")
    return data


def claim_spread(profile: str, name: str, folder: Path | None = None) -> tuple[float, str] | None:
    """(spread, how it was measured) of claim ``name`` at ``profile``, or None when not measured."""
    entry = read_spread(profile, folder)["claims"].get(name)
    if not entry or entry.get("sd") is None:
        return None
    seeds = ", ".join(sorted(entry["margins"], key=int))
    return SPREAD_SDS * float(entry["sd"]), (f"{SPREAD_SDS:g} sd of its margin over seeds {seeds} "
                                            f"({entry.get('length', 'the profile’s own length')})")


def margins_of(records: Mapping[int, Sequence[dict]]) -> dict[str, dict]:
    """{claim: {"margins": {seed: margin}, "sd", "notebook"}} from each seed's recorded claims
    (``records``: {seed: [(notebook, claim), …]}); claims without a margin are left out."""
    out: dict[str, dict] = {}
    for seed, claims in records.items():
        for notebook, c in claims:
            if c.get("margin") is None:
                continue
            entry = out.setdefault(c["name"], {"margins": {}, "notebook": notebook})
            entry["margins"][str(seed)] = float(c["margin"])
    for entry in out.values():
        values = list(entry["margins"].values())
        entry["sd"] = statistics.stdev(values) if len(values) > 1 else None
        entry["mean"] = statistics.fmean(values)
    return out


def write_spread(profile: str, measured: Mapping[str, dict], *, length: str, folder: Path | None = None) -> Path:
    """Merge ``measured`` (from :func:`margins_of`) into the profile's spread file."""
    data = read_spread(profile, folder)
    for name, entry in measured.items():
        data["claims"][name] = {**entry, "length": length}
    path = spread_path(profile, folder)
    return atomic_write_json(path, {"format": SPREAD_FORMAT, "profile": profile,
                                    "claims": dict(sorted(data["claims"].items()))}, indent=1, sort_keys=True)
