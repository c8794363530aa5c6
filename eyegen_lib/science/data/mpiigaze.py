"""MPIIGaze (Zhang et al.) normalised eye images: a reader, and a writer of the same ``.mat`` shape.

Layout: ``ROOT/Data/Normalized/pXX/dayYY.mat``, each a MATLAB struct ``data`` with
``data.left`` and ``data.right``, each holding ``image`` (N, 36, 60) uint8 grey, ``gaze`` (N, 3)
eye→target unit vectors in the normalised camera frame and ``pose`` (N, 3) head pose. Labels:
``pitch = arcsin(−g_y)``, ``yaw = arctan2(−g_x, −g_z)``
(:func:`eyegen_lib.core.gaze.eye_to_target_to_pitchyaw`), i.e. the project convention. Images are
returned as stored (neither eye is flipped).

The reader loads each ``.mat`` once when built (to count images and keep the small gaze/pose
arrays) and re-reads images on access through a small per-file cache, so a full copy (≈ 213k
images) does not have to sit in memory.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...core.gaze import eye_to_target_to_pitchyaw, pitchyaw_to_vector
from ...core.runtime import tqdm
from .errors import DatasetError, note_data_read
from .openeds import _fresh_folder

__all__ = ["MPIIGazeNormalized", "MPIIGazeRecord", "write_normalized_day", "normalized_dir", "export_mpiigaze",
           "IMAGE_SIZE"]

IMAGE_SIZE = (36, 60)  # rows, cols of a normalised eye image

EYES = ("left", "right")
_SIDE = {"left": "L", "right": "R"}


def normalized_dir(root) -> Path:
    return Path(root) / "Data" / "Normalized"


@dataclass(frozen=True)
class MPIIGazeRecord:
    path: Path      # the dayYY.mat file
    person: int     # XX of pXX
    day: int        # YY of dayYY
    eye: str        # "left" or "right"
    row: int        # position in that file's eye arrays


def _field(struct, name: str, path: Path):
    if not hasattr(struct, name):
        raise DatasetError(f"the .mat struct has no field {name!r} (fields: {getattr(struct, '_fieldnames', '?')})",
                           path=path, fix="expected data.{left,right}.{image,gaze,pose} as in MPIIGaze's Data/Normalized")
    return getattr(struct, name)


def _load_day(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """One day file → ``{eye: {"image": (N,36,60) uint8, "gaze": (N,3), "pose": (N,3)}}``."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError:  # scipy's answer to MATLAB v7.3 (HDF5) files
        raise DatasetError("this .mat file is MATLAB v7.3 (HDF5), which scipy cannot read", path=path,
                           fix="use the original MPIIGaze files (MATLAB v5), or re-save with save(..., '-v7')") from None
    except (MatReadError, ValueError, OSError, TypeError, EOFError) as exc:
        raise DatasetError(f"this .mat file is corrupt or not a MATLAB file ({exc})", path=path,
                           fix="re-copy it from the original MPIIGaze archive") from None
    if "data" not in mat:
        raise DatasetError(f"the .mat file has no 'data' struct (variables: {sorted(k for k in mat if not k.startswith('__'))})",
                           path=path, fix="point the reader at MPIIGaze's Data/Normalized files")
    out = {}
    for eye in EYES:
        s = _field(mat["data"], eye, path)
        image = np.asarray(_field(s, "image", path))
        gaze = np.asarray(_field(s, "gaze", path), dtype=np.float64)
        pose = np.asarray(_field(s, "pose", path), dtype=np.float64)
        # squeeze_me turns a single image into (36, 60) and its vectors into (3,): restore N = 1.
        if image.ndim == 2:
            image, gaze, pose = image[None], gaze.reshape(1, -1), pose.reshape(1, -1)
        if image.size == 0:
            image, gaze, pose = np.zeros((0, 36, 60), np.uint8), np.zeros((0, 3)), np.zeros((0, 3))
        if image.ndim != 3 or gaze.shape != (len(image), 3) or pose.shape != (len(image), 3):
            raise DatasetError(f"data.{eye} has image {image.shape}, gaze {gaze.shape}, pose {pose.shape}; expected "
                               "(N, 36, 60), (N, 3), (N, 3)", path=path, fix="re-copy it from the original MPIIGaze archive")
        if image.dtype != np.uint8:
            raise DatasetError(f"data.{eye}.image has dtype {image.dtype}, expected uint8", path=path,
                               fix="re-copy it from the original MPIIGaze archive")
        out[eye] = {"image": image, "gaze": gaze, "pose": pose}
    return out


class MPIIGazeNormalized:
    """Random-access reader of MPIIGaze's normalised eye images.

    ``persons``: person numbers to keep (``[0, 1]`` = p00, p01); ``eyes``: which of ``"left"``,
    ``"right"``. Samples: ``image`` uint8 (1, 36, 60), ``gaze`` float32 (2,) (pitch, yaw),
    ``pose`` float32 (3,), ``person`` int, ``side`` "L"/"R" (the person's own eye), ``day``,
    ``index``, ``path`` (``…/dayYY.mat#left/row``).
    """

    def __init__(self, root, persons=None, eyes=EYES, *, progress: bool = False, cache_files: int = 4):
        self.root = Path(root).expanduser()
        eyes = (eyes,) if isinstance(eyes, str) else tuple(eyes)
        if not eyes or any(e not in EYES for e in eyes):
            raise ValueError(f"eyes must be a subset of {EYES}, got {eyes}")
        folder = normalized_dir(self.root)
        if not folder.is_dir():
            found = sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []
            raise DatasetError(f"Data/Normalized/ is missing; found {found[:12]}" if self.root.is_dir() else
                               "the MPIIGaze folder does not exist", path=folder,
                               fix="point the reader (or $EYEGEN_MPIIGAZE_DIR) at the MPIIGaze folder that holds "
                               "Data/Normalized/pXX/dayYY.mat")
        files = []
        for p in sorted(folder.glob("p*/day*.mat")):
            mp, md = re.fullmatch(r"p(\d+)", p.parent.name), re.fullmatch(r"day(\d+)", p.stem)
            if mp and md and (persons is None or int(mp[1]) in {int(x) for x in persons}):
                files.append((p, int(mp[1]), int(md[1])))
        if not files:
            raise DatasetError("no pXX/dayYY.mat files found" + (f" for persons {list(persons)}" if persons is not None else ""),
                               path=folder, fix="check the folder and the person numbers (p00–p14)")
        records, gaze, pose = [], [], []
        for path, person, day in tqdm(files, desc="indexing MPIIGaze", disable=not progress):
            data = _load_day(path)
            for eye in eyes:
                n = len(data[eye]["image"])
                records += [MPIIGazeRecord(path, person, day, eye, r) for r in range(n)]
                gaze.append(data[eye]["gaze"])
                pose.append(data[eye]["pose"])
        if not records:
            raise DatasetError("the .mat files hold no images for the requested eyes", path=folder,
                               fix="check the eyes argument and the files")
        self.records = records
        self.persons = sorted({r.person for r in records})
        note_data_read("MPIIGaze", self.root, synthetic=False)
        self._gaze = eye_to_target_to_pitchyaw(np.concatenate(gaze)).astype(np.float32)
        self._pose = np.concatenate(pose).astype(np.float32)
        self._cache: OrderedDict[Path, dict] = OrderedDict()
        self._cache_files = max(1, int(cache_files))

    def __len__(self) -> int:
        return len(self.records)

    def person_of(self, index: int) -> int:
        return self.records[index].person

    def side_of(self, index: int) -> str:
        return _SIDE[self.records[index].eye]

    def gaze_of(self, index: int) -> np.ndarray:
        return self._gaze[index]

    def has_mask(self, index: int) -> bool:
        return False

    def _day(self, path: Path) -> dict:
        if path in self._cache:
            self._cache.move_to_end(path)
        else:
            self._cache[path] = _load_day(path)
            while len(self._cache) > self._cache_files:
                self._cache.popitem(last=False)
        return self._cache[path]

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        index = int(index) % len(self)
        r = self.records[index]
        image = self._day(r.path)[r.eye]["image"][r.row]
        return {"image": torch.from_numpy(np.ascontiguousarray(image))[None], "gaze": torch.from_numpy(self._gaze[index].copy()),
                "pose": torch.from_numpy(self._pose[index].copy()), "person": r.person, "side": _SIDE[r.eye],
                "day": r.day, "index": index, "path": f"{r.path}#{r.eye}/{r.row}"}

    def __repr__(self) -> str:
        return f"MPIIGazeNormalized({str(self.root)!r}: {len(self)} images, {len(self.persons)} persons)"


def write_normalized_day(path, left: dict, right: dict) -> Path:
    """Write one ``dayYY.mat`` in MPIIGaze's structure (for test fixtures and small demos).

    ``left``/``right``: dicts with ``image`` (N, 36, 60) uint8, ``gaze`` (N, 3) eye→target unit
    vectors, ``pose`` (N, 3). Written as MATLAB v5 with ``data.{left,right}.{image,gaze,pose}``.
    """
    from scipy.io import savemat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {eye: {"image": np.asarray(d["image"], dtype=np.uint8), "gaze": np.asarray(d["gaze"], dtype=np.float64),
                  "pose": np.asarray(d["pose"], dtype=np.float64)} for eye, d in (("left", left), ("right", right))}
    savemat(path, {"data": data}, do_compression=True)
    return path


def export_mpiigaze(source, out, *, days: int = 1, progress: bool = True) -> dict:
    """Write the renderer's eyes in MPIIGaze's normalised layout: person ``p`` becomes ``p{p:02d}``,
    its images split over ``days`` day files, each eye in ``data.left`` or ``data.right`` as rendered
    (unflipped, as MPIIGaze stores them), grey (the mean of the RGB channels), with the gaze written
    as the eye→target vector the reader turns back into the project's (pitch, yaw); pose is zero
    (the renderer's eyes face the camera). ``source`` is an unflipped RGB ``SyntheticEyes`` of
    :data:`IMAGE_SIZE`; ``out`` must be empty or new."""
    spec = source.spec
    if spec.modality != "rgb" or tuple(spec.size) != IMAGE_SIZE or getattr(spec, "flip_right", False):
        raise ValueError(f"pass an unflipped RGB source of size {IMAGE_SIZE} (got {spec.modality} {tuple(spec.size)})")
    if not 1 <= days <= spec.images_per_person:
        raise ValueError(f"days must be 1..images_per_person ({spec.images_per_person}), got {days}")
    out = _fresh_folder(out)
    n = 0
    for person in tqdm(range(spec.n_persons), desc="exporting MPIIGaze days", disable=not progress):
        indices = np.arange(person * spec.images_per_person, (person + 1) * spec.images_per_person)
        for day, chunk in enumerate(np.array_split(indices, days), start=1):
            batch = source.render([int(i) for i in chunk])
            grey = batch["image"].float().mean(1).round().byte().numpy()
            g = -pitchyaw_to_vector(batch["gaze"].double().numpy())  # eye→target, the negated project vector
            sides = np.array([source.side_of(int(i)) for i in chunk])
            eyes = {eye: {"image": grey[sides == side], "gaze": g[sides == side], "pose": np.zeros(((sides == side).sum(), 3))}
                    for eye, side in _SIDE.items()}
            write_normalized_day(normalized_dir(out) / f"p{person:02d}" / f"day{day:02d}.mat", eyes["left"], eyes["right"])
            n += len(chunk)
    return {"format": "mpiigaze", "out": str(out), "images": n, "size": list(IMAGE_SIZE),
            "persons": [f"p{p:02d}" for p in range(spec.n_persons)], "days": days}
