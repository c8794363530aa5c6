"""Is a dataset folder usable? What ``eyegen env`` says about each ``EYEGEN_*_DIR``.

:func:`check_dataset` opens the folder with the notebooks' own reader (layout, names, the userID
mappings), counts what it finds and decodes one sample, so a folder that exists but is empty,
half-extracted or of another dataset is reported with the reader's own message, not as "found".
It reads a handful of files: the per-file check of a whole split is the readers' ``validate``.
"""
from __future__ import annotations

from pathlib import Path

from .columbia import ColumbiaPatches
from .errors import DatasetError
from .mpiigaze import MPIIGazeNormalized, normalized_dir
from .openeds import SPLITS, SUBSETS, OpenEDS

__all__ = ["check_dataset", "DATASET_CHECKS"]


def _openeds(root: Path) -> str:
    parts, first_error = [], None
    for subset in SUBSETS:
        for split in SPLITS:
            try:
                reader = OpenEDS(root, split, subset, require_labels=False)
            except DatasetError as exc:
                first_error = first_error or exc
                continue
            sample = reader[0]  # decodes one image (and its label, where there is one)
            labelled = "mask" in sample
            parts.append(f"{subset}/{split} {len(reader):,} images of {len(reader.persons)} persons"
                         + (", labelled" if labelled else ""))
    if not parts:
        raise first_error
    return "; ".join(parts)


def _columbia(root: Path) -> str:
    reader = ColumbiaPatches(root)
    sample = reader[0]
    subjects = sorted({r.subject for r in reader.records})
    return (f"{len(reader):,} patches of {len(subjects)} subjects ({subjects[0]}–{subjects[-1]}), "
            f"{tuple(sample['image'].shape[-2:])} px")


def _mpiigaze(root: Path) -> str:
    import re

    days = sorted(normalized_dir(root).glob("p*/day*.mat")) if normalized_dir(root).is_dir() else []
    persons = sorted({int(m[1]) for p in days if (m := re.fullmatch(r"p(\d+)", p.parent.name))})
    # index one person only: every day file is read to count its images, and the whole set is large
    reader = MPIIGazeNormalized(root, persons=persons[:1] or None)
    reader[0]
    return f"{len(days)} day files of {len(persons)} persons; p{persons[0]:02d}: {len(reader):,} eye images"


# the dataset names of environment.DATASET_ENV_VARS → a check that returns a one-line summary
DATASET_CHECKS = {"OpenEDS": _openeds, "Columbia Gaze patches": _columbia, "MPIIGaze": _mpiigaze}


def check_dataset(name: str, root) -> dict:
    """``{"ok": bool, "summary": str}``: the counts and sample read of a usable folder, or the
    reader's error (what is wrong, which file, what to do) on one line."""
    if name not in DATASET_CHECKS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASET_CHECKS)}")
    try:
        return {"ok": True, "summary": DATASET_CHECKS[name](Path(root).expanduser())}
    except DatasetError as exc:
        return {"ok": False, "summary": " — ".join(line.strip() for line in str(exc).splitlines() if line.strip())}
