"""Cleanup: temporal filtering of fitted hand motion (see :mod:`.clean`).

The filters themselves are numpy-only in ``lagc_hand_blender.core.filters`` so
the Blender add-on can run them too; this package is the backend's wrapper.
"""
from lagc_hand.cleanup.clean import CleanConfig, CleanedHand, ImageAlign, clean_hand

__all__ = ["CleanConfig", "CleanedHand", "ImageAlign", "clean_hand"]
