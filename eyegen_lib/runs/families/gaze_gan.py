"""He et al.'s gaze-redirection GAN (notebook 06), its ablations and their reference: the full recipe
as long as they are."""
from __future__ import annotations

import torch

from ...science.models.gaze_gan import ABLATIONS, GazeGAN, GazeGANConfig, gaze_gan_run, redirect, redirect_set
from ...science.protocols import redirection_training_pairs, redirection_training_pairs_recipe
from ..engine import Snapshot, with_steps
from ..family import CheckSetup, ModelFamily, register
from ..jobs import artifact_path, obtain_artifact, training_job
from .common import CHECK_IMAGES, pairs_recipe, redirection_headline, redirection_held_out, sized

VARIANTS = (*ABLATIONS, "reference")  # each ablation, and the full recipe's snapshot at their length


class GazeGANFamily(ModelFamily):
    name = "gaze_gan"
    kind = "gaze_gan"
    notebook = "06_gaze_gan"
    description = "He et al.'s gaze-redirection GAN (06) and its ablations"
    variants = VARIANTS
    default_variant = "full"
    variant_word = "ablation"
    datasets = ("columbia",)

    def config(self, profile, variant: str = "full"):
        """The full recipe, an ablation, or ``reference`` (the full recipe as long as the ablations;
        the full config itself where they are as long)."""
        variant = self.check_variant(variant or "full")
        full = GazeGANConfig.for_profile(profile)
        return full if variant == "full" else full.for_ablation("full" if variant == "reference" else variant)

    def make_model(self, config):
        return GazeGAN(config)

    def recipe(self, profile, variant="full", *, seed=0):
        return redirection_training_pairs_recipe(profile, seed=seed)

    def obtain(self, profile, variant: str = "full", *, seed: int = 0, pretrained: bool | str = False, pairs=None,
               steps: int | None = None, retrain: bool = False, train: bool = True, progress: bool = True, on_log=None,
               checkpointing=None):
        """The GAN, one of its ablations, or ``reference`` — what the ablations are compared with: the
        full recipe as long as they are (its snapshot, saved while ``full`` trains, where the ablations
        are shorter; the full model itself otherwise). Trained on
        :func:`~eyegen_lib.science.protocols.redirection_training_pairs` (pass ``pairs`` to skip re-rendering
        them; they are rendered only when training). Returns (model, info)."""
        variant = variant or "full"
        config = self.config(profile, variant)
        if variant == "reference" and config == self.config(profile, "full") and steps is None:
            return self.obtain(profile, "full", seed=seed, pretrained=pretrained, pairs=pairs, retrain=retrain,
                               train=train, progress=progress, on_log=on_log, checkpointing=checkpointing)
        config = with_steps(config, steps)
        reference = config.for_ablation("full")
        snapshots = ()
        if variant == "full" and reference != config:
            snapshots = (Snapshot(reference.steps, artifact_path(self.name, profile, seed=seed, variant="reference"),
                                  reference),)
        recipe = self.recipe(profile, variant, seed=seed)
        if pairs is not None and pairs_recipe(pairs) != recipe:
            raise ValueError("these pairs are not the profile's redirection training pairs (another recipe); "
                             "use protocols.redirection_training_pairs(profile, seed=SEED)")

        def make_run(dist):
            data = pairs if pairs is not None else redirection_training_pairs(profile, seed=seed, progress=progress)
            return gaze_gan_run(data, config, seed=seed, dist=dist)

        decay = (f"a linear decay of the learning rate to 0 from {config.decay_start:g} of the steps"
                 if config.decay_start < 1 else None)
        job = training_job(self.name, variant, profile, seed, config, recipe, make_model=lambda: self.make_model(config),
                           make_run=make_run, snapshots=snapshots, fixed_schedule=decay)
        return obtain_artifact(job, self.name, variant, pretrained=pretrained, retrain=retrain, train=train,
                               progress=progress, on_log=on_log, checkpointing=checkpointing)

    def check_setup(self, profile, batch):
        config, full = sized(self.config(profile), batch)
        run = gaze_gan_run(redirection_training_pairs(profile, progress=False), config)
        first = run.batches.batch(0)
        return CheckSetup(run, config, lambda m: redirect(m, first["source"][0], first["target_gaze"][0]),
                          config.batch_size, full, tuple(config.image_size))

    def check_metrics(self, variant, model, profile, seed):
        rset = redirection_held_out(profile, seed, model.config.image_size, 1)
        keep = torch.arange(min(CHECK_IMAGES["redirection"], len(rset)))
        out = redirect(model, rset.source[keep], rset.target_gaze[keep])
        return {"check_mse": float(((out.float() - rset.target[keep].float()) ** 2).mean())}

    def headline_metrics(self, variant, model, profile, seed, *, progress=False):
        rset = redirection_held_out(profile, seed, model.config.image_size, profile.redirection_eyes or None)
        return redirection_headline(redirect_set(model, rset, progress=progress), rset)


register(GazeGANFamily())
