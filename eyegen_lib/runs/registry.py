"""The registry of artifacts: every model and saved prediction the notebooks exchange, by name.

Notebooks and the library ask for an artifact here — ``registry.segmenter(profile, seed=SEED)``,
``registry.gaze_gan(profile, "no_cycle", seed=SEED)``, ``registry.load_predictions("openeds",
profile, seed=SEED)`` — and never build a file name. Each request:

1. names the file: ``<outputs>/checkpoints/<profile>/seed<seed>/<name>[_<variant>].pt`` (predictions:
   ``<outputs>/predictions/<profile>/seed<seed>/<task>/<method>.pt``), so runs with another seed or
   profile never share files;
2. states the provenance the run needs (profile, seed, model config, data recipe; see
   :mod:`eyegen_lib.runs.provenance`) and loads the file only when it matches — otherwise it is set aside
   and retrained, or, with ``train=False``, refused with what differs and which notebook makes it;
3. tells the notebook's :class:`~eyegen_lib.runs.record.Recorder` which artifact it used (file, sha256,
   seed, data fingerprint, from the zoo / trained here / loaded, steps, training time), so the
   record and the report show it.

A request with ``pretrained=True`` (a notebook passes its ``PRETRAINED``) first takes the model
zoo's entry that serves the run (``zoo/MANIFEST.json``: the same model, profile, seed, config and
data, trained longer; see :mod:`eyegen_lib.runs.zoo`) for the model and for the models it needs, and goes
on as above when none does. ``pretrained="upstream"`` takes only the models it needs from the zoo and
loads or trains the model itself here (``eyegen train --pretrained``: how the zoo's own entries are
made on its upstream models). The default, ``False``, never reads the zoo.

Each model request is its family's :meth:`~eyegen_lib.runs.family.ModelFamily.obtain` (one object per model
family, :mod:`eyegen_lib.runs.families`); the functions here are the names notebooks call them by.
"""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from ..core.files import atomic_writer
from ..core.profiles import Profile
from ..science.data.recipes import identity
from ..science.protocols import protocol_recipe
from .families.deepwarp import VARIANTS as DEEPWARP_VARIANTS
from .families.gaze_gan import VARIANTS as GAZE_GAN_VARIANTS
from .families.seg2eye import VARIANTS as SEG2EYE_VARIANTS
from .family import ModelFamily, families, family
from .jobs import UPSTREAM, artifact_path, record_use, seed_dir
from .provenance import make_provenance, provenance_differences
from .record import Recorder, artifact_origin
from .zoo import load_entry, snapshot_entries

__all__ = ["artifact_path", "prediction_path", "get", "segmenter", "refiner", "seg2eye",
           "seg2eye_config", "deepwarp", "deepwarp_config", "protocol_deepwarp", "gaze_gan", "gaze_gan_config", "gaze_estimator",
           "augmentation_estimator", "save_predictions", "load_predictions", "PREDICTION_TASKS", "SEG2EYE_VARIANTS",
           "GAZE_GAN_VARIANTS", "DEEPWARP_VARIANTS", "UPSTREAM", "length_snapshots", "origin", "families", "family"]

PREDICTION_TASKS = {"openeds": ("refiner", "seg2eye"), "redirection": ("deepwarp", "gaze_gan")}


def get(name: str, profile: Profile, variant: str = "", *, seed: int = 0, **options):
    """Any family's model by name: ``get("gaze_gan", profile, "no_cycle", seed=0)`` (its
    :meth:`~eyegen_lib.runs.family.ModelFamily.obtain`; ``variant`` "" = the family's default)."""
    fam = family(name)
    return fam.obtain(profile, variant or fam.default_variant, seed=seed, **options)


def origin(info: dict) -> str:
    """Where a model a request returned came from, in words: "zoo, 10000 steps", "trained here (212 s),
    1000 steps", "loaded, 1000 steps" (the report says it alike)."""
    return artifact_origin(info)


def length_snapshots(name: str, profile: Profile, variant: str = "", *, seed: int = 0, config=None) -> list[tuple[int, object, dict]]:
    """The zoo's snapshots of the long run of ``name`` (``variant``) at shorter lengths — [(step, model
    in eval mode, info)] by step — for claims against training length; empty when the zoo has none
    for this run (another profile, seed or data)."""
    fam = family(name)
    variant = variant or fam.default_variant
    config = config or fam.config(profile, variant)
    try:
        recipe = fam.recipe(profile, variant, seed=seed)
    except NotImplementedError:
        keeping = [n for n, f in families().items() if type(f).recipe is not ModelFamily.recipe]
        raise ValueError(f"the zoo keeps length snapshots of {', '.join(keeping)}, not {name!r}") from None
    prov = make_provenance(profile=profile, seed=seed, config=config, data=recipe)
    out = []
    for entry in snapshot_entries(fam.kind, name + (f"/{variant}" if variant else ""), prov):
        model = fam.make_model(config)
        ckpt = load_entry(entry, kind=fam.kind, model=model, provenance=prov)
        out.append((int(entry["steps"]), model.eval(), {"step": int(entry["steps"]), "path": ckpt["path"],
                                                         "sha256": ckpt["file_sha256"], "source": "zoo",
                                                         "metrics": dict(ckpt.get("metrics") or {})}))
    return out


# -- the families' requests by the names notebooks call them ---------------------------------------------
def segmenter(profile: Profile, **options):
    """The DeepLab v3+ segmenter (02): see :meth:`eyegen_lib.runs.families.segmenter.SegmenterFamily.obtain`."""
    return family("segmenter").obtain(profile, **options)


def refiner(profile: Profile, **options):
    """The refiner (03): see :meth:`eyegen_lib.runs.families.refiner.RefinerFamily.obtain`."""
    return family("refiner").obtain(profile, **options)


def seg2eye(profile: Profile, variant: str = "full", **options):
    """Seg2Eye (04) or an ablation: see :meth:`eyegen_lib.runs.families.seg2eye.Seg2EyeFamily.obtain`."""
    return family("seg2eye").obtain(profile, variant, **options)


def seg2eye_config(profile: Profile, variant: str = "full"):
    """Seg2Eye's config for a declared variant (the full run, ``reference`` or an ablation)."""
    return family("seg2eye").config(profile, variant)


def deepwarp(profile: Profile, variant: str, **options):
    """A DeepWarp variant (05): see :meth:`eyegen_lib.runs.families.deepwarp.DeepWarpFamily.obtain`."""
    return family("deepwarp").obtain(profile, variant, **options)


def deepwarp_config(profile: Profile, variant: str):
    """A DeepWarp variant's config."""
    return family("deepwarp").config(profile, variant)


def protocol_deepwarp(profile: Profile, *, seed: int = 0, pairs=None, **options):
    """DeepWarp CFW+LCM at the redirection protocol's patch size, trained on the same pairs as the
    gaze GAN (:func:`~eyegen_lib.science.protocols.redirection_training_pairs`): what 05 scores on the
    protocol and 06 compares with. Returns (model, info)."""
    return deepwarp(profile, "protocol", seed=seed, pairs=pairs, **options)


def gaze_gan(profile: Profile, ablation: str = "full", **options):
    """He et al.'s GAN (06), an ablation or ``reference``: see :meth:`eyegen_lib.runs.families.gaze_gan.GazeGANFamily.obtain`."""
    return family("gaze_gan").obtain(profile, ablation, **options)


def gaze_gan_config(profile: Profile, ablation: str = "full"):
    """The GAN's config: the full recipe, an ablation, or ``reference``."""
    return family("gaze_gan").config(profile, ablation)


def gaze_estimator(profile: Profile, **options):
    """The independent gaze estimator (07): see :meth:`eyegen_lib.runs.families.gaze_estimator.GazeEstimatorFamily.obtain`."""
    return family("gaze_estimator").obtain(profile, **options)


def augmentation_estimator(profile: Profile, variant: str, images: torch.Tensor | None = None,
                           gaze: torch.Tensor | None = None, **options):
    """One of §5.6's estimators (08): see :meth:`eyegen_lib.runs.families.gaze_estimator.AugmentationEstimatorFamily.obtain`."""
    return family("augmentation_estimator").obtain(profile, variant, images, gaze, **options)


# -- saved predictions on the shared protocols ----------------------------------------------------------------
def _prediction_folder(task: str, profile: Profile, seed: int) -> Path:
    if task not in PREDICTION_TASKS:
        raise ValueError(f"task must be one of {sorted(PREDICTION_TASKS)}, got {task!r}")
    return seed_dir("predictions", profile, seed) / task


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
        record_use("predictions", f"{task}/{method}", {"path": str(path), "sha256": hashlib.sha256(raw).hexdigest(),
                                                    "provenance": prov, "trained_now": False})
    rec = Recorder.current()
    for method in PREDICTION_TASKS[task] if rec is not None else ():  # once made, the report marks this run stale
        expected = prediction_path(task, method, profile, seed=seed)
        if not expected.exists():
            rec.absent(f"predictions/{task}/{method}", file=expected)
    return out
