"""``eyegen synth export``: write the renderer's eyes in a real dataset's on-disk format.

An export lets the readers, the notebooks' "real data" paths and outside tools be exercised
without a licensed copy: ``--format openeds`` writes the OpenEDS layout (grey 400×640 by
default), ``--format columbia`` He et al.'s Columbia patch naming (64×64 RGB by default), ``--format
mpiigaze`` MPIIGaze's normalised day files (36×60 grey).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ...core.cli_types import whole_number
from .columbia import POSES, export_columbia
from .errors import DatasetError
from .mpiigaze import IMAGE_SIZE, export_mpiigaze
from .openeds import export_openeds
from .synthetic import SyntheticEyes, SyntheticEyeSpec

__all__ = ["export_dataset", "add_export_cli", "FORMATS"]

FORMATS = ("openeds", "columbia", "mpiigaze")
GRID_SIZE = 21  # Columbia: 7 horizontal × 3 vertical gazes per (subject, pose, eye)
MAX_POSES = 5


def export_dataset(format: str, out, *, persons: int = 4, images_per_person: int | None = None, seed: int = 0,
                   size=None, progress: bool = True, lossless: bool = False) -> dict:
    """Render ``persons`` synthetic people and write them to ``out`` in ``format``.

    * ``openeds``: ``images_per_person`` (default 8) NIR frames per person, half labelled;
      ``size`` (rows, cols) defaults to the native 400×640; needs ≥ 3 persons (one per split).
    * ``columbia``: ``images_per_person`` must be a multiple of 42 (= 2 eyes × 21 grid gazes per
      head-pose label, up to 5 poses; default 42); ``size`` defaults to 64×64; ``lossless``
      writes ``.png`` instead of JPEG (quality 95) under the same names.
    * ``mpiigaze``: ``images_per_person`` (default 32) eyes per person, both sides, in one day file
      each, at MPIIGaze's 36×60 (``size`` must be that or omitted).

    Returns a summary dict (format, folder, image count, persons or subjects, seconds).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}: choose one of {list(FORMATS)}")
    if persons < 1:
        raise ValueError(f"persons must be at least 1, got {persons}")
    started = time.perf_counter()
    if format == "openeds":
        n = 8 if images_per_person is None else int(images_per_person)
        spec = SyntheticEyeSpec("nir", size, n_persons=persons, images_per_person=n, seed=seed)
        summary = export_openeds(SyntheticEyes(spec), out, seed=seed, progress=progress)
    elif format == "mpiigaze":
        if size is not None and tuple(size) != IMAGE_SIZE:
            raise ValueError(f"MPIIGaze's normalised eyes are {IMAGE_SIZE[0]}×{IMAGE_SIZE[1]}: omit --size, got {tuple(size)}")
        n = 32 if images_per_person is None else int(images_per_person)
        spec = SyntheticEyeSpec("rgb", IMAGE_SIZE, n_persons=persons, images_per_person=n, seed=seed)
        summary = export_mpiigaze(SyntheticEyes(spec), out, progress=progress)
    else:
        n = 2 * GRID_SIZE if images_per_person is None else int(images_per_person)
        if n % (2 * GRID_SIZE) or not 1 <= n // (2 * GRID_SIZE) <= MAX_POSES:
            raise ValueError(f"Columbia exports {2 * GRID_SIZE} patches per subject and head-pose label (2 eyes × "
                             f"{GRID_SIZE} gazes): images_per_person must be 42, 84, … up to {2 * GRID_SIZE * MAX_POSES}; got {n}")
        poses = POSES[: n // (2 * GRID_SIZE)]
        # Columbia subjects keep their eyes open: no blinks in a gaze grid.
        spec = SyntheticEyeSpec("rgb", size, n_persons=persons, images_per_person=2 * len(poses), seed=seed,
                                blink_probability=0.0)
        summary = export_columbia(SyntheticEyes(spec), out, poses=poses, lossless=lossless, progress=progress)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    summary["seed"] = seed
    return summary


def _cmd_export(args) -> int:
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():  # checked before any rendering starts
        print(f"eyegen synth export: error: --out {out} is a file: name a new or empty folder", file=sys.stderr)
        return 2
    try:
        summary = export_dataset(args.format, args.out, persons=args.persons, images_per_person=args.images_per_person,
                             seed=args.seed, size=tuple(args.size) if args.size else None,
                             progress=not args.no_progress, lossless=args.lossless)
    except (DatasetError, ValueError) as exc:  # a folder or a size that cannot be exported: one line, nothing written
        print("eyegen synth export: error: " + " — ".join(line.strip() for line in str(exc).splitlines()), file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


def add_export_cli(subparsers) -> None:
    """Register ``export`` on the ``synth`` subcommand's subparsers."""

    p = subparsers.add_parser("export", help="write synthetic eyes in the OpenEDS, Columbia-patch or MPIIGaze file format",
                              description=__doc__.replace("``", ""))  # plain text, not reST
    p.add_argument("--format", required=True, choices=FORMATS, help="the real dataset's layout to write")
    p.add_argument("--out", required=True, type=Path, help="new or empty folder to write")
    p.add_argument("--persons", type=whole_number(1), default=4, help="synthetic people (default: 4)")
    p.add_argument("--images-per-person", type=int, default=None,
                   help="openeds: frames per person (default 8); columbia: a multiple of 42 (default 42); "
                   "mpiigaze: eyes per person (default 32)")
    p.add_argument("--seed", type=int, default=0, help="the renderer's seed: which people and gazes (default: 0)")
    p.add_argument("--size", type=int, nargs=2, metavar=("ROWS", "COLS"), default=None,
                   help="image size (default: native, 400 640 for openeds, 64 64 for columbia; mpiigaze is 36 60)")
    p.add_argument("--lossless", action="store_true", help="columbia: write .png instead of JPEG (same names)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_export)
