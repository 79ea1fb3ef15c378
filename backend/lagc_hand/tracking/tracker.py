"""Stable LEFT / RIGHT identities over a whole sequence.

Per-frame labels are not trusted.  Instead every frame's detections get one of
a few *assignments* (each detection -> left, right or dropped) and a Viterbi
pass over the whole sequence picks the assignment path with the lowest total
cost:

* **identity evidence** (unary): the engine's handedness P(right) and the
  3D chirality (:mod:`.chirality`), as log-likelihood costs.  Summed along a
  path, so a long continuous track is decided by all its frames together,
  not by the frame where a label flickers.
* **continuity** (pairwise): a slot that holds a hand in two consecutive
  frames pays for how far its keypoints moved (relative to the hand's size);
  swapping two hands that stay put is expensive, so crossings keep their
  identities when motion is smooth.
* **presence changes**: a slot appearing or disappearing pays a constant,
  which stops flicker; **dropping** a detection (a phantom) pays in
  proportion to its score.

Duplicates (two detections on the same hand) are merged before, keeping the
higher score.  Output per side: present, keypoints, confidence.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from lagc_hand.engines.base import FrameObservations, HandObservation
from lagc_hand.engines.dedup import DedupConfig, hand_size, is_guess, same_hand
from lagc_hand.tracking.chirality import chirality_evidence
from lagc_hand.tracking.occlusion import OcclusionConfig, blend_followed, bridge_occlusions

SIDES = ("left", "right")


@dataclass
class TrackerConfig:
    """Weights of the tracking costs (dimensionless; 1 ~ one frame of strong evidence)."""

    min_score: float = 0.3          # detections below are discarded outright
    # Two detections are one hand by engines.dedup.same_hand (keypoints, fragments, nested skeletons).
    dedup: DedupConfig = field(default_factory=DedupConfig)
    # A track piece made only of guesses (see _drop_guessed_pieces) is dropped when its hand is
    # smaller than this x the other hand in every frame both are there.
    guessed_size: float = 0.75
    w_handedness: float = 1.0       # per frame, x -log P(label)
    w_chirality: float = 0.5        # per frame, x -log P(chirality)
    # Motion: -log of a Gaussian on the per-frame keypoint displacement d (mean over the 21
    # keypoints, in hand sizes), w_motion = 1 / (2 sigma^2) with sigma = 0.2 hand sizes.
    # Rendered ground truth moves at most 0.1 hand sizes per frame (two_hands.mp4, interact_*);
    # sigma is twice that, for faster real motion and detection noise.  It was 4.0
    # (sigma 0.35), too wide: when two hands come within half a hand size of each other
    # (two_hands.mp4 frames 86-88, the left hand turning away behind the right) three frames
    # of mirrored 3D chirality outweighed the motion cost and both tracks swapped hands.
    w_motion: float = 12.5          # x (motion / hand size)^2, capped
    motion_cap: float = 6.0         # cap on one frame's motion cost
    w_presence_change: float = 3.0  # a slot appearing or disappearing
    w_drop: float = 6.0             # dropping a detection, x its score
    # A hand hopping sides pays motion_cap - hop_motion_scale x its motion cost (see _hop_cost):
    # only a hand that stays nearly put (< ~0.4 hand sizes) is sure to be the same hand; hands
    # that touch or overlap are close to each other too, and one may take over from the other.
    hop_motion_scale: float = 3.0
    # Optional identity evidence replacing the label + chirality costs below:
    # (N observations) -> (N, 2) costs of LEFT, RIGHT; see lagc_hand.tracking.sides.side_cost_table.
    side_costs: Optional[Callable[[Sequence[HandObservation]], np.ndarray]] = None
    # Fill the frames where a hand is hidden behind the other one (see .occlusion); None: off.
    occlusion: Optional[OcclusionConfig] = field(default_factory=OcclusionConfig)


@dataclass
class HandTrack:
    """One side's track.

    present:     (T,) bool.
    keypoints2d: (T, 21, 2) float32 pixels (zeros where absent).
    keypoints3d: (T, 21, 3) float32 metres, hand-relative, camera axes (zeros where absent).
    confidence:  (T,) float32 in [0, 1] (0 where absent).
    handedness:  (T,) float32 engine P(right) of the detection used (0.5 where absent).
    bridged:     (T,) bool, frames filled in while the hand was hidden behind the other
                 one (:mod:`.occlusion`); present there, but not detected.
    followed:    (T,) bool, frames whose observation the engine followed by optical flow
                 while the hand was hidden (``extra["followed"]``,
                 :mod:`lagc_hand.engines.follow`); seen in the image, but not detected.
    """

    side: str
    present: np.ndarray
    keypoints2d: np.ndarray
    keypoints3d: np.ndarray
    confidence: np.ndarray
    handedness: np.ndarray
    bridged: Optional[np.ndarray] = None
    followed: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if self.bridged is None:
            self.bridged = np.zeros(len(self.present), bool)
        if self.followed is None:
            self.followed = np.zeros(len(self.present), bool)


@dataclass
class TrackingResult:
    """tracks: ``{"left": HandTrack, "right": HandTrack}``.

    identity_switches: frames where a hand seen in both this and the previous
        frame changed side against continuity (the evidence overruled motion).
    label_flips_fixed: detections whose per-frame engine label disagreed with
        the side the tracker gave them.
    dropped: detections discarded (low score, duplicates, phantoms).
    """

    tracks: dict[str, HandTrack]
    identity_switches: int = 0
    label_flips_fixed: int = 0
    dropped: int = 0
    stats: dict = field(default_factory=dict)


def _dedupe(hands: list[HandObservation], cfg: TrackerConfig) -> tuple[list[HandObservation], int]:
    """Detections above ``min_score``, one per physical hand: of two on one hand the
    detector's own is kept over a guess (a crop search's find can be a part of the
    hand: slpio_asl_different f27), then the higher score."""
    hands = sorted((h for h in hands if h.score >= cfg.min_score), key=lambda h: (is_guess(h), -h.score))
    kept: list[HandObservation] = []
    for h in hands:
        if any(same_hand(k, h, cfg.dedup)[0] for k in kept):
            continue
        kept.append(h)
    return kept, 0


def _assignments(n: int) -> list[tuple[int, ...]]:
    """All maps of n detections to 0 (left), 1 (right), 2 (dropped), each side used once."""
    out = []
    for a in itertools.product((0, 1, 2), repeat=n):
        if a.count(0) <= 1 and a.count(1) <= 1:
            out.append(a)
    return out


def _slots(a: tuple[int, ...]) -> tuple[int, int]:
    """(detection in left, detection in right), -1 when empty."""
    left = a.index(0) if 0 in a else -1
    right = a.index(1) if 1 in a else -1
    return left, right


def _frame_detections(frames: Sequence[FrameObservations], cfg: TrackerConfig) -> tuple[list[list[HandObservation]], int]:
    """Per frame: detections above ``min_score``, duplicates merged, at most two
    (highest score first).  Returns (detections per frame, number discarded)."""
    dets: list[list[HandObservation]] = []
    dropped = 0
    for fo in frames:
        raw = list(fo.hands)
        kept, _ = _dedupe(raw, cfg)
        if len(kept) > 2:
            kept = kept[:2]  # two hands at most; the rest are phantoms
        dropped += len(raw) - len(kept)
        dets.append(kept)
    return dets, dropped


def _unary_costs(dets: list[list[HandObservation]], cfg: TrackerConfig) -> list[np.ndarray]:
    """Per frame an (N_t, 2) array: cost of calling each detection left / right
    (every detection of the clip scored in one call)."""
    flat = [h for hs in dets for h in hs]
    if cfg.side_costs is not None:
        table = np.asarray(cfg.side_costs(flat), np.float64).reshape(len(flat), 2)
    else:
        table = np.zeros((len(flat), 2))
        if flat:
            eps = 1e-3
            p = np.clip([float(h.handedness) for h in flat], eps, 1 - eps)
            k3 = np.stack([np.asarray(h.keypoints3d, np.float64) for h in flat])
            c = np.where(np.any(k3 != 0, axis=(1, 2)), chirality_evidence(k3), 0.0)
            pc = np.clip(0.5 + 0.45 * c, eps, 1 - eps)
            table[:, 0] = -cfg.w_handedness * np.log(1 - p) - cfg.w_chirality * np.log(1 - pc)
            table[:, 1] = -cfg.w_handedness * np.log(p) - cfg.w_chirality * np.log(pc)
    ends = np.cumsum([len(hs) for hs in dets])
    return [table[e - len(hs):e] for hs, e in zip(dets, ends)]


def _motion_costs(dets: list[list[HandObservation]], cfg: TrackerConfig) -> list[np.ndarray]:
    """Entry t is (N_{t-1}, N_t): cost of detection i at t-1 and j at t being the
    same hand (entry 0 is empty).  Computed once per frame pair: the Viterbi
    looks each up for many state pairs."""
    T = len(dets)
    kps = [np.array([h.keypoints2d for h in hs], np.float64).reshape(len(hs), 21, 2) for hs in dets]
    sizes = [np.array([hand_size(k) for k in kp]) for kp in kps]
    motion_costs: list[np.ndarray] = [np.zeros((0, len(dets[0])))] if T else []
    for t in range(1, T):
        d = np.linalg.norm(kps[t - 1][:, None] - kps[t][None], axis=-1).mean(-1)
        d = d / (0.5 * (sizes[t - 1][:, None] + sizes[t][None]))
        motion_costs.append(np.minimum(cfg.w_motion * d * d, cfg.motion_cap))
    return motion_costs


def _hop_cost(motion: np.ndarray, prev: tuple[int, int], cur: tuple[int, int], cfg: TrackerConfig) -> float:
    """Extra cost of one hand hopping sides between two frames.

    motion: (N_{t-1}, N_t) motion costs; prev, cur: (left, right) detection
    indices, -1 for an empty slot.  A slot that appears at t while the other
    slot's hand of t-1 moved to it (its nearest continuation, better than what
    that slot now holds) is the same hand changing side.  Without this term such
    a hop cost only the two presence changes (6), less than two frames of a
    detector's mirrored side evidence, while swapping two hands that are both
    present costs up to ``2 x motion_cap`` (12): one hand alone flipped sides
    with the detector (slpio_asl_different frames 27-31, the signer's left hand
    labelled and shaped as a right one).  The hop pays ``motion_cap`` minus
    ``hop_motion_scale`` x its motion, so a hand that stays put changes side for
    the same price in both cases, and a detection that moved a few tenths of a
    hand (two hands together, one taking over from the other: slpio_asl_different
    frames 49-50) pays nothing extra.
    """
    c = 0.0
    for s in (0, 1):
        o = 1 - s
        j, p = cur[s], prev[o]
        if j < 0 or prev[s] >= 0 or p < 0:
            continue  # slot s did not appear at t, or nothing was in the other slot
        m = float(motion[p, j])
        if cur[o] >= 0 and float(motion[p, cur[o]]) <= m:
            continue  # the other slot's hand continued there (j is a new hand)
        c += max(cfg.motion_cap - cfg.hop_motion_scale * m, 0.0)
    return c


def _viterbi(dets: list[list[HandObservation]], states: list[list[tuple[int, ...]]], unary: list[np.ndarray],
             motion_costs: list[np.ndarray], cfg: TrackerConfig) -> list[int]:
    """The lowest-cost path: per frame the index into ``states[t]``."""
    T = len(dets)

    def state_cost(t: int, a: tuple[int, ...]) -> float:
        c = 0.0
        for i, s in enumerate(a):
            if s == 2:
                c += cfg.w_drop * dets[t][i].score
            else:
                c += unary[t][i, s]
        return c

    slot_of = [[_slots(a) for a in st] for st in states]

    def trans_cost(t: int, k_prev: int, k: int) -> float:
        prev, cur = slot_of[t - 1][k_prev], slot_of[t][k]
        c = 0.0
        for sp, sc in zip(prev, cur):
            if sp >= 0 and sc >= 0:
                c += motion_costs[t][sp, sc]
            elif (sp >= 0) != (sc >= 0):
                c += cfg.w_presence_change
        return c + _hop_cost(motion_costs[t], prev, cur, cfg)

    cost = [np.array([state_cost(0, a) for a in states[0]])] if T else []
    back: list[np.ndarray] = [np.zeros(len(states[0]), int)] if T else []
    for t in range(1, T):
        cur = np.empty(len(states[t]))
        bp = np.empty(len(states[t]), int)
        for k, a in enumerate(states[t]):
            tot = cost[t - 1] + np.array([trans_cost(t, kp_, k) for kp_ in range(len(states[t - 1]))])
            bp[k] = int(np.argmin(tot))
            cur[k] = tot[bp[k]] + state_cost(t, a)
        cost.append(cur)
        back.append(bp)
    path = [0] * T
    if T:
        path[-1] = int(np.argmin(cost[-1]))
        for t in range(T - 1, 0, -1):
            path[t - 1] = int(back[t][path[t]])
    return path


def _fill_tracks(dets: list[list[HandObservation]], chosen: list[tuple[int, ...]],
                 motion_costs: list[np.ndarray]) -> tuple[dict[str, HandTrack], int, int, int]:
    """Tracks from the chosen assignment per frame.  Returns (tracks, identity
    switches, label flips fixed, detections dropped as phantoms)."""
    T = len(dets)
    tracks = {s: HandTrack(s, np.zeros(T, bool), np.zeros((T, 21, 2), np.float32), np.zeros((T, 21, 3), np.float32),
                           np.zeros(T, np.float32), np.full(T, 0.5, np.float32)) for s in SIDES}
    switches = flips = dropped = 0
    prev_slots = (-1, -1)
    for t in range(T):
        a = chosen[t]
        slots = _slots(a)
        for side_i, det_i in enumerate(slots):
            if det_i < 0:
                continue
            h = dets[t][det_i]
            tr = tracks[SIDES[side_i]]
            tr.present[t] = True
            tr.keypoints2d[t] = h.keypoints2d
            tr.keypoints3d[t] = h.keypoints3d
            tr.confidence[t] = float(np.clip(h.score, 0.0, 1.0))
            tr.handedness[t] = h.handedness
            tr.followed[t] = bool(h.extra.get("followed", False))
            if (h.handedness > 0.5) != (side_i == 1):
                flips += 1
        dropped += sum(1 for s in a if s == 2)
        if t and all(s >= 0 for s in prev_slots) and all(s >= 0 for s in slots):
            m = motion_costs[t]
            keep = float(m[prev_slots[0], slots[0]]) + float(m[prev_slots[1], slots[1]])
            swap = float(m[prev_slots[0], slots[1]]) + float(m[prev_slots[1], slots[0]])
            if swap < keep:
                switches += 1
        prev_slots = slots
    return tracks, switches, flips, dropped


def _drop_guessed_pieces(dets: list[list[HandObservation]], chosen: list[tuple[int, ...]],
                         cfg: TrackerConfig) -> list[tuple[int, ...]]:
    """The chosen assignments with guessed track pieces dropped.

    A piece is a run of frames in which one side is present.  It is a guess when
    every detection in it is a guess (:func:`lagc_hand.engines.dedup.is_guess`:
    recovered by a crop search or followed by flow, never found by the detector
    itself; a re-find at a guessed hand's predicted place is a guess too) and its
    hand is smaller than
    ``guessed_size`` x the other side's hand wherever both are present (at
    least once).  A person's two hands at about one depth have about one size;
    the mirror-side search found a 0.6-0.7x "hand" on a signer's chin next to
    the real one for ten frames (slpio_asl_wrong_what f39-49), which the
    presence costs kept as a track.
    """
    out = [list(a) for a in chosen]
    for side in (0, 1):
        t = 0
        while t < len(out):
            if side not in out[t]:
                t += 1
                continue
            e = t
            while e < len(out) and side in out[e]:
                e += 1
            piece = range(t, e)
            ratios = [hand_size(dets[k][out[k].index(side)].keypoints2d)
                      / hand_size(dets[k][out[k].index(1 - side)].keypoints2d) for k in piece if (1 - side) in out[k]]
            if (ratios and max(ratios) < cfg.guessed_size
                    and all(is_guess(dets[k][out[k].index(side)]) for k in piece)):
                for k in piece:
                    out[k][out[k].index(side)] = 2
            t = e
    return [tuple(a) for a in out]


def _fill_occlusions(tracks: dict[str, HandTrack], frames: Sequence[FrameObservations], cfg: TrackerConfig) -> int:
    """Blend followed frames and bridge hidden ones (:mod:`.occlusion`); returns frames bridged."""
    if cfg.occlusion is None or len(frames) <= 1:
        return 0
    times = np.array([fo.time for fo in frames], np.float64)
    dt = float(np.median(np.diff(times)))
    if dt <= 0:
        return 0
    blend_followed(tracks, 1.0 / dt, cfg.occlusion)
    return bridge_occlusions(tracks, 1.0 / dt, cfg.occlusion)


def track_hands(
    frames: Sequence[FrameObservations],
    config: TrackerConfig | None = None,
) -> TrackingResult:
    """Assign the engine's detections to stable left/right tracks."""
    cfg = config or TrackerConfig()
    dets, dropped = _frame_detections(frames, cfg)
    states = [_assignments(len(hs)) for hs in dets]
    motion_costs = _motion_costs(dets, cfg)
    path = _viterbi(dets, states, _unary_costs(dets, cfg), motion_costs, cfg)
    chosen = _drop_guessed_pieces(dets, [states[t][k] for t, k in enumerate(path)], cfg)
    tracks, switches, flips, phantoms = _fill_tracks(dets, chosen, motion_costs)
    bridged = _fill_occlusions(tracks, frames, cfg)
    found = [len(d) for d in dets]
    stats = {
        "frames": len(dets),
        "frames_with_any_hand": int(sum(1 for n in found if n)),
        "frames_with_two_hands": int(sum(1 for n in found if n >= 2)),
        "frames_bridged": int(bridged),
        "frames_followed": int(sum(int(tr.followed.sum()) for tr in tracks.values())),
    }
    return TrackingResult(tracks, identity_switches=switches, label_flips_fixed=flips, dropped=dropped + phantoms,
                          stats=stats)
