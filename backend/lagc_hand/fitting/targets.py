"""Synthetic fitting targets: random, often out-of-range poses of a model plus noise.

The fit's benchmark (``bench/speed.py``) and its convergence tests use the same
recipe, so a throughput figure and a tested accuracy describe the same problem.
"""
from __future__ import annotations

import numpy as np
import torch

from lagc_hand.handmodel.torch_rotations import axis_angle_to_matrix


def random_pose_targets(model, frames: int, seed: int = 0, noise_m: float = 0.003,
                        depth_m: float = 0.5) -> np.ndarray:
    """Keypoints of ``model`` (a HandModel) in ``frames`` random poses.

    Joint axis-angles are N(0, 0.3 rad) per component (the global one 4x wider),
    so many poses lie outside the anatomical limits; the wrist sits ``depth_m``
    metres in front of the camera; Gaussian noise of ``noise_m`` metres is added.
    Returns (frames, 21, 3) float64 metres, camera frame, public order.
    """
    rng = np.random.default_rng(seed)
    aa = rng.normal(scale=0.3, size=(frames, 16, 3))
    aa[:, 0] *= 4
    dtype = model.v_template.dtype
    with torch.no_grad():
        kp = model.forward_rotmat(axis_angle_to_matrix(torch.as_tensor(aa, dtype=dtype)),
                                  transl=torch.as_tensor(np.tile([0.0, 0.0, depth_m], (frames, 1)), dtype=dtype),
                                  return_vertices=False).keypoints.cpu().numpy().astype(np.float64)
    return kp + rng.normal(scale=noise_m, size=kp.shape)
