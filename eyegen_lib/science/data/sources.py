"""A run's data source: the renderer, or a user's licensed copy of a paper's dataset.

A notebook's ``DATA`` (``eyegen run --data``, ``eyegen train --data``) picks it; the profile carries
it (:attr:`~eyegen_lib.core.profiles.Profile.data`) and :mod:`eyegen_lib.science.protocols` asks this module for
the samples. A dataset is found through its environment variable (:data:`DATASET_VARIABLES`) and
checked before any work: an unset variable or a malformed folder is one :class:`DatasetError`.

On OpenEDS, Seg2Eye's protocol (:class:`OpenEDSEyes`): the semantic set's **train** split (labelled)
trains the segmenter and the refiner; its **validation** split (labelled, persons not in train) is
the test set the challenge score is measured on — the challenge's own test images are withheld, so
its validation protocol is the one a user can score. The reference pool is both splits' images
(a target's own image never counts); their labels only *measure* the ranking, as on the renderer.
Frames are resized to the profile's working size (area for images, nearest for labels); the
challenge score upsamples back to 400 × 640 as the renderer's frames do.
"""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...core.runtime import tqdm
from .columbia import TEST_SUBJECTS, TRAIN_SUBJECTS, ColumbiaPatches, crop_patch, patch_landmarks
from .errors import DatasetError, note_data_read
from .mpiigaze import MPIIGazeNormalized, normalized_dir
from .openeds import OpenEDS, mapping_path

__all__ = ["DATASET_VARIABLES", "dataset_root", "check_data_source", "OpenEDSEyes", "openeds_eyes", "ColumbiaEyes",
           "columbia_eyes", "MPIIGazeEyes", "mpiigaze_eyes", "dataset_given"]

# data source → (its environment variable, what the folder must hold)
DATASET_VARIABLES = {
    "openeds": ("EYEGEN_OPENEDS_DIR", "the folder holding Semantic_Segmentation_Dataset/ and the userID mapping JSONs"),
    "columbia": ("EYEGEN_COLUMBIA_DIR", "a folder of He et al.'s 64×64 patches named like 0048_2m_-30P_0V_-10H_L.jpg"),
    "mpiigaze": ("EYEGEN_MPIIGAZE_DIR", "the MPIIGaze folder holding Data/Normalized/pXX/dayYY.mat"),
}


def _file_manifest(root: Path, paths) -> str:
    """A hash of files' relative names and sizes (not pixels, not where the copy lies): a dataset's identity."""
    h = hashlib.sha256()
    for path in paths:
        h.update(f"{path.relative_to(root)}\t{path.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def _area_resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (C, H, W) at ``size`` by area averaging (every source pixel counts once, as a sensor bins)."""
    if tuple(image.shape[-2:]) == size:
        return image
    return F.interpolate(image[None].float(), size=size, mode="area")[0].round().clamp(0, 255).byte()


def _image_header(path: Path, modes: tuple[str, ...], what: str) -> tuple[int, int]:
    """(rows, cols) of an image file from its header, without decoding its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            shape, mode = (im.height, im.width), im.mode
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"{what} cannot be opened ({exc})", path=path,
                           fix="re-copy this file from the original dataset archive, or remove it") from None
    if mode not in modes:
        raise DatasetError(f"{what} has PIL mode {mode!r}, expected 8-bit {' or '.join(repr(m) for m in modes)}", path=path,
                           fix="re-copy this file from the archive, or re-save it as an 8-bit image")
    return shape


def dataset_root(data: str) -> Path:
    """The folder of dataset ``data`` from its environment variable; a clear error when unset or not a folder."""
    if data not in DATASET_VARIABLES:
        raise ValueError(f"{data!r} is not a dataset: choose one of {sorted(DATASET_VARIABLES)}")
    variable, what = DATASET_VARIABLES[data]
    value = os.environ.get(variable, "").strip()
    if not value:
        raise DatasetError(f"DATA={data!r} reads the folder in ${variable}, which is not set",
                           fix=f"export {variable}=<{what}>, or run on the renderer (DATA='renderer')")
    root = Path(value).expanduser()
    if not root.is_dir():
        raise DatasetError(f"${variable} does not name a folder", path=root, fix=f"point it at {what}")
    return root


def dataset_given(data: str) -> bool:
    """Whether the environment variable of dataset ``data`` is set (its folder is checked when opened)."""
    return bool(os.environ.get(DATASET_VARIABLES[data][0], "").strip())


def check_data_source(profile) -> str:
    """Open the run's data source as its notebooks will (layout, names, mappings, one sample read) and
    say in one line what it holds; raises :class:`DatasetError` before any work when it is unusable."""
    if profile.data == "renderer":
        return "the renderer"
    if profile.data == "openeds":
        eyes = openeds_eyes(dataset_root("openeds"), profile.nir_size,
                            generative_per_person=profile.openeds_generative_per_person)
        eyes.check_files()
        eyes[0]  # decodes one image and its label
        split = eyes.protocol_split()
        return (f"OpenEDS at {eyes.root}: {len(eyes):,} labelled images; {len(split['train'])} training persons, "
                f"{len(split['test'])} test persons (the validation split)")
    if profile.data == "columbia":
        eyes = columbia_eyes(dataset_root("columbia"), profile.patch_size)
        eyes.check_files()
        eyes[0]
        split = eyes.protocol_split()
        said = (f"Columbia Gaze patches at {eyes.root}: {len(eyes):,} patches; {len(split['train'])} training subjects, "
                f"{len(split['test'])} test subjects (He et al.'s split)")
        if dataset_given("mpiigaze"):  # the cross-dataset test: checked now too
            mpii = mpiigaze_eyes(dataset_root("mpiigaze"), profile.patch_size)
            mpii[0]
            said += f"; MPIIGaze at {mpii.root} as the cross-dataset test ({len(mpii):,} eyes, {len(mpii.persons)} persons)"
        return said
    if profile.data == "mpiigaze":
        eyes = mpiigaze_eyes(dataset_root("mpiigaze"), profile.patch_size)  # the reader opens every day file
        eyes[0]
        split = eyes.protocol_split()
        return (f"MPIIGaze at {eyes.root}: {len(eyes):,} normalised eyes of {len(eyes.persons)} persons; "
                f"{len(split['test'])} held out to test an estimator trained on the others")
    raise DatasetError(f"no notebook protocol reads {profile.data!r} yet",
                       fix="run on the renderer or on OpenEDS (see the README's 'Real datasets')")


class OpenEDSEyes:
    """The OpenEDS semantic set's train and validation splits as one source at a working ``size``:
    ``len``, ``person_of``/``side_of``/``has_mask``, and ``[i]`` → ``image`` uint8 (1, H, W),
    ``mask`` uint8 (H, W), ``person``, ``side`` ("?" on real frames), ``gaze`` where an eyegen
    export's sidecar has it. :meth:`protocol_split` gives the persons of each role and
    :meth:`recipe` what the provenance of a model trained on it records."""

    SPLITS = ("train", "validation")  # protocol roles: train → "train", validation → "test"

    def __init__(self, root, size: tuple[int, int], *, generative_per_person: int | None = 0):
        self.root, self.size = Path(root).expanduser(), (int(size[0]), int(size[1]))
        self.readers = [OpenEDS(self.root, split, "semantic") for split in self.SPLITS]
        overlap = set(self.readers[0].persons) & set(self.readers[1].persons)
        if overlap:
            raise DatasetError(f"persons {sorted(overlap)[:5]} appear in both the train and the validation split",
                               path=self.root, fix="use the userID mapping JSONs that came with the archive")
        self._where = [(k, i) for k, reader in enumerate(self.readers) for i in range(len(reader))]
        self.n_semantic = len(self._where)
        self.generative_per_person = generative_per_person
        if generative_per_person != 0:  # each person's generative frames, after the semantic ones (unlabelled)
            for split, semantic in zip(self.SPLITS, list(self.readers)):
                reader = OpenEDS(self.root, split, "generative")
                self.readers.append(reader)
                self._where += [(len(self.readers) - 1, i) for i in _spread_per_person(reader, semantic.persons,
                                                                                        generative_per_person)]
        self.records = [self.readers[k].records[i] for k, i in self._where]
        self.persons = sorted({r.person for r in self.records})

    def __len__(self) -> int:
        return len(self.records)

    def person_of(self, index: int) -> int:
        return self.records[index].person

    def side_of(self, index: int) -> str:
        return self.records[index].side

    def has_mask(self, index: int) -> bool:
        return self.records[index].label_path is not None

    def has_image(self, index: int) -> bool:
        return self.records[index].image_path is not None

    def has_gaze(self, index: int) -> bool:
        k, i = self._where[index]
        return self.readers[k].has_gaze(i)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        k, i = self._where[index]
        sample = self.readers[k][i]
        out = {key: sample[key] for key in ("person", "side", "path", "gaze") if key in sample}
        if "image" in sample:
            out["image"] = _area_resized(sample["image"], self.size)
        if "mask" in sample:
            mask = sample["mask"]
            if tuple(mask.shape) != self.size:
                mask = F.interpolate(mask[None, None].float(), size=self.size, mode="nearest")[0, 0].byte()
            out["mask"] = mask
        out["index"] = int(index) % len(self)
        return out

    def check_files(self, *, progress: bool = False) -> tuple[int, int]:
        """Every file's header — a PNG's size and mode, a label's shape and dtype — without decoding
        pixels (seconds for all of OpenEDS), so a truncated, mis-sized or foreign file stops a run
        before it trains, not hours in. Returns the frame size (rows, cols); raises :class:`DatasetError`."""
        size = None
        for rec in tqdm(self.records, desc="checking OpenEDS files", disable=not progress):
            shape = _image_header(rec.image_path, ("L",), "image")
            size = size or shape
            if shape != size:
                raise DatasetError(f"image is {shape[0]}×{shape[1]} but the others are {size[0]}×{size[1]}",
                                   path=rec.image_path, fix="every OpenEDS frame has one size (400×640): re-copy this file")
            if rec.label_path is None:  # a generative frame: no label to check
                continue
            try:
                label = np.load(rec.label_path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                raise DatasetError(f"label file is corrupt or not a .npy array ({exc})", path=rec.label_path,
                                   fix="re-copy this file from the original dataset archive") from None
            if tuple(label.shape) != shape:
                raise DatasetError(f"label is {'×'.join(map(str, label.shape))} but its image is {shape[0]}×{shape[1]}",
                                   path=rec.label_path, fix="a label must have exactly its image's size; re-copy the pair")
        if size is None:
            raise DatasetError("the semantic set's train and validation splits hold no images", path=self.root,
                               fix="check that the archive was fully extracted into this folder")
        return size

    def protocol_split(self) -> dict[str, list[int]]:
        """Persons by role: the train split trains, the validation split is the test set (no
        validation persons of our own: nothing here is tuned on OpenEDS)."""
        return {"train": list(self.readers[0].persons), "validation": [], "test": list(self.readers[1].persons)}

    @functools.cached_property
    def manifest(self) -> str:
        """A hash of the files this source reads — relative names and sizes, not pixels — so a model
        says which copy of the dataset it learned from without reading it twice."""
        return _file_manifest(self.root, (p for rec in self.records for p in (rec.image_path, rec.label_path) if p is not None))

    @property
    def synthetic_export(self) -> bool:
        return bool(self.readers[0]._sidecar)

    def recipe(self) -> dict:
        recipe = {"dataset": "OpenEDS", "subset": "semantic", "roles": {"train": "train", "test": "validation"},
                  "images": len(self), "working_size": list(self.size),
                  "manifest": self.manifest, "synthetic_export": self.synthetic_export}
        if self.generative_per_person != 0:  # the pool's unlabelled frames (recipes without them read as before)
            recipe["generative"] = {"per_person": self.generative_per_person, "frames": len(self) - self.n_semantic}
        return recipe

    def __repr__(self) -> str:
        return (f"OpenEDSEyes({str(self.root)!r}, size={self.size}: {self.n_semantic} labelled frames, "
                f"{len(self) - self.n_semantic} generative, {len(self.persons)} persons)")


def _spread_per_person(reader, persons, per_person: int | None) -> list[int]:
    """Indices of ``reader``'s frames (those with an image) of ``persons``: all, or ``per_person``
    spread evenly over each person's frames in name order (a capture session, not its first seconds)."""
    wanted, by_person = set(persons), {}
    for i, rec in enumerate(reader.records):
        if rec.image_path is not None and rec.person in wanted:
            by_person.setdefault(rec.person, []).append(i)
    chosen = []
    for person in sorted(by_person):
        frames = by_person[person]
        if per_person is not None and len(frames) > per_person:
            frames = [frames[k] for k in np.linspace(0, len(frames) - 1, per_person).round().astype(int)]
        chosen += frames
    return chosen


class ColumbiaEyes:
    """He et al.'s Columbia Gaze patches (:class:`~eyegen_lib.science.data.columbia.ColumbiaPatches`) as a
    source at a working ``size``: ``[i]`` → ``image`` uint8 (3, H, W), ``gaze`` (pitch, yaw) in the
    project's convention, ``person`` (the subject), ``side`` (the eye); ``group_of`` (subject, pose,
    eye) — one eye photographed at the 21 grid gazes, what He et al. pair within; ``landmarks``, the
    template eye's (:func:`~eyegen_lib.science.data.columbia.patch_landmarks`). Patches of another size are
    cut as He et al.'s geometry cuts them (:func:`~eyegen_lib.science.data.columbia.crop_patch`: area-resized,
    never stretched). He et al.'s split: subjects 1–50 train, 51–56 test."""

    def __init__(self, root, size: tuple[int, int]):
        self.root, self.size = Path(root).expanduser(), (int(size[0]), int(size[1]))
        self.reader = ColumbiaPatches(self.root)
        self.records = self.reader.records
        self.persons = self.reader.persons

    def __len__(self) -> int:
        return len(self.records)

    def person_of(self, index: int) -> int:
        return self.reader.person_of(index)

    def side_of(self, index: int) -> str:
        return self.reader.side_of(index)

    def group_of(self, index: int):
        return self.reader.group_of(index)

    def gaze_of(self, index: int):
        return self.reader.gaze_of(index)

    def has_gaze(self, index: int) -> bool:
        return True

    @functools.cached_property
    def _index_of_group_gaze(self) -> dict:
        return {(self.group_of(i), *np.round(np.degrees(self.gaze_of(i)), 1).tolist()): i for i in range(len(self))}

    def index_at(self, group, gaze_rad) -> int | None:
        """The photo of ``group`` (subject, pose, eye) at gaze (pitch, yaw) radians, or None off the grid
        (the lookup is built once per opened copy)."""
        return self._index_of_group_gaze.get((group, *np.round(np.degrees(np.asarray(gaze_rad, dtype=float)), 1).tolist()))

    def __getitem__(self, index: int) -> dict:
        sample = self.reader[index]
        out = {key: sample[key] for key in ("gaze", "person", "side", "pose", "index", "path")}
        out["image"] = crop_patch(sample["image"], self.size)
        out["landmarks"] = self.landmarks
        return out

    @functools.cached_property
    def landmarks(self) -> torch.Tensor:
        """The template eye's 7 landmarks at this size (:func:`~eyegen_lib.science.data.columbia.patch_landmarks`),
        every photo's (photos carry none; He et al.'s crop fixes where the eye is)."""
        return patch_landmarks(self.size)

    def check_files(self) -> tuple[int, int]:
        """Every patch's header (size, colour mode) without decoding pixels; raises :class:`DatasetError`."""
        size = None
        for rec in self.records:
            shape = _image_header(rec.path, ("RGB", "L"), "patch")
            size = size or shape
            if shape != size:
                raise DatasetError(f"patch is {shape[0]}×{shape[1]} but the others are {size[0]}×{size[1]}", path=rec.path,
                                   fix="He et al.'s patches are all 64×64: re-crop or remove this one")
        return size

    def protocol_split(self) -> dict[str, list[int]]:
        """He et al.'s subjects: 1–50 train, 51–56 test (those present)."""
        split = {"train": [s for s in self.persons if s in TRAIN_SUBJECTS], "validation": [],
                 "test": [s for s in self.persons if s in TEST_SUBJECTS]}
        for role, subjects in (("train", TRAIN_SUBJECTS), ("test", TEST_SUBJECTS)):
            if not split[role]:
                raise DatasetError(f"no {role} subject ({subjects[0]}–{subjects[-1]} in He et al.'s split) has a patch here; "
                                   f"found subjects {self.persons[:10]}", path=self.root,
                                   fix="point $EYEGEN_COLUMBIA_DIR at the patches of all 56 subjects")
        return split

    @functools.cached_property
    def manifest(self) -> str:
        return _file_manifest(self.root, (rec.path for rec in self.records))

    @property
    def synthetic_export(self) -> bool:
        return bool(self.reader._sidecar)

    def recipe(self) -> dict:
        return {"dataset": "Columbia Gaze patches", "roles": {"train": "subjects 1-50", "test": "subjects 51-56"},
                "images": len(self), "working_size": list(self.size), "manifest": self.manifest,
                "synthetic_export": self.synthetic_export}

    def __repr__(self) -> str:
        return f"ColumbiaEyes({str(self.root)!r}, size={self.size}: {len(self)} patches, {len(self.persons)} subjects)"


class MPIIGazeEyes:
    """MPIIGaze's normalised eyes (:class:`~eyegen_lib.science.data.mpiigaze.MPIIGazeNormalized`) as a source
    framed like He et al.'s Columbia patches, so that one estimator reads both: each 36 × 60 grey eye
    is padded to a 60 × 60 square (edge rows repeated, the eye centred — the eye then spans about
    the ⅗ of the width that a Columbia patch's 3.4-radius square gives it), resized to ``size``,
    repeated to three channels, and a right eye is mirrored with its yaw negated (He et al.'s flip).
    ``[i]`` → ``image`` uint8 (3, H, W), ``gaze`` (pitch, yaw) radians of the image as returned,
    ``person``, ``side`` (the eye's own side, as :class:`ColumbiaEyes` says it), ``index``, ``path``.

    MPIIGaze's own evaluations leave one person out at a time; :meth:`protocol_split` holds out the
    last fifth of the persons (p12–p14 of 15) as one such fold, for an estimator trained on the others."""

    def __init__(self, root, size: tuple[int, int]):
        self.root, self.size = Path(root).expanduser(), (int(size[0]), int(size[1]))
        self.reader = MPIIGazeNormalized(self.root)
        self.records = self.reader.records
        self.persons = self.reader.persons

    def __len__(self) -> int:
        return len(self.reader)

    def person_of(self, index: int) -> int:
        return self.reader.person_of(index)

    def side_of(self, index: int) -> str:
        return self.reader.side_of(index)

    def gaze_of(self, index: int):
        gaze = self.reader.gaze_of(index).copy()
        if self.reader.side_of(index) == "R":
            gaze[1] = -gaze[1]  # the mirrored eye looks the other way
        return gaze

    def has_gaze(self, index: int) -> bool:
        return True

    def __getitem__(self, index: int) -> dict:
        sample = self.reader[index]
        grey = sample["image"].float()  # (1, 36, 60)
        pad = (grey.shape[-1] - grey.shape[-2]) // 2
        square = F.pad(grey[None], (0, 0, pad, grey.shape[-1] - grey.shape[-2] - pad), mode="replicate")
        image = F.interpolate(square, size=self.size, mode="bilinear", antialias=True, align_corners=False)[0]
        image = image.round().clamp(0, 255).byte().expand(3, -1, -1).contiguous()
        if sample["side"] == "R":
            image = image.flip(-1)  # and gaze_of negates its yaw
        return {"image": image, "gaze": torch.from_numpy(self.gaze_of(index)), "person": sample["person"], "side": sample["side"], "index": int(index) % len(self),
                "path": sample["path"]}

    def protocol_split(self) -> dict[str, list[int]]:
        """Persons by role: the last fifth held out (at least one), the rest train an estimator."""
        n_test = max(1, round(len(self.persons) / 5))
        if len(self.persons) < 2:
            raise DatasetError(f"MPIIGaze here holds one person ({self.persons}): an estimator needs others to train on",
                               path=self.root, fix="point $EYEGEN_MPIIGAZE_DIR at the copy with all 15 persons")
        return {"train": self.persons[:-n_test], "validation": [], "test": self.persons[-n_test:]}

    @functools.cached_property
    def manifest(self) -> str:
        return _file_manifest(self.root, sorted({rec.path for rec in self.records}))

    @property
    def synthetic_export(self) -> bool:
        return False  # MPIIGaze's day files carry no sidecar: an eyegen export reads as a real copy

    def recipe(self) -> dict:
        return {"dataset": "MPIIGaze (normalised)", "roles": {"train": "persons but the last fifth",
                                                             "test": "the last fifth of the persons"},
                "framing": "36x60 grey padded to a square, resized, right eyes mirrored",
                "images": len(self), "working_size": list(self.size), "manifest": self.manifest}

    def __repr__(self) -> str:
        return f"MPIIGazeEyes({str(self.root)!r}, size={self.size}: {len(self)} eyes, {len(self.persons)} persons)"


@functools.lru_cache(maxsize=8)
def _opened(kind: type, root: str, size: tuple[int, int], stamp: float, options: tuple = ()):
    return kind(root, size, **dict(options))


def _open_once(kind: type, root, size, stamp_files, dataset: str, **options):
    """``kind(root, size, **options)``, opened once per process and folder (listing and hashing
    thousands of files is not free), re-opened when ``stamp_files`` change; the running notebook's
    record names it."""
    root = Path(root).expanduser()
    stamp = max((p.stat().st_mtime for p in stamp_files(root) if p.exists()), default=0.0)
    eyes = _opened(kind, str(root), (int(size[0]), int(size[1])), stamp, tuple(sorted(options.items())))
    note_data_read(dataset, root, synthetic=eyes.synthetic_export)
    return eyes


def openeds_eyes(root, size, *, generative_per_person: int | None = 0) -> OpenEDSEyes:
    """:class:`OpenEDSEyes`, opened once per process (re-opened when a split's mapping JSON changes)."""
    return _open_once(OpenEDSEyes, root, size, lambda r: [mapping_path(r, s) for s in OpenEDSEyes.SPLITS], "OpenEDS",
                      generative_per_person=generative_per_person)


def columbia_eyes(root, size) -> ColumbiaEyes:
    """:class:`ColumbiaEyes`, opened once per process (re-opened when the folder changes)."""
    return _open_once(ColumbiaEyes, root, size, lambda r: [r], "Columbia Gaze patches")


def mpiigaze_eyes(root, size) -> MPIIGazeEyes:
    """:class:`MPIIGazeEyes`, opened once per process (re-opened when a person's folder changes)."""
    return _open_once(MPIIGazeEyes, root, size, lambda r: [normalized_dir(r), *normalized_dir(r).glob("p*")], "MPIIGaze")
