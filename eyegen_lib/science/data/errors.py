"""The one error every dataset reader raises, and the file access that produces it.

A reader problem is almost always "the files on disk are not what the reader expects", and the
user can only fix it if the message says *what* is wrong, *which file*, and *what to do*.
:class:`DatasetError` carries those three parts; :func:`read_image` and :func:`read_label` are the
only places that open image and label files, so every decoding failure names its file.
Readers never write, move or delete anything.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["DatasetError", "listen_for_data_sources", "note_data_read", "read_image", "read_label", "check_label_values", "N_CLASSES"]

N_CLASSES = 4  # 0 skin/background, 1 sclera, 2 iris, 3 pupil (OpenEDS)


# Who hears which data a notebook's eyes came from: the running notebook's record sets itself here
# (record.Recorder), so the data layer tells it without importing the notebook machinery above it.
_data_listener = None


def listen_for_data_sources(listener) -> None:
    """Send what :func:`note_data_read` and :func:`note_renderer_used` report to ``listener`` (an
    object with ``data_read(dataset, root, synthetic=…)`` and ``renderer_used()``), or to nobody."""
    global _data_listener
    _data_listener = listener


def note_data_read(dataset: str, root, *, synthetic: bool) -> None:
    """Tell the running notebook's record (if any) which dataset folder a reader opened, so the report
    says whether its numbers rest on a licensed dataset or on the renderer."""
    if _data_listener is not None:
        _data_listener.data_read(dataset, root, synthetic=synthetic)


def note_renderer_used() -> None:
    """Tell the running notebook's record that the renderer made (some of) its eyes."""
    if _data_listener is not None:
        _data_listener.renderer_used()


class DatasetError(ValueError):
    """A dataset on disk is missing, malformed or unreadable.

    ``str(err)`` reads ``"<problem>\\n  file: <path>\\n  fix: <what to do>"``; the parts are also
    kept as ``err.problem``, ``err.path`` and ``err.fix``.
    """

    def __init__(self, problem: str, *, path=None, fix: str | None = None):
        self.problem, self.path, self.fix = problem, (str(path) if path is not None else None), fix
        lines = [problem]
        if path is not None:
            lines.append(f"  file: {path}")
        if fix:
            lines.append(f"  fix: {fix}")
        super().__init__("\n".join(lines))


def read_image(path: Path, mode: str) -> np.ndarray:
    """Decode an image file to uint8: (H, W) for ``mode="L"``, (H, W, 3) for ``mode="RGB"``.

    A grey file asked for as RGB is replicated to three channels (Columbia patches may be saved
    grey); anything else that is not already ``mode`` is an error, since silently converting a
    colour or 16-bit file to grey would hide a wrong dataset.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            found = im.mode
            if found == mode:
                arr = np.asarray(im, dtype=np.uint8).copy()
            elif mode == "RGB" and found == "L":
                arr = np.repeat(np.asarray(im, dtype=np.uint8)[..., None], 3, axis=2)
            else:
                raise DatasetError(f"image has PIL mode {found!r}, expected {mode!r} (8-bit "
                                   f"{'grey' if mode == 'L' else 'colour'})", path=path,
                                   fix=f"re-save the file as 8-bit {'greyscale' if mode == 'L' else 'RGB'}")
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError("image file is missing (it was listed when the reader was built)", path=path,
                           fix="restore the file, or rebuild the reader if it was removed on purpose") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DatasetError(f"image file is corrupt or not an image ({type(exc).__name__}: {exc})", path=path,
                           fix="re-copy this file from the original dataset archive") from None
    return arr


def read_label(path: Path) -> np.ndarray:
    """Load a ``.npy`` label map: a 2-D integer array (returned as uint8) with values 0..3."""
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError("label file is missing (it was listed when the reader was built)", path=path,
                           fix="restore the file, or rebuild the reader if it was removed on purpose") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"label file is corrupt or not a .npy array ({exc})", path=path,
                           fix="re-copy this file from the original dataset archive") from None
    if arr.ndim != 2:
        raise DatasetError(f"label map has shape {arr.shape}, expected a 2-D (rows, cols) array", path=path,
                           fix="save one (rows, cols) uint8 array of class ids per image")
    if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise DatasetError(f"label map has dtype {arr.dtype}, expected integer class ids (uint8)", path=path,
                           fix="save the labels as uint8 class ids 0..3, e.g. np.save(p, labels.astype(np.uint8))")
    check_label_values(arr, path)
    return arr.astype(np.uint8)


def check_label_values(arr, path=None) -> None:
    """Raise unless every value of ``arr`` is a class id 0..3."""
    arr = np.asarray(arr)
    bad = arr[(arr < 0) | (arr >= N_CLASSES)]
    if bad.size:
        values = np.unique(bad)
        raise DatasetError(f"label map holds values {values[:10].tolist()} outside the classes 0..{N_CLASSES - 1} "
                           f"({bad.size} pixels)", path=path,
                           fix="labels must be 0 skin, 1 sclera, 2 iris, 3 pupil; remap the other values")
