"""Model families: everything the suite knows about one kind of model, in one object.

A family (:class:`ModelFamily`) names its registry artifact, its variants and the notebook that makes
it, and owns what the commands around it need: its config per profile and variant, an empty model,
how a run obtains it (load, zoo or train: :meth:`ModelFamily.obtain`), the batch ``eyegen check``
measures, and the held-out figures ``eyegen zoo verify`` re-evaluates. The registry
(:mod:`eyegen_lib.runs.registry`), ``eyegen train``, ``eyegen check`` and ``eyegen zoo`` iterate over
:data:`FAMILIES`; a new family is one module under ``eyegen_lib/runs/families/`` that ends in
``register(MyFamily())`` and one import line in ``eyegen_lib/runs/families/__init__.py``.

A family defined outside the library (a plugin, or a test's toy family) is registered the same way;
``$EYEGEN_FAMILIES`` names modules to import (comma-separated), so that processes the commands start
(``eyegen check`` measures each family in its own) know it too.
"""
from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ModelFamily", "CheckSetup", "FAMILIES", "register", "family", "families", "PLUGINS_ENV"]

PLUGINS_ENV = "EYEGEN_FAMILIES"


@dataclass
class CheckSetup:
    """What ``eyegen check`` measures of a family: its training run built at the measured batch (its
    ``model``, ``trainer`` and ``batches``), the run's config, a callable that evaluates one batch with
    a model, the batch measured and the profile's own batch (FLOPs are scaled from one to the other),
    and the image size a row of the table shows."""
    run: object
    config: object
    evaluate: Callable
    batch: int
    profile_batch: int
    image: tuple


class ModelFamily:
    """One model family. Subclasses set the class attributes and implement :meth:`config`,
    :meth:`make_model`, :meth:`obtain`; :meth:`check_setup` and :meth:`check_metrics` where the
    family takes part in ``eyegen check`` and the zoo."""

    name: str = ""                 # the registry and CLI name ("gaze_gan")
    kind: str = ""                 # the checkpoint kind its artifacts carry
    notebook: str = ""             # the notebook that makes it ("06_gaze_gan")
    description: str = ""          # one line, for ``eyegen train --help``
    variants: tuple[str, ...] = () # the declared variants; () = none
    default_variant: str = ""
    variant_pattern: str | None = None   # free-form variants also accepted (a regex), e.g. r"ss_shifted_k\d+"
    variant_word: str = "variant"  # what ``eyegen train`` calls a variant ("ablation" also accepted where it is one)
    datasets: tuple[str, ...] = () # the real datasets it trains on (``eyegen train --data``)
    checked: bool = True           # measured by ``eyegen check``
    check_notebooks: str = ""      # the notebooks its ``eyegen check`` row stands for (default: its own)

    # -- variants and configs ----------------------------------------------------------------------
    def check_variant(self, variant: str) -> str:
        """``variant`` itself if the family has it, else a ValueError naming the valid ones."""
        if variant in self.variants or (not self.variants and variant == "") or (
                self.variant_pattern and re.fullmatch(self.variant_pattern, variant)):
            return variant
        choices = ", ".join(self.variants) if self.variants else "none"
        raise ValueError(f"{self.name} has no variant {variant!r}: choose one of [{choices}]"
                         + (f" or a name matching {self.variant_pattern}" if self.variant_pattern else ""))

    def config(self, profile, variant: str = ""):
        """The model's config for ``variant`` at ``profile`` (its run size comes from the profile's schedule)."""
        raise NotImplementedError

    def make_model(self, config):
        """An empty model of ``config`` (what a checkpoint of that config loads into)."""
        raise NotImplementedError

    # -- the artifact ------------------------------------------------------------------------------
    def obtain(self, profile, variant: str = "", *, seed: int = 0, **options):
        """(model in eval mode, info) of ``variant`` for this run: loaded, from the zoo, or trained
        (``options``: ``pretrained``, ``steps``, ``retrain``, ``train``, ``progress``, ``checkpointing``)."""
        raise NotImplementedError

    def recipe(self, profile, variant: str = "", *, seed: int = 0) -> dict:
        """The data recipe of ``variant``'s training run (its data fingerprint); families with length
        snapshots in the zoo implement it."""
        raise NotImplementedError(f"{self.name} keeps no length snapshots")

    # -- eyegen check and the zoo ------------------------------------------------------------------
    def check_setup(self, profile, batch: int | None) -> CheckSetup:
        """The training run ``eyegen check`` measures (its batch at most ``batch``), built exactly as
        training builds it."""
        raise NotImplementedError(f"{self.name} is not measured by eyegen check")

    def check_metrics(self, variant: str, model, profile, seed: int) -> dict:
        """Figures of ``model`` on a small fixed held-out set of its run (``eyegen zoo verify``)."""
        raise NotImplementedError(f"no held-out check is defined for {self.name}")

    def headline_metrics(self, variant: str, model, profile, seed: int, *, progress: bool = False) -> dict:
        """Held-out figures for a zoo entry whose training evaluated nothing itself (empty by default)."""
        return {}

    def how_to_make(self, profile, seed: int, variant: str = "") -> str:
        """Where a missing artifact of this family comes from, in words (an error's hint)."""
        what = self.name + (f" ({variant})" if variant else "")
        flag = f" --variant {variant}" if variant else ""
        return (f"{what} is made by {self.notebook}: run it with PROFILE={profile.name!r}, SEED={seed} "
                f"(eyegen run --profile {profile.name} --seed {seed} --only {self.notebook[:2]}), or train it alone "
                f"(eyegen train {self.name} --profile {profile.name} --seed {seed}{flag}), or let this call train it")

    def __repr__(self) -> str:
        return f"<model family {self.name}>"


FAMILIES: dict[str, ModelFamily] = {}


def register(fam: ModelFamily) -> ModelFamily:
    """Add ``fam`` to :data:`FAMILIES` (the last registration of a name wins: a plugin may replace one)."""
    if not fam.name or not fam.kind or not fam.notebook:
        raise ValueError(f"{type(fam).__name__}: a model family needs a name, a checkpoint kind and a notebook")
    FAMILIES[fam.name] = fam
    return fam


def _load() -> None:
    importlib.import_module("eyegen_lib.runs.families")
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"${PLUGINS_ENV} names {module!r}, which cannot be imported ({exc}); fix or unset it") from exc


def families() -> dict[str, ModelFamily]:
    """Every registered family by name (the library's, then any ``$EYEGEN_FAMILIES`` modules')."""
    _load()
    return FAMILIES


def family(name: str) -> ModelFamily:
    """The family called ``name``; a ValueError naming the known ones otherwise."""
    known = families()
    if name not in known:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(known)}")
    return known[name]
