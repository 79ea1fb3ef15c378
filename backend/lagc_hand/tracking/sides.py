"""Left or right: identity evidence that survives two hands touching.

MediaPipe's handedness label is per-frame and unreliable exactly when the
hands interact (both hands often get the same label, or a hand seen from its
edge flips).  The evidence used here, strongest first:

1. **Chirality from the 3D keypoints** (:func:`chirality_score`): with
   ``a = index_mcp - wrist``, ``b = pinky_mcp - wrist`` and the palm normal
   ``n = a x b`` (in the camera frame, which is right-handed), a right hand's
   thumb and curled fingers lie on the ``+n`` side of the palm plane and a
   left hand's on the ``-n`` side.  The score is the sign of the triple
   product ``(a x b) . (p - palm_centre)`` over the thumb joints and the
   finger joints, the thumb weighted most (it is in front of the palm even in
   a flat hand).  Valid for any true, un-mirrored 3D reconstruction --
   MediaPipe world landmarks in camera axes, and crops that were flipped and
   flipped back (:mod:`.recovery` un-mirrors them).
2. **Track continuity** -- the tracker's Viterbi motion terms (not here).
3. **Position**: a person facing the camera holds the right hand on the
   image's left; a weak prior (hands cross).
4. **MediaPipe's label**: weak evidence only.

:func:`side_cost_table` turns 1, 3, 4 into the tracker's unary costs
(``-log P``); :func:`interaction_tracker_config` is the tracker
configuration the pipeline uses with these costs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from lagc_hand.engines.base import HandObservation
from lagc_hand.tracking.chirality import palm_offsets

THUMB_POINTS = np.array([2, 3, 4])  # thumb MCP, IP, tip
FINGER_POINTS = np.array([6, 7, 8, 10, 11, 12, 14, 15, 16, 18, 19, 20])  # PIP, DIP, tip of four fingers
#: Palm-plane offset (metres) at which the evidence saturates.
OFFSET_SCALE = 0.012


def chirality_score(keypoints3d: np.ndarray, w_thumb: float = 2.0) -> np.ndarray:
    """Signed evidence in [-1, 1] that hands are RIGHT hands, from their 3D shape.

    keypoints3d: (..., 21, 3) metres, public order, right-handed frame
    (camera frame).  Returns (...,): > 0 right, < 0 left, ~0 flat/undecided.
    """
    thumb, fingers = palm_offsets(keypoints3d, THUMB_POINTS, FINGER_POINTS)
    s = (w_thumb * thumb + fingers) / (w_thumb + 1.0)
    return np.tanh(s / OFFSET_SCALE)


@dataclass
class SideConfig:
    """Weights of the per-detection side evidence (x -log P per frame).

    w_chirality: 3D-shape chirality (strongest).
    w_label:     the engine's handedness label (weak).
    w_position:  image position prior (weak: right hand on the image's left).
    chirality_confidence: P(correct) of a saturated chirality score.
    label_confidence: cap on the label's P(correct).
    """

    w_chirality: float = 1.0
    w_label: float = 0.35
    w_position: float = 0.15
    chirality_confidence: float = 0.9
    label_confidence: float = 0.85


def side_probability(obs: HandObservation, image_width: Optional[float] = None,
                     cfg: SideConfig | None = None) -> float:
    """Combined P(right) of one observation (for display and tests)."""
    cl, cr = side_costs(obs, image_width, cfg)
    return float(1.0 / (1.0 + np.exp(cr - cl)))


def side_costs(obs: HandObservation, image_width: Optional[float] = None,
               cfg: SideConfig | None = None) -> tuple[float, float]:
    """(cost of calling ``obs`` LEFT, cost of calling it RIGHT), -log-likelihood units
    (one row of :func:`side_cost_table`)."""
    cl, cr = side_cost_table([obs], image_width, cfg)[0]
    return float(cl), float(cr)


def side_cost_table(obs: Sequence[HandObservation], image_width: Optional[float] = None,
                    cfg: SideConfig | None = None) -> np.ndarray:
    """(N, 2) costs of calling each observation LEFT / RIGHT, -log-likelihood units.

    image_width: pixels, for the position prior (skipped when None).  All N at once:
    the tracker scores every detection of a clip in one call.
    """
    cfg = cfg or SideConfig()
    eps = 1e-3
    out = np.zeros((len(obs), 2))
    if not len(obs):
        return out
    k3 = np.stack([np.asarray(o.keypoints3d, np.float64) for o in obs])  # (N, 21, 3)
    has3d = np.any(k3 != 0, axis=(1, 2))
    if has3d.any():
        c = chirality_score(k3[has3d])
        p = np.clip(0.5 + (cfg.chirality_confidence - 0.5) * c, eps, 1 - eps)
        out[has3d] -= cfg.w_chirality * np.log(np.stack([1 - p, p], -1))
    lab = np.clip([float(o.handedness) for o in obs], 1 - cfg.label_confidence, cfg.label_confidence)
    out -= cfg.w_label * np.log(np.stack([1 - lab, lab], -1))
    if image_width:
        x = np.array([float(np.mean(o.keypoints2d[:, 0])) for o in obs]) / float(image_width)  # 0 left .. 1 right
        p = np.clip(0.5 + 0.3 * (0.5 - x) * 2, eps, 1 - eps)
        out -= cfg.w_position * np.log(np.stack([1 - p, p], -1))
    return out


def interaction_tracker_config(image_width: Optional[float] = None, cfg: SideConfig | None = None):
    """A :class:`lagc_hand.tracking.TrackerConfig` whose identity evidence is
    :func:`side_costs` (chirality first, the label weak)."""
    from lagc_hand.tracking import TrackerConfig

    scfg = cfg or SideConfig()
    return TrackerConfig(side_costs=lambda hs: side_cost_table(hs, image_width, scfg))
