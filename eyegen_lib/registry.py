"""The registry of artifacts: every model and saved prediction the notebooks exchange, by name.

Notebooks and the library ask for an artifact here — ``registry.segmenter(profile, seed=SEED)``,
``registry.gaze_gan(profile, "no_cycle", seed=SEED)``, ``registry.load_predictions("openeds",
profile, seed=SEED)`` — and never build a file name. Each request:

1. names the file: ``<outputs>/checkpoints/<profile>/seed<seed>/<name>[_<variant>].pt`` (predictions:
   ``<outputs>/predictions/<profile>/seed<seed>/<task>/<method>.pt``), so runs with another seed or
   profile never share files;
2. states the provenance the run needs (profile, seed, model config, data recipe; see
   :mod:`eyegen_lib.provenance`) and loads the file only when it matches — otherwise it is set aside
   and retrained, or, with ``train=False``, refused with what differs and which notebook makes it;
3. tells the notebook's :class:`~eyegen_lib.record.Recorder` which artifact it used (file, sha256,
   seed, data fingerprint, from the zoo / trained here / loaded, steps, training time), so the
   record and the report show it.

A request with ``pretrained=True`` (a notebook passes its ``PRETRAINED``) first takes the model
zoo's entry that serves the run (``zoo/MANIFEST.json``: the same model, profile, seed, config and
data, trained longer; see :mod:`eyegen_lib.zoo`) for the model and for the models it needs, and goes
on as above when none does. ``pretrained="upstream"`` takes only the models it needs from the zoo and
loads or trains the model itself here (``eyegen train --pretrained``: how the zoo's own entries are
made on its upstream models). The default, ``False``, never reads the zoo.

:data:`ARTIFACTS` declares them all (name, kind, producing notebook, variants, builder).
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .augmentation import TARGETS_PER_IMAGE, pitch_split_sets, split_description, training_set_recipe, training_sets
from .data.rows import fetch_in_chunks, gaze_labels, rows_of
from .engine import Checkpointing, Snapshot, TrainingJob, obtain, with_steps
from .files import atomic_writer
from .gaze import angular_error_deg
from .images import to_signed
from .models.deeplab import DeepLabV3Plus, SegmenterConfig, segmentation_scores, segmenter_run
from .models.deepwarp import VARIANTS as DEEPWARP_ARCHITECTURES, DeepWarp, DeepWarpConfig, deepwarp_run
from .models.gaze_estimator import GazeEstimator, GazeEstimatorConfig, gaze_estimator_run, predict_gaze
from .models.gaze_gan import ABLATIONS as GAZE_GAN_ABLATIONS, GazeGAN, GazeGANConfig, gaze_gan_run
from .models.refiner import Refiner, RefinerConfig, refiner_run
from .models.seg2eye import Seg2Eye, Seg2EyeConfig, seg2eye_run
from .paths import output_dir
from .profiles import Profile
from .protocols import (deepwarp_training_pairs, deepwarp_training_pairs_recipe, gaze_estimator_source,
                        gaze_estimator_split, labelled_flags, nir_source, person_side_groups, person_split,
                        protocol_recipe, rank_targets, ranking_setup, redirection_training_pairs,
                        redirection_training_pairs_recipe, split_indices)
from .provenance import data_recipe, identity, make_provenance, provenance_differences
from .record import Recorder
from .report import artifact_origin
from .zoo import load_entry, snapshot_entries

__all__ = ["Artifact", "ARTIFACTS", "artifact_path", "prediction_path", "get", "segmenter", "refiner", "seg2eye",
           "seg2eye_config", "deepwarp", "deepwarp_config", "protocol_deepwarp", "gaze_gan", "gaze_gan_config", "gaze_estimator", "augmentation_estimator",
           "save_predictions", "load_predictions", "PREDICTION_TASKS", "SEG2EYE_VARIANTS", "GAZE_GAN_VARIANTS",
           "DEEPWARP_VARIANTS", "UPSTREAM", "length_snapshots", "origin"]


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: str  # the checkpoint kind ("predictions" for saved outputs)
    producer: str  # the notebook that makes it
    description: str
    variants: tuple[str, ...] = ()  # the declared variants ("" = none; others may be free-form, e.g. panel settings)
    build: Callable | None = None  # the function below that loads or makes it

    def how_to_make(self, profile: Profile, seed: int, variant: str = "") -> str:
        what = f"{self.name}" + (f" ({variant})" if variant else "")
        flag = f" --variant {variant}" if variant else ""
        return (f"{what} is made by {self.producer}: run it with PROFILE={profile.name!r}, SEED={seed} "
                f"(eyegen run --profile {profile.name} --seed {seed} --only {self.producer[:2]}), or train it alone "
                f"(eyegen train {self.name} --profile {profile.name} --seed {seed}{flag}), or let this call train it")


SEG2EYE_VARIANTS = ("full", "reference", "gaugan", "no_style_consistency", "mean_aggregation")
DEEPWARP_VARIANTS = ("ss", "ms", "cfw", "cfw_lcm", "cfw_lcm_palette", "cfw_lcm_vertical", "ss_shifted_k0",
                     "ss_shifted_k3", "protocol")
GAZE_GAN_VARIANTS = (*GAZE_GAN_ABLATIONS, "reference")  # each ablation, and the full recipe's snapshot at their length
PREDICTION_TASKS = {"openeds": ("refiner", "seg2eye"), "redirection": ("deepwarp", "gaze_gan")}

ARTIFACTS: dict[str, Artifact] = {a.name: a for a in (
    Artifact("segmenter", "deeplab_segmenter", "02_ranking", "DeepLab v3+ segmenter of OpenEDS-like NIR eyes (Seg2Eye §4.1)"),
    Artifact("refiner", "refiner", "03_refiner", "the residual refiner of the top-1 reference (Seg2Eye §4.2)"),
    Artifact("seg2eye", "seg2eye", "04_seg2eye", "SPADE + style generator, its ablation-length snapshot and ablations",
             SEG2EYE_VARIANTS),
    Artifact("deepwarp", "deepwarp", "05_deepwarp", "DeepWarp variants at 41×51, and CFW+LCM at the protocol's patch size",
             DEEPWARP_VARIANTS),
    Artifact("gaze_gan", "gaze_gan", "06_gaze_gan", "He et al.'s gaze-redirection GAN, its ablations and their reference",
             GAZE_GAN_VARIANTS),
    Artifact("gaze_estimator", "gaze_estimator", "07_evaluation", "the independent gaze estimator of the redirection metrics"),
    Artifact("augmentation_estimator", "gaze_estimator", "08_augmentation",
             "gaze estimators trained on raw, GAN-augmented and oracle sets (He et al. §5.6)", ("raw", "augmented", "oracle")),
    Artifact("predictions", "predictions", "03_refiner, 04_seg2eye, 05_deepwarp, 06_gaze_gan",
             "method outputs on the shared protocols, read by 07_evaluation",
             tuple(f"{t}/{m}" for t, ms in PREDICTION_TASKS.items() for m in ms)),
)}


def _declare(name: str):
    def attach(fn):
        ARTIFACTS[name] = replace(ARTIFACTS[name], build=fn)
        return fn
    return attach


def _check_variant(name: str, variant: str, *, free_form_prefix: str | None = None) -> None:
    spec = ARTIFACTS[name]
    if variant in spec.variants or (free_form_prefix and variant.startswith(free_form_prefix)):
        return
    raise ValueError(f"{name} has no variant {variant!r}: choose one of {list(spec.variants)}"
                     + (f" or a name starting with {free_form_prefix!r}" if free_form_prefix else ""))


def _seed_dir(kind: str, profile: Profile, seed: int) -> Path:
    return output_dir() / kind / profile.run_name / f"seed{int(seed)}"  # each data source's artifacts apart


def artifact_path(name: str, profile: Profile, *, seed: int = 0, variant: str = "") -> Path:
    """Where a registry artifact lives (the only place file names are made)."""
    if name not in ARTIFACTS or name == "predictions":
        raise ValueError(f"unknown artifact {name!r}: choose one of {sorted(set(ARTIFACTS) - {'predictions'})}")
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in variant)
    return _seed_dir("checkpoints", profile, seed) / (f"{name}_{safe}.pt" if variant else f"{name}.pt")


def get(name: str, profile: Profile, *, seed: int = 0, **kwargs):
    """Any artifact by name: ``get("gaze_gan", profile, seed=0, ablation="no_cycle")``."""
    if name not in ARTIFACTS:
        raise ValueError(f"unknown artifact {name!r}: choose one of {sorted(ARTIFACTS)}")
    return ARTIFACTS[name].build(profile, seed=seed, **kwargs)


UPSTREAM = "upstream"  # pretrained=UPSTREAM: the models a request needs from the zoo, the model itself made here


def _check_pretrained(pretrained) -> None:
    if pretrained not in (False, True, UPSTREAM):
        raise ValueError(f"pretrained={pretrained!r}: give True (the zoo's entries where they serve the run), False "
                         f"(every model loaded or trained here) or {UPSTREAM!r} (the models it needs from the zoo, "
                         "this one made here)")


def _upstream(pretrained) -> bool:
    """What a request asks of the models it needs: the zoo's wherever it asks for any."""
    _check_pretrained(pretrained)
    return bool(pretrained)


def origin(info: dict) -> str:
    """Where a model a request returned came from, in words: "zoo, 10000 steps", "trained here (212 s),
    1000 steps", "loaded, 1000 steps" (the report says it alike)."""
    return artifact_origin(info)


def _record(name: str, variant: str, info: dict) -> None:
    rec = Recorder.current()
    if rec is None:
        return
    prov = info.get("provenance") or {}
    rec.artifact(name + (f"/{variant}" if variant else ""), file=info["path"], sha256=info["sha256"],
                 seed=prov.get("seed"), profile=prov.get("profile"),
                 fingerprint=(prov.get("data") or {}).get("fingerprint"), trained_now=bool(info["trained_now"]),
                 train_seconds=info.get("train_seconds"), step=info.get("step"), resumed_from=info.get("resumed_from"),
                 source=info.get("source"))


ONE_CYCLE = "a one-cycle learning rate over all steps"


def _job(name: str, variant: str, profile: Profile, seed: int, config, recipe: dict, *, make_model, make_run,
         snapshots=(), fixed_schedule: str | None = None) -> TrainingJob:
    """The training job of one artifact: its file, provenance and how to build or train it."""
    return TrainingJob(name=name + (f"/{variant}" if variant else ""), kind=ARTIFACTS[name].kind, config=config,
                       path=artifact_path(name, profile, seed=seed, variant=variant),
                       provenance=make_provenance(profile=profile, seed=seed, config=config, data=recipe), seed=seed,
                       make_model=make_model, make_run=make_run, snapshots=tuple(snapshots),
                       fixed_schedule=fixed_schedule, how_to_make=ARTIFACTS[name].how_to_make(profile, seed, variant),
                       data_workers=profile.num_workers if profile.stream_data else 0)


def _obtain(job: TrainingJob, name: str, variant: str, *, pretrained, retrain: bool, train: bool, progress: bool,
            on_log=None, checkpointing: Checkpointing | None = None):
    """Load or train (resuming) through :func:`eyegen_lib.engine.obtain`, and note it in the record."""
    _check_pretrained(pretrained)
    model, info = obtain(job, retrain=retrain, allow_training=train, progress=progress, on_log=on_log,
                         checkpointing=checkpointing,
                         # the zoo is trained on the renderer: it never serves a run on a real dataset
                         pretrained=pretrained != UPSTREAM and bool(pretrained) and "+" not in job.provenance["profile"])
    _record(name, variant, info)
    return model, info


def length_snapshots(name: str, profile: Profile, variant: str = "", *, seed: int = 0, config=None) -> list[tuple[int, object, dict]]:
    """The zoo's snapshots of the long run of ``name`` (``variant``) at shorter lengths — [(step, model
    in eval mode, info)] by step — for claims against training length; empty when the zoo has none
    for this run (another profile, seed or data)."""

    builders = {"seg2eye": lambda: seg2eye_config(profile, variant or "full"),
                "gaze_gan": lambda: gaze_gan_config(profile, variant or "full"),
                "deepwarp": lambda: deepwarp_config(profile, variant)}
    if name not in builders:
        raise ValueError(f"the zoo keeps length snapshots of {sorted(builders)}, not {name!r}")
    config = config or builders[name]()
    recipes = {"seg2eye": lambda: _seg2eye_recipe(profile, seed), "gaze_gan": lambda: redirection_training_pairs_recipe(profile, seed=seed),
               "deepwarp": lambda: _deepwarp_recipe(profile, variant, seed)}
    prov = make_provenance(profile=profile, seed=seed, config=config, data=recipes[name]())
    kind = ARTIFACTS[name].kind
    out = []
    for entry in snapshot_entries(kind, name + (f"/{variant}" if variant else ""), prov):
        model = _model_of(name, config)
        ckpt = load_entry(entry, kind=kind, model=model, provenance=prov)
        out.append((int(entry["steps"]), model.eval(), {"step": int(entry["steps"]), "path": ckpt["path"],
                                                         "sha256": ckpt["file_sha256"], "source": "zoo",
                                                         "metrics": dict(ckpt.get("metrics") or {})}))
    return out


def _model_of(name: str, config):
    """An empty model of ``config`` (a length snapshot's architecture is its run's)."""
    if name == "seg2eye":
        return Seg2Eye(config)
    if name == "gaze_gan":
        return GazeGAN(config)
    return DeepWarp(config)


# -- Seg2Eye §4.1–4.2 ----------------------------------------------------------------------------------
@_declare("segmenter")
def segmenter(profile: Profile, *, seed: int = 0, pretrained: bool | str = False, steps: int | None = None,
              retrain: bool = False, train: bool = True, progress: bool = True, checkpointing: Checkpointing | None = None):
    """The DeepLab v3+ segmenter for OpenEDS-like NIR images, trained on the training persons'
    images and masks (camera-randomised: ``SegmenterConfig.camera_randomisation``). Returns (model in
    eval mode, info); ``info["metrics"]`` hold the mIoU and per-class IoU on the held-out test
    persons, and the mIoU under each test-time camera perturbation (``miou_dark_exposure`` …)."""

    config = with_steps(SegmenterConfig.for_profile(profile), steps)
    source = nir_source(profile, seed=seed)
    split = person_split(profile, seed=seed)
    idx = split_indices(source, split, labelled=True)

    def rows(name):  # in memory at the small profiles, rendered batch by batch at the large ones
        return rows_of(source, idx[name], ("image", "mask"), in_memory=not profile.stream_data, progress=progress)

    def evaluate(model):   # on the test persons: clean, and under each test-time camera perturbation
        return {**segmentation_scores(model, rows("test"), progress=progress),
                "train_images": len(idx["train"]), "test_images": len(idx["test"])}

    def make_run(dist):
        return segmenter_run(rows("train"), config, seed=seed, dist=dist, evaluate=evaluate)

    recipe = data_recipe(source, split=split, trained_on="train persons' images and masks")
    job = _job("segmenter", "", profile, seed, config, recipe, make_model=lambda: DeepLabV3Plus(config.net),
               make_run=make_run, fixed_schedule=ONE_CYCLE)
    return _obtain(job, "segmenter", "", pretrained=pretrained, retrain=retrain, train=train, progress=progress,
                   checkpointing=checkpointing)


@_declare("refiner")
def refiner(profile: Profile, *, seed: int = 0, pretrained: bool | str = False, setup: dict | None = None,
            steps: int | None = None, retrain: bool = False, train: bool = True, progress: bool = True, checkpointing: Checkpointing | None = None):
    """The refiner of Seg2Eye §4.2, trained on the training targets with references from
    ``setup`` (:func:`~eyegen_lib.protocols.ranking_setup`; built from :func:`segmenter` if not
    given). Its data fingerprint cites the segmenter whose pseudo-labels it learned from. Returns
    (model in eval mode, info with the loss history ``history["challenge_loss"]``)."""

    config = with_steps(RefinerConfig.for_profile(profile), steps)
    seg, seg_info = segmenter(profile, seed=seed, pretrained=_upstream(pretrained), progress=progress, train=train)

    def make_run(dist):
        s = setup if setup is not None else ranking_setup(profile, seg, seed=seed, progress=progress)
        ranked = rank_targets(s, s["train"], config.top_n)
        return refiner_run(s["train"]["rows"], ranked, s["pool"]["rows"], config, seed=seed, dist=dist)

    recipe = data_recipe(nir_source(profile, seed=seed), split=person_split(profile, seed=seed),
                         upstream={"segmenter": identity(seg_info["provenance"])},
                         trained_on="train persons' masks and images; references: top-N of the pseudo-labelled pool")
    job = _job("refiner", "", profile, seed, config, recipe, make_model=lambda: Refiner(config), make_run=make_run,
               fixed_schedule=ONE_CYCLE)
    return _obtain(job, "refiner", "", pretrained=pretrained, retrain=retrain, train=train, progress=progress,
                   checkpointing=checkpointing)


# -- Seg2Eye §4.3 --------------------------------------------------------------------------------------
def seg2eye_config(profile: Profile, variant: str = "full"):
    """Seg2Eye's config for a declared variant: the full run, or one of the ablations (each as
    long as ``ablation_steps``, like ``reference``, the full recipe's snapshot at that length)."""

    _check_variant("seg2eye", variant)
    config = Seg2EyeConfig.for_profile(profile)
    if variant == "full":
        return config
    short = replace(config, steps=config.ablation_steps)
    return {"reference": short, "gaugan": replace(short, use_style=False),
            "no_style_consistency": replace(short, lambda_style=0.0, lambda_gram=0.0),
            "mean_aggregation": replace(short, aggregation="mean")}[variant]


def _seg2eye_recipe(profile: Profile, seed: int) -> dict:

    return data_recipe(nir_source(profile, seed=seed), split=person_split(profile, seed=seed),
                       trained_on="train persons; K style images of the same person and side")


def _deepwarp_recipe(profile: Profile, variant: str, seed: int) -> dict:

    return deepwarp_training_pairs_recipe(profile, variant, seed=seed)


@_declare("seg2eye")
def seg2eye(profile: Profile, variant: str = "full", *, seed: int = 0, pretrained: bool | str = False, config=None,
            steps: int | None = None, retrain: bool = False, train: bool = True, on_log=None, progress: bool = True,
            checkpointing: Checkpointing | None = None):
    """Seg2Eye (``full``), the full recipe's snapshot at the ablations' length (``reference``;
    saved while ``full`` trains), an ablation, or a free-form ``panel_*`` setting with its own
    ``config``; trained on the OpenEDS protocol's training persons. Returns (model, info)."""

    _check_variant("seg2eye", variant, free_form_prefix="panel_")
    if config is None:
        if variant.startswith("panel_"):
            raise ValueError("a panel_* Seg2Eye variant needs its config")
        config = seg2eye_config(profile, variant)
    config = with_steps(config, steps)
    source, split = nir_source(profile, seed=seed), person_split(profile, seed=seed)
    train_idx = split_indices(source, split)["train"]  # the OpenEDS protocol's training persons (generative frames too)
    targets = labelled_flags(source, train_idx)
    recipe = _seg2eye_recipe(profile, seed)
    snapshots = ()
    if variant == "full" and config.ablation_steps < config.steps:
        short = replace(config, steps=config.ablation_steps)
        snapshots = (Snapshot(config.ablation_steps, artifact_path("seg2eye", profile, seed=seed, variant="reference"), short),)

    def make_run(dist):  # a frame without a mask (OpenEDS's generative set) serves as a style image, never a target
        rows = rows_of(source, train_idx, ("image", "mask"), in_memory=not profile.stream_data, progress=progress,
                       unlabelled_ok=True)
        return seg2eye_run(rows, person_side_groups(source, train_idx), config, seed=seed, dist=dist,
                           targets=None if bool(targets.all()) else targets)

    job = _job("seg2eye", variant, profile, seed, config, recipe, make_model=lambda: Seg2Eye(config), snapshots=snapshots,
               make_run=make_run)
    return _obtain(job, "seg2eye", variant, pretrained=pretrained, retrain=retrain, train=train, progress=progress, on_log=on_log,
                   checkpointing=checkpointing)


# -- DeepWarp --------------------------------------------------------------------------------------------
def _pairs_recipe(pairs) -> dict | None:
    """The recipe of training pairs: rendered (a dict) or streamed (``PairRows``)."""
    return pairs.get("recipe") if isinstance(pairs, dict) else getattr(pairs, "recipe", None)


def deepwarp_config(profile: Profile, variant: str):
    """A DeepWarp variant's config: the five architectures of 05, ``cfw_lcm_vertical`` (pitch only),
    ``ss_shifted_k<K>`` (SS with the registration-aware loss of window K on misregistered pairs)
    and ``protocol`` (CFW+LCM at the redirection protocol's patch size)."""

    _check_variant("deepwarp", variant, free_form_prefix="ss_shifted_k")
    if variant in DEEPWARP_ARCHITECTURES:
        return DeepWarpConfig.for_profile(profile, variant=variant)
    if variant == "cfw_lcm_vertical":
        return DeepWarpConfig.for_profile(profile, variant="cfw_lcm", angle_dims=1)
    if variant == "protocol":
        return DeepWarpConfig.for_profile(profile, variant="cfw_lcm", image_size=tuple(profile.patch_size))
    k = variant[len("ss_shifted_k"):]
    if not k.isdigit():
        raise ValueError(f"deepwarp variant {variant!r}: ss_shifted_k takes a window size, e.g. ss_shifted_k3")
    return DeepWarpConfig.for_profile(profile, variant="ss", registration_k=int(k))


@_declare("deepwarp")
def deepwarp(profile: Profile, variant: str, *, seed: int = 0, pretrained: bool | str = False, config=None, pairs=None,
             steps: int | None = None, retrain: bool = False, train: bool = True, on_log=None, progress: bool = True,
             checkpointing: Checkpointing | None = None):
    """A DeepWarp model: ``variant`` names it (one of :data:`DEEPWARP_VARIANTS`), ``config`` is its
    config (default :func:`deepwarp_config`) and ``pairs`` its training pairs
    (:func:`~eyegen_lib.protocols.deepwarp_training_pairs` of the variant; rendered here, only when
    training, if not given). ``protocol`` is :func:`protocol_deepwarp`. Returns (model, info)."""

    config = with_steps(config or deepwarp_config(profile, variant), steps)
    recipe = deepwarp_training_pairs_recipe(profile, variant, seed=seed)
    if pairs is not None and _pairs_recipe(pairs) != recipe:
        raise ValueError(f"these pairs are not deepwarp {variant!r}'s training pairs (another recipe); use "
                         f"protocols.deepwarp_training_pairs(profile, {variant!r}, seed=SEED)")

    def make_run(dist):
        data = pairs if pairs is not None else deepwarp_training_pairs(profile, variant, seed=seed, progress=progress)
        return deepwarp_run(data, config, seed=seed, dist=dist)

    job = _job("deepwarp", variant, profile, seed, config, recipe, make_model=lambda: DeepWarp(config), make_run=make_run)
    return _obtain(job, "deepwarp", variant, pretrained=pretrained, retrain=retrain, train=train, progress=progress, on_log=on_log,
                   checkpointing=checkpointing)


def protocol_deepwarp(profile: Profile, *, seed: int = 0, pairs=None, **kwargs):
    """DeepWarp CFW+LCM at the redirection protocol's patch size, trained on the same pairs as the
    gaze GAN (:func:`~eyegen_lib.protocols.redirection_training_pairs`): what 05 scores on the
    protocol and 06 compares with. Returns (model, info)."""
    return deepwarp(profile, "protocol", seed=seed, pairs=pairs, **kwargs)


# -- He et al.'s gaze GAN ----------------------------------------------------------------------------------
def gaze_gan_config(profile: Profile, ablation: str = "full"):
    """The GAN's config: the full recipe, an ablation, or ``reference`` (the full recipe as long as
    the ablations; the full config itself where they are as long)."""

    _check_variant("gaze_gan", ablation)
    full = GazeGANConfig.for_profile(profile)
    return full if ablation == "full" else full.for_ablation("full" if ablation == "reference" else ablation)


@_declare("gaze_gan")
def gaze_gan(profile: Profile, ablation: str = "full", *, seed: int = 0, pretrained: bool | str = False, pairs=None,
             steps: int | None = None, retrain: bool = False, train: bool = True, progress: bool = True, on_log=None,
             checkpointing: Checkpointing | None = None):
    """He et al.'s GAN, one of its ablations, or ``reference`` — what the ablations are compared
    with: the full recipe as long as they are (its snapshot, saved while ``full`` trains, where the
    ablations are shorter; the full model itself otherwise). Trained on
    :func:`~eyegen_lib.protocols.redirection_training_pairs` (pass ``pairs`` to skip re-rendering
    them; they are rendered only when training). Returns (model, info)."""

    config = gaze_gan_config(profile, ablation)
    if ablation == "reference" and config == gaze_gan_config(profile, "full") and steps is None:
        return gaze_gan(profile, "full", seed=seed, pretrained=pretrained, pairs=pairs, retrain=retrain, train=train, progress=progress,
                        on_log=on_log, checkpointing=checkpointing)
    config = with_steps(config, steps)
    reference = config.for_ablation("full")
    snapshots = ()
    if ablation == "full" and reference != config:
        snapshots = (Snapshot(reference.steps, artifact_path("gaze_gan", profile, seed=seed, variant="reference"), reference),)
    recipe = redirection_training_pairs_recipe(profile, seed=seed)
    if pairs is not None and _pairs_recipe(pairs) != recipe:
        raise ValueError("these pairs are not the profile's redirection training pairs (another recipe); "
                         "use protocols.redirection_training_pairs(profile, seed=SEED)")

    def make_run(dist):
        data = pairs if pairs is not None else redirection_training_pairs(profile, seed=seed, progress=progress)
        return gaze_gan_run(data, config, seed=seed, dist=dist)

    decay = (f"a linear decay of the learning rate to 0 from {config.decay_start:g} of the steps"
             if config.decay_start < 1 else None)
    job = _job("gaze_gan", ablation, profile, seed, config, recipe, make_model=lambda: GazeGAN(config),
               make_run=make_run, snapshots=snapshots, fixed_schedule=decay)
    return _obtain(job, "gaze_gan", ablation, pretrained=pretrained, retrain=retrain, train=train, progress=progress, on_log=on_log,
                   checkpointing=checkpointing)


# -- gaze estimators ----------------------------------------------------------------------------------------
@_declare("gaze_estimator")
def gaze_estimator(profile: Profile, *, seed: int = 0, pretrained: bool | str = False, size: tuple[int, int] | None = None,
                   steps: int | None = None, retrain: bool = False, train: bool = True, progress: bool = True,
                   checkpointing: Checkpointing | None = None):
    """The independent gaze estimator for RGB eye images of ``size`` (default: the patch size),
    trained on the training persons (never the test persons). ``info["metrics"]`` hold the test
    error on held-out persons (the floor of the gaze-error metric) and the error of always
    predicting the training mean gaze."""

    size = tuple(size or profile.patch_size)
    config = with_steps(GazeEstimatorConfig.for_profile(profile), steps)
    source = gaze_estimator_source(profile, seed=seed, size=size)
    split = gaze_estimator_split(profile, seed=seed)
    idx = split_indices(source, split)

    def rows(name):
        return rows_of(source, idx[name], ("image", "gaze"), in_memory=not profile.stream_data, progress=progress)

    def make_run(dist):
        train_rows = rows("train")

        def evaluate(model):
            test = rows("test")
            truth = gaze_labels(test).double()
            pred = torch.cat([predict_gaze(model, to_signed(b["image"]))
                              for _, b in fetch_in_chunks(test, chunk=256, progress=progress, desc="gaze")]).double()
            mean_pred = gaze_labels(train_rows).mean(0, keepdim=True).double().expand_as(truth)
            return {"test_error_deg": float(angular_error_deg(pred, truth).mean()),
                    "mean_predictor_error_deg": float(angular_error_deg(mean_pred, truth).mean()),
                    "train_images": len(train_rows), "test_images": len(test)}

        return gaze_estimator_run(train_rows, config, seed=seed, dist=dist, evaluate=evaluate)

    variant = f"{size[0]}x{size[1]}"
    recipe = data_recipe(source, split=split, trained_on="train persons", tested_on="test persons")
    job = _job("gaze_estimator", variant, profile, seed, config, recipe, make_model=lambda: GazeEstimator(config),
               make_run=make_run, fixed_schedule=ONE_CYCLE)
    return _obtain(job, "gaze_estimator", variant, pretrained=pretrained, retrain=retrain, train=train, progress=progress,
                   checkpointing=checkpointing)


@_declare("augmentation_estimator")
def augmentation_estimator(profile: Profile, variant: str, images: torch.Tensor | None = None,
                           gaze: torch.Tensor | None = None, *, recipe: dict | None = None, seed: int = 0,
                           pretrained: bool | str = False, config=None, steps: int | None = None,
                           targets_per_image: int | None = None, retrain: bool = False, train: bool = True,
                           progress: bool = True, checkpointing: Checkpointing | None = None):
    """One of §5.6's estimators (``raw``, ``oracle``, or ``augmented_<ablation>``: one per
    redirecting GAN; ``augmented`` = ``augmented_full``) on its training set: ``images``, ``gaze``
    described by ``recipe`` (which GAN redirected what, to which targets) — or, when not given,
    the set :func:`~eyegen_lib.augmentation.training_sets` makes (rendered only when training).
    Returns (model, info)."""

    _check_variant("augmentation_estimator", variant, free_form_prefix="augmented_")
    if variant == "augmented":
        variant = "augmented_full"
    name = "augmented" if variant.startswith("augmented_") else variant
    config = with_steps(config or GazeEstimatorConfig.for_profile(profile), steps)
    if (images is None) != (recipe is None) or (images is None) != (gaze is None):
        raise ValueError("give images, gaze and their recipe together, or none of them (the set is then made here)")
    if images is None:
        per_image = targets_per_image or TARGETS_PER_IMAGE
        gan, gan_info = (None, None)
        if name == "augmented":
            gan, gan_info = gaze_gan(profile, variant[len("augmented_"):], seed=seed, pretrained=_upstream(pretrained),
                                     train=train, progress=progress)
        recipe = training_set_recipe(split_description(profile, seed=seed), name, targets_per_image=per_image, seed=seed,
                                     gan_info=gan_info)

        def training_set():
            sets = pitch_split_sets(profile, seed=seed, progress=progress)
            return training_sets(sets, gan=gan, targets_per_image=per_image, seed=seed, progress=progress)[name]
    else:
        def training_set():
            return images, gaze

    def make_run(dist):
        x, g = training_set()
        return gaze_estimator_run({"image": x, "gaze": g}, config, seed=seed, dist=dist)

    job = _job("augmentation_estimator", variant, profile, seed, config, recipe,
               make_model=lambda: GazeEstimator(config), make_run=make_run, fixed_schedule=ONE_CYCLE)
    return _obtain(job, "augmentation_estimator", variant, pretrained=pretrained, retrain=retrain, train=train, progress=progress,
                   checkpointing=checkpointing)


# -- saved predictions on the shared protocols ----------------------------------------------------------------
def _prediction_folder(task: str, profile: Profile, seed: int) -> Path:
    if task not in PREDICTION_TASKS:
        raise ValueError(f"task must be one of {sorted(PREDICTION_TASKS)}, got {task!r}")
    return _seed_dir("predictions", profile, seed) / task


def prediction_path(task: str, method: str, profile: Profile, *, seed: int = 0) -> Path:
    folder = _prediction_folder(task, profile, seed)
    if method not in PREDICTION_TASKS[task]:
        raise ValueError(f"no method {method!r} saves {task} predictions: choose one of {list(PREDICTION_TASKS[task])}")
    return folder / f"{method}.pt"


def _prediction_provenance(task: str, method: str, profile: Profile, seed: int, recipe: dict) -> dict:
    """What a prediction file of this run must record: the run, the task and method, the protocol's recipe."""
    return make_provenance(profile=profile, seed=seed, config={"task": task, "method": method}, data=recipe)


def save_predictions(task: str, method: str, images: torch.Tensor, profile: Profile, *, seed: int = 0,
                     made_by: list[dict] = ()) -> Path:
    """Store a method's outputs (uint8 images in protocol order) for ``07_evaluation``, with their
    provenance: profile, seed, the protocol's data fingerprint, and the models (``made_by``: their
    registry infos) that made them."""

    path = prediction_path(task, method, profile, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    prov = _prediction_provenance(task, method, profile, seed, protocol_recipe(profile, task, seed=seed))
    prov["made_by"] = [{"file": Path(i["path"]).name, "sha256": i["sha256"], "identity": identity(i["provenance"])}
                       for i in made_by]
    buffer = io.BytesIO()  # serialised once: written, and hashed for the record, from the same bytes
    torch.save({"images": images.cpu(), "provenance": prov}, buffer)
    with atomic_writer(path, "wb") as f:
        f.write(buffer.getvalue())
    rec = Recorder.current()
    if rec is not None:
        rec.produced(f"predictions/{task}/{method}", file=path, sha256=hashlib.sha256(buffer.getvalue()).hexdigest())
    return path


def load_predictions(task: str, profile: Profile, *, seed: int = 0) -> dict[str, dict]:
    """Every method's saved outputs on ``task`` for this run: {method: {"images", "provenance"}}.
    A file made for another profile, seed or protocol (or with no provenance) is skipped with a
    printed note, never compared; each one used is noted in the notebook's record."""

    recipe = protocol_recipe(profile, task, seed=seed)
    out = {}
    for path in sorted(_prediction_folder(task, profile, seed).glob("*.pt")):
        raw = path.read_bytes()  # read once: loaded and hashed from the same bytes
        try:
            data = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated or foreign: say so, keep the file
            print(f"note: skipping {path.name}: not a readable prediction file ({type(exc).__name__}); re-run its notebook")
            continue
        prov = data.get("provenance") if isinstance(data, dict) else None
        method = path.stem
        diffs = provenance_differences(prov, _prediction_provenance(task, method, profile, seed, recipe))
        if diffs:
            print(f"note: skipping {method} predictions ({path}): made for another run — " + "; ".join(diffs))
            continue
        out[method] = data
        _record("predictions", f"{task}/{method}", {"path": str(path), "sha256": hashlib.sha256(raw).hexdigest(),
                                                    "provenance": prov, "trained_now": False})
    rec = Recorder.current()
    for method in PREDICTION_TASKS[task] if rec is not None else ():  # once made, the report marks this run stale
        expected = prediction_path(task, method, profile, seed=seed)
        if not expected.exists():
            rec.absent(f"predictions/{task}/{method}", file=expected)
    return out
