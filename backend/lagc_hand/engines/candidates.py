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

from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import numpy as np

from lagc_hand.engines.base import HandObservation
from lagc_hand.engines.dedup import DedupConfig, dedupe, hand_size, same_hand
from lagc_hand.engines.landmark_model import HandLandmarkModel, LandmarkResult, Roi, roi_from_keypoints
# The body model that feeds body_rois (MediaPipe Pose run directly; named here for the engine).
from lagc_hand.engines.pose_model import PoseModel  # noqa: F401


@dataclass
class BodyVideoConfig:
    """Body-guided search in video (:class:`BodyGuide`).

    enabled:        False: no Pose run, no body-guided hand (``python -m bench.body_guided``
                    measures the engine with and without it).
    every:          frames between Pose runs at least, while a hand is missing and the last run
                    saw a free visible wrist (a body wrist with no found hand at it).
    idle_every:     ... when the last run saw no body or no free visible wrist (most one-hand
                    footage: the other arm is out of the picture or hidden); doubled after each
                    further idle run, up to ``idle_max`` frames.
    track_frames:   a body seen at most this many frames ago is looked for in its tracking
                    region (the landmark model only, no detector pass).
    min_visibility: pose visibility a wrist needs (higher than on stills: every region costs a
                    landmark pass, and a low-visibility wrist is rarely a findable hand).
    scales, angles: region sides / wrist-to-hand distance and rotations (degrees) per wrist
                    (one region: the re-centring step of :func:`confirm` aligns the hand).
    free_dist:      a body wrist closer than this x a found hand's size to that hand's wrist
                    already has its hand.
    max_wrist_dist: a confirmed hand's wrist must lie within this x its size of the body wrist
                    (else it is another hand, e.g. the found one's, seen from this region).
    presence:       landmark-model presence a hand at a free wrist needs (first pass and after
                    re-centring; below the stills' grid threshold because the body's wrist and
                    side must agree too: blurred signing hands score 0.85-0.95).
    """

    enabled: bool = True
    every: int = 10
    idle_every: int = 30
    idle_max: int = 90
    track_frames: int = 30
    min_visibility: float = 0.5
    scales: tuple = (4.0, 5.5)
    angles: tuple = (0,)
    free_dist: float = 1.0
    max_wrist_dist: float = 0.6
    presence: float = 0.85


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
    video:         the body-guided search in video (:class:`BodyGuide`).
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
    video: BodyVideoConfig = field(default_factory=BodyVideoConfig)


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


@dataclass
class FreeWrist:
    """A visible body wrist without a found hand: the person's ``side`` ("left"/"right"), the
    wrist (2,) in pixels and the hand regions to confirm there."""

    side: str
    wrist: np.ndarray
    rois: list


class BodyGuide:
    """Video: where a body says a hand should be and none was found.

    Runs :class:`PoseModel` at most every ``cfg.video.every`` frames (tracking the last body
    when recent) and returns its free wrists with their regions; :func:`confirm_at_wrist`
    checks them.  ``calls`` counts Pose runs.
    """

    def __init__(self, cfg: Optional[CandidateConfig] = None, model: Optional[PoseModel] = None) -> None:
        self.cfg = cfg or CandidateConfig()
        self._model = model
        self._last = None  # PoseResult of the last run that saw a body
        self._last_frame = -10**9
        self._next = 0  # first frame of the next run
        self._idle = 0  # idle runs (no free wrist) since the last useful one
        self.calls = 0

    def free_wrists(self, image: np.ndarray, frame: int, found: Sequence[HandObservation]) -> list[FreeWrist]:
        """The free visible wrists in ``image`` (frame number ``frame``), or [] when Pose is not
        due yet.  ``found``: the hands found in this frame."""
        v = self.cfg.video
        if frame < self._next or not v.enabled:
            return []
        if self._model is None:
            self._model = PoseModel()
        recent = self._last if frame - self._last_frame <= v.track_frames else None
        res = self._model.run(np.ascontiguousarray(image), previous=recent)
        self.calls += 1
        if res is not None:
            self._last, self._last_frame = res, frame
        out = [] if res is None else self._free(res.xyv(), image.shape[1], image.shape[0], found)
        self._idle = 0 if out else self._idle + 1
        self._next = frame + (v.every if out else min(v.idle_every * 2 ** (self._idle - 1), v.idle_max))
        return out

    def _free(self, xyv: np.ndarray, W: int, H: int, found: Sequence[HandObservation]) -> list[FreeWrist]:
        v = self.cfg.video
        cfg = CandidateConfig(body_scales=v.scales, body_angles=v.angles, min_visibility=v.min_visibility)
        out = []
        for side, (w, _, _) in POSE_HANDS.items():
            wrist = xyv[w, :2]
            if xyv[w, 2] < v.min_visibility or not (0 <= wrist[0] < W and 0 <= wrist[1] < H):
                continue
            if any(np.linalg.norm(h.keypoints2d[0] - wrist) < v.free_dist * hand_size(h.keypoints2d) for h in found):
                continue
            rois = [r for s, r in body_rois(xyv, cfg) if s == side]
            if rois:
                out.append(FreeWrist(side, wrist.copy(), rois))
        return out

    def close(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None


def confirm_at_wrist(model: HandLandmarkModel, image: np.ndarray, wrist: FreeWrist,
                     found: Sequence[HandObservation], cfg: Optional[CandidateConfig] = None) -> list[HandObservation]:
    """The hand at a free body wrist, if the landmark model confirms one (:func:`confirm`, which
    drops hands already found) whose wrist lies at the body's wrist and whose side is the body's
    side (a hand resting on the chin or the other hand seen from this region is refused)."""
    cfg = cfg or CandidateConfig()
    out = []
    for obs in confirm(model, image, wrist.rois, found, replace(cfg, presence=cfg.video.presence), source="body"):
        near = np.linalg.norm(obs.keypoints2d[0] - wrist.wrist) <= cfg.video.max_wrist_dist * hand_size(obs.keypoints2d)
        if near and (obs.handedness >= 0.5) == (wrist.side == "right"):
            out.append(obs)
    return out
