"""The suite's model families, one module each (see :mod:`eyegen_lib.runs.family`): importing this
package registers them, in the order the notebooks use them (the order of ``eyegen train --help`` and
``eyegen check``). A new family: its module, and one line here."""
# isort: skip_file
from . import segmenter, refiner, seg2eye, deepwarp, gaze_gan, gaze_estimator  # noqa: F401  (each registers itself)
