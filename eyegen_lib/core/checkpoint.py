"""Self-describing checkpoints (nanoGPT style): model, optimizer, config, step, metrics.

A checkpoint is a plain dict of tensors and primitive values, written atomically (a crash while
saving never leaves half a file under the real name) and read with ``weights_only=True`` (no code
from the file is ever executed). Loading checks that the file is an eyegen checkpoint of the
model kind and config the caller expects, and says what differs when it is not.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .files import atomic_writer

__all__ = ["CheckpointError", "ArtifactMismatch", "save_checkpoint", "load_checkpoint", "config_to_dict", "config_from_saved",
           "provenance_differences", "config_differences", "file_sha256", "set_aside", "atomic_save", "field_added_later"]

FORMAT = "eyegen-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used as asked: corrupt, another model, another config."""


class ArtifactMismatch(CheckpointError):
    """A sound checkpoint made for another run: another config, profile, seed or data.
    ``differences`` lists what differs, one line each."""

    def __init__(self, message: str, differences: list[str]):
        super().__init__(message)
        self.differences = list(differences)


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (what a record cites an artifact by)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def set_aside(path: str | os.PathLike) -> Path:
    """Move a file that is about to be replaced to ``<stem>.replaced-<UTC time>.<suffix>`` beside it
    (nothing a run replaces is lost); returns the new path."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = path.with_name(f"{path.stem}.replaced-{stamp}{path.suffix}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.stem}.replaced-{stamp}-{n}{path.suffix}")
    os.replace(path, target)
    return target


def config_to_dict(config: Any) -> dict:
    """A dataclass (or mapping) config as a plain dict; tuples become lists so the comparison
    after a round-trip through the file is exact."""
    if config is None:
        return {}
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dataclass or a mapping, not {type(config).__name__}")

    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return plain(dict(config))


def _as_dict(obj, what: str) -> dict:
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    return {what: obj}


def _unwrap(module: nn.Module) -> nn.Module:
    # DDP wraps the real model in .module; checkpoints always hold the bare model.
    return getattr(module, "module", module)


def save_checkpoint(path: str | os.PathLike, *, kind: str, model: nn.Module | Mapping[str, nn.Module],
                    config: Any = None, optimizer=None, step: int = 0, metrics: Mapping | None = None,
                    extra: Mapping | None = None, provenance: Mapping | None = None) -> Path:
    """Write a checkpoint atomically and return its path.

    ``kind`` names the model family (``"gaze_estimator"``, ``"seg2eye"`` …); ``model`` and
    ``optimizer`` are one object or a dict of them (a GAN's generator and discriminator);
    ``provenance`` is what made it (:func:`eyegen_lib.runs.provenance.make_provenance`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    models = _as_dict(model, "model")
    optimizers = _as_dict(optimizer, "optimizer")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": config_to_dict(config),
        "step": int(step),
        "metrics": {k: (float(v) if isinstance(v, (int, float)) or hasattr(v, "item") else v) for k, v in (metrics or {}).items()},
        "models": {k: _unwrap(m).state_dict() for k, m in models.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "extra": dict(extra or {}),
        "provenance": dict(provenance or {}),
        "torch_version": str(torch.__version__),
    }
    return atomic_save(payload, path)


def atomic_save(payload: Mapping, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, flushed to disk, then renamed over it: a
    kill at any moment leaves either the old file or the new one, never half of one."""
    with atomic_writer(path, "wb") as f:
        torch.save(payload, f)
    return Path(path)


# Config fields added after artifacts were made without them, each with the value that reproduces
# what those older artifacts did (see field_added_later). A saved config that lacks such a field is
# read as having that value, so adding a switch does not orphan the artifacts of its old behaviour.
FIELDS_ADDED_LATER: dict[str, Any] = {}


def field_added_later(name: str, value_before: Any) -> None:
    """Declare that config field ``name`` is new and that an artifact saved without it behaved as
    ``value_before`` (e.g. the gaze GAN's ``generator_output``: "image", what it always did)."""
    if FIELDS_ADDED_LATER.get(name, value_before) != value_before:
        raise ValueError(f"config field {name!r} is already declared added later with {FIELDS_ADDED_LATER[name]!r}")
    FIELDS_ADDED_LATER[name] = value_before


def _with_fields_added_later(saved: Mapping, wanted: Mapping) -> dict:
    """``saved`` with each field it lacks that :data:`FIELDS_ADDED_LATER` names (and ``wanted`` has) filled in."""
    return {**{k: v for k, v in FIELDS_ADDED_LATER.items() if k in wanted and k not in saved}, **saved}


def config_from_saved(config_class, saved: Mapping):
    """The ``config_class`` (a dataclass) an artifact's saved config dict describes: a field it lacks
    takes its :data:`FIELDS_ADDED_LATER` value (what the artifact did), not today's default."""
    names = {f.name: None for f in dataclasses.fields(config_class)}
    return config_class(**_with_fields_added_later(saved, names))


def differing_keys(saved: Mapping, wanted: Mapping) -> list[str]:
    """The config fields in which a saved config and the one asked for differ, sorted (a field the
    saved one lacks counts as its :data:`FIELDS_ADDED_LATER` value, where it has one)."""
    saved = _with_fields_added_later(saved, wanted)
    return [k for k in sorted(set(saved) | set(wanted)) if saved.get(k, "<absent>") != wanted.get(k, "<absent>")]


def config_differences(saved: Mapping, wanted: Mapping, prefix: str = "") -> list[str]:
    """One line per config field that differs between a saved config and the one asked for (see
    :func:`differing_keys`)."""
    def short(value) -> str:
        text = repr(value)
        return text if len(text) <= 80 else text[:79] + "…"

    filled = _with_fields_added_later(saved, wanted)
    return [f"{prefix}{k}: checkpoint has {short(filled.get(k, '<absent>'))}, you asked for {short(wanted.get(k, '<absent>'))}"
            for k in differing_keys(saved, wanted)]


def provenance_differences(saved: Mapping | None, wanted: Mapping) -> list[str]:
    """What keeps an artifact made with ``saved`` from serving a run that wants ``wanted``
    (empty when they match). Config and data differences are listed field by field."""
    if not saved:
        return ["it records no provenance (made by an older eyegen): profile, seed and data are unknown"]
    out = []
    for key in ("profile", "seed"):
        if saved.get(key) != wanted.get(key):
            out.append(f"{key}: artifact has {saved.get(key)!r}, this run {wanted.get(key)!r}")
    out += config_differences(saved.get("config") or {}, wanted.get("config") or {}, prefix="config.")
    s_data, w_data = saved.get("data") or {}, wanted.get("data") or {}
    if s_data.get("fingerprint") != w_data.get("fingerprint"):
        s_rec, w_rec = s_data.get("recipe") or {}, w_data.get("recipe") or {}
        what = [k for k in sorted(set(s_rec) | set(w_rec)) if s_rec.get(k) != w_rec.get(k)]
        out.append(f"data fingerprint: artifact has {s_data.get('fingerprint')}, this run {w_data.get('fingerprint')}"
                   + (f" (differs in: {', '.join(what)})" if what else ""))
    return out


def load_checkpoint(path: str | os.PathLike, *, kind: str | None = None,
                    model: nn.Module | Mapping[str, nn.Module] | None = None, config: Any = None,
                    optimizer=None, map_location: str | torch.device = "cpu",
                    provenance: Mapping | None = None) -> dict:
    """Read a checkpoint, check it, and (optionally) load it into ``model`` / ``optimizer``.

    Raises :class:`CheckpointError` — never silently loads — when the file is missing, corrupt,
    not an eyegen checkpoint, of another ``kind``, or when its weights do not fit ``model``; and
    :class:`ArtifactMismatch` when it was made with another ``config`` or, given ``provenance``,
    for another run (profile, seed, config or data fingerprint). The file itself is never
    modified. Returns the checkpoint dict, with the file's sha256 as ``file_sha256``.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train the model first (the notebook trains it when the file is absent)")
    try:
        raw = path.read_bytes()  # read once: loaded and hashed from the same bytes
        ckpt = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, a pickle with code in it …
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [""]
        reason = next((ln for ln in lines if "error:" in ln.lower()), lines[0])[:240]
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(exc).__name__}: {reason}). "
            "It may be truncated or from an untrusted source; it was left untouched — delete or move it and re-run to retrain."
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a PyTorch file but not an eyegen checkpoint (no 'format': {FORMAT!r}); "
                              "save checkpoints with eyegen_lib.save_checkpoint")
    if kind is not None and ckpt.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {ckpt.get('kind')!r} model, not a {kind!r} one; point to the right file "
                              f"or delete this one to retrain")
    if config is not None:
        diffs = config_differences(ckpt.get("config", {}), config_to_dict(config))
        if diffs:
            raise ArtifactMismatch(f"{path} was trained with another {ckpt.get('kind')} config:\n  " + "\n  ".join(diffs)
                                   + "\nUse a matching profile/config, or move the file away to retrain.", diffs)
    if provenance is not None:
        diffs = provenance_differences(ckpt.get("provenance"), provenance)
        if diffs:
            raise ArtifactMismatch(f"{path} was made for another run:\n  " + "\n  ".join(diffs), diffs)
    ckpt["file_sha256"] = hashlib.sha256(raw).hexdigest()
    models = _as_dict(model, "model")
    missing = sorted(set(models) - set(ckpt["models"]))
    if missing:
        raise CheckpointError(f"{path} has no weights for {missing} (it has {sorted(ckpt['models'])})")
    for name, module in models.items():
        try:
            _unwrap(module).load_state_dict(ckpt["models"][name])
        except RuntimeError as exc:
            raise CheckpointError(f"the weights of {name!r} in {path} do not fit this {type(_unwrap(module)).__name__}: "
                                  f"{str(exc).splitlines()[0][:300]} — was it saved from another architecture or width?") from exc
    for name, opt in _as_dict(optimizer, "optimizer").items():
        if name not in ckpt["optimizers"]:
            raise CheckpointError(f"{path} has no optimizer state for {name!r}")
        opt.load_state_dict(ckpt["optimizers"][name])
    return ckpt
