"""The suite's shared data and models: one definition of "the synthetic dataset of a profile",
its person split, and the independent gaze estimator, so every notebook evaluates alike."""
from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import load_or_train
from .data.datasets import indices_of_persons, split_persons
from .data.synthetic import SyntheticEyes, SyntheticEyeSpec
from .evaluation import to_signed
from .gaze import angular_error_deg
from .models.gaze_estimator import GazeEstimator, GazeEstimatorConfig, predict_gaze, train_gaze_estimator
from .paths import checkpoint_dir
from .profiles import Profile

__all__ = ["nir_source", "rgb_source", "person_split", "split_indices", "gaze_estimator", "REDIRECTION_GAZE_RANGE_DEG"]

# He et al.'s Columbia grid spans ±10° pitch and ±15° yaw; sources for redirection and the gaze
# estimator cover a little more so that no target direction is an extrapolation.
REDIRECTION_GAZE_RANGE_DEG = (15.0, 20.0)


def nir_source(profile: Profile, *, seed: int = 0, images_per_person: int | None = None) -> SyntheticEyes:
    """OpenEDS-like NIR frames at the profile's working size."""
    return SyntheticEyes(SyntheticEyeSpec("nir", size=profile.nir_size, n_persons=profile.n_persons,
                                          images_per_person=images_per_person or profile.images_per_person, seed=seed))


def rgb_source(profile: Profile, *, seed: int = 0, size: tuple[int, int] | None = None,
               images_per_person: int | None = None) -> SyntheticEyes:
    """Columbia-like RGB patches (64×64 by default; DeepWarp uses 41×51)."""
    return SyntheticEyes(SyntheticEyeSpec("rgb", size=size or profile.patch_size, n_persons=profile.n_persons,
                                          images_per_person=images_per_person or profile.images_per_person, seed=seed,
                                          gaze_range_deg=REDIRECTION_GAZE_RANGE_DEG))


def person_split(profile: Profile, *, seed: int = 0) -> dict[str, list[int]]:
    """train / val / test persons (no person in two splits); the same for every notebook."""
    return split_persons(range(profile.n_persons), seed=seed)


def split_indices(source: SyntheticEyes, split: dict[str, list[int]]) -> dict[str, list[int]]:
    return {name: indices_of_persons(source, persons) for name, persons in split.items()}


def gaze_estimator(profile: Profile, *, size: tuple[int, int] | None = None, seed: int = 0, progress: bool = True,
                   retrain: bool = False) -> tuple[GazeEstimator, dict]:
    """The independent gaze estimator for RGB eye images of ``size``: loaded from its checkpoint
    if present, else trained on the training persons (never the test persons) and saved.

    Returns the model and its metadata, whose ``metrics`` hold the test error on held-out persons
    (the floor of the gaze-error metric) and the error of always predicting the training mean gaze.
    """
    size = tuple(size or profile.patch_size)
    config = GazeEstimatorConfig.for_profile(profile)
    model = GazeEstimator(config)
    per_person = max(profile.images_per_person, 4 * profile.images_per_person if profile.name != "paper" else 200)
    source = rgb_source(profile, seed=seed, size=size, images_per_person=per_person)
    idx = split_indices(source, person_split(profile, seed=seed))
    path = Path(checkpoint_dir(profile.name)) / f"gaze_estimator_{size[0]}x{size[1]}.pt"

    def train():
        from .data.datasets import render_all

        tr = render_all(source, idx["train"], progress=progress)
        te = render_all(source, idx["test"], progress=progress)
        trained, history = train_gaze_estimator(to_signed(tr["image"]), tr["gaze"], config, seed=seed, progress=progress)
        model.load_state_dict(trained.state_dict())
        pred = predict_gaze(model, to_signed(te["image"]))
        mean_pred = tr["gaze"].mean(0, keepdim=True).expand_as(te["gaze"])
        return {"step": config.steps,
                "test_error_deg": float(angular_error_deg(pred.double(), te["gaze"].double()).mean()),
                "mean_predictor_error_deg": float(angular_error_deg(mean_pred.double(), te["gaze"].double()).mean()),
                "train_images": len(tr["image"]), "test_images": len(te["image"]),
                "final_loss": history[-1]["loss"]}

    info = load_or_train(path, kind="gaze_estimator", model=model, config=config, train=train, retrain=retrain)
    return model.eval(), info


def redirection_protocol(profile: Profile, *, seed: int = 0, size: tuple[int, int] | None = None):
    """He et al.'s protocol on the test persons: one eye per (person, side) at all 21 grid
    directions, each redirected to the 20 others. Returns (source, RedirectionSet, eye indices).

    Every method notebook predicts on exactly this set so that ``07_evaluation`` compares alike."""
    from .evaluation import build_redirection_set

    source = rgb_source(profile, seed=seed, size=size)
    test = split_indices(source, person_split(profile, seed=seed))["test"]
    eyes, seen = [], set()
    for i in test:  # the first image of each (person, side)
        key = (source.person_of(i), source.side_of(i))
        if key not in seen:
            seen.add(key)
            eyes.append(i)
    limit = {"smoke": 2, "cpu": 12}.get(profile.name, len(eyes))
    eyes = eyes[:limit]
    return source, build_redirection_set(source, eyes), eyes


def nearest_same_person_baseline(source: SyntheticEyes, rset, eyes: list[int]) -> torch.Tensor:
    """A real image of the same person and eye at exactly the target gaze, but from another
    capture (another index: other pupil size, lid opening, camera jitter) — what a dataset
    lookup could give at best."""
    out = torch.empty_like(rset.target)
    for k, eye in enumerate(eyes):
        person, side = source.person_of(eye), source.side_of(eye)
        alt = next(i for i in range(len(source)) if i != eye and source.person_of(i) == person and source.side_of(i) == side)
        rows = (rset.group == k).nonzero().flatten()
        out[rows] = source.render([alt] * len(rows), gaze=rset.target_gaze[rows])["image"]
    return out


def openeds_protocol(profile: Profile, *, seed: int = 0) -> dict:
    """The OpenEDS generation task on synthetic NIR data: target masks (and their true images)
    from test persons, and the labelled training pool a method may draw references from."""
    from .data.datasets import render_all

    source = nir_source(profile, seed=seed)
    idx = split_indices(source, person_split(profile, seed=seed))
    test = idx["test"][: profile.eval_images]
    return {"source": source, "test_indices": test, "train_indices": idx["train"],
            "test": render_all(source, test, progress=False), "train": render_all(source, idx["train"], progress=False)}


# -- Seg2Eye §4.1–4.2: the segmenter, the unlabelled pool and its ranking -------------------------
def _segmenter_path(profile: Profile) -> Path:
    return Path(checkpoint_dir(profile.name)) / "deeplab_segmenter.pt"


def segmenter(profile: Profile, *, seed: int = 0, progress: bool = True, retrain: bool = False):
    """The DeepLab v3+ segmenter of Seg2Eye §4.1 for OpenEDS-like NIR images: loaded from its
    checkpoint if present, else trained on the labelled split (the training persons' images and
    masks) and saved. Returns the model and its metadata, whose ``metrics`` hold the mIoU and
    per-class IoU on the held-out test persons."""
    from .data.datasets import render_all
    from .metrics import iou_per_class
    from .models.deeplab import DeepLabV3Plus, SegmenterConfig, segment, train_segmenter

    config = SegmenterConfig.for_profile(profile)
    model = DeepLabV3Plus(config.net)
    source = nir_source(profile, seed=seed)
    idx = split_indices(source, person_split(profile, seed=seed))

    def train():
        tr = render_all(source, idx["train"], progress=progress)
        te = render_all(source, idx["test"], progress=progress)
        trained, history = train_segmenter(tr["image"], tr["mask"], config, seed=seed, progress=progress)
        model.load_state_dict(trained.state_dict())
        iou = iou_per_class(segment(model, te["image"]), te["mask"])
        return {"step": config.steps, "miou": float(torch.nanmean(iou)),
                **{f"iou_{name}": float(v) for name, v in zip(("skin", "sclera", "iris", "pupil"), iou)},
                "train_images": len(tr["image"]), "test_images": len(te["image"]), "final_loss": history[-1]["loss"]}

    info = load_or_train(_segmenter_path(profile), kind="deeplab_segmenter", model=model, config=config,
                         train=train, retrain=retrain)
    return model.eval(), info


def trained_segmenter(profile: Profile):
    """The trained segmenter as a function ``images (B, 1, H, W) in [-1, 1] (any size) → masks
    (B, H, W)``, or None when ``02_ranking`` has not saved its checkpoint yet (content preservation
    in ``07_evaluation``)."""
    from .checkpoint import load_checkpoint
    from .models.deeplab import DeepLabV3Plus, SegmenterConfig, segment

    path = _segmenter_path(profile)
    if not path.is_file():
        return None
    config = SegmenterConfig.for_profile(profile)
    model = DeepLabV3Plus(config.net)
    load_checkpoint(path, kind="deeplab_segmenter", model=model, config=config)
    model.eval()
    return lambda images: segment(model, images)


def ranking_setup(profile: Profile, model=None, *, seed: int = 0, progress: bool = True) -> dict:
    """Seg2Eye's data on the synthetic renderer, shared by ``02_ranking`` and ``03_refiner``.

    * **labelled** — the training persons' images WITH masks (the segmenter and the refiner's
      training targets);
    * **unlabelled pool** — every image of the protocol's source (all persons), whose masks are
      NOT used: only pseudo-labels. As in OpenEDS, the pool holds other images of a target's own
      person; a target's own image is never a candidate for it. (``pool["mask"]`` holds the true
      masks for *measuring* the ranking only.)
    * **targets** — the test persons' masks of :func:`openeds_protocol` (in its order), and the
      training persons' masks for the refiner.
    * **modes** — k-means (k = 2) on the pool's images, without eye-side labels; a target takes
      the mode of its capture (its image's cluster, one bit: which camera), since the masks carry
      little side information (:func:`eyegen_lib.ranking.mask_modes` measures how little).

    ``model`` is a segmenter (default: :func:`segmenter`)."""
    from .data.datasets import render_all
    from .models.deeplab import segment
    from .ranking import mask_modes, split_modes

    if model is None:
        model, _ = segmenter(profile, seed=seed, progress=progress)
    task = openeds_protocol(profile, seed=seed)
    source = task["source"]
    pool = render_all(source, None, progress=progress)
    pool["pseudo"] = segment(model, pool["image"], progress=progress)
    pool["mode"] = split_modes(pool["image"], seed=seed)
    row = {int(i): r for r, i in enumerate(pool["index"].tolist())}
    out = {"task": task, "pool": pool}
    for name, indices in (("test", task["test_indices"]), ("train", task["train_indices"])):
        rows = torch.tensor([row[int(i)] for i in indices], dtype=torch.int64)
        data = task[name]
        out[name] = {"mask": data["mask"], "image": data["image"], "side": data["side"], "person": data["person"],
                     "index": torch.as_tensor(indices, dtype=torch.int64), "pool_row": rows,
                     "mode": pool["mode"][rows],  # the cluster of the target's own capture
                     "mode_from_mask": mask_modes(data["mask"], pool["pseudo"], pool["mode"])}
    return out


__all__ += ["segmenter", "trained_segmenter", "ranking_setup"]


# -- Redirection (DeepWarp at 64×64, He et al.'s GAN, augmentation) ---------------------------------
def redirection_training_pairs(profile: Profile, *, seed: int = 0, progress: bool = True) -> dict:
    """Pairs (same eye, two gazes) of the training persons at the protocol's patch size: what the
    64×64 DeepWarp, the gaze GAN and its ablations all train on, so their comparison is alike.
    Each training image gives 1 pair at ``smoke`` and 3 otherwise (targets drawn uniformly in the
    source range)."""
    from .models.deepwarp import render_redirection_pairs

    source = rgb_source(profile, seed=seed)
    train = split_indices(source, person_split(profile, seed=seed))["train"]
    return render_redirection_pairs(source, train, pairs_per_image=1 if profile.name == "smoke" else 3, seed=seed,
                                    progress=progress)


def gaze_gan(profile: Profile, ablation: str = "full", *, seed: int = 0, pairs: dict | None = None,
             retrain: bool = False, progress: bool = True, on_log=None):
    """He et al.'s GAN (or one of its ablations, :data:`~eyegen_lib.models.gaze_gan.ABLATIONS`) for
    this profile: loaded from ``gaze_gan_<ablation>.pt`` if present, else trained on
    :func:`redirection_training_pairs` (pass ``pairs`` to skip re-rendering them) and saved.
    Returns (model, checkpoint info) — shared by ``06_gaze_gan`` and ``08_augmentation``.

    Where the ablations are shorter than the full model (the small profiles), training the full
    model also saves its snapshot at the ablations' length, :func:`gaze_gan_reference`."""
    from .models.gaze_gan import GazeGANConfig

    full = GazeGANConfig.for_profile(profile)
    config = full if ablation == "full" else full.for_ablation(ablation)
    path = Path(checkpoint_dir(profile.name)) / f"gaze_gan_{ablation}.pt"
    snapshot = _gaze_gan_reference_path(profile, full) if ablation == "full" else None
    return _load_or_train_gaze_gan(profile, path, config, seed=seed, pairs=pairs, retrain=retrain, progress=progress,
                                   on_log=on_log, snapshot_path=snapshot)


def _load_or_train_gaze_gan(profile: Profile, path: Path, config, *, seed: int, pairs: dict | None, retrain: bool,
                            progress: bool, on_log=None, snapshot_path: Path | None = None):
    """Load ``path``, or train ``config`` on the profile's pairs (rendered only when training needs them)."""
    from .models.gaze_gan import load_or_train_gaze_gan

    if pairs is None and (retrain or not path.exists()):
        pairs = redirection_training_pairs(profile, seed=seed, progress=progress)
    return load_or_train_gaze_gan(path, pairs, config, seed=seed, retrain=retrain, progress=progress, on_log=on_log,
                                  snapshot_path=snapshot_path)


def _gaze_gan_reference_path(profile: Profile, full) -> Path | None:
    reference = full.for_ablation("full")
    if reference == full:
        return None
    return Path(checkpoint_dir(profile.name)) / f"gaze_gan_full_at_{reference.steps}.pt"


def gaze_gan_reference(profile: Profile, *, seed: int = 0, pairs: dict | None = None, retrain: bool = False,
                       progress: bool = True):
    """What the ablations are compared with: the full model as long as they are. Where they are
    shorter than the full model this is its snapshot at their length (saved while it trained;
    trained on its own — the identical run — if the snapshot is missing), else the full model."""
    from .models.gaze_gan import GazeGANConfig

    full = GazeGANConfig.for_profile(profile)
    path = _gaze_gan_reference_path(profile, full)
    if path is None:
        return gaze_gan(profile, "full", seed=seed, pairs=pairs, retrain=retrain, progress=progress)
    return _load_or_train_gaze_gan(profile, path, full.for_ablation("full"), seed=seed, pairs=pairs, retrain=retrain,
                                   progress=progress)


__all__ += ["redirection_protocol", "redirection_training_pairs", "gaze_gan", "gaze_gan_reference"]
