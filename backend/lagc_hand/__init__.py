"""LAGC-Hand backend: video -> observations -> tracks -> fitted hands -> cleaned motion.

Stages (one sub-package each): ``video`` (decode), ``engines`` (per-frame hand
observations), ``tracking`` (left/right identities), ``placement`` (roots in
the camera frame), ``fitting`` (hand-model pose and shape), ``cleanup``
(temporal filtering), then the HandMotion file (``lagc_hand_blender.core.handmotion``).
"""
__version__ = "0.1.0"
