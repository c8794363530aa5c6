"""The suite's data sources and evaluation protocols: one definition of "the synthetic dataset of
a profile", its person split, and the two shared test protocols (OpenEDS generation, He et al.'s
redirection grid), so every notebook trains and evaluates alike.

Each protocol also has a *recipe* (:func:`protocol_recipe`): a description of exactly which data
it is, from which saved predictions are checked before ``07_evaluation`` compares them.
"""
from __future__ import annotations

import torch

from ..core.profiles import Profile
from .data.columbia import POSES
from .data.datasets import indices_of_persons, render_all, split_persons
from .data.errors import DatasetError, note_renderer_used
from .data.pairs import GroupPairRows, PairRows, group_pairs_recipe, redirection_pairs_recipe, render_redirection_pairs
from .data.recipes import data_recipe, fingerprint
from .data.rows import MaskStore, RenderedRows, TensorRows, ZipRows, fetch_in_chunks
from .data.sources import columbia_eyes, dataset_given, dataset_root, mpiigaze_eyes, openeds_eyes
from .data.synthetic import SyntheticEyes, SyntheticEyeSpec
from .evaluation import GRID_PITCH_DEG, GRID_YAW_DEG, build_redirection_set, grid_groups, redirection_set_of_groups
from .models.deeplab import segment
from .ranking import candidates_ok, kmeans, mask_mode_features, mask_modes, mode_features, rank_pool, split_modes
from .similarity import feature_distances, ranking_features

__all__ = ["REDIRECTION_GAZE_RANGE_DEG", "nir_source", "rgb_source", "person_split", "split_indices",
           "openeds_protocol", "redirection_protocol", "redirection_eyes", "protocol_recipe", "protocol_fingerprint",
           "redirection_training_pairs", "redirection_training_pairs_recipe", "deepwarp_training_pairs",
           "deepwarp_training_pairs_recipe", "deepwarp_test_pairs", "DEEPWARP_CROP", "SHIFTED_PAIRS", "person_side_groups", "ranking_setup", "rank_targets",
           "gaze_estimator_source", "gaze_estimator_split", "labelled_flags", "cross_dataset_gaze_source", "real_eyes_at", "draws_any_gaze"]

# He et al.'s Columbia grid spans ±10° pitch and ±15° yaw; sources for redirection and the gaze
# estimator cover a little more so that no target direction is an extrapolation.
REDIRECTION_GAZE_RANGE_DEG = (15.0, 20.0)



def nir_source(profile: Profile, *, seed: int = 0, images_per_person: int | None = None):
    """OpenEDS-like NIR frames at the profile's working size: rendered, or — on ``DATA="openeds"`` —
    the user's OpenEDS semantic set (:class:`~eyegen_lib.science.data.sources.OpenEDSEyes`)."""
    if profile.data != "renderer":
        return _dataset_source(profile, "openeds", "NIR eye frames (OpenEDS)")
    note_renderer_used()
    return SyntheticEyes(SyntheticEyeSpec("nir", size=profile.nir_size, n_persons=profile.n_persons,
                                          images_per_person=images_per_person or profile.images_per_person, seed=seed))


def rgb_source(profile: Profile, *, seed: int = 0, size: tuple[int, int] | None = None,
               images_per_person: int | None = None, extra_persons: int = 0) -> SyntheticEyes:
    """Columbia-like RGB patches (64×64 by default; DeepWarp uses 41×51). ``extra_persons`` renders
    persons beyond the profile's (the first ``n_persons`` are the same persons either way)."""
    if profile.data != "renderer":
        return _dataset_source(profile, "columbia", "RGB eye patches with gaze labels (Columbia Gaze)", size)
    note_renderer_used()
    return SyntheticEyes(SyntheticEyeSpec("rgb", size=size or profile.patch_size, n_persons=profile.n_persons + extra_persons,
                                          images_per_person=images_per_person or profile.images_per_person, seed=seed,
                                          gaze_range_deg=REDIRECTION_GAZE_RANGE_DEG))


def person_split(profile: Profile, *, seed: int = 0) -> dict[str, list[int]]:
    """train / val / test persons (no person in two splits); the same for every notebook. On a
    dataset, its own split (OpenEDS: train → train, validation → test), whatever the seed."""
    if profile.data == "openeds":
        return nir_source(profile).protocol_split()
    if profile.data == "columbia":
        return rgb_source(profile).protocol_split()
    if profile.data == "mpiigaze":
        return gaze_estimator_source(profile).protocol_split()
    return split_persons(range(profile.n_persons), seed=seed)


def _dataset_source(profile: Profile, wanted: str, what: str, size=None):
    """The run's dataset when it is the one this protocol reads, else one clear error."""
    if profile.data != wanted:
        raise ValueError(f"this protocol needs {what}; DATA={profile.data!r} does not hold them: "
                         f"run this notebook with DATA='renderer' or DATA={wanted!r}")
    if wanted == "openeds":
        return openeds_eyes(dataset_root("openeds"), profile.nir_size,
                            generative_per_person=profile.openeds_generative_per_person)
    if wanted == "columbia":
        return columbia_eyes(dataset_root("columbia"), size or profile.patch_size)
    if wanted == "mpiigaze":
        return mpiigaze_eyes(dataset_root("mpiigaze"), size or profile.patch_size)
    raise NotImplementedError(f"no protocol reads {wanted!r} yet: run this notebook on the renderer")


def labelled_flags(source, indices) -> torch.Tensor:
    """(N,) bool: which of ``indices`` have a mask — every rendered eye; not OpenEDS's generative frames."""
    has_mask = getattr(source, "has_mask", None)
    return torch.tensor([True if has_mask is None else bool(has_mask(i)) for i in indices], dtype=torch.bool)


def split_indices(source: SyntheticEyes, split: dict[str, list[int]], *, labelled: bool = False) -> dict[str, list[int]]:
    """Each role's sample indices; ``labelled``: only samples with a mask (what trains or scores a
    segmenter, a refiner or Seg2Eye — OpenEDS's generative frames have none; rendered ones all do)."""
    idx = {name: indices_of_persons(source, persons) for name, persons in split.items()}
    if labelled:
        idx = {name: [i for i, ok in zip(ids, labelled_flags(source, ids).tolist()) if ok] for name, ids in idx.items()}
    return idx


def person_side_groups(data, indices=None) -> torch.Tensor:
    """One id per (person, eye side): Seg2Eye's "mode" of a person. Of a :func:`render_all` dict's
    rows, or of ``indices`` of a source (from its metadata: nothing is rendered)."""
    if indices is not None:
        return torch.tensor([data.person_of(i) * 2 + (data.side_of(i) == "R") for i in indices], dtype=torch.int64)
    return data["person"] * 2 + torch.tensor([s == "R" for s in data["side"]], dtype=torch.int64)


def gaze_estimator_source(profile: Profile, *, seed: int = 0, size: tuple[int, int] | None = None) -> SyntheticEyes:
    """The independent gaze estimator's data: RGB patches, 4× the profile's images per person
    (200 at ``paper``), so that its floor is low; on Columbia Gaze, every patch (all head poses); on
    MPIIGaze, every normalised eye, framed as a Columbia patch (:class:`~eyegen_lib.science.data.sources.MPIIGazeEyes`)."""
    if profile.data == "columbia":
        return rgb_source(profile, seed=seed, size=size)
    if profile.data == "mpiigaze":
        return _dataset_source(profile, "mpiigaze", "gaze-labelled eye images (MPIIGaze)", size)
    per_person = max(profile.images_per_person, profile.estimator_images_per_person)
    return rgb_source(profile, seed=seed, size=size, images_per_person=per_person,
                      extra_persons=profile.estimator_extra_persons)


def gaze_estimator_split(profile: Profile, *, seed: int = 0) -> dict[str, list[int]]:
    """The independent estimator's persons: the suite's split, with the profile's extra persons
    (``estimator_extra_persons``, rendered only for it) added to training; its test persons are the
    protocols' test persons, which it never sees."""
    split = person_split(profile, seed=seed)
    if profile.data != "renderer" or not profile.estimator_extra_persons:
        return split
    extra = list(range(profile.n_persons, profile.n_persons + profile.estimator_extra_persons))
    return {**split, "train": sorted(split["train"]) + extra}


def draws_any_gaze(source) -> bool:
    """Whether ``source`` makes an eye at any gaze (the renderer), rather than holding photos taken on a
    grid (Columbia Gaze: 21 directions per eye and head pose)."""
    return hasattr(source, "render")


def real_eyes_at(source, indices, gaze: torch.Tensor) -> dict:
    """The real eye of each index at ``gaze`` (N, 2) radians: rendered there by the renderer (``image``,
    ``landmarks``, ``mask`` …), or on a photographed grid the photo of the same (subject, pose, eye)
    at that gaze (``image``; a gaze off the grid is a :class:`~eyegen_lib.science.data.errors.DatasetError`)."""
    indices = [int(i) for i in indices]
    if draws_any_gaze(source):
        return source.render(indices, gaze=gaze)
    found = [source.index_at(source.group_of(i), g.numpy()) for i, g in zip(indices, gaze)]
    missing = [(source.group_of(i), *torch.rad2deg(g).tolist()) for i, g, f in zip(indices, gaze, found) if f is None]
    if missing:
        raise DatasetError(f"{len(missing)} of {len(found)} eyes have no photo at the gaze asked for, e.g. (subject, pose, "
                           f"eye) {missing[0][0]} at pitch {missing[0][1]:.3g}°, yaw {missing[0][2]:.3g}°",
                           fix="ask for the grid's gazes (pitch 0, ±10°; yaw 0, ±5, ±10, ±15°), or use a copy with "
                           "all 21 photos of every eye")
    return render_all(source, found, progress=False)


def cross_dataset_gaze_source(profile: Profile, *, size: tuple[int, int] | None = None):
    """He et al.'s cross-dataset test (§5.6): every MPIIGaze eye, for an estimator trained on Columbia
    Gaze — when ``$EYEGEN_MPIIGAZE_DIR`` is set on a Columbia run; ``None`` otherwise (on the renderer
    another synthetic population stands in, see :mod:`eyegen_lib.science.augmentation`). A malformed folder
    is a :class:`~eyegen_lib.science.data.errors.DatasetError`, not a silent ``None``."""
    if profile.data != "columbia" or not dataset_given("mpiigaze"):
        return None
    return mpiigaze_eyes(dataset_root("mpiigaze"), size or profile.patch_size)


# -- the two test protocols --------------------------------------------------------------------------
def _openeds_parts(profile: Profile, seed: int):
    source = nir_source(profile, seed=seed)
    split = person_split(profile, seed=seed)
    idx = split_indices(source, split, labelled=True)  # targets are masks: OpenEDS's generative frames only join the pool
    return source, split, idx, idx["test"][: profile.eval_images]


def openeds_protocol(profile: Profile, *, seed: int = 0) -> dict:
    """The OpenEDS generation task on synthetic NIR data: target masks (and their true images)
    from test persons, and the labelled training pool a method may draw references from."""
    source, split, idx, test = _openeds_parts(profile, seed)
    return {"source": source, "split": split, "test_indices": test, "train_indices": idx["train"],
            "test": render_all(source, test, progress=False), "train": render_all(source, idx["train"], progress=False),
            "recipe": protocol_recipe(profile, "openeds", seed=seed)}


def redirection_eyes(source: SyntheticEyes, test_indices) -> list[int]:
    """The first image of each (person, side) among ``test_indices``: the protocol's source eyes."""
    eyes, seen = [], set()
    for i in test_indices:
        key = (source.person_of(i), source.side_of(i))
        if key not in seen:
            seen.add(key)
            eyes.append(int(i))
    return eyes


def _redirection_parts(profile: Profile, seed: int, size):
    source = rgb_source(profile, seed=seed, size=size)
    split = person_split(profile, seed=seed)
    test = split_indices(source, split)["test"]
    if profile.data == "columbia":  # He et al.'s test eyes: frontal photos of one eye at all 21 grid gazes

        groups = grid_groups(source, test)[: profile.redirection_eyes or None]
        if not groups:
            raise ValueError("no test subject has one eye photographed at all 21 grid gazes with a frontal head pose: "
                             "He et al.'s protocol needs them")
        return source, split, groups
    eyes = redirection_eyes(source, test)
    return source, split, eyes[: profile.redirection_eyes or len(eyes)]


def redirection_protocol(profile: Profile, *, seed: int = 0, size: tuple[int, int] | None = None):
    """He et al.'s protocol on the test persons: one eye per (person, side) at all 21 grid
    directions, each redirected to the 20 others. Returns (source, RedirectionSet, eye indices).

    Every method notebook predicts on exactly this set so that ``07_evaluation`` compares alike."""
    source, _, eyes = _redirection_parts(profile, seed, size)
    if profile.data == "columbia":  # eyes: each test eye's 21 photos; the eye is named by its first
        return source, redirection_set_of_groups(source, eyes), [group[0] for group in eyes]
    return source, build_redirection_set(source, eyes), eyes


def protocol_recipe(profile: Profile, task: str, *, seed: int = 0, size: tuple[int, int] | None = None) -> dict:
    """Which data a protocol is (renderer spec and version, person split, the test samples and
    the grid), computed without rendering anything."""
    if task == "openeds":
        source, split, _, test = _openeds_parts(profile, seed)
        return data_recipe(source, split=split, indices=test, protocol="openeds", order="as given")
    if task == "redirection":
        source, split, eyes = _redirection_parts(profile, seed, size)
        if profile.data == "columbia":
            eyes = [i for group in eyes for i in group]
        return data_recipe(source, split=split, indices=eyes, protocol="redirection",
                           grid={"pitch_deg": list(GRID_PITCH_DEG), "yaw_deg": list(GRID_YAW_DEG)},
                           pairs="every grid direction to the 20 others, per eye")
    raise ValueError(f"unknown protocol {task!r}: choose 'openeds' or 'redirection'")


def protocol_fingerprint(profile: Profile, task: str, *, seed: int = 0) -> str:
    return fingerprint(protocol_recipe(profile, task, seed=seed))


# -- training data shared by several notebooks -------------------------------------------------------
DEEPWARP_CROP = (41, 51)  # (rows, cols): DeepWarp's eye crops, W × H = 51 × 41
SHIFTED_PAIRS = {"border": 3, "misalign_px": 2}  # §4.5: targets 3 px larger each side, misaligned by up to ±2 px


def _training_pairs_arguments(profile: Profile, seed: int, size=None):
    source = rgb_source(profile, seed=seed, size=size)
    train = split_indices(source, person_split(profile, seed=seed))["train"]
    return source, train, {"pairs_per_image": profile.pairs_per_image, "seed": seed}


def redirection_training_pairs(profile: Profile, *, seed: int = 0, progress: bool = True) -> dict:
    """Pairs (same eye, two gazes) of the training persons at the protocol's patch size: what the
    64×64 DeepWarp, the gaze GAN and its ablations all train on, so their comparison is alike.
    Each training image gives 1 pair at ``smoke`` and 3 otherwise (targets drawn uniformly in the
    source range). The result's ``recipe`` describes it (for the models' provenance). On Columbia
    Gaze: He et al.'s pairs, every ordered pair of one training eye's frontal photos
    (:class:`~eyegen_lib.science.data.pairs.GroupPairRows`, with the template eye's landmarks for DeepWarp)."""
    return deepwarp_training_pairs(profile, "protocol", seed=seed, progress=progress)


def redirection_training_pairs_recipe(profile: Profile, *, seed: int = 0) -> dict:
    """The ``recipe`` of :func:`redirection_training_pairs`, without rendering them."""
    return deepwarp_training_pairs_recipe(profile, "protocol", seed=seed)


def _deepwarp_pairs_arguments(profile: Profile, variant: str, seed: int):
    """(source, training indices, pair arguments) of a DeepWarp variant's pairs: on the renderer,
    :func:`render_redirection_pairs`'s; on Columbia Gaze, :class:`~eyegen_lib.science.data.pairs.GroupPairRows`'
    (photos of one eye at two grid gazes, every head pose, opened ``border`` px larger for the
    registration-aware variants; real pairs are as registered as the photos are, nothing is shifted)."""
    if variant == "protocol":  # He et al.'s pairs: on Columbia, every ordered pair of frontal photos
        source, train, arguments = _training_pairs_arguments(profile, seed)
        return (source, train, {}) if profile.data == "columbia" else (source, train, arguments)
    border = SHIFTED_PAIRS["border"] if variant.startswith("ss_shifted_k") else 0
    if profile.data == "columbia":
        size = (DEEPWARP_CROP[0] + 2 * border, DEEPWARP_CROP[1] + 2 * border)
        source, train, _ = _training_pairs_arguments(profile, seed, size=size)
        return source, train, {"poses": POSES, "vertical_only": variant == "cfw_lcm_vertical", "border": border}
    source, train, arguments = _training_pairs_arguments(profile, seed, size=DEEPWARP_CROP)
    if variant == "cfw_lcm_vertical":
        arguments["vertical_only"] = True
    elif border:
        arguments.update(SHIFTED_PAIRS)
    return source, train, arguments


def deepwarp_training_pairs(profile: Profile, variant: str, *, seed: int = 0, progress: bool = True) -> dict:
    """The training pairs of a DeepWarp variant (05_deepwarp): 41×51 crops of the training persons
    — vertical-only pairs for ``cfw_lcm_vertical``, misregistered pairs (:data:`SHIFTED_PAIRS`) for
    ``ss_shifted_k*`` — or, for ``protocol``, :func:`redirection_training_pairs`. Rendered into tensors
    (the dict of :func:`~eyegen_lib.science.data.pairs.render_redirection_pairs`), or, at a profile that
    streams its data, a :class:`~eyegen_lib.science.data.pairs.PairRows` rendering the pairs a batch draws.
    On Columbia Gaze: the training subjects' photos paired within each eye and head pose
    (:class:`~eyegen_lib.science.data.pairs.GroupPairRows`, the template landmarks as anchors)."""
    source, train, arguments = _deepwarp_pairs_arguments(profile, variant, seed)
    if profile.data == "columbia":
        return GroupPairRows(source, train, progress=progress, **arguments)
    if profile.stream_data:  # rendered when a batch draws them
        return PairRows(source, train, **arguments)
    return render_redirection_pairs(source, train, progress=progress, **arguments)


def deepwarp_training_pairs_recipe(profile: Profile, variant: str, *, seed: int = 0) -> dict:
    """The ``recipe`` of :func:`deepwarp_training_pairs`, without rendering them."""
    source, train, arguments = _deepwarp_pairs_arguments(profile, variant, seed)
    if profile.data == "columbia":
        return group_pairs_recipe(source, train, **arguments)
    return redirection_pairs_recipe(source, train, **arguments)


def deepwarp_test_pairs(profile: Profile, variant: str, *, seed: int = 0, progress: bool = True) -> dict:
    """05's held-out pairs for a DeepWarp variant's training pairs (:func:`deepwarp_training_pairs`),
    in memory: one pair per test image — on the renderer the image re-rendered at a target gaze drawn
    from ``seed + 1`` (vertical-only or misregistered as the variant's training pairs are), on
    Columbia Gaze each test photo with another photo of its eye and head pose drawn from ``seed + 1``."""
    source, _, arguments = _deepwarp_pairs_arguments(profile, variant, seed)
    test = split_indices(source, person_split(profile, seed=seed))["test"]
    if profile.data == "columbia":
        return GroupPairRows(source, test, pairs_per_photo=1, seed=seed + 1, progress=progress, **arguments).materialise()
    arguments = {k: v for k, v in arguments.items() if k not in ("pairs_per_image", "seed")}
    return render_redirection_pairs(source, test, seed=seed + 1, progress=progress, **arguments)


def ranking_setup(profile: Profile, model, *, seed: int = 0, progress: bool = True) -> dict:
    """Seg2Eye's data on the synthetic renderer, shared by ``02_ranking`` and ``03_refiner``.

    * **labelled** — the training persons' images WITH masks (the segmenter and the refiner's
      training targets);
    * **unlabelled pool** — every image of the protocol's source (all persons), whose masks are
      NOT used: only pseudo-labels. As in OpenEDS, the pool holds other images of a target's own
      person; a target's own image is never a candidate for it. On OpenEDS it also holds frames of
      the generative set (``profile.openeds_generative_per_person`` a person, by userID), which have
      no masks at all. (``pool["mask"]`` holds the true masks for *measuring* the ranking only, all
      0 where ``pool["labelled"]`` is false: a measured study ranks among the labelled rows, passing
      ``usable=pool["labelled"]`` to :func:`~eyegen_lib.science.ranking.candidates_ok`.)
    * **targets** — the test persons' masks of :func:`openeds_protocol` (in its order), and the
      training persons' masks for the refiner.
    * **modes** — k-means (k = 2) on the pool's images, without eye-side labels; a target takes
      the mode of its capture (its image's cluster, one bit: which camera), since the masks carry
      little side information (:func:`eyegen_lib.science.ranking.mask_modes` measures how little).

    ``model`` is the segmenter (``registry.segmenter``) whose pseudo-labels the pool gets. The pool
    and each target set also have ``rows``: a row store (pool: ``image``, ``pseudo``; targets:
    ``image``, ``mask``) that the refiner trains from. At a profile that streams its data
    (``stream_data``) nothing is held decoded: see :func:`streamed_ranking_setup`."""
    if profile.stream_data:
        return streamed_ranking_setup(profile, model, seed=seed, progress=progress)

    task = openeds_protocol(profile, seed=seed)
    source = task["source"]
    pool = render_all(source, None, progress=progress, unlabelled_ok=True)
    pool["pseudo"] = segment(model, pool["image"], progress=progress)
    pool["mode"] = split_modes(pool["image"], seed=seed)
    pool["rows"] = TensorRows({"image": pool["image"], "pseudo": pool["pseudo"]})
    row = {int(i): r for r, i in enumerate(pool["index"].tolist())}
    out = {"task": task, "pool": pool}
    for name, indices in (("test", task["test_indices"]), ("train", task["train_indices"])):
        rows = torch.tensor([row[int(i)] for i in indices], dtype=torch.int64)
        data = task[name]
        out[name] = {"mask": data["mask"], "image": data["image"], "side": data["side"], "person": data["person"],
                     "index": torch.as_tensor(indices, dtype=torch.int64), "pool_row": rows,
                     "mode": pool["mode"][rows],  # the cluster of the target's own capture
                     "mode_from_mask": mask_modes(data["mask"], pool["pseudo"], pool["mode"]),
                     "rows": TensorRows({"image": data["image"], "mask": data["mask"]})}
    return out


def streamed_ranking_setup(profile: Profile, model, *, seed: int = 0, progress: bool = True, chunk: int = 32) -> dict:
    """:func:`ranking_setup` for a pool too large to hold decoded (``paper``: 30,400 images of
    400 × 640). One pass renders the pool ``chunk`` images at a time and keeps, per image, only its
    pseudo-label and true mask (zlib-compressed, :class:`~eyegen_lib.science.data.rows.MaskStore`), its mode
    features and its ranking features — the coloured pseudo-label area-averaged to
    ``profile.ranking_size``, compared by the same mean squared distance (a low-pass version of the
    full-resolution one). ``pool["image"]`` and the targets' images are re-rendered when a batch
    asks. Targets carry ``features`` (their coloured masks, likewise) and :func:`rank_targets`
    ranks on those."""
    source, split, idx, test = _openeds_parts(profile, seed)
    size = profile.ranking_size
    images = RenderedRows(source, range(len(source)), ("image", "mask"), chunk=chunk, unlabelled_ok=True)
    pseudo, true = MaskStore(profile.nir_size, "pseudo"), MaskStore(profile.nir_size, "mask")
    feats, mode_feats, mask_feats = [], [], []
    for _, got in fetch_in_chunks(images, chunk=chunk, progress=progress, desc="pseudo-labelling the pool"):
        labels = segment(model, got["image"])
        pseudo.extend(labels)
        true.extend(got["mask"])
        feats.append(ranking_features(labels, size=size).half())
        mode_feats.append(mode_features(got["image"]))
        mask_feats.append(mask_mode_features(labels))
    mode = kmeans(torch.cat(mode_feats), 2, seed=seed)[0]
    mask_feats = torch.cat(mask_feats)
    centroids = torch.stack([mask_feats[mode == m].mean(0) for m in (0, 1)])
    labelled = labelled_flags(source, range(len(source)))
    pool = {"image": RenderedRows(source, range(len(source)), ("image",), chunk=chunk), "pseudo": pseudo, "mask": true,
            "labelled": labelled, "mode": mode, "features": torch.cat(feats), "index": torch.arange(len(source)),
            "person": torch.tensor([source.person_of(i) for i in range(len(source))], dtype=torch.int64),
            "side": [source.side_of(i) for i in range(len(source))]}
    pool["rows"] = ZipRows(pool["image"], pseudo)
    out = {"task": {"source": source, "split": split, "test_indices": test, "train_indices": idx["train"],
                    "recipe": protocol_recipe(profile, "openeds", seed=seed)}, "pool": pool}
    for name, indices in (("test", test), ("train", idx["train"])):
        rows = RenderedRows(source, indices, ("image", "mask"), chunk=chunk)
        masks, t_feats, t_mode = MaskStore(profile.nir_size), [], []
        for _, got in fetch_in_chunks(rows, chunk=chunk, progress=progress, desc=f"{name} targets"):
            masks.extend(got["mask"])
            t_feats.append(ranking_features(got["mask"], size=size).half())
            t_mode.append(torch.cdist(mask_mode_features(got["mask"]), centroids).argmin(1))
        index = torch.as_tensor(indices, dtype=torch.int64)
        out[name] = {"mask": masks, "rows": rows, "index": index, "pool_row": index, "mode": mode[index],
                     "mode_from_mask": torch.cat(t_mode), "features": torch.cat(t_feats),
                     "person": pool["person"][index], "side": [pool["side"][i] for i in indices]}
    return out


def rank_targets(setup: dict, targets: dict, n: int, *, chunk: int = 256) -> torch.Tensor:
    """The top-``n`` pool rows for each target of :func:`ranking_setup` (same mode, never the
    target's own image), best first: (T, n). A streamed setup ranks on its ranking features,
    ``chunk`` targets at a time."""
    pool = setup["pool"]
    if "features" not in targets:
        ok = candidates_ok(targets["mode"], pool["mode"], target_index=targets["index"], pool_index=pool["index"])
        return rank_pool(targets["mask"], pool["pseudo"], n, ok=ok)[0]
    if targets["features"].shape[1] != pool["features"].shape[1]:
        raise ValueError("these targets' ranking features were made at another ranking size than the pool's: "
                         "rank targets of the same ranking_setup")
    ranked = []
    for i in range(0, len(targets["index"]), chunk):
        part = slice(i, i + chunk)
        ok = candidates_ok(targets["mode"][part], pool["mode"], target_index=targets["index"][part], pool_index=pool["index"])
        d = feature_distances(targets["features"][part], pool["features"])
        ranked.append(rank_pool(None, None, n, ok=ok, distances=d)[0])
    return torch.cat(ranked)
