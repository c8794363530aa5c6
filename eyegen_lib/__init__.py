"""eyegen_lib: the shared library behind the eyegen notebooks.

Notebooks start with::

    import eyegen_lib as eg
    profile = eg.resolve_profile(PROFILE)
    eg.seed_everything(SEED)
    rec = eg.Recorder("01_dataset", profile, seed=SEED)

and ask :mod:`eyegen_lib.registry` for every model or prediction file they share.
"""
from .checkpoint import ArtifactMismatch, CheckpointError, load_checkpoint, save_checkpoint
from .paths import output_dir
from .profiles import PROFILES, Profile, get_profile, resolve_profile
from .record import Recorder, read_metrics, rising_margin
from .runtime import choose_device, seed_everything, tqdm
from .version import __version__

__all__ = [
    "ArtifactMismatch", "CheckpointError", "load_checkpoint", "save_checkpoint",
    "output_dir",
    "PROFILES", "Profile", "get_profile", "resolve_profile",
    "Recorder", "read_metrics", "rising_margin",
    "choose_device", "seed_everything", "tqdm",
]
