"""DeepWarp (Ganin et al.; notebook 05): its five architectures at 41×51, the vertical-only and
registration-aware variants, and CFW+LCM at the redirection protocol's patch size."""
from __future__ import annotations

import torch

from ...science.models.deepwarp import VARIANTS as ARCHITECTURES
from ...science.models.deepwarp import DeepWarp, DeepWarpConfig, deepwarp_run, redirect, redirect_set
from ...science.protocols import deepwarp_training_pairs, deepwarp_training_pairs_recipe
from ..engine import with_steps
from ..family import CheckSetup, ModelFamily, register
from ..jobs import obtain_artifact, training_job
from .common import CHECK_IMAGES, pairs_recipe, redirection_headline, redirection_held_out, sized

VARIANTS = ("ss", "ms", "cfw", "cfw_lcm", "cfw_lcm_palette", "cfw_lcm_vertical", "ss_shifted_k0", "ss_shifted_k3",
            "protocol")


class DeepWarpFamily(ModelFamily):
    name = "deepwarp"
    kind = "deepwarp"
    notebook = "05_deepwarp"
    description = "DeepWarp variants (05); protocol = CFW+LCM at 64×64"
    variants = VARIANTS
    default_variant = "cfw_lcm"
    variant_pattern = r"ss_shifted_k\d+"
    datasets = ("columbia",)

    def config(self, profile, variant: str = "cfw_lcm"):
        """The five architectures of 05, ``cfw_lcm_vertical`` (pitch only), ``ss_shifted_k<K>`` (SS with
        the registration-aware loss of window K on misregistered pairs) and ``protocol`` (CFW+LCM at
        the redirection protocol's patch size)."""
        if variant.startswith("ss_shifted_k") and not variant[len("ss_shifted_k"):].isdigit():
            raise ValueError(f"deepwarp variant {variant!r}: ss_shifted_k takes a window size, e.g. ss_shifted_k3")
        self.check_variant(variant)
        if variant in ARCHITECTURES:
            return DeepWarpConfig.for_profile(profile, variant=variant)
        if variant == "cfw_lcm_vertical":
            return DeepWarpConfig.for_profile(profile, variant="cfw_lcm", angle_dims=1)
        if variant == "protocol":
            return DeepWarpConfig.for_profile(profile, variant="cfw_lcm", image_size=tuple(profile.patch_size))
        return DeepWarpConfig.for_profile(profile, variant="ss", registration_k=int(variant[len("ss_shifted_k"):]))

    def make_model(self, config):
        return DeepWarp(config)

    def recipe(self, profile, variant="cfw_lcm", *, seed=0):
        return deepwarp_training_pairs_recipe(profile, variant, seed=seed)

    def obtain(self, profile, variant: str = "cfw_lcm", *, seed: int = 0, pretrained: bool | str = False, config=None,
               pairs=None, steps: int | None = None, retrain: bool = False, train: bool = True, on_log=None,
               progress: bool = True, checkpointing=None):
        """A DeepWarp model: ``variant`` names it, ``config`` is its config (default :meth:`config`) and
        ``pairs`` its training pairs (:func:`~eyegen_lib.science.protocols.deepwarp_training_pairs` of the
        variant; rendered here, only when training, if not given). Returns (model, info)."""
        config = with_steps(config or self.config(profile, variant), steps)
        recipe = self.recipe(profile, variant, seed=seed)
        if pairs is not None and pairs_recipe(pairs) != recipe:
            raise ValueError(f"these pairs are not deepwarp {variant!r}'s training pairs (another recipe); use "
                             f"protocols.deepwarp_training_pairs(profile, {variant!r}, seed=SEED)")

        def make_run(dist):
            data = pairs if pairs is not None else deepwarp_training_pairs(profile, variant, seed=seed, progress=progress)
            return deepwarp_run(data, config, seed=seed, dist=dist)

        job = training_job(self.name, variant, profile, seed, config, recipe, make_model=lambda: self.make_model(config),
                           make_run=make_run)
        return obtain_artifact(job, self.name, variant, pretrained=pretrained, retrain=retrain, train=train,
                               progress=progress, on_log=on_log, checkpointing=checkpointing)

    def check_setup(self, profile, batch):
        config, full = sized(self.config(profile, "cfw_lcm"), batch)
        run = deepwarp_run(deepwarp_training_pairs(profile, "cfw_lcm"), config)
        first = run.batches.batch(0)
        return CheckSetup(run, config, lambda m: redirect(m, first["source"], first["landmarks"], first["angle"]),
                          config.batch_size, full, tuple(config.image_size))

    def _held_out(self, model, profile, seed, n_eyes):
        return redirection_held_out(profile, seed, model.config.image_size, n_eyes, same_yaw=model.config.angle_dims == 1)

    def check_metrics(self, variant, model, profile, seed):
        rset = self._held_out(model, profile, seed, 1)
        keep = torch.arange(min(CHECK_IMAGES["redirection"], len(rset)))
        angle = rset.target_gaze[keep].float() - rset.source_gaze[keep].float()
        out = redirect(model, rset.source[keep], rset.landmarks[keep], angle)
        return {"check_mse": float(((out.float() - rset.target[keep].float()) ** 2).mean())}

    def headline_metrics(self, variant, model, profile, seed, *, progress=False):
        rset = self._held_out(model, profile, seed, profile.redirection_eyes or None)
        return redirection_headline(redirect_set(model, rset, progress=progress), rset)


register(DeepWarpFamily())
