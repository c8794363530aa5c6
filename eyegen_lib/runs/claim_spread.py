"""How much a claim's margin moves from seed to seed, at the training length it is reported at — so
a margin inside that spread is recorded as *inconclusive*, neither holding nor failing.

``eyegen zoo spread --profile cpu --seeds 0 1 2 --only 05 07`` (:func:`eyegen_lib.suite.zoo_cli.measure_spread`,
which keeps the notebook runner out of this module) runs those notebooks once per seed, reads every
claim's margin back from the records and writes ``zoo/<profile>/claim_spread.json``, keyed by claim and
by the training length of the models its margin rests on (:func:`length_key`: "400" steps, "GAN 1000 ·
DeepWarp 4000" where the models differ, "untrained" for a claim on no trained model):

    {"format": "eyegen-claim-spread/2", "profile": "cpu",
     "claims": {"cfw_lcm_beats_input_at_every_angle": {
         "400": {"margins": {"0": 30.1, "1": -20.4, "2": 55.0}, "sd": 38.2, "notebook": "05_deepwarp", …},
         "4000": {"margins": {"0": 27.2, "1": 31.0, "2": 29.5}, "sd": 1.9, "notebook": "05_deepwarp", …}}}}

By default each seed's models are trained at the profile's own lengths (nothing from the zoo); with
``--zoo-for-seed S FOLDER`` a seed's notebooks take that folder's zoo entries — the seed's models trained
as long as the shipped zoo's (``eyegen train --seed S --steps N``, then ``eyegen zoo add --folder FOLDER``)
— so the spread is measured at the zoo's length.

:meth:`~eyegen_lib.runs.record.Recorder.claim` takes a claim's spread from there (``SPREAD_SDS`` × the
margin's sample standard deviation at the claim's length) unless the notebook gives one. Where no spread
was measured at that length it takes the nearest one measured and says so in the claim's ``spread_note``
(and ``spread_length``): the report then shows which claims still rest on a spread of another length. A
claim with no spread on file keeps its plain holds / fails state. Files of format 1 (one spread per
claim, at "the profile's own" lengths) are read as that length.

The seeds' own models do not ship (only the shipped zoo's seed-0 models do); :func:`record_seed_models`
files their MANIFEST records — command, steps, sha256, data fingerprint, commit, held-out figures — in
``zoo/<profile>/spread_models.json``, by seed and name, so that what each spread rests on stays on record.
"""
from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.files import atomic_write_json
from .zoo import ZooError, read_manifest, zoo_dir

__all__ = ["SPREAD_SDS", "SPREAD_FORMAT", "UNTRAINED", "PROFILE_LENGTHS", "spread_path", "read_spread", "claim_spread",
           "length_key", "margins_of", "write_spread", "seed_models_path", "record_seed_models"]

SPREAD_FORMAT = "eyegen-claim-spread/2"
SPREAD_SDS = 2.0  # a margin within two seed-to-seed standard deviations is inconclusive
UNTRAINED = "untrained"                       # the length key of a claim on no trained model
PROFILE_LENGTHS = "the profile's own lengths"  # a format-1 entry's (or an unstated) length


def length_key(length) -> str:
    """A claim's training length as the spread file keys it: ``4000`` → "4000"; ``{"GAN": 1000,
    "DeepWarp": 4000}`` → "DeepWarp 4000 · GAN 1000" ("1000" where all are equal); ``0`` → "untrained";
    ``None`` (not stated) → :data:`PROFILE_LENGTHS`."""
    if length is None:
        return PROFILE_LENGTHS
    if isinstance(length, Mapping):
        steps = {str(k): int(v) for k, v in length.items()}
        if not steps:
            raise ValueError("a claim's length names at least one model")
        if len(set(steps.values())) == 1:
            return length_key(next(iter(steps.values())))
        return " · ".join(f"{k} {v}" for k, v in sorted(steps.items()))
    if isinstance(length, str):
        return length
    if int(length) < 0:
        raise ValueError(f"a claim's length is a number of training steps ≥ 0, got {length!r}")
    return UNTRAINED if int(length) == 0 else str(int(length))


def _steps(key: str) -> float:
    """The longest training a length key names (for choosing the nearest measured length)."""
    numbers = [int(w) for w in key.replace("·", " ").split() if w.isdigit()]
    return float(max(numbers)) if numbers else (0.0 if key == UNTRAINED else float("nan"))


def spread_path(profile: str, folder: Path | None = None) -> Path:
    return (folder or zoo_dir()) / profile / "claim_spread.json"


def read_spread(profile: str, folder: Path | None = None) -> dict:
    """The profile's spread file, format 2 (empty claims when there is none or no zoo folder)."""
    empty = {"format": SPREAD_FORMAT, "profile": profile, "claims": {}}
    try:
        path = spread_path(profile, folder)
    except ZooError:
        return empty
    if not path.exists():
        return empty
    data = json.loads(path.read_text())
    if data.get("format") == "eyegen-claim-spread/1":   # one spread per claim, at the profile's own lengths
        return {**empty, "claims": {name: {PROFILE_LENGTHS: {k: v for k, v in entry.items() if k != "length"}}
                                    for name, entry in data.get("claims", {}).items()}}
    if data.get("format") != SPREAD_FORMAT:
        raise ValueError(f"{path} is not a claim-spread file of format {SPREAD_FORMAT}")
    return data


def claim_spread(profile: str, name: str, length=None, folder: Path | None = None) -> dict | None:
    """The spread of claim ``name`` at ``profile`` for a margin at ``length`` (see :func:`length_key`):
    ``{"spread", "note", "length", "seeds"}`` — the spread measured at that length, or else the nearest length
    measured (``length`` then differs, and the note says so) — or None when none was measured."""
    measured = {k: e for k, e in read_spread(profile, folder)["claims"].get(name, {}).items() if e.get("sd") is not None}
    if not measured:
        return None
    wanted = length_key(length)
    if wanted in measured:
        key = wanted
    else:
        target = _steps(wanted)

        def distance(k):   # the nearest number of steps; lengths without one (the profile's own) last
            d = abs(_steps(k) - target)
            return (math.isnan(d), 0.0 if math.isnan(d) else d, k)

        key = min(measured, key=distance)
    entry = measured[key]
    seeds = ", ".join(sorted(entry["margins"], key=int))
    at = "no training" if key == UNTRAINED else (key if key == PROFILE_LENGTHS else f"{key} steps")
    note = f"{SPREAD_SDS:g} sd of its margin over seeds {seeds}, at {at}"
    if key != wanted:
        note += f" — not at the {wanted if wanted == PROFILE_LENGTHS else wanted + ' steps'} its margin is at"
    return {"spread": SPREAD_SDS * float(entry["sd"]), "note": note, "length": key,
            "seeds": sorted(int(seed) for seed in entry["margins"])}


def margins_of(records: Mapping[int, Sequence[tuple[str, dict]]]) -> dict[str, dict[str, dict]]:
    """{claim: {length key: {"margins": {seed: margin}, "sd", "mean", "notebook"}}} from each seed's
    recorded claims (``records``: {seed: [(notebook, claim), …]}), each at the length it recorded
    (``claim["length"]``; :data:`PROFILE_LENGTHS` where it stated none); claims without a margin are left out."""
    out: dict[str, dict[str, dict]] = {}
    for seed, claims in records.items():
        for notebook, c in claims:
            if c.get("margin") is None:
                continue
            key = c.get("length") or PROFILE_LENGTHS
            entry = out.setdefault(c["name"], {}).setdefault(key, {"margins": {}, "notebook": notebook})
            entry["margins"][str(seed)] = float(c["margin"])
    for lengths in out.values():
        for key, entry in lengths.items():
            lengths[key] = _summarised(entry, entry["margins"])
    return out


def _summarised(entry: Mapping, margins: Mapping[str, float]) -> dict:
    """``entry`` with ``margins`` (by seed, in seed order), their sample sd (None for one seed) and mean."""
    ordered = dict(sorted(margins.items(), key=lambda kv: int(kv[0])))
    values = list(ordered.values())
    return {**entry, "margins": ordered, "sd": statistics.stdev(values) if len(values) > 1 else None,
            "mean": statistics.fmean(values)}


def write_spread(profile: str, measured: Mapping[str, Mapping[str, dict]], *, folder: Path | None = None) -> Path:
    """Merge ``measured`` (from :func:`margins_of`) into the profile's spread file, seed by seed: a seed
    measured again replaces its margin at that length, the other seeds' margins on file are kept (so a
    later session can add seeds 3 and 4 to a spread of seeds 0–2 without re-running them), and the
    spread is recomputed over them all; other lengths and claims are kept."""
    data = read_spread(profile, folder)
    for name, lengths in measured.items():
        on_file = data["claims"].setdefault(name, {})
        for key, entry in lengths.items():
            on_file[key] = _summarised(entry, {**(on_file.get(key) or {}).get("margins", {}), **entry["margins"]})
    path = spread_path(profile, folder)
    return atomic_write_json(path, {"format": SPREAD_FORMAT, "profile": profile,
                                    "claims": {n: dict(sorted(v.items())) for n, v in sorted(data["claims"].items())}},
                             indent=1, sort_keys=True)


SEED_MODELS_FORMAT = "eyegen-spread-models/1"


def seed_models_path(profile: str, folder: Path | None = None) -> Path:
    return (folder or zoo_dir()) / profile / "spread_models.json"


def record_seed_models(profile: str, zoo_for_seed: Mapping[int, Path], *, folder: Path | None = None) -> Path | None:
    """File the MANIFEST records of each seed's zoo folder (``{seed: folder}``) in the profile's
    ``spread_models.json``: a seed's record of a model replaces the one on file; the rest are kept.
    Only entries of ``profile`` and of that seed are taken — a folder holding another seed's models is an error."""
    if not zoo_for_seed:
        return None
    path = seed_models_path(profile, folder)
    data = json.loads(path.read_text()) if path.exists() else {"format": SEED_MODELS_FORMAT, "profile": profile,
                                                                "seeds": {}}
    if data.get("format") != SEED_MODELS_FORMAT:
        raise ValueError(f"{path} is not a seed-models file of format {SEED_MODELS_FORMAT}")
    for seed, zoo in sorted(zoo_for_seed.items()):
        entries = [e for e in read_manifest(Path(zoo))["entries"] if e.get("profile") == profile]
        strangers = sorted(e["name"] for e in entries if e.get("seed") != int(seed))
        if strangers:
            raise ZooError(f"the zoo for seed {seed}, {zoo}, holds models of another seed ({', '.join(strangers)}): "
                           f"give each seed a folder of its own")
        on_file = data["seeds"].setdefault(str(int(seed)), {})
        on_file.update({e["name"]: dict(e) for e in entries})
    data["seeds"] = {seed: dict(sorted(models.items())) for seed, models in sorted(data["seeds"].items(), key=lambda kv: int(kv[0]))}
    return atomic_write_json(path, data, indent=1, sort_keys=True)
