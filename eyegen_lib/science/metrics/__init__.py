"""Metrics every notebook reports with (see each function's docstring for its convention)."""
from ...core.gaze import angular_error_deg
from .identity import identity_scores, iris_colour_r, skin_tone_r
from .image import (
                    OPENEDS_SIZE,
                    OPENEDS_TEST_MASKS,
                    blurriness,
                    challenge_score,
                    leaderboard_score,
                    mse,
                    psnr,
                    ssim,
                    to_255,
                    to_grey,
)
from .perceptual import LPIPS, lpips_distance
from .segmentation import confusion_matrix, iou_from_confusion, iou_per_class, mean_iou, per_image_miou

__all__ = ["LPIPS", "lpips_distance", "angular_error_deg", "OPENEDS_SIZE", "OPENEDS_TEST_MASKS", "blurriness",
           "challenge_score", "leaderboard_score", "mse", "psnr", "ssim", "to_255", "to_grey", "confusion_matrix", "iou_per_class", "iou_from_confusion", "mean_iou", "per_image_miou",
           "identity_scores", "skin_tone_r", "iris_colour_r"]
