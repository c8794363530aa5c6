"""He, Spurr, Zhang, Hilliges (ICCV 2019): photo-realistic monocular gaze redirection with a GAN.

Split as SPADE's code is: ``config`` (shapes, weights, ablations, gaze codes), ``networks``
(generator, discriminator), ``losses`` (WGAN-GP, perceptual), ``trainer`` (batches, schedule, the
critic and generator steps), ``inference`` (redirecting eyes) and ``claims`` (the paper's claims and
ours, judged from notebook 06's scores).

A generator ``G(x, g)`` repaints a 64 × 64 RGB eye patch ``x`` (in [−1, 1]) so that it looks in
the direction ``g``; a discriminator with two heads, a WGAN critic and a gaze regressor (StarGAN
style, §4.1), judges realism and gaze. Shapes follow the paper's appendix tables (8.1) and the
authors' TF code (``HzDmS/gaze_redirection``):

* **Generator** — input: the patch ⊕ the target gaze tiled to 2 constant maps (5 channels).
  conv7×7-64 (stride 1, pad 3) · IN · ReLU; conv4×4 s2 (pad 1) to 128 and 256, each IN · ReLU;
  6 residual blocks of [conv3×3 · IN · ReLU · conv3×3 · IN] + identity at 256 × 16 × 16;
  transposed conv4×4 s2 (pad 1) to 128 and 64, each IN · ReLU; conv7×7-3 · tanh.
  Instance norm with a learned scale and shift (TF ``instance_norm``, ε = 1e−5); no conv biases.
  (Ours by default: a fourth output channel, the keep mask, and nearest ×2 + conv3×3 in place of the
  transposed convs — see the departures below.)
* **Discriminator** — a shared trunk of **5** conv4×4 s2 (pad 1) layers, 64 → 128 → 256 → 512 →
  1024 channels, each LeakyReLU(0.01), with biases and *no* normalisation (a WGAN-GP critic's
  gradient penalty is per sample, which batch norm would break): 64 px → 2 px. Two heads on the
  2 × 2 × 1024 map, with the kernel the size of that map (``image_size / 32``), no bias:
  the critic ``Conv(2×2, stride 1, pad 1)`` → a 3 × 3 patch of scores, the gaze regressor
  ``Conv(2×2, stride 1, pad 0)`` → 2 values. (A sixth stride-2 layer to 2048 would leave a 1 × 1
  map; the paper's table and code stop at 1024, and so do we.)
* All conv weights start N(0, 0.02), biases 0 (the official code's initialisers).

Gaze is given to the public functions as (pitch, yaw) in radians (the project's convention) and
fed to the networks as a *gaze code*: degrees divided by ``gaze_scale_deg`` = (10°, 15°), He et al.'s
normalisation of Columbia's ±10° vertical × ±15° horizontal grid to [−1, 1] (labels ``[H/15, V/10]``).

Losses (eq. 1–9 with the official code's weights), on paired data (x_s at gaze g_s, x_t at g_t):

* critic: ``D(G(x_s, g_t)) − D(x_s)`` (means over the 3 × 3 patch and the batch)
  + λ_gp = 10 · gradient penalty ``(‖∇_x̂ ΣD(x̂)‖₂ − 1)²`` at random interpolates x̂ of real and fake
  + λ_gaze = 5 · MSE(gaze head(x_s), g_s) — the gaze head learns on real images only;
* generator: ``−D(G(x_s, g_t))`` + λ_gaze = 5 · MSE(gaze head(G(x_s, g_t)), g_t) (D fixed)
  + λ_cycle = 50 · L1(G(G(x_s, g_t), g_s), x_s) + λ_identity = 25 · L1(G(x_s, g_s), x_s) (ours, below)
  + λ_perceptual = 100 · (content + style) against the ground truth x_t, on ImageNet VGG-16:
  content = MSE of conv5_3 activations; style = Σ over conv1_2, conv2_2, conv3_3, conv4_3 of
  ``‖Gram(φ(fake)) − Gram(φ(x_t))‖² / |φ|`` with ``Gram = φᵀφ / (H·W·C)`` per image and |φ| the
  number of activations (the official ``tf.nn.l2_loss · 2 / size``). VGG-16 comes from the
  project's offline weights (:mod:`eyegen_lib.science.backbones`).

  *What VGG sees* (``vgg_input``). The official code passes the generator's [−1, 1] images straight
  to slim's ``vgg_16``, whose weights expect mean-subtracted 0..255 pixels: the network sees a faint,
  almost black image, its activations — and so the perceptual losses — are about two orders of
  magnitude smaller than on a properly scaled image, and λ_perceptual = 100 was chosen at that scale.
  ``vgg_input="official"`` (the default) reproduces it with our torchvision weights by feeding the
  [−1, 1] values as if they were mean-subtracted 0..255 pixels (``images / (255·std)``);
  ``"imagenet"`` feeds properly normalised images. Measured at the ``cpu`` profile: with
  ``"imagenet"`` the content term (≈ 30–60 after λ) dominates the generator's objective, the cycle
  L1 stays at ≈ 0.3 for 400 updates and the output is colour noise; with ``"official"`` the
  perceptual terms fall to ≈ 0.03 and the cycle loss falls.

**Our departures from the authors' code** (each a named switch; the ``authors`` variant undoes them
all): an identity term in the objective, a generator that keeps its input where it need not change it,
the paired target's L1 in the objective, and resize-convolutions in the decoder.

*The identity term* (``lambda_identity``, 25; 0 removes it, the ``no_identity`` variant). Under the
official objective our GAN
swapped skin tones: dark skin came out light and light skin dark (source/output skin-tone r −0.96
for the zoo's former 10,000-iteration model, renderer 2026.12-1, :mod:`eyegen_lib.science.metrics.identity`;
its 1,000-iteration snapshot is the zoo's ``no_identity`` entry, r −0.94).
Nothing in that objective tells a swap from the identity: the cycle term is satisfied by any
mapping that the way back undoes, a swap included; the critic judges the distribution of outputs,
which a swap keeps; the gaze head does not look at skin; and the perceptual terms, fed as the
official code feeds them, barely see colour (a 30-grey-level tone shift of the target costs 0.0006
after λ, against 0.07 for our outputs' typical error). The generator's instance norms hide
absolute brightness from it, so a random generator's output tone correlates with its input's at
r ≈ ±0.5, with a sign set by the initialisation; training amplifies whichever it is. In isolation
runs at ``cpu`` (120 iterations, one change at a time; ``benchmarks/gaze_gan_identity.py``) the
official objective swapped in 2 of 4 seeds (r −0.60, −0.93), while with the term below all 3 seeds
kept their skin (r 0.89–0.91) at lower LPIPS. Without the perceptual terms both seeds tried kept
their skin (r 0.91, 0.92), too few to blame those terms; VGG fed normalised images (r 0.77) and the
paper's learning rate (r 0.11) ran one seed each, and each passed below 0 on the way. CycleGAN's identity loss (Zhu et
al. 2017, §5.2, added there "to preserve color composition between the input and output") is the
smallest change that breaks the tie: redirecting an eye to the gaze it already has must return it,
``λ_identity · L1(G(x_s, g_s), x_s)``, at half the cycle weight as in CycleGAN. It costs one more
generator pass per generator step.

*The keep mask* (``generator_output``: ``"blend"``, ours; ``"image"``, the authors'). With the identity
term alone the skin stayed but every pixel was still repainted through the 16 × 16 bottleneck: at the
zoo's 2,000 ``cpu`` iterations the full recipe's protocol LPIPS was 0.143 against 0.050 for the
unchanged input, and an eye redirected to the gaze it already had came back 0.18–0.19 away from
itself in LPIPS (its *repaint floor*, about its whole distance to the target). GANimation's
attention-mask generator (Pumarola et al., ECCV 2018, eq. 1) lets pixels through instead:
``y = K·x + (1 − K)·C``, colour C and mask K from the last conv. In isolation runs at ``cpu``
(``benchmarks/gaze_gan_identity.py``, seed 0, a tenth of the protocol, where the unchanged input
scores LPIPS 0.047 and gaze error 16.5°): the identity recipe without the mask reached LPIPS 0.199
(floor 0.192, gaze error 4.6°) at 600 iterations; with the mask, 0.055 (floor 0.009, 15.4°) at 100
and 0.059 (floor 0.001, 12.4°) at 600, skin-tone r 1.00 throughout; the mask without the identity
term, 0.115 (floor 0.070) at 100. The mask trades gaze movement for fidelity at these lengths.

*The target's L1* (``lambda_target``, 50; 0 removes it, the ``no_target`` variant):
``λ_target · L1(G(x_s, g_t), x_t)``, the paired target's pixels, as pix2pix (Isola et al. 2017) trains a
paired translation — the authors pull towards the target only through VGG. Why (issue 27): with the mask
and the identity term alone, the zoo's former 2,000-iteration model kept nearly every pixel (mean K 0.988
over the 4,200 protocol pairs, K < 0.5 on 0.9 % of them), and its painted image C was still noise, since
no term reaches C where K = 1: the cycle and identity terms are met exactly by K = 1, the critic takes the
input for real, and VGG at the official scale barely sees the image. Where K dipped the noise showed as
red and white speckles around the iris: the gaze estimator moved while LPIPS rose above the unchanged
input's (protocol LPIPS 0.080 against 0.050; a second run of that recipe at 2,000 iterations: 0.096,
gaze error 11.2° against the input's 17.0°). Isolation runs
(``benchmarks/gaze_gan_identity.py``, seed 0, a tenth of the protocol, unchanged input LPIPS 0.047, gaze
16.5°; LPIPS / repaint floor / gaze error °):

==========================  ==================  ==================  ==================  =================
variant                     200 iterations      400                 600                 800
==========================  ==================  ==================  ==================  =================
blend (mask + identity)     0.062 / .003 / 14.9 0.103 / .021 / 11.8 0.059 / .001 / 12.4 —
blend_resize                0.054 / .012 / 14.4 0.118 / .066 / 13.6 0.068 / .001 / 12.3 —
blend_target_50             0.053 / .008 / 15.2 0.088 / .014 / 12.0 0.065 / .001 / 11.5 —
blend + λ_paint 50          0.047 / .000 / 16.5 — (K shut: the output is the input)
warp + target + λ_paint 50  0.047 / .000 / 16.5 0.047 / .000 / 16.5 — (K shut)
warp + target 50            0.131 / .083 / 14.0 0.107 / .026 / 10.5 0.052 / .003 / 6.0  0.051 / .008 / 4.7
identity, no mask, target   0.303 / .305 / 13.2 — (the repainting generator's blur)
blend_target_50_resize      —                   0.086 / .008 / 12.1 —                   —
==========================  ==================  ==================  ==================  =================

Pulling C itself to the target everywhere (``λ_paint``, tried in 2eee414 and removed) left the mask shut:
a blurred C is never worth letting through. A warping generator (``K·warp(x, F) + (1 − K)·C``, also
2eee414) never moved its flow (mean |F| 0.008 px after 800 iterations, the gradient of a pixel loss
cannot see an iris 5 px away) — but its mask opened and C learnt an iris under the target's L1, which
did the work: gaze error 4.7° at 800 iterations. Its painted iris showed vertical stripes, the
transposed convolutions' checkerboard (Odena, Dumoulin, Olah, Distill 2016), now that C is seen: hence
*resize-convolutions* (``generator_upsampling``, "resize": nearest ×2 then conv3×3; "deconv" is the
authors'). At zoo length (``cpu``, 3,000 iterations, constant rate to 1,500 then linear decay to 0; the
whole protocol, 4,200 pairs) this recipe scores LPIPS 0.0427 against the unchanged input's 0.0499, gaze
error 3.35° against 17.0°, source/output skin-tone r 1.000 and iris-colour r 0.81; on the way, 0.0774 /
8.6° at 1,000, 0.0711 / 10.4° at 1,500, 0.0501 / 3.4° at 2,000 and 0.0454 / 3.5° at 2,500 — most of the
gain comes while the learning rate decays (``python benchmarks/gaze_gan_identity.py --checkpoints
zoo/cpu/gaze_gan_full*.pt``). 06 §5c shows each recipe's mask and painting.

Setting λ_gaze, λ_cycle or λ_perceptual to 0 removes that term (and its cost) — the paper's
ablations (§5.5: one model per removed term); λ_identity = 0 or λ_target = 0 removes one of ours. λ_gaze weighs both gaze terms, the critic's and the
generator's, as the official code uses one weight (5) for both. Optimisation: Adam, lr 2e−4, β = (0.5, 0.999), batch 32; **5 critic steps per generator
step**, each on its own mini-batch (the official loop draws a batch per update); the learning rate
is constant for the first half of training and decays linearly to 0 over the second (the paper's
150 + 150 epochs). One training *step* here is one iteration = ``n_critic`` critic updates + 1
generator update, and ``steps`` counts generator updates.
"""
from .config import (
                     ABLATIONS,
                     D_LOSS_KEYS,
                     DISCRIMINATOR_WIDTHS,
                     G_LOSS_KEYS,
                     GENERATOR_OUTPUTS,
                     GENERATOR_UPSAMPLINGS,
                     GENERATOR_WIDTHS,
                     KEEP_LOGIT_INIT,
                     PAPER_GENERATOR_STEPS,
                     VGG_INPUTS,
                     GazeGANConfig,
                     code_to_gaze,
                     gaze_to_code,
)
from .inference import estimate_gaze, keep_masks, redirect, redirect_set
from .losses import (
                     VGG16Perceptual,
                     content_loss,
                     gradient_penalty,
                     gram_matrix,
                     random_interpolates,
                     style_loss,
                     wgan_critic_loss,
)
from .networks import Discriminator, GazeGAN, Generator, ResidualBlock
from .trainer import GazeGANTrainer, IterationBatches, gaze_gan_run, linear_decay, train_gaze_gan

__all__ = ["GazeGANConfig", "GazeGAN", "Generator", "Discriminator", "ResidualBlock", "VGG16Perceptual",
           "gaze_to_code", "code_to_gaze", "random_interpolates", "gradient_penalty", "wgan_critic_loss",
           "gram_matrix", "content_loss", "style_loss", "IterationBatches", "GazeGANTrainer",
           "gaze_gan_run", "train_gaze_gan", "redirect", "redirect_set", "estimate_gaze", "keep_masks",
           "linear_decay", "VGG_INPUTS", "GENERATOR_OUTPUTS", "GENERATOR_UPSAMPLINGS", "KEEP_LOGIT_INIT", "D_LOSS_KEYS", "G_LOSS_KEYS",
           "PAPER_GENERATOR_STEPS", "ABLATIONS", "GENERATOR_WIDTHS", "DISCRIMINATOR_WIDTHS"]
