"""Shared test fixtures (additive: other test owners may add theirs below)."""
from __future__ import annotations

import numpy as np
import pytest

from lagc_hand_blender.core.skeleton import MANO_PARENTS, TIP_PARENTS


def skeleton_hand_params(side: str = "right"):
    """A minimal MANO-layout hand model: 16 joint vertices + 5 tip vertices.

    Frame as the open model: wrist at the origin, fingers along -x, thumb
    along +z, palm facing -y (right hand); the left hand is mirrored x -> -x.
    Shape directions: overall size, finger length, palm width (+ 7 small ones).
    It is independent of the open model, so fit tests check the fitter's maths
    against a model whose geometry the test fully knows.
    """
    from lagc_hand.handmodel.params import HandModelParams

    j = np.zeros((16, 3))
    # MCPs (index 1, middle 4, pinky 7, ring 10) and finger directions.
    bases = {1: (-0.092, 0.0, 0.026), 4: (-0.095, 0.0, 0.006), 10: (-0.090, 0.0, -0.013), 7: (-0.082, 0.0, -0.030)}
    lengths = {1: (0.040, 0.025, 0.020), 4: (0.045, 0.028, 0.022), 10: (0.042, 0.027, 0.021), 7: (0.033, 0.020, 0.018)}
    tips = {}
    for b, p in bases.items():
        pos = np.array(p)
        j[b] = pos
        l1, l2, l3 = lengths[b]
        j[b + 1] = pos + [-l1, 0, 0]
        j[b + 2] = pos + [-l1 - l2, 0, 0]
        tips[b + 2] = pos + [-l1 - l2 - l3, 0, 0]
    cmc = np.array([-0.025, -0.012, 0.022])
    d = np.array([-0.55, -0.25, 0.8])
    d /= np.linalg.norm(d)
    j[13], j[14], j[15] = cmc, cmc + 0.038 * d, cmc + 0.070 * d
    tips[15] = cmc + 0.095 * d
    tip_pts = np.stack([tips[p] for p in TIP_PARENTS])  # thumb, index, middle, ring, pinky
    v = np.concatenate([j, tip_pts])
    extra = np.array([[-0.05, -0.01, 0.02], [-0.05, -0.01, -0.02], [-0.05, 0.012, 0.0]])
    v = np.concatenate([v, extra])
    nv = len(v)
    weights = np.zeros((nv, 16))
    weights[np.arange(16), np.arange(16)] = 1.0
    weights[16 + np.arange(5), TIP_PARENTS] = 1.0
    weights[21:, 0] = 1.0
    jreg = np.zeros((16, nv))
    jreg[np.arange(16), np.arange(16)] = 1.0
    shapedirs = np.zeros((nv, 3, 10))
    shapedirs[:, :, 0] = 0.1 * v
    shapedirs[:, 0, 1] = 0.1 * np.minimum(v[:, 0] + 0.08, 0)  # longer fingers
    shapedirs[:, 2, 2] = 0.1 * v[:, 2]  # wider palm
    shapedirs[:, :, 3:] = np.random.default_rng(0).normal(scale=0.001, size=(nv, 3, 7))
    faces = np.array([[0, 1, 4], [0, 4, 10], [0, 10, 7], [0, 13, 1], [21, 22, 23]])
    if side == "left":
        v = v * [-1, 1, 1]
        shapedirs = shapedirs * np.array([-1, 1, 1])[None, :, None]
        faces = faces[:, ::-1]
    kt = np.stack([MANO_PARENTS, np.arange(16)])
    return HandModelParams(
        v_template=v, f=faces, weights=weights, J_regressor=jreg, kintree_table=kt, shapedirs=shapedirs,
        posedirs=np.zeros((nv, 3, 135)), hands_components=np.eye(45), hands_mean=np.zeros(45),
        tip_vertex_ids=np.arange(16, 21), side=side, model_id="test-skeleton-hand",
    ).validate().normalized()


@pytest.fixture
def skeleton_hand():
    """Factory: ``skeleton_hand(side)`` -> torch HandModel of :func:`skeleton_hand_params`."""
    from lagc_hand.handmodel import HandModel

    return lambda side="right": HandModel(skeleton_hand_params(side))
