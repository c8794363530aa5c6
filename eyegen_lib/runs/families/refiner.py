"""The residual refiner of the top-1 reference that won the OpenEDS challenge (Seg2Eye §4.2; notebook 03)."""
from __future__ import annotations

import torch

from ...core.paths import empty_outputs
from ...science.data.recipes import data_recipe, identity
from ...science.data.rows import RenderedRows
from ...science.metrics import blurriness, challenge_score
from ...science.models.refiner import Refiner, RefinerConfig, refine, refiner_run
from ...science.protocols import nir_source, person_split, rank_targets, ranking_setup
from ..engine import with_steps
from ..family import CheckSetup, ModelFamily, family, register
from ..jobs import ONE_CYCLE, obtain_artifact, training_job, upstream
from .common import nir_check_rows, nir_held_out, sized


class RefinerFamily(ModelFamily):
    name = "refiner"
    kind = "refiner"
    notebook = "03_refiner"
    description = "the challenge-winning refiner (03); trains the segmenter first if absent"
    datasets = ("openeds",)

    def config(self, profile, variant: str = ""):
        self.check_variant(variant)
        return RefinerConfig.for_profile(profile)

    def make_model(self, config):
        return Refiner(config)

    def obtain(self, profile, variant: str = "", *, seed: int = 0, pretrained: bool | str = False,
               setup: dict | None = None, steps: int | None = None, retrain: bool = False, train: bool = True,
               progress: bool = True, checkpointing=None):
        """The refiner, trained on the training targets with references from ``setup``
        (:func:`~eyegen_lib.science.protocols.ranking_setup`; built from the segmenter if not given). Its data
        fingerprint cites the segmenter whose pseudo-labels it learned from. Returns (model in eval
        mode, info with the loss history ``history["challenge_loss"]``)."""
        config = with_steps(self.config(profile, variant), steps)
        seg, seg_info = family("segmenter").obtain(profile, seed=seed, pretrained=upstream(pretrained),
                                                   progress=progress, train=train)

        def make_run(dist):
            s = setup if setup is not None else ranking_setup(profile, seg, seed=seed, progress=progress)
            ranked = rank_targets(s, s["train"], config.top_n)
            return refiner_run(s["train"]["rows"], ranked, s["pool"]["rows"], config, seed=seed, dist=dist)

        recipe = data_recipe(nir_source(profile, seed=seed), split=person_split(profile, seed=seed),
                             upstream={"segmenter": identity(seg_info["provenance"])},
                             trained_on="train persons' masks and images; references: top-N of the pseudo-labelled pool")
        job = training_job(self.name, "", profile, seed, config, recipe, make_model=lambda: self.make_model(config),
                           make_run=make_run, fixed_schedule=ONE_CYCLE)
        return obtain_artifact(job, self.name, "", pretrained=pretrained, retrain=retrain, train=train,
                               progress=progress, checkpointing=checkpointing)

    def check_setup(self, profile, batch):
        """Only the ranking is replaced: references are random pool images with their true masks as
        pseudo-labels (the ranking pass needs the trained segmenter)."""
        source, train, test, _ = nir_check_rows(profile)
        config, full = sized(self.config(profile), batch)
        b = config.batch_size
        pool = RenderedRows(source, range(len(source)), {"image": "image", "pseudo": "mask"})
        ranked = torch.randint(len(pool), (len(train), config.top_n), generator=torch.Generator().manual_seed(0))

        def evaluate(m):
            t, r = test.fetch(range(min(b, len(test)))), pool.fetch(ranked[: min(b, len(test)), 0])
            return refine(m, t["mask"], r["image"], r["pseudo"])

        return CheckSetup(refiner_run(train, ranked, pool, config), config, evaluate, b, full, tuple(profile.nir_size))

    def check_metrics(self, variant, model, profile, seed):
        images, masks = nir_held_out(profile, seed)
        order = torch.roll(torch.arange(len(images)), 1)  # each target refines its neighbour's image
        out, _ = refine(model, masks, images[order], masks[order])
        return {"check_mse": float(((out.float() - images.float()) ** 2).mean())}

    def headline_metrics(self, variant, model, profile, seed, *, progress=False):
        """On 03's test targets from their top-1 reference (the zoo's segmenter ranks, as in 03)."""
        with empty_outputs():
            seg, _ = family("segmenter").obtain(profile, seed=seed, pretrained=True, train=False, progress=progress)
        setup = ranking_setup(profile, seg, seed=seed, progress=progress)
        test, pool = setup["test"], setup["pool"]
        top1 = rank_targets(setup, test, 1)[:, 0]
        out, _ = refine(model, test["mask"], pool["image"][top1], pool["pseudo"][top1])
        return {"challenge_score": float(challenge_score(out.float(), test["image"].float()).mean()),
                "blurriness": float(blurriness(out.float()).mean()), "targets": len(out)}


register(RefinerFamily())
