from dataclasses import dataclass

import pytest
import torch
from torch import nn

from eyegen_lib import CheckpointError, load_checkpoint, save_checkpoint
from eyegen_lib.core.checkpoint import config_to_dict


@dataclass
class TinyConfig:
    width: int = 4
    sizes: tuple = (3, 5)


def tiny(width=4):
    return nn.Sequential(nn.Linear(3, width), nn.ReLU(), nn.Linear(width, 2))


def test_roundtrip_restores_everything(tmp_path):
    torch.manual_seed(0)
    model, cfg = tiny(), TinyConfig()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.randn(8, 3)).pow(2).mean().backward()
    opt.step()
    path = save_checkpoint(tmp_path / "m.pt", kind="tiny", model=model, optimizer=opt, config=cfg, step=7,
                           metrics={"loss": torch.tensor(0.5)})
    other, other_opt = tiny(), None
    other_opt = torch.optim.Adam(other.parameters(), lr=1e-2)
    ckpt = load_checkpoint(path, kind="tiny", model=other, optimizer=other_opt, config=cfg)
    assert ckpt["step"] == 7 and ckpt["metrics"]["loss"] == pytest.approx(0.5)
    assert ckpt["config"] == {"width": 4, "sizes": [3, 5]}
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert other_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    assert not list(tmp_path.glob("*.tmp")), "atomic write leaves no temporary file"


def test_gan_style_dicts(tmp_path):
    g, d = tiny(), tiny()
    path = save_checkpoint(tmp_path / "gan.pt", kind="gan", model={"generator": g, "discriminator": d})
    g2, d2 = tiny(), tiny()
    load_checkpoint(path, kind="gan", model={"generator": g2, "discriminator": d2})
    assert torch.equal(g2[0].weight, g[0].weight) and torch.equal(d2[0].weight, d[0].weight)


def test_other_kind_config_and_architecture_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", kind="tiny", model=tiny(), config=TinyConfig())
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="'tiny' model, not a 'segmenter'"):
        load_checkpoint(path, kind="segmenter", model=tiny())
    with pytest.raises(CheckpointError, match="width: checkpoint has 4, you asked for 8"):
        load_checkpoint(path, kind="tiny", model=tiny(8), config=TinyConfig(width=8))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, kind="tiny", model=tiny(8))
    assert path.read_bytes() == before, "a refused checkpoint is left untouched"


def test_corrupt_and_foreign_files(tmp_path):
    good = save_checkpoint(tmp_path / "m.pt", kind="tiny", model=tiny())
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(truncated, model=tiny())
    foreign = tmp_path / "plain.pt"
    torch.save(tiny().state_dict(), foreign)
    with pytest.raises(CheckpointError, match="not an eyegen checkpoint"):
        load_checkpoint(foreign, model=tiny())
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "absent.pt")


def test_pickled_code_is_never_executed(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"format": "eyegen-checkpoint", "x": Evil()}, f)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(evil)


def test_a_field_added_to_a_config_later_reads_as_its_old_behaviour_in_older_artifacts():
    from eyegen_lib.core.checkpoint import FIELDS_ADDED_LATER, config_differences, field_added_later
    from eyegen_lib.science.models.gaze_gan import GazeGANConfig

    assert FIELDS_ADDED_LATER["generator_output"] == "image"  # every GAN saved before the switch repainted
    old = config_to_dict(GazeGANConfig(generator_output="image"))
    del old["generator_output"]  # as saved before the field existed
    assert config_differences(old, config_to_dict(GazeGANConfig(generator_output="image"))) == []
    assert config_differences(old, config_to_dict(GazeGANConfig())) == \
        ["generator_output: checkpoint has 'image', you asked for 'blend'"]
    # a config without the field at all is not given one
    assert config_differences({"width": 8}, {"width": 8}) == []
    with pytest.raises(ValueError, match="already declared"):
        field_added_later("generator_output", "blend")
