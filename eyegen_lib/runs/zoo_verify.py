"""``eyegen zoo verify``: every zoo entry is the bytes its MANIFEST lists, loads through the registry
for the run it was made for, and still scores what it scored when it was exported.

The re-evaluation (:func:`check_metrics`, each family's own) runs each model on a small fixed held-out
set of its run (:data:`eyegen_lib.runs.families.common.CHECK_IMAGES`) — eight test-person NIR images for the OpenEDS models, 64 protocol pairs of the first test eye for the
redirection models, 64 test-person patches for the gaze estimators — and compares with the figures
:func:`~eyegen_lib.runs.zoo.export_entry`'s caller stored as ``entry["check"]``, within
:data:`CHECK_TOLERANCE`. A renderer, protocol or config change makes an entry stale: its run then has
another data fingerprint or config, no entry serves it, and verify names the ``eyegen train`` command
that rebuilds it.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..core.checkpoint import CheckpointError
from ..core.paths import empty_outputs
from ..core.profiles import get_profile
from .family import family
from .registry import length_snapshots
from .zoo import ZooError, read_manifest, verify_files, zoo_dir

__all__ = ["CHECK_TOLERANCE", "check_metrics", "headline_metrics", "load_entry_through_registry", "verify_zoo",
           "within_tolerance"]

# |now − then| ≤ rel·|then| + abs: the same weights on another CPU (other oneDNN kernels) differ by far
# less; a retrained, altered or mis-loaded model by far more
CHECK_TOLERANCE = {"rel": 0.02, "abs": 1e-3}


def _entry_family(entry_name: str):
    """(family, variant) of a MANIFEST name such as ``gaze_gan/no_cycle`` or ``deepwarp/cfw@2000``."""
    name, _, variant = entry_name.partition("@")[0].partition("/")
    try:
        return family(name), variant
    except ValueError as exc:
        raise ZooError(f"zoo entry {entry_name!r}: {exc}") from None


def load_entry_through_registry(entry: Mapping, *, progress: bool = False):
    """(model, info) as a notebook with ``PRETRAINED = True`` gets it for ``entry``'s run; raises
    :class:`ZooError` naming the rebuild command when the entry no longer serves that run."""
    fam, variant = _entry_family(entry["name"])
    profile = get_profile(entry["profile"])
    try:
        with empty_outputs():
            model, info = fam.obtain(profile, variant or fam.default_variant, seed=entry["seed"], pretrained=True,
                                     train=False, progress=progress)
    except CheckpointError as exc:
        raise ZooError(f"{entry['file']} ({entry['name']}) no longer serves its run — the renderer, a protocol or the "
                       f"model's config changed since it was built: {str(exc).splitlines()[0]}\n"
                       f"  rebuild it with: {entry['command']}") from None
    if info.get("source") != "zoo":
        raise ZooError(f"{entry['file']}: the registry served {entry['name']} from {info.get('path')}, not the zoo")
    return model, info


@torch.no_grad()
def check_metrics(name: str, model, profile, seed: int) -> dict:
    """The model's figures on a small fixed held-out set of its run (its family's
    :meth:`~eyegen_lib.runs.family.ModelFamily.check_metrics`; see the module docstring)."""
    fam, variant = _entry_family(name)
    try:
        return fam.check_metrics(variant, model, profile, seed)
    except NotImplementedError as exc:
        raise ZooError(str(exc)) from None


@torch.no_grad()
def headline_metrics(name: str, model, profile, seed: int, *, progress: bool = False) -> dict:
    """Held-out figures for a MANIFEST entry whose training run evaluated nothing itself (its family's
    :meth:`~eyegen_lib.runs.family.ModelFamily.headline_metrics`): the redirection models on every protocol
    pair of the test eyes at their size (LPIPS and MSE to the real eye at the target gaze), Seg2Eye on
    the OpenEDS protocol's targets with their K style images (challenge score, LPIPS), the refiner on
    those targets from their top-1 reference (challenge score, blurriness), §5.6's estimators on 08's
    two test sets (mean angular error). Empty for the others (their artifacts carry their own evaluation)."""
    fam, variant = _entry_family(name)
    return fam.headline_metrics(variant, model, profile, seed, progress=progress)


def within_tolerance(now: Mapping, then: Mapping) -> list[str]:
    """The figures of ``then`` that ``now`` misses by more than :data:`CHECK_TOLERANCE`."""
    bad = []
    for key, ref in then.items():
        value = now.get(key)
        if value is None or abs(value - ref) > CHECK_TOLERANCE["rel"] * abs(ref) + CHECK_TOLERANCE["abs"]:
            bad.append(f"{key} {value if value is None else f'{value:.4g}'} (MANIFEST: {ref:.4g}, tolerance "
                       f"{CHECK_TOLERANCE['rel']:.0%} + {CHECK_TOLERANCE['abs']:g})")
    return bad


def load_for_check(entry: Mapping):
    """The model of ``entry`` as the notebooks get it: through the registry, or — a length snapshot
    ``<name>@<step>`` — through :func:`~eyegen_lib.runs.registry.length_snapshots`."""
    name, _, at = entry["name"].partition("@")
    if not at:
        return load_entry_through_registry(entry)[0]
    fam_name, _, variant = name.partition("/")
    found = {s: m for s, m, _ in length_snapshots(fam_name, get_profile(entry["profile"]), variant, seed=entry["seed"])}
    if int(at) not in found:
        raise ZooError(f"{entry['file']} ({entry['name']}) no longer serves its run; rebuild it with: {entry['command']}")
    return found[int(at)]


def verify_zoo(folder: Path | None = None, *, evaluate: bool = True, progress: bool = False,
               on_entry=None) -> list[str]:
    """Problems with the zoo (empty when every entry holds): files missing or altered, entries that
    no longer serve their run, and — with ``evaluate`` — figures that moved. ``on_entry(entry,
    problems)`` is called per entry (the CLI prints a line)."""
    folder = Path(folder) if folder is not None else zoo_dir()
    manifest = read_manifest(folder)
    if not manifest["entries"]:
        return [f"{folder / 'MANIFEST.json'} lists no entries"]
    old = os.environ.get("EYEGEN_ZOO_DIR")
    os.environ["EYEGEN_ZOO_DIR"] = str(folder)
    problems: list[str] = []
    try:
        for entry in manifest["entries"]:
            own = verify_files({"entries": [entry]}, folder)
            if not own:
                try:
                    name = entry["name"].partition("@")[0]
                    model = load_for_check(entry)
                    if evaluate and entry.get("check"):
                        now = check_metrics(name, model, get_profile(entry["profile"]), entry["seed"])
                        moved = within_tolerance(now, entry["check"])
                        if moved:
                            own.append(f"{entry['file']}: re-evaluated on its held-out check set, " + "; ".join(moved)
                                       + f"; rebuild it with: {entry['command']}")
                except ZooError as exc:
                    own.append(str(exc))
            problems += own
            if on_entry is not None:
                on_entry(entry, own)
    finally:
        if old is None:
            os.environ.pop("EYEGEN_ZOO_DIR", None)
        else:
            os.environ["EYEGEN_ZOO_DIR"] = old
    return problems
