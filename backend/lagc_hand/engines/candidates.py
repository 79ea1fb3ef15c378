"""Hand candidates beyond the palm detector, confirmed by the landmark model.

The palm detector misses hands that fill the frame, small hands, gloved or
partly hidden hands.  Each source here proposes rotated regions (:class:`Roi`)
where a hand is likely; :func:`confirm` runs the landmark model
(:mod:`.landmark_model`) on them, keeps those whose hand-presence score is
high, re-centres each on its own keypoints (MediaPipe's tracking step, one
more pass) and keeps it only if the presence stays high there.  Every survivor
then passes :func:`lagc_hand.engines.dedup.dedupe` against the hands already
found, so a candidate never adds a second skeleton to a hand.

Sources:

* :func:`body_rois` -- a body's wrist, index and pinky points (MediaPipe Pose,
  :mod:`.pose_model`)
  give the hand's place, direction and size, as MediaPipe Holistic does;
* :func:`grid_rois` -- multi-scale search on stills: the whole frame padded
  (a hand that fills it) and overlapping tiles at two smaller scales, each at
  several rotations;
* predicted regions in video come from the engine's memory
  (:mod:`.recovery`), not from here.

Measured on real footage (``bench/RESULTS.md``): the grid costs ~110-160
landmark passes per still (2-4 s on 2 busy cores), so in video it is not run;
hand-free photos give no candidate above the presence threshold.  Small gloved
hands (COCO skiers, 10-30 px) get presence ~0 even where the body's wrist points
to them: they stay missed.
All coordinates are full-image pixels, x right, y down.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from lagc_hand.engines.base import HandObservation
from lagc_hand.engines.dedup import DedupConfig, dedupe, hand_size, same_hand
from lagc_hand.engines.landmark_model import HandLandmarkModel, LandmarkResult, Roi, roi_from_keypoints
# The body model that feeds body_rois (MediaPipe Pose run directly; named here for the engine).
from lagc_hand.engines.pose_model import PoseModel  # noqa: F401


@dataclass
class CandidateConfig:
    """Candidate search options.

    presence:      landmark-model presence a candidate needs (first pass and after re-centring).
    min_keep_size: smallest hand (:func:`hand_size`, px) kept.
    pad_scale:     region side / max(W, H) of the padded whole-frame search.
    tile_scales:   tile sides / min(W, H) of the multi-scale grid.
    tile_overlap:  stride = side x (1 - overlap).
    angles:        rotations (degrees) tried per grid region (the model wants fingers up; a hand
                   up to 45 degrees off still passes, and the re-centring step then aligns it:
                   8 angles found the same hands on realdev as these 4 at 1.25x the passes).
    body_scales:   body-guided region side / wrist-to-hand-centre distance.
    body_angles:   rotations (degrees) tried around the body's forearm direction.
    min_visibility: pose landmark visibility a body wrist needs.
    """

    presence: float = 0.9
    min_keep_size: float = 12.0
    pad_scale: float = 1.2
    tile_scales: tuple = (0.75, 0.4)
    tile_overlap: float = 0.5
    angles: tuple = (0, 90, 180, 270)
    body_scales: tuple = (4.0, 5.5, 7.5)
    body_angles: tuple = (0, -35, 35)
    min_visibility: float = 0.3
    dedup: DedupConfig = field(default_factory=DedupConfig)


def _tiles(W: int, H: int, side: float, overlap: float) -> list[tuple[float, float]]:
    """Centres of overlapping square tiles of ``side`` covering a W x H image."""
    step = max(side * (1.0 - overlap), 1.0)
    def axis(n: int) -> np.ndarray:
        k = max(int(np.ceil((n - side) / step)) + 1, 1)
        return np.linspace(side / 2, n - side / 2, k) if k > 1 else np.array([n / 2.0])
    return [(float(x), float(y)) for y in axis(H) for x in axis(W)]


def grid_rois(W: int, H: int, cfg: Optional[CandidateConfig] = None) -> list[Roi]:
    """Multi-scale regions of a W x H still: padded whole frame, then tiles (see :class:`CandidateConfig`)."""
    cfg = cfg or CandidateConfig()
    rad = lambda angles: [np.deg2rad(a) for a in angles]  # noqa: E731
    out = [Roi(W / 2, H / 2, cfg.pad_scale * max(W, H), a) for a in rad(cfg.angles)]
    for f in cfg.tile_scales:
        side = f * min(W, H)
        out += [Roi(x, y, side, a) for x, y in _tiles(W, H, side, cfg.tile_overlap) for a in rad(cfg.angles)]
    return out


#: MediaPipe Pose landmark indices: (wrist, pinky, index) of the person's left and right hand.
POSE_HANDS = {"left": (15, 17, 19), "right": (16, 18, 20)}


def body_rois(pose_xyv: np.ndarray, cfg: Optional[CandidateConfig] = None) -> list[tuple[str, Roi]]:
    """Hand regions from one body's pose landmarks ((33, 3): x px, y px, visibility).

    The hand lies beyond the wrist along wrist -> (index + pinky) / 2; its size
    scales with that distance.  Returns (side of the body, region) pairs.
    """
    cfg = cfg or CandidateConfig()
    out = []
    for side, (w, p, i) in POSE_HANDS.items():
        if pose_xyv[w, 2] < cfg.min_visibility:
            continue
        wrist = pose_xyv[w, :2]
        tip = 0.5 * (pose_xyv[p, :2] + pose_xyv[i, :2])
        d = tip - wrist
        n = float(np.linalg.norm(d))
        if n < 2.0:
            continue
        base = float(np.arctan2(d[1], d[0]) + 0.5 * np.pi)  # fingers along the region's -y
        centre = wrist + d * 1.2
        for k in cfg.body_scales:
            for a in cfg.body_angles:
                out.append((side, Roi(float(centre[0]), float(centre[1]), k * n, base + np.deg2rad(a))))
    return out


def _plausible(r: LandmarkResult, W: int, H: int, cfg: CandidateConfig) -> bool:
    """A confirmed hand must be mostly inside the image, not tiny, and fill its region as hands do."""
    kp = r.keypoints2d
    inside = np.mean((kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H))
    size = hand_size(kp)
    return inside >= 0.6 and size >= cfg.min_keep_size and 0.15 <= size / r.roi.side <= 1.2


def confirm(model: HandLandmarkModel, image: np.ndarray, rois: Sequence[Roi], found: Sequence[HandObservation],
            cfg: Optional[CandidateConfig] = None, source: str = "candidate") -> list[HandObservation]:
    """New hands in ``rois`` that are not one of ``found``.

    Each region with presence >= ``cfg.presence`` is re-run on its own keypoints'
    region (one step of MediaPipe's tracking); the result must keep the presence,
    be plausible and not be the same hand as one found or accepted already.
    Returns the new hands (their ``extra["candidate"]`` = ``source``), best first.
    """
    cfg = cfg or CandidateConfig()
    H, W = image.shape[:2]
    hits = [r for r in (model.run(image, roi) for roi in rois) if r.presence >= cfg.presence]
    hits.sort(key=lambda r: -r.presence)
    accepted: list[HandObservation] = list(found)
    new: list[HandObservation] = []
    for r in hits:
        first = r.observation()
        if any(same_hand(h, first, cfg.dedup)[0] for h in accepted):
            continue  # a hand we have (saves the re-centring pass)
        again = model.run(image, roi_from_keypoints(r.keypoints2d))
        if again.presence < cfg.presence or not _plausible(again, W, H, cfg):
            continue
        obs = again.observation(candidate=source, presence=round(again.presence, 4))
        if any(same_hand(h, obs, cfg.dedup)[0] for h in accepted):
            continue
        accepted.append(obs)
        new.append(obs)
    return dedupe(new, cfg.dedup)
