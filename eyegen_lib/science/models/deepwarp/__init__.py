"""DeepWarp (Ganin, Kononenko, Sungatullina, Lempitsky, ECCV 2016): gaze redirection by warping.

Split as SPADE's code is: ``config``, ``networks`` (input encoding, warp, modules, the model),
``losses``, ``trainer`` (pairs and their sampling, the trainer) and ``inference``.

The network never paints an eye: it predicts a pixel-flow field ``D`` and resamples the input,
``O(x, y) = I(x + D_x(x, y), y + D_y(x, y))`` (bilinear, eq. 2), so every output pixel is an input
pixel and fine detail survives. Inputs, as in the paper (§3.3), are 33 maps at 41 × 51:

* the eye crop, 3 channels in [−1, 1];
* 14 anchor maps ``(x − x_i, y − y_i)`` of the 7 landmarks (6 eyelid points + pupil centre),
  divided by the crop width so they stay within about ±1;
* 16 constant maps: the redirection angle (target − source gaze, radians) through
  FC16-ReLU-FC16-ReLU.

Variants (the paper's comparison, §4.3):

* ``ss``  — single scale: one warping module at full scale predicts the flow.
* ``ms``  — multi-scale without coarse warping: the module's convolutions run on the input at
  half and at full scale; the half-scale features, upsampled, and the full-scale features are
  concatenated and one head predicts the flow ("uses features from both scales to predict the
  final warping transformation"). Nothing is warped before the final flow.
* ``cfw`` — coarse-to-fine warping (§3.2): a half-scale module predicts ``D_coarse``; it is
  upsampled and the input warped by it (``O_coarse``); a full-scale module sees the 33 maps ⊕
  ``O_coarse`` ⊕ ``D_coarse`` and predicts a residual: ``D = D_coarse + D_res`` (eq. 3, 4).
* ``cfw_lcm`` — CFW + the lightness correction module (§3.4): from the third-layer features of
  both modules and the warped image, a map ``M`` ∈ (0, 1) blends towards white,
  ``O_final = O·(1 − M) + M`` (eq. 6; with images in [−1, 1] white is 1 and the formula is the same).
* ``cfw_lcm_palette`` — the paper's generalisation: softmax weights over the warped image and a
  few learned palette colours.

A warping module (layer sizes as in the public ports): conv5×5-16, conv3×3-32, conv3×3-32 (the
"third layer" features), conv1×1-32 — each with BatchNorm and ReLU — then conv1×1-2 with tanh,
scaled to ``max_flow_px``. Flows are in full-resolution pixels at every scale. The last flow layer
and the LCM's output layer start at zero (M at ~0), so an untrained model returns its input.

Loss: L2, or the registration-aware loss of §4.5 (the minimum over (2k + 1)² shifts of a
k-pixel-larger ground truth). Training pairs are sampled so that redirection-angle bins are
balanced, with a share of "hard" (tilted) eyes per bin (§4.2).
"""
from ...data.pairs import PairRows, centre_crop, eye_tilt_deg, redirection_pairs_recipe, render_redirection_pairs
from .config import N_LANDMARKS, VARIANTS, DeepWarpConfig
from .inference import redirect, redirect_set
from .losses import best_shifts, registration_aware_loss, shift_distances
from .networks import AngleEmbedding, DeepWarp, FlowHead, LightnessCorrection, WarpModule, WarpTrunk, anchor_maps, warp
from .trainer import DeepWarpTrainer, PairBatches, angle_bin_ids, deepwarp_run, pair_sampling_weights, train_deepwarp

__all__ = ["VARIANTS", "N_LANDMARKS", "DeepWarpConfig", "DeepWarp", "warp", "anchor_maps", "centre_crop", "shift_distances",
           "registration_aware_loss", "best_shifts", "render_redirection_pairs",
           "eye_tilt_deg", "angle_bin_ids", "pair_sampling_weights", "PairBatches", "DeepWarpTrainer",
           "deepwarp_run", "train_deepwarp", "redirection_pairs_recipe", "redirect", "redirect_set", "PairRows",
           "WarpTrunk", "FlowHead", "WarpModule", "LightnessCorrection", "AngleEmbedding"]
