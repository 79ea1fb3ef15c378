"""The MediaPipe engine on rendered hands of the open model (known ground truth),
and the engine registry."""
from __future__ import annotations

import numpy as np
import pytest

from hand_helpers import palm_facing_camera, render_hands
from lagc_hand.engines import create_engine, engine_names
from lagc_hand.errors import EngineUnavailable, InputError
from lagc_hand.tracking import chirality_evidence


def _project(P, K):
    return P[..., :2] / P[..., 2:3] * K[0, 0] + K[:2, 2]


@pytest.fixture(scope="module")
def two_hand_image(open_models):
    hands = [(open_models["right"], palm_facing_camera("right"), [-0.12, 0.08, 0.5]),
             (open_models["left"], palm_facing_camera("left"), [0.12, 0.08, 0.5])]
    return render_hands(hands)


def test_mediapipe_conventions(two_hand_image):
    img, K, gt = two_hand_image
    with create_engine("mediapipe") as eng:
        for i in range(3):
            obs = eng.process(img, i / 30)
    assert len(obs) == 2
    for o in obs:
        side = 0 if o.keypoints2d[0, 0] < 320 else 1  # gt[0] = right hand (image left)
        is_right = side == 0
        # Handedness is un-mirrored: the real right hand gets P(right) > 0.5.
        assert (o.handedness > 0.5) == is_right
        # 2D keypoints land on the rendered joints (pixels).
        err = np.linalg.norm(o.keypoints2d - _project(gt[side], K), axis=1)
        assert np.median(err) < 12.0
        # World landmarks are metric, in camera axes (x right, y down).
        k3 = o.keypoints3d - o.keypoints3d[0]
        g = gt[side] - gt[side][0]
        for a in (0, 1):
            assert np.corrcoef(k3[:, a], g[:, a])[0, 1] > 0.95
        assert 0.7 < np.linalg.norm(k3, axis=1).mean() / np.linalg.norm(g, axis=1).mean() < 1.4
        # 3D chirality agrees (a flipped z axis would flip it).
        assert (chirality_evidence(o.keypoints3d) > 0) == is_right
        assert 0 <= o.score <= 1 and o.box is not None


def test_mediapipe_no_hands_and_bad_image():
    with create_engine("mediapipe") as eng:
        assert eng.process(np.full((240, 320, 3), 128, np.uint8), 0.0) == []
        with pytest.raises(InputError):
            eng.process(np.zeros((10, 10), np.uint8), 0.0)


def test_registry():
    assert "mediapipe" in engine_names() and "lagc" in engine_names()
    with pytest.raises(EngineUnavailable, match="unknown engine"):
        create_engine("nope")
    with pytest.raises(EngineUnavailable):
        create_engine("lagc")  # no checkpoint (or module missing): a clear message, not a crash
