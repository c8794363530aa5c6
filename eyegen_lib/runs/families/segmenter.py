"""The DeepLab v3+ segmenter of OpenEDS-like NIR eyes (Seg2Eye §4.1; notebook 02)."""
from __future__ import annotations

from ...science.data.recipes import data_recipe
from ...science.data.rows import rows_of
from ...science.metrics import mean_iou
from ...science.models.deeplab import DeepLabV3Plus, SegmenterConfig, segment, segmentation_scores, segmenter_run
from ...science.protocols import nir_source, person_split, split_indices
from ..engine import with_steps
from ..family import CheckSetup, ModelFamily, register
from ..jobs import ONE_CYCLE, obtain_artifact, training_job
from .common import nir_check_rows, nir_held_out, sized


class SegmenterFamily(ModelFamily):
    name = "segmenter"
    kind = "deeplab_segmenter"
    notebook = "02_ranking"
    description = "DeepLab v3+ segmenter of NIR eyes (02)"
    datasets = ("openeds",)

    def config(self, profile, variant: str = ""):
        self.check_variant(variant)
        return SegmenterConfig.for_profile(profile)

    def make_model(self, config):
        return DeepLabV3Plus(config.net)

    def obtain(self, profile, variant: str = "", *, seed: int = 0, pretrained: bool | str = False,
               steps: int | None = None, retrain: bool = False, train: bool = True, progress: bool = True,
               checkpointing=None):
        """The segmenter, trained on the training persons' images and masks (camera-randomised:
        ``SegmenterConfig.camera_randomisation``). Returns (model in eval mode, info);
        ``info["metrics"]`` hold the mIoU and per-class IoU on the held-out test persons, and the mIoU
        under each test-time camera perturbation (``miou_dark_exposure`` …)."""
        config = with_steps(self.config(profile, variant), steps)
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
        job = training_job(self.name, "", profile, seed, config, recipe, make_model=lambda: self.make_model(config),
                           make_run=make_run, fixed_schedule=ONE_CYCLE)
        return obtain_artifact(job, self.name, "", pretrained=pretrained, retrain=retrain, train=train,
                               progress=progress, checkpointing=checkpointing)

    def check_setup(self, profile, batch):
        _, train, test, _ = nir_check_rows(profile)
        config, full = sized(self.config(profile), batch)
        b = config.batch_size
        return CheckSetup(segmenter_run(train, config), config,
                          lambda m: segment(m, test.fetch(range(min(b, len(test))))["image"]), b, full,
                          tuple(profile.nir_size))

    def check_metrics(self, variant, model, profile, seed):
        images, masks = nir_held_out(profile, seed)
        return {"check_miou": float(mean_iou(segment(model, images), masks))}


register(SegmenterFamily())
