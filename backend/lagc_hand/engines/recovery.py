"""Second-hand recovery: an engine wrapper that finds the hand MediaPipe missed.

When two hands touch, MediaPipe's palm detector tends to see one palm (or one
big blob) and its tracker then follows one hand.  This wrapper runs the normal
tracking engine first (:class:`~lagc_hand.engines.hands_tracker.HandsTracker`,
MediaPipe Hands' tracking mode with the bundled models run directly; no
``mediapipe.python.solutions``), then -- only when a hand is probably missing --
looks again in a few *regions* with MediaPipe Hands' still-image procedure on
crops (palm detection at a lower threshold, then the landmark model:
:func:`~lagc_hand.engines.hands_tracker.detect_hands`):

* **predicted**: the box of a recently seen hand that is missing now, moved
  on at constant velocity;
* **mirror side / neighbourhood** of each found hand: the square box beside
  it (left and right) and the box itself enlarged (the other hand overlaps);
* **halves of an unusually large box** (two hands taken for one).

Each region is cropped square, rescaled to :attr:`RecoveryConfig.crop_size`
and tried as is and mirrored (the landmark model often finds the second hand
of an interacting pair only in the mirrored view).  Keypoints are mapped back
to full-image pixels; for a mirrored crop x is un-flipped, the world
landmarks' x is negated (so the 3D hand is a true, un-mirrored hand again)
and the handedness is inverted.  New hands are kept only if they are not the
same physical hand as one already found (:mod:`.dedup`), lie mainly inside
their region and have a plausible size.

Before the crop search, a recently seen hand that is missing now is looked for
where MediaPipe's tracker would look next -- the rotated region of its last
keypoints moved on at its velocity -- by the landmark model alone
(:mod:`.landmark_model`, no palm detection, kept at presence >= 0.9).

On a still (``still=True``, one photo) the palm detector's hands are completed
by body-guided and multi-scale candidates (:mod:`.candidates`).

A hand is "expected" when it was seen within the last ``memory_frames``
frames; with only one hand ever seen, the neighbourhood is still probed every
``probe_every`` frames, one crop per probe, cycling through the regions (hands
that start clasped; one-hand footage stays cheap).

If the search finds nothing and the missing hand was seen in the previous
frame touching a hand that is still found, it is **followed** by optical flow
(:mod:`.follow`) for up to ``follow.max_seconds`` after its last detection:
that is the case of a hand sliding behind the other, which the landmark model
cannot see but whose visible parts still move with it.  Followed hands carry
``extra["followed"] = True`` and a lower score; the tracker flags them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from lagc_hand.engines.base import HandObservation
from lagc_hand.engines.hands_tracker import (LABEL_MEANS_RIGHT, WORLD_AXIS_SIGNS, HandsTracker, default_threads,
                                             detect_hands)
from lagc_hand.engines.dedup import DedupConfig, box_inside, box_iou, dedupe, hand_size, keypoint_box, same_hand
from lagc_hand.engines.follow import FollowConfig, follow_hand, rotate_keypoints3d
from lagc_hand.engines.candidates import CandidateConfig


@dataclass
class RecoveryConfig:
    """Recovery options.

    crop_size:      pixels of the square crops given to the landmark model.
    region_scale:   region side / hand box side (the region holds hand + surroundings).
    crop_detection_confidence: palm-detection threshold inside regions (the
                    full-image threshold is 0.5).
    min_score:      handedness-classifier score a recovered hand needs.
    memory_frames:  a hand seen this many frames ago is still expected.
    probe_every:    with one hand only, probe its neighbourhood every N frames.
    max_passes:     landmark-model runs per frame at most (bounds the cost).
    large_box_ratio: a box this much larger (area) than the usual hand is two hands.
    size_range:     a recovered hand's size must be within this factor range of the reference size.
    follow:         optical-flow following of a hand hidden by the other one; None: off.
    idle_passes:    crop passes per probe frame when no hand is known to be missing (the
                    regions x flips are cycled over successive probes, which keeps one-hand
                    footage cheap: :data:`bench/RESULTS.md` detect-stage cost).
    predicted_presence: landmark-model presence a hand re-found at its predicted place needs.
    candidates:     still-image candidate search (:mod:`.candidates`); used when ``still``.
    overlap_iou:    a recovered hand whose box overlaps a found hand's this much (IoU, or half
                    of the smaller box inside the other) ...
    pair_memory:    ... is kept only if the palm detector itself saw two hands within this many
                    frames: on one-hand real footage (motion blur) the crops otherwise return a
                    second fit of the one hand, a duplicate skeleton.
    max_iou:        a recovered hand overlapping a found one more than this (box IoU) is refused
                    in any case: with the other hand hidden behind the found one, crops and the
                    predicted region return the *front* hand again (interact_pray: 5 side swaps).
    """

    crop_size: int = 256
    region_scale: float = 1.9
    crop_detection_confidence: float = 0.3
    min_score: float = 0.5
    memory_frames: int = 15
    probe_every: int = 12
    max_passes: int = 6
    large_box_ratio: float = 2.2
    size_range: tuple = (0.55, 1.8)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    follow: Optional[FollowConfig] = field(default_factory=FollowConfig)
    idle_passes: int = 1
    predicted_presence: float = 0.9
    candidates: CandidateConfig = field(default_factory=CandidateConfig)
    overlap_iou: float = 0.2
    pair_memory: int = 60
    max_iou: float = 0.5


@dataclass
class _Slot:
    """A recently seen hand: last box (x0, y0, x1, y1), velocity (px/frame), frame seen, size (px),
    and the last observation of it (detected or followed) with the time (s) and score of its
    last *detection*."""

    box: np.ndarray
    velocity: np.ndarray
    seen: int
    size: float
    hand: HandObservation
    detected_time: float
    detected_score: float


@dataclass
class Region:
    """A square search region in full-image pixels and why it was chosen."""

    x0: float
    y0: float
    side: float
    kind: str


def square_region(box: np.ndarray, scale: float, kind: str, shift: tuple[float, float] = (0.0, 0.0)) -> Region:
    """Square region around ``box`` (x0, y0, x1, y1), side = scale x the box's
    longer side, centre shifted by ``shift`` x that side."""
    cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
    s = max(box[2] - box[0], box[3] - box[1], 8.0)
    cx, cy = cx + shift[0] * s, cy + shift[1] * s
    side = s * scale
    return Region(cx - side / 2, cy - side / 2, side, kind)


def crop_region(image: np.ndarray, region: Region, size: int, flip: bool) -> np.ndarray:
    """(size, size, 3) uint8 crop of ``region`` (padded with the border colour
    where it leaves the image), mirrored left-right if ``flip``."""
    import cv2

    s = size / region.side
    # Affine map full image -> crop pixels.
    M = np.array([[s, 0.0, -region.x0 * s], [0.0, s, -region.y0 * s]])
    if flip:
        M = np.array([[-1.0, 0.0, size], [0.0, 1.0, 0.0]]) @ np.vstack([M, [0, 0, 1]])
    return cv2.warpAffine(image, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def crop_to_image(points: np.ndarray, region: Region, size: int, flip: bool) -> np.ndarray:
    """Crop pixels (N, 2) -> full-image pixels (N, 2) (inverse of :func:`crop_region`)."""
    p = np.asarray(points, np.float64).copy()
    if flip:
        p[:, 0] = size - p[:, 0]
    return p * (region.side / size) + [region.x0, region.y0]


def observation_from_crop(kp_norm: np.ndarray, world: np.ndarray, label: str, label_score: float,
                          region: Region, size: int, flip: bool) -> HandObservation:
    """A full-image :class:`HandObservation` from one hand found in a crop.

    kp_norm: (21, 2) normalised crop coordinates; world: (21, 3) world
    landmarks (metres, image axes); label/label_score: MediaPipe's handedness.
    """
    kp = crop_to_image(np.asarray(kp_norm, np.float64) * size, region, size, flip).astype(np.float32)
    k3 = np.asarray(world, np.float32) * WORLD_AXIS_SIGNS
    p_right = label_score if label == LABEL_MEANS_RIGHT else 1.0 - label_score
    if flip:
        # The crop showed the mirror image: un-mirror the 3D hand and its side.
        k3 = k3 * np.array([-1.0, 1.0, 1.0], np.float32)
        p_right = 1.0 - p_right
    return HandObservation(
        keypoints2d=kp, keypoints3d=k3, handedness=float(np.clip(p_right, 0, 1)),
        score=float(np.clip(label_score, 0, 1)), box=keypoint_box(kp).astype(np.float32),
        extra={"label": label, "recovered": region.kind, "flipped": bool(flip)},
    )


class RecoveringMediaPipeEngine:
    """MediaPipe Hands tracking (run directly) + second-hand recovery + de-duplication.

    Same interface as :class:`~lagc_hand.engines.mediapipe_engine.MediaPipeEngine`
    (``process(image, time) -> list[HandObservation]``); ``recovery=False``
    gives the tracker's output (de-duplicated).
    ``stats`` counts frames, recovery attempts, landmark passes and hands recovered.
    """

    name = "mediapipe"

    def __init__(self, max_hands: int = 2, model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, recovery: bool = True,
                 config: Optional[RecoveryConfig] = None, still: bool = False, **_: Any) -> None:
        self.cfg = config or RecoveryConfig()
        self.recovery = bool(recovery)
        # Video: one interpreter thread (chunks run in parallel threads; LiteRT's invoke
        # releases the GIL); a still's grid search may use the cores.
        self.base = HandsTracker(max_hands=max_hands, model_complexity=model_complexity,
                                 min_detection_confidence=min_detection_confidence,
                                 min_tracking_confidence=min_tracking_confidence, threads=default_threads(still))
        self.max_hands = int(max_hands)
        self._slots: list[_Slot] = []
        self._frame = -1
        self._prev_gray: Optional[np.ndarray] = None
        self._followed_now: list[tuple[HandObservation, _Slot]] = []  # (followed hand, its slot) this frame
        self.still = bool(still)
        self._pose = None  # candidates.PoseModel, stills only
        self._body = None  # candidates.BodyGuide, video only
        self._probe = 0  # round-robin position of the idle probes
        self._pair_seen = -10**9  # last frame where the tracker itself found >= 2 hands
        self.stats = {"frames": 0, "attempts": 0, "passes": 0, "recovered": 0, "duplicates_removed": 0,
                      "followed": 0, "landmark_passes": 0, "refound": 0, "candidates": 0}

    # ------------------------------------------------------------------ engine API

    def process(self, image: np.ndarray, time: float = 0.0) -> list[HandObservation]:
        """``image``: (H, W, 3) uint8 RGB.  Returns up to ``max_hands`` observations."""
        found = self.base.process(image, time)  # validates the image
        self._frame += 1
        self.stats["frames"] += 1
        hands = dedupe(found, self.cfg.dedup)
        if len(hands) >= 2:
            self._pair_seen = self._frame
        self.stats["duplicates_removed"] += len(found) - len(hands)
        if self.recovery and self.still:
            hands = self._still_candidates(image, hands)
        elif self.recovery and len(hands) < self.max_hands:
            hands = self._refind(image, hands)
        if self.recovery and len(hands) < self.max_hands:
            regions, expected = self._regions(hands, image.shape[1], image.shape[0])
            if regions:
                self.stats["attempts"] += 1
                # The clip's first frame has no history: search it fully (hands that start
                # together).  Not at a later chunk's start (time > 0): it pays off only once.
                full = expected or (self._frame == 0 and time <= 0.0)
                hands = self._search(image, hands, regions, self.cfg.max_passes if full else self.cfg.idle_passes)
        if self.recovery and not self.still and len(hands) < self.max_hands:
            hands = self._body_hands(image, hands)
        gray = None
        if self.recovery and self.cfg.follow is not None:
            import cv2

            gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
            if len(hands) < self.max_hands and self._prev_gray is not None \
                    and self._prev_gray.shape == gray.shape:
                hands = self._follow(gray, hands, time)
        self._prev_gray = gray
        hands = hands[: self.max_hands]
        self._update_slots(hands, time)
        return hands

    def reset(self) -> None:
        self.base.reset()
        self._slots = []
        self._frame = -1
        self._prev_gray = None
        self._followed_now = []
        self._pair_seen = -10**9
        self._body = None

    def close(self) -> None:
        self.base.close()
        if self._pose is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self) -> "RecoveringMediaPipeEngine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ regions

    def _reference_size(self, hands: list[HandObservation]) -> Optional[float]:
        sizes = [hand_size(h.keypoints2d) for h in hands] + [s.size for s in self._slots]
        return float(np.median(sizes)) if sizes else None

    def _predicted_box(self, s: _Slot) -> np.ndarray:
        """Slot ``s``'s box moved on at constant velocity to the current frame."""
        return s.box + np.tile(s.velocity, 2) * (self._frame - s.seen)

    def _missing(self, slots: list[_Slot], hands: list[HandObservation]) -> list[_Slot]:
        """The slots no current hand's box overlaps (IoU > 0.3) at their predicted place."""
        boxes = [keypoint_box(h.keypoints2d) for h in hands]
        return [s for s in slots if not any(box_iou(self._predicted_box(s), b) > 0.3 for b in boxes)]

    def _regions(self, hands: list[HandObservation], W: int, H: int) -> tuple[list[Region], bool]:
        """Where to look for the missing hand(s), most promising first, and whether a hand
        is known to be missing (else the regions are an idle probe)."""
        cfg = self.cfg
        recent = [s for s in self._slots if self._frame - s.seen <= cfg.memory_frames]
        out: list[Region] = []
        boxes = [keypoint_box(h.keypoints2d) for h in hands]
        # A hand whose predicted box has left the picture is not looked for.
        missing = [s for s in self._missing(recent, hands) if self._in_image(self._predicted_box(s), W, H)]
        # Fewer hands than were seen lately (and are not predicted out of the picture): one is
        # missing -- also when its predicted box is covered by the found hand (crossing, one
        # behind the other), if two hands were really seen together lately; else such a slot
        # is the one hand's own stale trace (a hand that grows or moves fast).
        pair = self._frame - self._pair_seen <= cfg.pair_memory
        expected = sum(self._in_image(self._predicted_box(s), W, H) for s in recent) > len(hands) \
            and (bool(missing) or pair)
        for s in missing:
            out.append(square_region(self._predicted_box(s), cfg.region_scale, "predicted"))
        ref = self._reference_size(hands)
        for h, b in zip(hands, boxes):
            size = hand_size(h.keypoints2d)
            if ref is not None and len(self._slots) and size > 0 and \
                    (b[2] - b[0]) * (b[3] - b[1]) > cfg.large_box_ratio * self._typical_area():
                for dx in (-0.25, 0.25):
                    out.append(square_region(b, 1.1, "large_box_half", (dx, 0.0)))
            # Mirror side first: a right hand (high P(right)) has the left hand on the image's right.
            first = 1.0 if h.handedness >= 0.5 else -1.0
            out.append(square_region(b, 1.5, "neighbourhood"))
            out.append(square_region(b, cfg.region_scale, "mirror_side", (0.75 * first, 0.0)))
            out.append(square_region(b, cfg.region_scale, "other_side", (-0.75 * first, 0.0)))
        if not expected and hands and (self._frame % cfg.probe_every):
            return [], False  # nothing missing that we know of: probe only now and then
        # Keep regions that overlap the image.
        return [r for r in out if r.x0 < W and r.y0 < H and r.x0 + r.side > 0 and r.y0 + r.side > 0], bool(expected)

    @staticmethod
    def _in_image(box: np.ndarray, W: int, H: int) -> bool:
        """Whether the centre of ``box`` (x0, y0, x1, y1) lies in the W x H image."""
        cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
        return 0 <= cx < W and 0 <= cy < H

    def _typical_area(self) -> float:
        areas = [(s.box[2] - s.box[0]) * (s.box[3] - s.box[1]) for s in self._slots]
        return float(np.median(areas)) if areas else np.inf

    # ------------------------------------------------------------------ search

    def _search(self, image: np.ndarray, hands: list[HandObservation], regions: list[Region],
                max_passes: int) -> list[HandObservation]:
        """Try up to ``max_passes`` (region, flip) crops with MediaPipe Hands' still-image
        procedure (:func:`detect_hands`, palm threshold ``crop_detection_confidence``).  With
        fewer passes than crops (idle probes) successive calls continue where the last one stopped."""
        cfg = self.cfg
        size = cfg.crop_size
        ref = self._reference_size(hands)
        hands = list(hands)
        tries = [(r, f) for r in regions for f in (False, True)]
        if max_passes < len(tries):
            start = self._probe % len(tries)
            tries = tries[start:] + tries[:start]
            self._probe += max_passes
        for passes, (region, flip) in enumerate(tries):
            if passes >= max_passes or len(hands) >= self.max_hands:
                return hands
            self.stats["passes"] += 1
            crop = crop_region(image, region, size, flip)
            found = detect_hands(self.base.palm, self.base.landmarks, crop, 2, cfg.crop_detection_confidence,
                                 self.base.min_tracking_confidence)
            for res in found:
                p_left_label = float(np.clip(res.p_right, 0.0, 1.0))  # P(label "Left") of the crop as seen
                label = LABEL_MEANS_RIGHT if p_left_label >= 0.5 else "Right"
                label_score = max(p_left_label, 1.0 - p_left_label)
                if label_score < cfg.min_score:
                    continue
                obs = observation_from_crop(res.keypoints2d / size, res.world, label, label_score, region, size, flip)
                obs.extra["presence"] = round(float(res.presence), 4)
                if self._accept(obs, hands, region, ref, image.shape[1], image.shape[0]):
                    hands.append(obs)
                    self.stats["recovered"] += 1
        return hands

    def _landmark_model(self):
        """The landmark model the tracker runs (one interpreter per engine)."""
        return self.base.landmarks

    def _refind(self, image: np.ndarray, hands: list[HandObservation]) -> list[HandObservation]:
        """Look for each recently seen, now missing hand where MediaPipe would track it next:
        the region of its last keypoints moved on at its velocity (one landmark pass, a
        mirrored one if that fails).  Cheaper than the crop search (no palm detection), and
        the hand is kept only with a high presence score and when it is no hand found already."""
        from lagc_hand.engines.landmark_model import roi_from_keypoints

        cfg = self.cfg
        recent = [s for s in self._slots if 0 < self._frame - s.seen <= cfg.memory_frames]
        hands = list(hands)
        ref = self._reference_size(hands)
        H, W = image.shape[:2]
        for s in self._missing(recent, hands):
            if len(hands) >= self.max_hands or not self._in_image(self._predicted_box(s), W, H):
                break
            roi = roi_from_keypoints(s.hand.keypoints2d + s.velocity * (self._frame - s.seen))
            region = Region(roi.cx - roi.side / 2, roi.cy - roi.side / 2, roi.side, "predicted_roi")
            for flip in (False, True):
                res = self._landmark_model().run(image, roi, flip)
                self.stats["landmark_passes"] += 1
                if res.presence < cfg.predicted_presence:
                    continue
                obs = res.observation(recovered="predicted_roi", flipped=flip)
                if self._accept(obs, hands, region, ref, W, H):
                    hands.append(obs)
                    self.stats["refound"] += 1
                    break
        return hands

    def _still_candidates(self, image: np.ndarray, hands: list[HandObservation]) -> list[HandObservation]:
        """Stills: add the hands the palm detector missed, from body-guided regions and the
        multi-scale grid (:mod:`.candidates`), none on a hand already found; best first."""
        from lagc_hand.engines import candidates as cand

        cfg = self.cfg.candidates
        model = self._landmark_model()
        n0 = model.calls
        if self._pose is None:
            self._pose = cand.PoseModel()
        pose = self._pose(image)
        rois = [r for _, r in cand.body_rois(pose, cfg)] if pose is not None else []
        new = cand.confirm(model, image, rois, hands, cfg, source="body") if rois else []
        H, W = image.shape[:2]
        new += cand.confirm(model, image, cand.grid_rois(W, H, cfg), list(hands) + new, cfg, source="grid")
        self.stats["landmark_passes"] += model.calls - n0
        self.stats["candidates"] += len(new)
        return list(hands) + sorted(new, key=lambda h: -h.score)

    def _body_hands(self, image: np.ndarray, hands: list[HandObservation]) -> list[HandObservation]:
        """Video: a hand where a body wrist is and no hand was found (MediaPipe Pose every few
        frames, :class:`.candidates.BodyGuide`), confirmed by the landmark model at that wrist and
        with the body's side; later frames track it through the memory (:meth:`_refind`)."""
        from lagc_hand.engines import candidates as cand

        if self._body is None:
            self._body = cand.BodyGuide(self.cfg.candidates)
        wrists = self._body.free_wrists(image, self._frame, hands)
        model = self._landmark_model() if wrists else None
        n0 = model.calls if model else 0
        hands, ref, (H, W) = list(hands), self._reference_size(hands), image.shape[:2]
        for w in wrists:
            for obs in cand.confirm_at_wrist(model, image, w, hands, self.cfg.candidates):
                r = max(w.rois, key=lambda r: r.side)
                region = Region(r.cx - r.side / 2, r.cy - r.side / 2, r.side, "body")
                if len(hands) < self.max_hands and self._accept(obs, hands, region, ref, W, H):
                    hands.append(obs)
                    self.stats["candidates"] += 1
        self.stats["landmark_passes"] += (model.calls - n0) if model else 0
        return hands

    def _accept(self, obs: HandObservation, hands: list[HandObservation], region: Region,
                ref: Optional[float], W: int, H: int) -> bool:
        cfg = self.cfg
        if any(same_hand(h, obs, cfg.dedup)[0] for h in hands):
            return False
        b = keypoint_box(obs.keypoints2d)
        if any(box_iou(b, keypoint_box(h.keypoints2d)) > cfg.max_iou for h in hands):
            return False
        if self._frame - self._pair_seen > cfg.pair_memory:
            for h in hands:
                hb = keypoint_box(h.keypoints2d)
                small, big = (b, hb) if hand_size(obs.keypoints2d) <= hand_size(h.keypoints2d) else (hb, b)
                if box_iou(b, hb) > cfg.overlap_iou or box_inside(small, big) > 0.5:
                    return False  # no sign of two hands here: a second fit of the one hand
        kp = obs.keypoints2d
        c = kp.mean(0)
        if not (region.x0 <= c[0] <= region.x0 + region.side and region.y0 <= c[1] <= region.y0 + region.side):
            return False  # found at the crop's edge: a hand that belongs to another region
        inside = np.mean((kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H))
        if inside < 0.5:
            return False
        if ref is not None:
            r = hand_size(kp) / ref
            if not (cfg.size_range[0] <= r <= cfg.size_range[1]):
                return False
        return True

    # ------------------------------------------------------------------ following

    def _follow(self, gray: np.ndarray, hands: list[HandObservation], time: float) -> list[HandObservation]:
        """Add the hands that were seen in the previous frame touching a hand found now, are
        missing now, and can be followed by optical flow from there (see :mod:`.follow`)."""
        cfg = self.cfg.follow
        prev = [s for s in self._slots if s.seen == self._frame - 1]
        hands = list(hands)
        found_boxes = [keypoint_box(h.keypoints2d) for h in hands]
        for s in self._unmatched(prev, hands):
            if len(hands) >= self.max_hands or time - s.detected_time > cfg.max_seconds:
                continue
            # Only a hand hidden by a hand that is still there: one that left the picture or
            # vanished in the open must not be followed into thin air.
            if not any(box_iou(self._predicted_box(s), b) > 0.0 for b in found_boxes):
                continue
            others_prev = [o.hand.keypoints2d for o in prev if o is not s]
            res = follow_hand(self._prev_gray, gray, s.hand.keypoints2d, others_prev,
                              [h.keypoints2d for h in hands], cfg)
            if res is None:
                continue
            obs = HandObservation(
                keypoints2d=res.keypoints2d, keypoints3d=rotate_keypoints3d(s.hand.keypoints3d, res.rotation),
                handedness=s.hand.handedness, score=float(s.detected_score * cfg.confidence_scale),
                box=keypoint_box(res.keypoints2d).astype(np.float32),
                extra={"followed": True, "flow_inliers": res.inliers, "since": float(time - s.detected_time)})
            if any(same_hand(h, obs, self.cfg.dedup)[0] for h in hands):
                continue  # the flow slid onto the front hand
            hands.append(obs)
            self._followed_now.append((obs, s))
            self.stats["followed"] += 1
        return hands

    def _unmatched(self, slots: list[_Slot], hands: list[HandObservation]) -> list[_Slot]:
        """The slots no current hand takes in :meth:`_assign`."""
        taken = set(self._assign(hands, slots).values())
        return [s for j, s in enumerate(slots) if j not in taken]

    # ------------------------------------------------------------------ memory

    def _assign(self, hands: list[HandObservation], slots: list[_Slot], max_dist: float = 1.0) -> dict[int, int]:
        """hand index -> slot index, one to one, nearest pairs first.

        Distance: mean 2D keypoint distance between the hand and the slot's last keypoints
        moved on at the slot's velocity, in the slot's hand sizes; pairs farther than
        ``max_dist`` stay apart.  Keypoints, not boxes: the boxes of interlaced or
        overlapping hands nearly coincide, their keypoints do not.
        """
        if not hands or not slots:
            return {}
        d = np.array([[np.linalg.norm(h.keypoints2d - (s.hand.keypoints2d + s.velocity * (self._frame - s.seen)),
                                      axis=-1).mean() / max(s.size, 1.0) for s in slots] for h in hands])
        out: dict[int, int] = {}
        for flat in np.argsort(d, axis=None):
            i, j = divmod(int(flat), len(slots))
            if d[i, j] > max_dist:
                break
            if i in out or j in out.values():
                continue
            out[i] = j
        return out

    def _update_slots(self, hands: list[HandObservation], time: float = 0.0) -> None:
        """Update the remembered hands: a followed hand updates the slot it was followed from;
        each detected hand takes the nearest other slot by box centre (moved on at its velocity)
        or starts a new one."""
        followed = {id(h): src for h, src in self._followed_now}
        used: set[int] = {i for i, s in enumerate(self._slots) if any(s is src for src in followed.values())}
        for h in hands:
            b = keypoint_box(h.keypoints2d)
            c = 0.5 * (b[:2] + b[2:])
            size = hand_size(h.keypoints2d)
            if id(h) in followed:
                best = next(i for i, s in enumerate(self._slots) if s is followed[id(h)])
                best_d = 0.0
            else:
                best, best_d = -1, np.inf
                for i, s in enumerate(self._slots):
                    if i in used:
                        continue
                    sc = 0.5 * (s.box[:2] + s.box[2:]) + s.velocity * (self._frame - s.seen)
                    d = float(np.linalg.norm(c - sc)) / max(s.size, 1.0)
                    if d < best_d:
                        best, best_d = i, d
            if best >= 0 and best_d < 1.0:
                s = self._slots[best]
                dt = max(self._frame - s.seen, 1)
                v = (c - 0.5 * (s.box[:2] + s.box[2:])) / dt
                keep = id(h) in followed  # the last *detection* stays the slot's reference
                self._slots[best] = _Slot(b, 0.5 * s.velocity + 0.5 * v, self._frame, size, h,
                                          s.detected_time if keep else time, s.detected_score if keep else h.score)
                used.add(best)
            else:
                self._slots.append(_Slot(b, np.zeros(2), self._frame, size, h, time, h.score))
                used.add(len(self._slots) - 1)
        self._followed_now = []
        # Forget old hands; keep the most recent max_hands.
        self._slots = [s for s in self._slots if self._frame - s.seen <= self.cfg.memory_frames]
        self._slots.sort(key=lambda s: -s.seen)
        self._slots = self._slots[: self.max_hands]


def create_engine(recovery: bool = True, **kwargs: Any) -> RecoveringMediaPipeEngine:
    """Registry factory (``mediapipe``: with recovery; ``mediapipe-raw`` uses the plain engine)."""
    return RecoveringMediaPipeEngine(recovery=recovery, **kwargs)
