"""Seg2Eye §4.3 (Buehler et al., 2019): content- and style-consistent eye generation.

Split like the official code (which is SPADE's): ``normalization`` (SPADE, style modulation and
their average), ``generator``, ``encoder`` (the style encoder over K images), ``discriminator``
(multi-scale PatchGAN), ``loss`` (hinge, feature matching, Gram), ``config``, ``trainer`` and ``style`` (style codes per person, interpolation, palette).
"""
from .config import Seg2EyeConfig
from .discriminator import MultiScaleDiscriminator, PatchDiscriminator
from .encoder import StyleEncoder, aggregate
from .generator import Seg2Eye, Seg2EyeGenerator, SpadeStyleResBlock, one_hot
from .loss import feature_matching_loss, gram_loss, hinge_d_loss, hinge_g_loss
from .normalization import NORMALISATIONS, SPADE, SpadeStyleBlock, StyleModulation
from .style import group_style_codes, interpolate_style, style_palette, style_preservation, transition_evenness
from .trainer import Seg2EyeTrainer, StyleBatches, generate, seg2eye_run, train_seg2eye

__all__ = ["Seg2EyeConfig", "MultiScaleDiscriminator", "PatchDiscriminator", "StyleEncoder", "aggregate",
           "Seg2Eye", "Seg2EyeGenerator", "SpadeStyleResBlock", "one_hot", "feature_matching_loss", "gram_loss",
           "hinge_d_loss", "hinge_g_loss", "SPADE", "NORMALISATIONS", "SpadeStyleBlock", "StyleModulation", "Seg2EyeTrainer",
           "StyleBatches", "generate", "seg2eye_run", "train_seg2eye",
           "group_style_codes", "interpolate_style", "style_palette", "style_preservation", "transition_evenness"]
