"""He et al.'s Columbia Gaze eye patches on disk: a reader and an exporter of the same naming.

A patch is a 64×64 RGB file named like ``0048_2m_-30P_0V_-10H_L.jpg``: subject (4 digits),
camera distance, head pose P (deg), vertical gaze V (deg), horizontal gaze H (deg), eye L/R.
He et al. flip RIGHT-eye patches horizontally (so every patch looks like a left eye) and train
on ``[H/15, V/10]`` with H negated for the flipped right eyes; subjects 1–50 train, 51–56 test.

Sign mapping to the project convention (:mod:`eyegen_lib.core.gaze`), applied to the stored pixels
------------------------------------------------------------------------------------------------
* ``pitch = +radians(V)``: V > 0 looks up, the pupil moves towards row 0.
* H describes the *original, unflipped* photo, as the file name does: **H > 0 means the pupil
  sits towards column 0 (the image left) of the unflipped eye**, i.e. the same sense as the
  project's yaw. So ``yaw = +radians(H)`` for left eyes, and ``yaw = −radians(H)`` for right eyes
  whose patch was flipped (mirroring an image negates its yaw) — exactly He et al.'s negation.

The exporter defines H this way (it renders the unflipped eye at ``yaw = radians(H)``, then flips
right eyes), so an export reads back the rendered gaze exactly. Whether the real Columbia files
use the same horizontal sense could not be checked without the data: if a real copy reads with
pupils moving against the read yaw, pass ``h_sign=-1`` (and ``right_flipped=False`` for
patches that were not flipped).

The renderer has no head pose, so an export varies only the pose *label*: each pose of a subject
uses a different rendered image (its own small jitter of position, pupil size…) whose 21 grid
gazes share everything but the gaze.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...core.runtime import tqdm
from .errors import DatasetError, note_data_read, read_image, read_label
from .eye_model import mirror_points
from .openeds import _fresh_folder

__all__ = ["ColumbiaPatches", "ColumbiaRecord", "export_columbia", "columbia_gaze", "he_label", "parse_patch_name",
           "patch_name", "patch_landmarks", "crop_patch", "H_GRID", "V_GRID", "POSES", "TRAIN_SUBJECTS", "TEST_SUBJECTS"]

H_GRID = (-15, -10, -5, 0, 5, 10, 15)
V_GRID = (-10, 0, 10)
POSES = (0, 15, -15, 30, -30)
TRAIN_SUBJECTS = tuple(range(1, 51))
TEST_SUBJECTS = tuple(range(51, 57))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SIDECAR_NAME = "eyegen_meta.json"
SIDECAR_FORMAT = "eyegen-columbia-meta"
MASK_DIR = "eyegen_masks"

NAME_PATTERN = re.compile(r"^(?P<subject>\d{4})_(?P<distance>\d+(?:\.\d+)?m)_(?P<pose>[+-]?\d+)P_(?P<v>[+-]?\d+)V_"
                          r"(?P<h>[+-]?\d+)H_(?P<eye>[LR])\.(?:jpe?g|png)$", re.IGNORECASE)
EXPECTED_NAME = ("SSSS_Dm_<pose>P_<V>V_<H>H_<L|R>.jpg, e.g. 0048_2m_-30P_0V_-10H_L.jpg "
                 "(4-digit subject, distance, head pose, vertical and horizontal gaze in degrees, eye; .jpg or .png)")


def columbia_gaze(v_deg, h_deg, eye: str, *, right_flipped: bool = True, h_sign: int = 1) -> np.ndarray:
    """(pitch, yaw) float32 radians of the stored patch, from its name's V, H and eye (see module doc)."""
    flip = -1.0 if (eye.upper() == "R" and right_flipped) else 1.0
    return np.array([np.radians(float(v_deg)), flip * h_sign * np.radians(float(h_deg))], dtype=np.float32)


def he_label(v_deg, h_deg, eye: str) -> np.ndarray:
    """He et al.'s training label ``[H/15, V/10]`` with H negated for (flipped) right eyes."""
    return np.array([(-1.0 if eye.upper() == "R" else 1.0) * float(h_deg) / 15.0, float(v_deg) / 10.0], dtype=np.float32)


# The 7 DeepWarp landmarks (6 eyelid points temporal → nasal, then the pupil centre) of an eye looking
# ahead, as (x, y) in units of the radius R of the circle around the 6 eyelid points, from the eye's
# centre. The corners lie on that circle by construction of He et al.'s crop; the lid points sit at the
# fissure's thirds, at the heights of the renderer's average open eye (measured over 80 eyes: upper
# −0.40 R ± 0.07, lower +0.34 R ± 0.05); the pupil is put at the centre, where an eye looking ahead has it.
_TEMPLATE_LANDMARKS = ((-1.0, 0.0), (-1 / 3, -0.40), (1 / 3, -0.40), (1.0, 0.0), (1 / 3, 0.34), (-1 / 3, 0.34), (0.0, 0.0))
CROP_SIDE_RADII = 3.4  # He et al.'s patch side, in radii of the eyelid points' circle


def patch_landmarks(size: tuple[int, int]) -> torch.Tensor:
    """(7, 2) float32 pixel (x, y) of a template eye in a patch of ``size`` (rows, cols) cut as He et
    al. cut Columbia Gaze (:func:`crop_patch` for non-square sizes): photographs carry no landmarks,
    and He et al.'s crop fixes where the eye corners are (the circle through them is the patch's
    width / 3.4), so DeepWarp's anchors on photos are this template — the same for every photo; the
    network finds the iris in the pixels. The renderer's patches are cut the same way, so its
    landmarks of an eye looking ahead scatter around this template (a few tenths of a pixel)."""
    rows, cols = size
    radius = cols / CROP_SIDE_RADII
    centre = torch.tensor([(cols - 1) / 2, (rows - 1) / 2])
    return (centre + radius * torch.tensor(_TEMPLATE_LANDMARKS)).float()


def crop_patch(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 (C, H, W) patch at ``size`` as He et al.'s geometry cuts it from a square patch: the
    square's side spans the crop's width (area-resized), and a crop less tall than wide keeps the
    middle rows — DeepWarp's 41 × 51 is the 64 × 64 patch at 51 × 51 without its top and bottom 5
    rows, as the renderer cuts it. Aspect ratio is kept, never stretched."""

    rows, cols = int(size[0]), int(size[1])
    if tuple(image.shape[-2:]) == (rows, cols):
        return image
    side = max(rows, cols)
    if tuple(image.shape[-2:]) != (side, side):
        image = F.interpolate(image[None].float(), size=(side, side), mode="area")[0].round().clamp(0, 255).byte()
    top, left = (side - rows) // 2, (side - cols) // 2
    return image[..., top:top + rows, left:left + cols]


@dataclass(frozen=True)
class ColumbiaRecord:
    path: Path
    subject: int
    distance: str   # e.g. "2m"
    pose: int       # head pose, degrees
    v: int          # vertical gaze, degrees
    h: int          # horizontal gaze, degrees (of the unflipped photo)
    eye: str        # "L" or "R"


def parse_patch_name(path: Path) -> ColumbiaRecord | None:
    m = NAME_PATTERN.match(Path(path).name)
    if m is None:
        return None
    return ColumbiaRecord(path=Path(path), subject=int(m["subject"]), distance=m["distance"], pose=int(m["pose"]),
                          v=int(m["v"]), h=int(m["h"]), eye=m["eye"].upper())


def patch_name(subject: int, pose: int, v: int, h: int, eye: str, ext: str = "jpg", distance: str = "2m") -> str:
    return f"{subject:04d}_{distance}_{pose}P_{v}V_{h}H_{eye}.{ext}"


class ColumbiaPatches:
    """Random-access reader of a folder (searched recursively) of He et al.-style patches.

    ``subjects``: keep only these subject numbers (e.g. :data:`TRAIN_SUBJECTS`). Samples are dicts
    like ``SyntheticEyes.__getitem__``: ``image`` uint8 (3, H, W), ``gaze`` float32 (2,) in the
    project convention, ``person`` (= subject), ``side`` (the name's eye), ``pose`` (deg),
    ``he_label`` (2,), ``path``, ``index``; plus ``mask``/``landmarks``/``eyelid`` when the folder
    is an eyegen export (sidecar). Patches are read at their stored size.
    """

    def __init__(self, root, subjects=None, *, right_flipped: bool = True, h_sign: int = 1):
        self.root = Path(root).expanduser()
        self.right_flipped, self.h_sign = bool(right_flipped), int(h_sign)
        if h_sign not in (1, -1):
            raise ValueError("h_sign must be +1 or -1")
        if not self.root.is_dir():
            raise DatasetError("the Columbia patch folder does not exist" if not self.root.exists() else
                               "the Columbia patch path is not a folder", path=self.root,
                               fix="point the reader (or $EYEGEN_COLUMBIA_DIR) at the folder of 64×64 patches "
                               "named like 0048_2m_-30P_0V_-10H_L.jpg")
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and MASK_DIR not in p.relative_to(self.root).parts)
        records, malformed = [], []
        for p in files:
            rec = parse_patch_name(p)
            (records if rec is not None else malformed).append(rec or p)
        if malformed:
            raise DatasetError(f"{len(malformed)} image file name(s) do not follow the Columbia patch pattern "
                               f"{EXPECTED_NAME}; e.g. {[p.name for p in malformed[:5]]}", path=malformed[0],
                               fix="rename the files to that pattern or move them out of this folder")
        if not records:
            raise DatasetError(f"no Columbia patches (.jpg/.png named like {EXPECTED_NAME}) found", path=self.root,
                               fix="point the reader at the folder that holds the patch files")
        stems: dict[str, Path] = {}
        for rec in records:
            key = rec.path.stem.upper()
            if key in stems:
                raise DatasetError(f"two patches share the name {rec.path.stem!r}: {stems[key]} and {rec.path}",
                                   path=rec.path, fix="keep one copy (e.g. either the .jpg or the .png)")
            stems[key] = rec.path
        if subjects is not None:
            wanted = {int(s) for s in subjects}
            records = [r for r in records if r.subject in wanted]
            if not records:
                raise DatasetError(f"none of subjects {sorted(wanted)[:10]} has a patch here", path=self.root,
                                   fix="check the subject numbers (1–50 train, 51–56 test in He et al.)")
        self.records = records
        self.persons = sorted({r.subject for r in records})
        self._sidecar = self._read_sidecar()
        note_data_read("Columbia Gaze patches", self.root, synthetic=bool(self._sidecar))

    def _read_sidecar(self) -> dict:
        path = self.root / SIDECAR_NAME
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DatasetError(f"the eyegen sidecar is not valid JSON ({exc})", path=path,
                               fix=f"delete {SIDECAR_NAME}; it is optional and only eyegen writes it") from None
        if not isinstance(data, dict) or data.get("format") != SIDECAR_FORMAT or not isinstance(data.get("images"), dict):
            raise DatasetError(f"{SIDECAR_NAME} is not an eyegen Columbia sidecar", path=path,
                               fix=f"delete or rename {SIDECAR_NAME}; it is optional and only eyegen writes it")
        return data["images"]

    # -- metadata (no decoding) --------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.records)

    def person_of(self, index: int) -> int:
        return self.records[index].subject

    def side_of(self, index: int) -> str:
        return self.records[index].eye

    def group_of(self, index: int) -> tuple[int, int, str]:
        """(subject, pose, eye): He et al. pair every two patches of one group."""
        r = self.records[index]
        return (r.subject, r.pose, r.eye)

    def gaze_of(self, index: int) -> np.ndarray:
        r = self.records[index]
        return columbia_gaze(r.v, r.h, r.eye, right_flipped=self.right_flipped, h_sign=self.h_sign)

    def _mask_path(self, index: int) -> Path:
        return self.root / MASK_DIR / f"{self.records[index].path.stem}.npy"

    def has_mask(self, index: int) -> bool:
        return self._mask_path(index).is_file()

    def __repr__(self) -> str:
        return f"ColumbiaPatches({str(self.root)!r}: {len(self)} patches, {len(self.persons)} subjects)"

    # -- reading -----------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} patches")
        index = int(index) % len(self)
        r = self.records[index]
        image = read_image(r.path, "RGB")
        out = {"image": torch.from_numpy(image).permute(2, 0, 1).contiguous(),
               "gaze": torch.from_numpy(self.gaze_of(index)),
               "he_label": torch.from_numpy(he_label(r.v, r.h, r.eye))}
        if self.has_mask(index):
            mask = read_label(self._mask_path(index))
            if mask.shape != image.shape[:2]:
                raise DatasetError(f"mask is {mask.shape} but its patch is {image.shape[:2]}", path=self._mask_path(index),
                                   fix=f"a mask must have its patch's size; delete {MASK_DIR}/ to read without masks")
            out["mask"] = torch.from_numpy(mask)
        meta = self._sidecar.get(r.path.stem, {})
        for key in ("landmarks", "eyelid"):
            if key in meta:
                out[key] = torch.tensor(meta[key], dtype=torch.float32)
        out.update(person=r.subject, side=r.eye, pose=r.pose, index=index, path=str(r.path))
        return out

    def validate(self, *, raise_errors: bool = True, progress: bool = True) -> list[str]:
        """Decode every patch; return every problem (and raise one DatasetError listing them)."""
        problems = []
        for i in tqdm(range(len(self)), desc="checking Columbia patches", disable=not progress):
            try:
                self[i]
            except DatasetError as err:
                problems.append(str(err))
        if problems and raise_errors:
            raise DatasetError(f"{len(problems)} of {len(self)} patches are bad:\n" + "\n".join(problems),
                               fix="fix or remove the files named above")
        return problems


# -- exporter ------------------------------------------------------------------------------------
def _flip_batch(batch: dict) -> dict:
    """Mirror images, masks, landmarks and eyelids left↔right, as He et al. do for right eyes."""
    width = batch["image"].shape[-1]
    ones = torch.ones(batch["image"].shape[0])
    out = dict(batch)
    out["image"] = batch["image"].flip(-1)
    out["mask"] = batch["mask"].flip(-1)
    out["landmarks"] = mirror_points(batch["landmarks"], ones, width, landmark_order=True)
    out["eyelid"] = mirror_points(batch["eyelid"], ones, width, landmark_order=False)
    out["gaze"] = batch["gaze"] * torch.tensor([1.0, -1.0])
    return out


def export_columbia(source, out, *, poses=(0,), lossless: bool = False, quality: int = 95,
                    progress: bool = True) -> dict:
    """Write He et al.-style patches of the renderer: per (subject, pose, eye) the 7 H × 3 V grid.

    ``source`` is an unflipped RGB ``SyntheticEyes``; person ``p`` becomes subject ``p + 1``.
    Pose ``k`` of a subject uses the person's local images ``2k`` (right eye) and ``2k + 1`` (left),
    so ``images_per_person`` must be at least ``2 * len(poses)``. Each is rendered at the 21 grid
    gazes with ``yaw = radians(H)``, ``pitch = radians(V)``; right eyes are then flipped. Files are
    JPEG (quality 95), or PNG with ``lossless=True`` (same names); ``eyegen_meta.json`` and
    ``eyegen_masks/`` keep landmarks and masks. ``out`` must be empty or new.
    """
    from PIL import Image

    spec = source.spec
    if getattr(spec, "flip_right", False):
        raise ValueError("pass an unflipped source (flip_right=False): the exporter flips right eyes itself")
    poses = tuple(int(p) for p in poses)
    if spec.images_per_person < 2 * len(poses):
        raise ValueError(f"{len(poses)} pose(s) need images_per_person >= {2 * len(poses)}, got {spec.images_per_person}")
    out = _fresh_folder(out)
    (out / MASK_DIR).mkdir()
    grid = [(v, h) for v in V_GRID for h in H_GRID]
    unflipped_gaze = torch.tensor([[np.radians(v), np.radians(h)] for v, h in grid], dtype=torch.float32)
    ext = "png" if lossless else "jpg"
    sidecar, n = {}, 0
    jobs = [(p, k, eye) for p in range(spec.n_persons) for k in range(len(poses)) for eye in ("R", "L")]
    for person, k, eye in tqdm(jobs, desc="exporting Columbia patches", disable=not progress):
        index = person * spec.images_per_person + 2 * k + (0 if eye == "R" else 1)
        if source.side_of(index) != eye:
            raise RuntimeError(f"renderer put side {source.side_of(index)!r} at index {index}, expected {eye!r}")
        batch = source.render([index] * len(grid), gaze=unflipped_gaze)
        if eye == "R":
            batch = _flip_batch(batch)
        for b, (v, h) in enumerate(grid):
            name = patch_name(person + 1, poses[k], v, h, eye, ext)
            image = batch["image"][b].permute(1, 2, 0).numpy()
            if lossless:
                Image.fromarray(image).save(out / name)
            else:
                Image.fromarray(image).save(out / name, quality=quality)
            np.save(out / MASK_DIR / f"{Path(name).stem}.npy", batch["mask"][b].numpy())
            sidecar[Path(name).stem] = {"source_index": index, "gaze": batch["gaze"][b].tolist(),
                                        "landmarks": batch["landmarks"][b].tolist(),
                                        "eyelid": batch["eyelid"][b].tolist()}
            n += 1
    (out / SIDECAR_NAME).write_text(json.dumps({"format": SIDECAR_FORMAT, "version": 1, "seed": spec.seed,
                                                "size": list(spec.size), "images": sidecar}))
    return {"format": "columbia", "out": str(out), "images": n, "size": list(spec.size),
            "subjects": list(range(1, spec.n_persons + 1)), "poses": list(poses), "lossless": lossless}
