"""De-duplication: two landmark sets that describe the same physical hand become one.

During interaction MediaPipe (and the recovery passes) often put two hands on
one physical hand -- one with each label, or the same hand found twice by the
tracker and by a crop.  Labels say nothing here; geometry does:

* **keypoint agreement**: mean 2D distance between corresponding keypoints,
  relative to the hand's size.  Two real hands, even palm to palm, differ by
  more than a third of a hand; two fits of one hand agree to a few percent.
* **box overlap** (IoU): a high IoU with *moderate* keypoint agreement is
  also one hand, whose keypoints were mirrored or shifted by one finger
  (a hand seen as its mirror image has the same box, the same wrist and the
  same middle finger, but its thumb and pinky exchanged).
* **fragment**: a much smaller skeleton whose box lies inside another's is a
  fit of one finger or part of that hand (seen on a real close-up photo: a
  0.5x-size "hand" folded onto the index finger of the hand holding a phone).
  Two real hands of one person differ little in size, so this does not merge them.
* **nested**: centres within ``nested_centre`` hand sizes, boxes overlapping by
  ``nested_overlap`` and wrists within ``nested_wrist`` hand sizes: a second
  skeleton on one hand in another pose or mirrored (its keypoints 0.25-0.45 hand
  sizes off pairwise), seen on real clips (slpio_asl_wrong_what f36-37,
  mpsamples_gesture f109-122, mmaction2 f149, dynhamr_demo3 f208/463).  Real
  hands that cross or interlace also share a centre, but their wrists sit on
  opposite sides (slp_pose_FOOTBALL: >= 1.5 hand sizes apart); none of the
  rendered interacting clips' detections trigger it.

Of a duplicate pair the higher-score observation is kept; when the two agree
closely (same keypoints) their keypoints are averaged, weighted by score.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from lagc_hand.engines.base import HandObservation


@dataclass
class DedupConfig:
    """Thresholds (dimensionless).

    same_hand_dist:  mean keypoint distance / hand size under which two sets are one hand.
    merge_dist:      ... under which they are merged (averaged) rather than one dropped.
    iou_same:        box IoU above which two sets are one hand if their keypoints
                     also agree within ``iou_hand_dist``.
    iou_hand_dist:   the looser keypoint threshold that goes with ``iou_same``
                     (wrist and middle finger only, which a mirrored fit keeps).
    fragment_inside: share of the smaller box inside the larger one above which ...
    fragment_size:   ... a skeleton smaller than this x the other's size is a fragment of it.
    nested_centre:   keypoint-centre distance / the larger hand size under which ...
    nested_overlap:  ... with a box overlap (IoU or the smaller box's share inside) above this ...
    nested_wrist:    ... and wrists closer than this x the larger hand size, two sets are one hand.
    """

    same_hand_dist: float = 0.25
    merge_dist: float = 0.08
    iou_same: float = 0.6
    iou_hand_dist: float = 0.3
    fragment_inside: float = 0.7
    fragment_size: float = 0.65
    nested_centre: float = 0.2
    nested_overlap: float = 0.45
    nested_wrist: float = 0.8


def hand_size(kp2d: np.ndarray) -> float:
    """Hand size in pixels of (21, 2) keypoints: wrist -> middle MCP plus the
    index-to-pinky MCP span (stable across finger poses)."""
    k = np.asarray(kp2d, np.float64)
    return max(float(np.linalg.norm(k[9] - k[0]) + np.linalg.norm(k[5] - k[17])), 1.0)


def keypoint_box(kp2d: np.ndarray) -> np.ndarray:
    """(4,) ``x0, y0, x1, y1`` pixels around (21, 2) keypoints."""
    k = np.asarray(kp2d, np.float64)
    return np.array([k[:, 0].min(), k[:, 1].min(), k[:, 0].max(), k[:, 1].max()])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x0, y0, x1, y1`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: max(0.0, r[2] - r[0]) * max(0.0, r[3] - r[1])  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def box_inside(a: np.ndarray, b: np.ndarray) -> float:
    """Share of box ``a``'s area that lies inside box ``b`` (``x0, y0, x1, y1``)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    return ix * iy / area if area > 0 else 0.0


#: Keypoints a mirrored (wrong-chirality) fit of the same hand keeps in place: wrist and middle finger.
AXIS_POINTS = np.array([0, 9, 10, 11, 12])


def is_guess(obs: HandObservation) -> bool:
    """Whether an observation was not found by the detector itself: recovered by
    a crop search (``extra["recovered"]``, :mod:`lagc_hand.engines.recovery`) or
    followed by optical flow (``extra["followed"]``, :mod:`lagc_hand.engines.follow`)."""
    return bool(obs.extra.get("recovered")) or bool(obs.extra.get("followed", False))


def same_hand(a: HandObservation, b: HandObservation, cfg: DedupConfig | None = None) -> tuple[bool, float]:
    """Whether two observations describe one physical hand; also returns their
    relative keypoint distance."""
    cfg = cfg or DedupConfig()
    size = 0.5 * (hand_size(a.keypoints2d) + hand_size(b.keypoints2d))
    d = float(np.linalg.norm(a.keypoints2d - b.keypoints2d, axis=-1).mean()) / size
    if d < cfg.same_hand_dist:
        return True, d
    ba, bb = keypoint_box(a.keypoints2d), keypoint_box(b.keypoints2d)
    sa, sb = hand_size(a.keypoints2d), hand_size(b.keypoints2d)
    small, large = (ba, bb) if sa < sb else (bb, ba)
    if min(sa, sb) < cfg.fragment_size * max(sa, sb) and box_inside(small, large) > cfg.fragment_inside:
        return True, d
    iou = box_iou(ba, bb)
    if _nested(a.keypoints2d, b.keypoints2d, max(sa, sb), max(iou, box_inside(small, large)), cfg):
        return True, d
    if iou > cfg.iou_same:
        d_axis = float(np.linalg.norm(a.keypoints2d[AXIS_POINTS] - b.keypoints2d[AXIS_POINTS], axis=-1).mean()) / size
        if d_axis < cfg.iou_hand_dist:
            return True, d
    return False, d


def _nested(ka: np.ndarray, kb: np.ndarray, size: float, overlap: float, cfg: DedupConfig) -> bool:
    """The nested-skeleton rule of :func:`same_hand`: (21, 2) px keypoints, ``size``
    the larger hand size (px), ``overlap`` the larger of IoU and inside share."""
    centre = float(np.linalg.norm(ka.mean(0) - kb.mean(0))) / size
    wrist = float(np.linalg.norm(ka[0] - kb[0])) / size
    return centre < cfg.nested_centre and overlap > cfg.nested_overlap and wrist < cfg.nested_wrist


def _merge(keep: HandObservation, other: HandObservation) -> HandObservation:
    """Score-weighted average of two close fits of one hand (keeps ``keep``'s identity evidence)."""
    wa, wb = max(keep.score, 1e-3), max(other.score, 1e-3)
    f = wa / (wa + wb)
    kp2 = (f * keep.keypoints2d + (1 - f) * other.keypoints2d).astype(np.float32)
    k3a = keep.keypoints3d - keep.keypoints3d.mean(0)
    k3b = other.keypoints3d - other.keypoints3d.mean(0)
    kp3 = (f * k3a + (1 - f) * k3b + keep.keypoints3d.mean(0)).astype(np.float32)
    extra = dict(keep.extra)
    extra["merged"] = int(extra.get("merged", 0)) + 1
    return replace(keep, keypoints2d=kp2, keypoints3d=kp3, box=keypoint_box(kp2).astype(np.float32), extra=extra)


def dedupe(hands: Sequence[HandObservation], cfg: DedupConfig | None = None) -> list[HandObservation]:
    """Remove duplicate observations of one physical hand.

    Greedy by score: each observation is compared with those already kept;
    a duplicate is merged into the kept one (close agreement) or dropped.
    Returns the kept observations, highest score first.
    """
    cfg = cfg or DedupConfig()
    kept: list[HandObservation] = []
    for h in sorted(hands, key=lambda h: -h.score):
        for i, k in enumerate(kept):
            same, d = same_hand(k, h, cfg)
            if same:
                if d < cfg.merge_dist:
                    kept[i] = _merge(k, h)
                break
        else:
            kept.append(h)
    return kept
