"""Redirection training pairs: the same eye at two gazes, what DeepWarp and the gaze GAN train on.

On the renderer, a pair table (source image, target gaze, misalignment) is drawn once from the pair
seed, without rendering; :class:`PairRows` renders the rows a batch asks for, and
:func:`render_redirection_pairs` renders all of them into tensors (the small profiles). Both give
the same pairs, pixel for pixel: the renderer draws an image alike whatever batch it is rendered in.
On a dataset of photographed gaze grids (Columbia Gaze), :class:`GroupPairRows` pairs the photos of
one eye, as He et al. do.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ...core.runtime import tqdm
from .datasets import render_all
from .recipes import data_recipe
from .rows import Rows, TensorRows, _as_rows
from .synthetic import SyntheticEyes

__all__ = ["PairRows", "GroupPairRows", "group_pairs_recipe", "render_redirection_pairs", "redirection_pairs_recipe", "pair_parts", "pair_count",
           "eye_tilt_deg", "centre_crop", "PAIR_FIELDS"]

# Part of the pairs' recipe: bump when the pair table's draws change (models trained on other pairs retrain).
PAIR_TABLE_VERSION = 2
PAIR_FIELDS = ("source", "target", "landmarks", "source_gaze", "target_gaze", "shift")


def centre_crop(image: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on every side."""
    return image if border == 0 else image[..., border:-border, border:-border]


def eye_tilt_deg(landmarks: torch.Tensor) -> torch.Tensor:
    """(N,) |angle| in degrees between the horizontal and the segment joining the two most distant
    of the 6 eyelid landmarks (§4.2's tilt, which decides "hard" examples)."""
    lid = landmarks[:, :6].double()
    d = (lid[:, :, None] - lid[:, None]).norm(dim=-1)
    far = d.flatten(1).argmax(1)
    a, b = lid[torch.arange(len(lid)), far // 6], lid[torch.arange(len(lid)), far % 6]
    v = a - b
    tilt = torch.rad2deg(torch.atan2(v[:, 1], v[:, 0])).abs()
    return torch.minimum(tilt, 180 - tilt).float()  # a segment has no direction


def _wide_renderer(source, margin: int):
    """A renderer of the same people and images whose crops are ``margin`` px larger on each side
    and exactly concentric with ``source``'s, at the same pixel scale (see
    :func:`render_redirection_pairs`), with the per-image overrides that make it so."""
    if margin == 0:
        return source, lambda idx: {}
    H, W = source.spec.size
    wide = SyntheticEyes(dataclasses.replace(source.spec, size=(H + 2 * margin, W + 2 * margin)))
    ratio = W / (W + 2 * margin)

    def overrides(idx):
        # The patch's pixels per eye unit are W / (3.4 r) × scale and its blur is softness × W / 64:
        # shrinking scale and softness by W / (W + 2m) keeps both as in the W-wide crop.
        scale = [source.image_state(i)["scale"] * ratio for i in idx]
        soft = [source.person_params(source.person_of(i), source.side_of(i))[1]["softness_px"] * ratio for i in idx]
        return {"scale": torch.tensor(scale), "softness_px": torch.tensor(soft)}

    return wide, overrides


class PairRows(Rows):
    """Redirection pairs of ``indices`` of a ``SyntheticEyes`` RGB source, rendered when fetched
    (arguments and conventions: :func:`render_redirection_pairs`). Its table — ``index``, ``person``,
    ``source_gaze``, ``target_gaze``, ``shift`` — is known without rendering; :meth:`tilt_deg`
    renders only the landmarks (no image stages), once."""

    keys = PAIR_FIELDS

    def __init__(self, source, indices, *, pairs_per_image: int = 1, vertical_only: bool = False,
                 gaze_range_deg=None, border: int = 0, misalign_px: int = 0, seed: int = 0, chunk: int = 64):
        if border < 0 or misalign_px < 0:
            raise ValueError(f"border and misalign_px must be ≥ 0, got {border}, {misalign_px}")
        unique = sorted({int(i) for i in indices})
        if not unique:
            raise ValueError("no indices to render pairs from")
        self.source, self.border, self.misalign_px, self.chunk = source, int(border), int(misalign_px), int(chunk)
        self.size = tuple(source.spec.size)
        self.margin = self.border + self.misalign_px
        self.wide, self.overrides = _wide_renderer(source, self.margin)
        self.index = torch.tensor([i for i in unique for _ in range(int(pairs_per_image))], dtype=torch.int64)
        self.person = torch.tensor([source.person_of(int(i)) for i in self.index], dtype=torch.int64)
        states = [source.image_state(int(i)) for i in self.index]
        self.source_gaze = torch.tensor([[st["pitch"], st["yaw"]] for st in states], dtype=torch.float32)
        rng = np.random.default_rng(seed)
        max_p, max_y = np.deg2rad(gaze_range_deg if gaze_range_deg is not None else source.spec.gaze_range_deg)
        n = len(self.index)
        self.target_gaze = torch.as_tensor(rng.uniform(-1, 1, (n, 2)) * (max_p, max_y), dtype=torch.float32)
        if vertical_only:
            self.target_gaze[:, 1] = self.source_gaze[:, 1]
        self.shift = torch.as_tensor(rng.integers(-misalign_px, misalign_px + 1, (n, 2)), dtype=torch.int64)
        self.recipe = redirection_pairs_recipe(source, unique, pairs_per_image=pairs_per_image,
                                               vertical_only=vertical_only, gaze_range_deg=gaze_range_deg,
                                               border=border, misalign_px=misalign_px, seed=seed)
        self._tilt = None

    def __len__(self) -> int:
        return len(self.index)

    def fetch(self, rows) -> dict[str, torch.Tensor]:
        rows = _as_rows(rows)
        H, W = self.size
        m, k = self.misalign_px, self.border
        parts = {key: [] for key in PAIR_FIELDS}
        for start in range(0, len(rows), self.chunk):
            r = torch.tensor(rows[start:start + self.chunk], dtype=torch.int64)
            idx = self.index[r].tolist()
            src = self.wide.render(idx, overrides=self.overrides(idx))
            tgt = self.wide.render(idx, gaze=self.target_gaze[r], overrides=self.overrides(idx))
            parts["source"].append(centre_crop(src["image"], self.margin))
            parts["target"].append(torch.stack([t[:, m - dy: m - dy + H + 2 * k, m - dx: m - dx + W + 2 * k]
                                                for t, (dy, dx) in zip(tgt["image"], self.shift[r].tolist())]))
            parts["landmarks"].append((src["landmarks"] - self.margin).float())
            parts["source_gaze"].append(src["gaze"])
            parts["target_gaze"].append(self.target_gaze[r])
            parts["shift"].append(self.shift[r])
        return {key: torch.cat(v) for key, v in parts.items()}

    def tilt_deg(self) -> torch.Tensor:
        """(N,) §4.2's eye tilt of each pair's source (landmarks only: the renderer's geometry, no image)."""
        if self._tilt is None:
            unique = sorted(set(self.index.tolist()))
            lm = {}
            for start in range(0, len(unique), 512):
                chunk = unique[start:start + 512]
                out = self.wide.render(chunk, overrides=self.overrides(chunk), stages=())
                lm.update(zip(chunk, eye_tilt_deg((out["landmarks"] - self.margin).float())))
            self._tilt = torch.stack([lm[i] for i in self.index.tolist()])
        return self._tilt

    def meta(self) -> dict:
        """The pairs' table (no images): gazes, tilt, border, recipe, source index and person."""
        return {"source_gaze": self.source_gaze, "target_gaze": self.target_gaze, "tilt_deg": self.tilt_deg(),
                "border": self.border, "recipe": self.recipe, "index": self.index, "person": self.person}


def render_redirection_pairs(source, indices, *, pairs_per_image: int = 1, vertical_only: bool = False,
                             gaze_range_deg=None, border: int = 0, misalign_px: int = 0, seed: int = 0,
                             batch_size: int = 64, progress: bool = True) -> dict:
    """Pre-rendered DeepWarp training pairs from a ``SyntheticEyes`` RGB source (e.g.
    ``protocols.rgb_source(profile, size=(41, 51))``): each index ``pairs_per_image`` times, re-rendered
    at a target gaze with everything else identical (identity, lighting, lids, sensor noise).

    * Target gaze: uniform in ±``gaze_range_deg`` (default: the source's range). ``vertical_only``
      keeps the source's yaw exactly (Δyaw = 0) and draws only the pitch, like the paper's vertical
      redirection model (its ±15° pitch range gives corrections up to ±30°, the paper's range).
    * ``border`` = k > 0: targets are (H + 2k) × (W + 2k) crops concentric with the source's — what
      the registration-aware loss needs. Our renderer places the crop from the landmarks of the eye
      looking ahead, so we render a wider patch with the crop's scale and blur rescaled to keep the
      same pixel geometry (checked against a plain render: mean |difference| < 0.1 grey levels
      without sensor noise), and cut the source out of its centre. Source and target then share
      their sensor noise, as in a plain render. Replicate-padding a plain target would defeat the
      loss: the border must hold real image content.
    * ``misalign_px`` = m: the target's content moves by a random integer ``shift`` (dy, dx) ∈ [−m, m]²
      (target pixel (y + dy, x + dx) shows what a registered target shows at (y, x); ``best_shifts``
      recovers it), simulating the head moving between the two frames of a real pair. Rendered
      pairs are otherwise perfectly registered, and the registration-aware loss has nothing to absorb.

    Returns uint8 ``source`` (N, 3, H, W) and ``target`` (N, 3, H + 2k, W + 2k), float ``landmarks``
    (N, 7, 2) of the source, ``source_gaze``/``target_gaze`` (N, 2) radians, ``index``, ``person``,
    ``tilt_deg`` (N,), ``shift`` (N, 2) the misalignment applied, ``border`` (k), and ``recipe`` (how
    they were made: source spec and renderer version, indices, the arguments above). The same pairs,
    rendered when a batch needs them, are :class:`PairRows` (what the large profiles train on)."""
    pairs = PairRows(source, indices, pairs_per_image=pairs_per_image, vertical_only=vertical_only,
                     gaze_range_deg=gaze_range_deg, border=border, misalign_px=misalign_px, seed=seed, chunk=batch_size)
    parts = {k: [] for k in PAIR_FIELDS}
    bar = tqdm(total=len(pairs), desc="rendering pairs", disable=not progress, leave=False)
    for start in range(0, len(pairs), batch_size):
        got = pairs.fetch(range(start, min(start + batch_size, len(pairs))))
        for k in PAIR_FIELDS:
            parts[k].append(got[k])
        bar.update(len(got["source"]))
    bar.close()
    out = {k: torch.cat(v) for k, v in parts.items()}
    out.update(index=pairs.index, person=pairs.person, tilt_deg=eye_tilt_deg(out["landmarks"]), border=pairs.border,
               recipe=pairs.recipe)
    return out


class GroupPairRows(Rows):
    """Training or test pairs on a dataset of photographed gaze grids: pairs of photos within one
    (subject, pose, eye) group of ``indices`` of ``source`` (e.g.
    :class:`~eyegen_lib.science.data.sources.ColumbiaEyes`), head pose in ``poses`` only. By default He et
    al.'s: every ordered pair, self-pairs included (21 × 21 for a full grid), frontal faces only.

    * ``pairs_per_photo`` = n: instead, each photo is the source of n pairs, its targets drawn from
      the other photos of its group (from ``seed``): what a test set of one pair per photo is.
    * ``vertical_only``: only pairs whose yaw is unchanged (a vertical-only DeepWarp's pairs).
    * ``border`` = k: the targets are the photos as the source gives them, the sources their centre
      (k px less on each side) — the k-px-larger ground truth of the registration-aware loss. Open
      the source k px larger on each side than the model's input (He et al.'s crop geometry keeps
      the scale: :func:`~eyegen_lib.science.data.columbia.crop_patch`).

    The photos are read once and held (uint8); a pair is two row numbers into them. ``landmarks``
    (of the source) when the source gives them (the template eye on Columbia: DeepWarp's anchors)."""

    def __init__(self, source, indices, *, poses=(0,), include_self: bool = True, pairs_per_photo: int | None = None,
                 vertical_only: bool = False, border: int = 0, seed: int = 0, progress: bool = False):
        self.recipe = group_pairs_recipe(source, indices, poses=poses, include_self=include_self,
                                         pairs_per_photo=pairs_per_photo, vertical_only=vertical_only, border=border,
                                         seed=seed)
        groups = _pose_groups(source, indices, poses)
        photos = [i for members in groups.values() for i in members]
        read = render_all(source, photos, progress=progress)
        self.images, self.border = read["image"], int(border)
        self._landmarks = read.get("landmarks")
        self.keys = ("source", "target") + (("landmarks",) if self._landmarks is not None else ())
        gaze = torch.tensor(np.stack([source.gaze_of(i) for i in photos]), dtype=torch.float32)
        row = {i: r for r, i in enumerate(photos)}
        members_rows = [[row[i] for i in members] for members in groups.values()]
        pairs = _group_pairs(members_rows, gaze, include_self=include_self, pairs_per_photo=pairs_per_photo,
                             vertical_only=vertical_only, seed=seed)
        if not pairs:
            raise ValueError("no pairs of photos of one eye match (vertical-only pairs need two photos of one yaw)")
        self.a, self.b = (torch.tensor(side, dtype=torch.int64) for side in zip(*pairs))
        self.source_gaze, self.target_gaze = gaze[self.a], gaze[self.b]
        self.index = torch.tensor(photos, dtype=torch.int64)[self.a]
        self.target_index = torch.tensor(photos, dtype=torch.int64)[self.b]   # the photo each target is
        self.person = torch.tensor([source.person_of(i) for i in photos], dtype=torch.int64)[self.a]
        # per photo, gathered per pair: computed once, not on every meta() (pair_parts calls it often)
        self._tilt = None if self._landmarks is None else eye_tilt_deg(self._landmarks.float())[self.a]

    def __len__(self) -> int:
        return len(self.a)

    def fetch(self, rows) -> dict[str, torch.Tensor]:
        r = torch.as_tensor(_as_rows(rows), dtype=torch.int64)
        out = {"source": centre_crop(self.images[self.a[r]], self.border), "target": self.images[self.b[r]]}
        if self._landmarks is not None:
            out["landmarks"] = self._landmarks[self.a[r]].float() - self.border
        return out

    def meta(self) -> dict:
        meta = {"source_gaze": self.source_gaze, "target_gaze": self.target_gaze, "border": self.border,
                "recipe": self.recipe, "index": self.index, "person": self.person}
        if self._tilt is not None:
            meta["tilt_deg"] = self._tilt
        return meta

    def materialise(self) -> dict:
        """Every pair in memory: the dict :func:`render_redirection_pairs` returns (a test set)."""
        out = self.fetch(range(len(self)))
        out.update(self.meta())
        return out


def _group_pairs(groups, gaze, *, include_self, pairs_per_photo, vertical_only, seed) -> list[tuple[int, int]]:
    """(source row, target row) pairs within each group of rows (see :class:`GroupPairRows`)."""
    generator = torch.Generator().manual_seed(int(seed))
    pairs = []
    for members in groups:
        for a in members:
            partners = [b for b in members if (include_self or b != a)
                        and (not vertical_only or bool(gaze[b, 1] == gaze[a, 1]))]
            if pairs_per_photo is not None:
                partners = [b for b in partners if b != a]
                if not partners:
                    continue
                pick = torch.randint(len(partners), (int(pairs_per_photo),), generator=generator)
                partners = [partners[k] for k in pick.tolist()]
            pairs += [(a, b) for b in partners]
    return pairs


def _pose_groups(source, indices, poses) -> dict:
    groups: dict = {}
    for i in sorted({int(i) for i in indices}):
        subject, pose, eye = source.group_of(i)
        if pose in poses:
            groups.setdefault((subject, pose, eye), []).append(i)
    if not groups:
        raise ValueError(f"no photos of head pose {list(poses)} among these indices to pair")
    return groups


def group_pairs_recipe(source, indices, *, poses=(0,), include_self: bool = True, pairs_per_photo: int | None = None,
                       vertical_only: bool = False, border: int = 0, seed: int = 0) -> dict:
    """The data recipe of :class:`GroupPairRows` with these arguments, without reading a photo (He et
    al.'s default pairs keep the recipe they always had)."""
    photos = [i for members in _pose_groups(source, indices, poses).values() for i in members]
    extra = {}
    if pairs_per_photo is not None:
        extra.update(pairs_per_photo=int(pairs_per_photo), pair_seed=int(seed))
    if vertical_only:
        extra["vertical_only"] = True
    if border:
        extra["border"] = int(border)
    return data_recipe(source, indices=photos, pairs="every ordered pair within (subject, pose, eye)"
                       if pairs_per_photo is None else "each photo with others of its (subject, pose, eye)",
                       poses=sorted(int(p) for p in poses), include_self=bool(include_self), **extra)


def pair_parts(pairs, keys=PAIR_FIELDS) -> tuple[Rows, dict]:
    """(row store, table) of training pairs: a :class:`PairRows` (rendered when fetched) or a
    :class:`GroupPairRows`, or the dict of :func:`render_redirection_pairs` (held in memory; its
    ``keys`` as rows)."""
    if isinstance(pairs, (PairRows, GroupPairRows)):
        missing = [k for k in keys if k not in pairs.keys and k not in pairs.meta()]
        if missing:
            raise ValueError(f"these training pairs have no {missing}: their source gives none (a photographed "
                             "dataset's source must give the template eye's landmarks, as ColumbiaEyes does)")
        return pairs, pairs.meta()
    if not isinstance(pairs, dict):
        raise TypeError(f"training pairs must be PairRows or the dict render_redirection_pairs returns, got {type(pairs).__name__}")
    missing = [k for k in keys if k not in pairs]
    if missing:
        raise ValueError(f"training pairs lack {missing}: use render_redirection_pairs or PairRows")
    rows = TensorRows({k: pairs[k] for k in keys})
    meta = {k: pairs[k] for k in ("source_gaze", "target_gaze", "tilt_deg", "recipe", "index", "person") if k in pairs}
    meta["border"] = int(pairs.get("border", (pairs["target"].shape[-1] - pairs["source"].shape[-1]) // 2))
    return rows, meta


def pair_count(pairs) -> int:
    """How many training pairs ``pairs`` holds, whichever form they take (in memory, rendered, photographed)."""
    return len(pair_parts(pairs, ("source",))[0])


def redirection_pairs_recipe(source, indices, *, pairs_per_image: int = 1, vertical_only: bool = False,
                             gaze_range_deg=None, border: int = 0, misalign_px: int = 0, seed: int = 0) -> dict:
    """The data recipe of :func:`render_redirection_pairs` with these arguments, without rendering:
    what a model trained on them cites as its data (the same for :class:`PairRows`)."""
    return data_recipe(source, indices=sorted({int(i) for i in indices}), pairs_per_image=int(pairs_per_image),
                       vertical_only=bool(vertical_only),
                       gaze_range_deg=list(gaze_range_deg) if gaze_range_deg is not None else None,
                       border=int(border), misalign_px=int(misalign_px), pair_seed=int(seed),
                       pair_table=PAIR_TABLE_VERSION)


