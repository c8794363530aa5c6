"""A toy model family, defined outside the library the way a new one is: this file, and one
registration line (its last). It regresses the pupil's share of an OpenEDS-like frame's pixels from
the frame, with a two-layer CNN — small enough to train in seconds at ``smoke`` — and takes part in
``eyegen train``, ``eyegen check`` and the zoo through the same commands as the suite's families.
Loaded by ``$EYEGEN_FAMILIES=toy_family`` (tests/test_family.py)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from eyegen_lib.core.images import to_signed
from eyegen_lib.core.training import SupervisedTrainer, TrainingRun
from eyegen_lib.runs.engine import with_steps
from eyegen_lib.runs.families.common import nir_check_rows, nir_held_out, sized
from eyegen_lib.runs.family import CheckSetup, ModelFamily, register
from eyegen_lib.runs.jobs import obtain_artifact, training_job
from eyegen_lib.science.batches import EpochBatches
from eyegen_lib.science.data.recipes import data_recipe
from eyegen_lib.science.data.rows import rows_of
from eyegen_lib.science.protocols import nir_source, person_split, split_indices


@dataclass
class ToyConfig:
    width: int = 8
    steps: int = 60
    batch_size: int = 8
    lr: float = 3e-3


class PupilShare(nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.features = nn.Sequential(nn.Conv2d(1, config.width, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(config.width, config.width, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(config.width, 1)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)).squeeze(1)


def _batch(rows):
    return to_signed(rows["image"]), (rows["mask"] == 3).float().mean(dim=(1, 2)) * 100   # the share in %


def _run(rows, config: ToyConfig, *, seed: int = 0, evaluate=None) -> TrainingRun:
    model = PupilShare(config)
    trainer = SupervisedTrainer(model, torch.optim.Adam(model.parameters(), lr=config.lr), F.mse_loss)
    return TrainingRun(trainer, EpochBatches(rows, config.batch_size, seed=seed, prepare=_batch), model, evaluate)


def _mse(model, images, masks) -> float:
    x, y = _batch({"image": images, "mask": masks})
    with torch.no_grad():
        return float(F.mse_loss(model.eval()(x), y))


class ToyFamily(ModelFamily):
    name = "toy_pupil"
    kind = "toy_pupil"
    notebook = "02_ranking"
    description = "a toy: the pupil's share of a NIR frame (tests/plugins/toy_family.py)"

    def config(self, profile, variant=""):
        self.check_variant(variant)
        return ToyConfig()

    def make_model(self, config):
        return PupilShare(config)

    def obtain(self, profile, variant="", *, seed=0, pretrained=False, steps=None, retrain=False, train=True,
               progress=True, checkpointing=None):
        config = with_steps(self.config(profile, variant), steps)
        source, split = nir_source(profile, seed=seed), person_split(profile, seed=seed)
        idx = split_indices(source, split, labelled=True)

        def make_run(dist):
            test = rows_of(source, idx["test"], ("image", "mask"), in_memory=True, progress=False).fetch(range(len(idx["test"])))
            return _run(rows_of(source, idx["train"], ("image", "mask"), in_memory=True, progress=False), config, seed=seed,
                        evaluate=lambda m: {"test_mse": _mse(m, test["image"], test["mask"])})

        job = training_job(self.name, "", profile, seed, config, data_recipe(source, split=split, trained_on="train persons"),
                           make_model=lambda: self.make_model(config), make_run=make_run)
        return obtain_artifact(job, self.name, "", pretrained=pretrained, retrain=retrain, train=train,
                               progress=progress, checkpointing=checkpointing)

    def check_setup(self, profile, batch):
        _, train, test, _ = nir_check_rows(profile)
        config, full = sized(self.config(profile), batch)
        return CheckSetup(_run(train, config), config, lambda m: m(_batch(test.fetch(range(len(test))))[0]),
                          config.batch_size, full, tuple(profile.nir_size))

    def check_metrics(self, variant, model, profile, seed):
        return {"check_mse": _mse(model, *nir_held_out(profile, seed))}


register(ToyFamily())
