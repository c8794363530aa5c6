"""Layer 1, the foundations every other layer builds on: run sizes (``profiles``), seeds, devices and
progress bars (``runtime``), where files live (``paths``) and how they are written (``files``), the
self-describing checkpoint file (``checkpoint``), the one training loop and a training run
(``training``), processes and their memory (``distributed``, ``memory``), the gaze and image
conventions (``gaze``, ``images``), the CLI's argument types (``cli_types``) and the version.

Imports nothing from the layers above (``science``, ``runs``, ``suite``; tests/test_import_graph.py)."""
