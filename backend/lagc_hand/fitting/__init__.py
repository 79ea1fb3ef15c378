"""Fitting: hand-model pose per frame + one shape per hand, batched in torch (see :mod:`.fit`)."""
from lagc_hand.fitting.fit import FitConfig, HandFit, fit_hand, pose_keypoints
from lagc_hand.fitting.limits import anatomical_frames, joint_limit_boxes

__all__ = ["FitConfig", "HandFit", "fit_hand", "pose_keypoints", "anatomical_frames", "joint_limit_boxes"]
