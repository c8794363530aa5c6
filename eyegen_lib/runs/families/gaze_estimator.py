"""The gaze estimators: the independent estimator of the redirection metrics (notebook 07), and §5.6's
estimators trained on raw, GAN-augmented and oracle sets (He et al.; notebook 08)."""
from __future__ import annotations

import torch

from ...core.gaze import angular_error_deg
from ...core.images import to_signed
from ...science.augmentation import (
    TARGETS_PER_IMAGE,
    pitch_split_sets,
    score_estimator,
    split_description,
    training_set_recipe,
    training_sets,
)
from ...science.data.recipes import data_recipe
from ...science.data.rows import fetch_in_chunks, gaze_labels, rows_of
from ...science.models.gaze_estimator import GazeEstimator, GazeEstimatorConfig, gaze_estimator_run, predict_gaze
from ...science.models.gaze_gan import ABLATIONS
from ...science.protocols import gaze_estimator_source, gaze_estimator_split, person_split, split_indices
from ..engine import with_steps
from ..family import CheckSetup, ModelFamily, family, register
from ..jobs import ONE_CYCLE, obtain_artifact, training_job, upstream
from .common import CHECK_IMAGES, sized


def _held_out_error(model, profile, seed: int, size) -> dict:
    """Mean angular error on the first :data:`CHECK_IMAGES` ["gaze"] test-person patches of ``size``."""
    source = gaze_estimator_source(profile, seed=seed, size=size)
    test = split_indices(source, person_split(profile, seed=seed))["test"][: CHECK_IMAGES["gaze"]]
    rows = rows_of(source, test, ("image", "gaze"), in_memory=True, progress=False)
    batch = rows.fetch(list(range(len(rows))))
    pred = predict_gaze(model, to_signed(batch["image"])).double()
    return {"check_gaze_error_deg": float(angular_error_deg(pred, gaze_labels(rows).double()).mean())}


class GazeEstimatorFamily(ModelFamily):
    name = "gaze_estimator"
    kind = "gaze_estimator"
    notebook = "07_evaluation"
    description = "the independent gaze estimator (07); variant = image size"
    variants = ("64x64", "41x51")
    variant_pattern = r"\d+x\d+"
    datasets = ("columbia", "mpiigaze")
    check_notebooks = "07, 08"

    @staticmethod
    def size_of(variant: str):
        """The image size a variant names ("64x64" → (64, 64)); None for "" (the profile's patch size)."""
        return tuple(int(s) for s in variant.split("x")) if variant else None

    def check_variant(self, variant):
        return variant if variant == "" else super().check_variant(variant)

    def config(self, profile, variant: str = ""):
        self.check_variant(variant)
        return GazeEstimatorConfig.for_profile(profile)

    def make_model(self, config):
        return GazeEstimator(config)

    def obtain(self, profile, variant: str = "", *, seed: int = 0, pretrained: bool | str = False,
               size: tuple[int, int] | None = None, steps: int | None = None, retrain: bool = False, train: bool = True,
               progress: bool = True, checkpointing=None):
        """The independent gaze estimator for RGB eye images of ``size`` (or the size ``variant`` names;
        default: the patch size), trained on the training persons (never the test persons).
        ``info["metrics"]`` hold the test error on held-out persons (the floor of the gaze-error
        metric) and the error of always predicting the training mean gaze."""
        size = tuple(size or self.size_of(self.check_variant(variant)) or profile.patch_size)
        config = with_steps(self.config(profile), steps)
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
        job = training_job(self.name, variant, profile, seed, config, recipe, make_model=lambda: self.make_model(config),
                           make_run=make_run, fixed_schedule=ONE_CYCLE)
        return obtain_artifact(job, self.name, variant, pretrained=pretrained, retrain=retrain, train=train,
                               progress=progress, checkpointing=checkpointing)

    def check_setup(self, profile, batch):
        config, full = sized(self.config(profile), batch)
        source = gaze_estimator_source(profile)
        idx = split_indices(source, person_split(profile))
        in_memory = not profile.stream_data
        train = rows_of(source, idx["train"], ("image", "gaze"), in_memory=in_memory, progress=False)
        test = rows_of(source, idx["test"][: config.batch_size], ("image", "gaze"), in_memory=in_memory, progress=False)
        return CheckSetup(gaze_estimator_run(train, config), config,
                          lambda m: predict_gaze(m, to_signed(test.fetch(range(len(test)))["image"])),
                          config.batch_size, full, tuple(profile.patch_size))

    def check_metrics(self, variant, model, profile, seed):
        return _held_out_error(model, profile, seed, self.size_of(variant))


class AugmentationEstimatorFamily(ModelFamily):
    name = "augmentation_estimator"
    kind = "gaze_estimator"
    notebook = "08_augmentation"
    description = "§5.6's estimators (08): raw, oracle, or augmented by a GAN (trained first if absent)"
    variants = ("raw", "oracle") + tuple(f"augmented_{a}" for a in sorted(ABLATIONS))
    default_variant = "raw"
    checked = False   # the gaze estimator's row measures its network

    def check_variant(self, variant):
        return variant if variant == "augmented" else super().check_variant(variant)

    def config(self, profile, variant: str = "raw"):
        self.check_variant(variant)
        return GazeEstimatorConfig.for_profile(profile)

    def make_model(self, config):
        return GazeEstimator(config)

    def obtain(self, profile, variant: str = "raw", images: torch.Tensor | None = None, gaze: torch.Tensor | None = None,
               *, recipe: dict | None = None, seed: int = 0, pretrained: bool | str = False, config=None,
               steps: int | None = None, targets_per_image: int | None = None, retrain: bool = False,
               train: bool = True, progress: bool = True, checkpointing=None):
        """One of §5.6's estimators (``raw``, ``oracle``, or ``augmented_<ablation>``: one per
        redirecting GAN; ``augmented`` = ``augmented_full``) on its training set: ``images``, ``gaze``
        described by ``recipe`` (which GAN redirected what, to which targets) — or, when not given, the
        set :func:`~eyegen_lib.science.augmentation.training_sets` makes (rendered only when training).
        Returns (model, info)."""
        variant = self.check_variant(variant)
        if variant == "augmented":
            variant = "augmented_full"
        name = "augmented" if variant.startswith("augmented_") else variant
        config = with_steps(config or self.config(profile, variant), steps)
        if (images is None) != (recipe is None) or (images is None) != (gaze is None):
            raise ValueError("give images, gaze and their recipe together, or none of them (the set is then made here)")
        if images is None:
            per_image = targets_per_image or TARGETS_PER_IMAGE
            gan, gan_info = (None, None)
            if name == "augmented":
                gan, gan_info = family("gaze_gan").obtain(profile, variant[len("augmented_"):], seed=seed,
                                                          pretrained=upstream(pretrained), train=train, progress=progress)
            recipe = training_set_recipe(split_description(profile, seed=seed), name, targets_per_image=per_image,
                                         seed=seed, gan_info=gan_info)

            def training_set():
                sets = pitch_split_sets(profile, seed=seed, progress=progress)
                return training_sets(sets, gan=gan, targets_per_image=per_image, seed=seed, progress=progress)[name]
        else:
            def training_set():
                return images, gaze

        def make_run(dist):
            x, g = training_set()
            return gaze_estimator_run({"image": x, "gaze": g}, config, seed=seed, dist=dist)

        job = training_job(self.name, variant, profile, seed, config, recipe, make_model=lambda: self.make_model(config),
                           make_run=make_run, fixed_schedule=ONE_CYCLE)
        return obtain_artifact(job, self.name, variant, pretrained=pretrained, retrain=retrain, train=train,
                               progress=progress, checkpointing=checkpointing)

    def check_metrics(self, variant, model, profile, seed):
        return _held_out_error(model, profile, seed, None)

    def headline_metrics(self, variant, model, profile, seed, *, progress=False):
        """The mean angular error on 08's two test sets."""
        sets = pitch_split_sets(profile, seed=seed, progress=progress)
        return {f"{test}_error_deg": score_estimator(model, sets[test])["error_deg"]
                for test in ("held_out_pitch", "other_persons")}


register(GazeEstimatorFamily())
register(AugmentationEstimatorFamily())
