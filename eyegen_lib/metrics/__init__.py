"""Metrics every notebook reports with (see each function's docstring for its convention)."""
from .perceptual import LPIPS, lpips_distance

__all__ = ["LPIPS", "lpips_distance"]
