"""Seg2Eye: SPADE + style generator (Seg2Eye §4.3; notebook 04), its ablations and the full recipe's
snapshot at their length."""
from __future__ import annotations

from dataclasses import replace

from ...science.data.recipes import data_recipe
from ...science.data.rows import rows_of
from ...science.evaluation import evaluate_openeds
from ...science.models.seg2eye import Seg2Eye, Seg2EyeConfig, StyleBatches, generate, seg2eye_run
from ...science.protocols import (
    labelled_flags,
    nir_source,
    openeds_protocol,
    person_side_groups,
    person_split,
    split_indices,
)
from ..engine import Snapshot, with_steps
from ..family import CheckSetup, ModelFamily, register
from ..jobs import artifact_path, obtain_artifact, training_job
from .common import nir_check_rows, nir_held_out, sized

VARIANTS = ("full", "reference", "gaugan", "no_style_consistency", "mean_aggregation")


class Seg2EyeFamily(ModelFamily):
    name = "seg2eye"
    kind = "seg2eye"
    notebook = "04_seg2eye"
    description = "Seg2Eye SPADE + style generator (04) and its ablations"
    variants = VARIANTS
    default_variant = "full"
    variant_word = "ablation"
    datasets = ("openeds",)

    def check_variant(self, variant):
        if variant.startswith("panel_"):   # 04's widget: a free-form setting that brings its own config
            return variant
        return super().check_variant(variant)

    def config(self, profile, variant: str = "full"):
        """The full run, or one of the ablations (each as long as ``ablation_steps``, like
        ``reference``, the full recipe's snapshot at that length)."""
        variant = variant or "full"
        if variant.startswith("panel_") or variant not in VARIANTS:
            raise ValueError(f"seg2eye has no variant {variant!r}: choose one of {list(VARIANTS)}")
        config = Seg2EyeConfig.for_profile(profile)
        if variant == "full":
            return config
        short = replace(config, steps=config.ablation_steps)
        return {"reference": short, "gaugan": replace(short, use_style=False),
                "no_style_consistency": replace(short, lambda_style=0.0, lambda_gram=0.0),
                "mean_aggregation": replace(short, aggregation="mean")}[variant]

    def make_model(self, config):
        return Seg2Eye(config)

    def recipe(self, profile, variant="", *, seed=0):
        return data_recipe(nir_source(profile, seed=seed), split=person_split(profile, seed=seed),
                           trained_on="train persons; K style images of the same person and side")

    def obtain(self, profile, variant: str = "full", *, seed: int = 0, pretrained: bool | str = False, config=None,
               steps: int | None = None, retrain: bool = False, train: bool = True, on_log=None, progress: bool = True,
               checkpointing=None):
        """Seg2Eye (``full``), the full recipe's snapshot at the ablations' length (``reference``;
        saved while ``full`` trains), an ablation, or a free-form ``panel_*`` setting with its own
        ``config``; trained on the OpenEDS protocol's training persons. Returns (model, info)."""
        variant = self.check_variant(variant or "full")
        if config is None:
            if variant.startswith("panel_"):
                raise ValueError("a panel_* Seg2Eye variant needs its config")
            config = self.config(profile, variant)
        config = with_steps(config, steps)
        source, split = nir_source(profile, seed=seed), person_split(profile, seed=seed)
        train_idx = split_indices(source, split)["train"]  # the OpenEDS protocol's training persons (generative frames too)
        targets = labelled_flags(source, train_idx)
        snapshots = ()
        if variant == "full" and config.ablation_steps < config.steps:
            short = replace(config, steps=config.ablation_steps)
            snapshots = (Snapshot(config.ablation_steps, artifact_path(self.name, profile, seed=seed, variant="reference"),
                                  short),)

        def make_run(dist):  # a frame without a mask (OpenEDS's generative set) serves as a style image, never a target
            rows = rows_of(source, train_idx, ("image", "mask"), in_memory=not profile.stream_data, progress=progress,
                           unlabelled_ok=True)
            return seg2eye_run(rows, person_side_groups(source, train_idx), config, seed=seed, dist=dist,
                               targets=None if bool(targets.all()) else targets)

        job = training_job(self.name, variant, profile, seed, config, self.recipe(profile, variant, seed=seed),
                           make_model=lambda: self.make_model(config), snapshots=snapshots, make_run=make_run)
        return obtain_artifact(job, self.name, variant, pretrained=pretrained, retrain=retrain, train=train,
                               progress=progress, on_log=on_log, checkpointing=checkpointing)

    def check_setup(self, profile, batch):
        source, train, _, idx = nir_check_rows(profile)
        config, full = sized(self.config(profile), batch)
        run = seg2eye_run(train, person_side_groups(source, idx["train"]), config)
        first = run.batches.batch(0)
        return CheckSetup(run, config, lambda m: generate(m, first["mask"], first["style"]), config.batch_size, full,
                          tuple(profile.nir_size))

    def check_metrics(self, variant, model, profile, seed):
        images, masks = nir_held_out(profile, seed)
        k = model.config.k_style
        out = generate(model, masks, images.unsqueeze(1).expand(-1, k, -1, -1, -1).contiguous())
        return {"check_mse": float(((out.float() - images.float()) ** 2).mean())}

    def headline_metrics(self, variant, model, profile, seed, *, progress=False):
        """On the OpenEDS protocol's targets with their K style images: challenge score, LPIPS, blurriness."""
        test = openeds_protocol(profile, seed=seed)["test"]
        groups = person_side_groups(test)
        idx = StyleBatches(test, groups, k_style=model.config.k_style, batch_size=1, seed=seed).style_for(range(len(test["image"])))
        df = evaluate_openeds(generate(model, test["mask"], test["image"][idx]), test["image"], test["mask"])
        return {"challenge_score": float(df["challenge_score"].mean()), "lpips": float(df["lpips"].mean()),
                "blurriness": float(df["blurriness"].mean()), "targets": len(df)}


register(Seg2EyeFamily())
