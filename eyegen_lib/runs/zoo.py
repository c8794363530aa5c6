"""The model zoo: trained models shipped with the suite, under ``zoo/<profile>/``, listed in ``zoo/MANIFEST.json``.

An entry is an artifact that ``eyegen train`` made — trained far longer than a notebook run — exported
for inference: the model the notebooks use (no optimizer, no discriminator unless an evaluation needs
it), floating-point weights in half precision where its metrics stay within tolerance. Its MANIFEST
record says what made it: the file and its sha256, the model config, seed, data fingerprint, steps,
the exact ``eyegen train`` command, the commit, the machine and the wall time, and its headline
held-out metrics.

An entry serves a run (:func:`matches`) when profile, seed and data fingerprint agree and the model
config agrees in everything but its length (:data:`LENGTH_FIELDS`): a zoo model is the run's model,
trained longer. :func:`load_entry` loads one only after checking its bytes against the MANIFEST and
its own recorded provenance against the run; :func:`why_no_entry` says why none served a run.

Entries named ``<name>@<step>`` are snapshots of a long run at shorter lengths (claims against
training length); the run itself never loads them in place of its model.

The zoo folder is ``zoo/`` in the checkout, or ``$EYEGEN_ZOO_DIR``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from ..core.checkpoint import atomic_save, differing_keys, file_sha256, load_checkpoint
from ..core.files import atomic_write_json
from ..core.paths import project_root
from .provenance import with_config

__all__ = ["LENGTH_FIELDS", "ZooError", "zoo_dir", "manifest_path", "read_manifest", "write_manifest",
           "length_free", "matches", "find_entry", "snapshot_entries", "why_no_entry", "load_entry", "export_entry",
           "verify_files"]

LENGTH_FIELDS = ("steps", "ablation_steps")  # how long a model trained: the zoo's models differ from a run's only here
MANIFEST_FORMAT = "eyegen-zoo/1"


class ZooError(ValueError):
    """A zoo entry that cannot be used: missing, altered, or made for something else."""


def zoo_dir() -> Path:
    env = os.environ.get("EYEGEN_ZOO_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = project_root()
    if root is None:
        raise ZooError("the zoo ships with the eyegen checkout: install it with `pip install -e .` from a clone")
    return root / "zoo"


def manifest_path(folder: Path | None = None) -> Path:
    return (folder or zoo_dir()) / "MANIFEST.json"


def read_manifest(folder: Path | None = None) -> dict:
    """The MANIFEST (``{"format", "entries": [...]}``); an empty one when there is none (or no checkout
    to ship one: a non-editable install trains everything here)."""
    try:
        path = manifest_path(folder)
    except ZooError:
        return {"format": MANIFEST_FORMAT, "entries": []}
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "entries": []}
    data = json.loads(path.read_text())
    if data.get("format") != MANIFEST_FORMAT:
        raise ZooError(f"{path} is not a zoo manifest of format {MANIFEST_FORMAT} (found {data.get('format')!r})")
    return data


def write_manifest(manifest: Mapping, folder: Path | None = None) -> Path:
    path = manifest_path(folder)
    entries = sorted(manifest["entries"], key=lambda e: e["file"])
    return atomic_write_json(path, {"format": MANIFEST_FORMAT, "entries": entries}, indent=1, sort_keys=True)


def upsert_entry(entry: Mapping, folder: Path | None = None) -> Path:
    """Add ``entry`` to the MANIFEST, replacing the entry of the same file."""
    manifest = read_manifest(folder)
    manifest["entries"] = [e for e in manifest["entries"] if e["file"] != entry["file"]] + [dict(entry)]
    return write_manifest(manifest, folder)


def length_free(config: Mapping) -> dict:
    """A config without its length fields (top level: where every model config keeps them)."""
    return {k: v for k, v in dict(config).items() if k not in LENGTH_FIELDS}


def matches(entry: Mapping, provenance: Mapping) -> bool:
    """Whether a zoo ``entry`` serves a run that wants ``provenance``."""
    return (entry.get("profile") == provenance.get("profile") and entry.get("seed") == provenance.get("seed")
            and entry.get("data_fingerprint") == (provenance.get("data") or {}).get("fingerprint")
            and not _config_keys_differing(entry, provenance))


def _config_keys_differing(entry: Mapping, provenance: Mapping) -> list[str]:
    """The config fields, lengths aside, in which ``entry`` differs from the run (a field added to the
    config after the entry was made counts as the value it had before: checkpoint.FIELDS_ADDED_LATER)."""
    cfg, want = length_free(entry.get("config") or {}), length_free(provenance.get("config") or {})
    return differing_keys(cfg, want)


def find_entry(kind: str, name: str, provenance: Mapping, manifest: Mapping | None = None) -> dict | None:
    """The MANIFEST entry of artifact ``name`` (e.g. ``gaze_gan/full``) that serves ``provenance``."""
    manifest = manifest if manifest is not None else read_manifest()
    for entry in manifest["entries"]:
        if entry.get("kind") == kind and entry.get("name") == name and matches(entry, provenance):
            return entry
    return None


def snapshot_entries(kind: str, name: str, provenance: Mapping, manifest: Mapping | None = None) -> list[dict]:
    """The entries ``<name>@<step>`` that serve ``provenance``: the long run at shorter lengths, by step."""
    manifest = manifest if manifest is not None else read_manifest()
    found = [e for e in manifest["entries"] if e.get("kind") == kind and e.get("name", "").startswith(name + "@")
             and matches(e, provenance)]
    return sorted(found, key=lambda e: e["steps"])


def why_no_entry(kind: str, name: str, provenance: Mapping, manifest: Mapping | None = None) -> str | None:
    """Why the zoo's entries of ``name`` do not serve ``provenance`` (None when the zoo has no such entry
    at all, or one serves it): what a notebook prints before it trains instead."""
    manifest = manifest if manifest is not None else read_manifest()
    same = [e for e in manifest["entries"] if e.get("kind") == kind and e.get("name") == name]
    if not same or any(matches(e, provenance) for e in same):
        return None
    reasons = []
    for e in same:
        why = []
        if e.get("profile") != provenance.get("profile"):
            why.append(f"profile {e.get('profile')}")
        if e.get("seed") != provenance.get("seed"):
            why.append(f"seed {e.get('seed')}")
        if e.get("data_fingerprint") != (provenance.get("data") or {}).get("fingerprint"):
            why.append(f"data fingerprint {e.get('data_fingerprint')} (this run: "
                       f"{(provenance.get('data') or {}).get('fingerprint')})")
        keys = _config_keys_differing(e, provenance)
        if keys:
            why.append("config " + ", ".join(keys[:4]) + (" …" if len(keys) > 4 else ""))
        reasons.append(f"{e['file']} was made for " + "; ".join(why))
    stale = any("data fingerprint" in r or "config" in r for r in reasons)
    hint = (" — the renderer or the model changed since it was built; rebuild it with: " + same[0]["command"]) if stale else ""
    return f"no zoo entry of {name} serves this run: " + " | ".join(reasons[:3]) + hint


def _own_record(ckpt: Mapping) -> dict:
    prov = ckpt.get("provenance") or {}
    return {"profile": prov.get("profile"), "seed": prov.get("seed"), "config": ckpt.get("config"),
            "data_fingerprint": (prov.get("data") or {}).get("fingerprint")}


def load_entry(entry: Mapping, *, kind: str, model, provenance: Mapping, folder: Path | None = None) -> dict:
    """Load zoo ``entry`` into ``model`` for a run that wants ``provenance``, after checking the file's
    bytes against the MANIFEST and its own recorded provenance against the run. Returns the checkpoint
    (``file_sha256``, ``step``, ``metrics``, ``extra``, ``provenance``, ``path``)."""
    folder = folder or zoo_dir()
    problems = verify_files({"entries": [entry]}, folder)
    if problems:
        raise ZooError(f"zoo entry {problems[0]}. Restore the zoo (git checkout -- zoo/), or run with "
                       "PRETRAINED = False to train here")
    path = folder / entry["file"]
    ckpt = load_checkpoint(path, kind=kind)
    if not matches(_own_record(ckpt), provenance) or not matches(entry, provenance):
        raise ZooError(f"{path} records another run than its MANIFEST entry serves (profile, seed, config or data); "
                       f"rebuild it with: {entry['command']}")
    ckpt = load_checkpoint(path, kind=kind, model=model)
    ckpt["path"] = str(path)
    return ckpt


def _half(state: Mapping) -> dict:
    return {k: (v.half() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in state.items()}


def export_entry(artifact: Path, folder: Path, *, name: str, models: tuple[str, ...] = ("model",), half: bool = True,
                 command: str, machine: str, wall_seconds: float, metrics: Mapping | None = None,
                 as_config: Mapping | None = None, made_from: str = "", file_name: str | None = None) -> dict:
    """Write ``artifact`` (a checkpoint ``eyegen train`` made) into the zoo ``folder`` for inference —
    only ``models``, floating-point weights in fp16 when ``half`` — and return its MANIFEST entry.

    ``as_config`` files a snapshot under the config it is exactly (the long run after N steps of a
    constant learning rate is an N-step run: the ablations' reference); ``made_from`` says so."""
    raw = Path(artifact).read_bytes()
    ckpt = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    missing = [m for m in models if m not in ckpt["models"]]
    if missing:
        raise ZooError(f"{artifact} holds models {sorted(ckpt['models'])}, not {missing}")
    prov = ckpt.get("provenance") or {}
    config = ckpt.get("config")
    if as_config is not None:
        config, prov = dict(as_config), with_config(prov, dict(as_config))
    payload = {**{k: v for k, v in ckpt.items() if k not in ("models", "optimizers")}, "config": config,
               "provenance": prov, "models": {m: (_half(ckpt["models"][m]) if half else ckpt["models"][m]) for m in models},
               "optimizers": {}, "zoo": {"half": bool(half), "source_sha256": hashlib.sha256(raw).hexdigest(),
                                         "made_from": made_from}}
    out = Path(folder) / (file_name or Path(artifact).name)
    atomic_save(payload, out)
    return {"file": f"{Path(folder).name}/{out.name}", "sha256": file_sha256(out), "kind": ckpt["kind"], "name": name,
            "profile": prov.get("profile"), "seed": prov.get("seed"), "config": config,
            "data_fingerprint": (prov.get("data") or {}).get("fingerprint"), "steps": int(ckpt.get("step", 0)),
            "half": bool(half), "command": command, "commit": prov.get("code_version"), "machine": machine,
            "wall_seconds": float(wall_seconds), "made_from": made_from,
            "metrics": dict(metrics if metrics is not None else ckpt.get("metrics", {}))}


def verify_files(manifest: Mapping | None = None, folder: Path | None = None) -> list[str]:
    """Problems with the entries' files (missing, or not the bytes the MANIFEST lists); empty when all hold."""
    folder = folder or zoo_dir()
    manifest = manifest if manifest is not None else read_manifest(folder)
    problems = []
    for entry in manifest["entries"]:
        path = folder / entry["file"]
        if not path.exists():
            problems.append(f"{entry['file']}: missing")
        elif file_sha256(path) != entry["sha256"]:
            problems.append(f"{entry['file']}: sha256 {file_sha256(path)[:12]}… is not the MANIFEST's "
                            f"{entry['sha256'][:12]}… (altered or replaced); rebuild it with: {entry['command']}")
    return problems
