"""Interacting hands on the rendered clips (assets/samples/interact_*.mp4, ground truth in .npz):
second-hand recovery finds hands raw MediaPipe misses, tracked sides never swap, and where raw
MediaPipe finds one hand of two visible ones the tracks hold both (detected, followed by optical
flow or bridged while one hand is hidden behind the other)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from lagc_hand.engines import FrameObservations, create_engine
from lagc_hand.engines.dedup import hand_size
from lagc_hand.tracking.sides import interaction_tracker_config
from lagc_hand.tracking import track_hands
from lagc_hand.video import open_video

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
SIDES = ("left", "right")


@functools.lru_cache(maxsize=None)
def _run(engine_name: str, clip: str):
    eng = create_engine(engine_name)
    frames = []
    try:
        for fr in open_video(SAMPLES / f"interact_{clip}.mp4").frames():
            frames.append(FrameObservations(fr.index, fr.time, eng.process(fr.image, fr.time)))
    finally:
        eng.close()
    return frames, getattr(eng, "stats", None)


@pytest.fixture(scope="module")
def pray():
    return {name: _run(name, "pray") for name in ("mediapipe-raw", "mediapipe")}


def test_recovery_finds_second_hand_where_raw_mediapipe_sees_one(pray):
    raw, _ = pray["mediapipe-raw"]
    ours, stats = pray["mediapipe"]
    n_raw = np.array([len(f.hands) for f in raw])
    n_ours = np.array([len(f.hands) for f in ours])
    assert len(n_raw) == len(n_ours) == 36
    # Measured on the committed clip: raw 30 / 36 frames with both hands, with recovery 32 / 36.
    assert (n_raw == 2).sum() <= 31
    assert (n_ours == 2).sum() >= (n_raw == 2).sum() + 1
    assert ((n_raw == 1) & (n_ours == 2)).sum() >= 1
    assert stats["recovered"] >= 1 and stats["passes"] >= stats["recovered"]
    assert (n_ours <= 2).all()
    recovered = [h for f in ours for h in f.hands if "recovered" in h.extra]
    assert recovered and all(h.keypoints2d.shape == (21, 2) and 0 <= h.handedness <= 1 for h in recovered)


# Not "pray": in its edge-on frames (18-22) MediaPipe's only detection lies between the two palms
# (frame 19: nearer the right hand's keypoints, taken as the left), and not "interlace" (frame 34:
# the one detection, on the left hand, has right-hand chirality and label); see bench/RESULTS.md.
@pytest.mark.parametrize("clip", ["cross", "occlude", "clasp"])
def test_sides_never_swap(clip):
    frames = _run("mediapipe", clip)[0]
    gt = np.load(SAMPLES / f"interact_{clip}.npz")
    tracking = track_hands(frames, interaction_tracker_config(int(gt["image_size"][0])))
    found = 0
    for s in SIDES:
        o = "right" if s == "left" else "left"
        tr = tracking.tracks[s]
        g, go = gt[f"{s}_keypoints2d"], gt[f"{o}_keypoints2d"]
        size = np.array([hand_size(k) for k in g])
        d_own = np.linalg.norm(tr.keypoints2d - g, axis=-1).mean(-1) / size
        d_other = np.linalg.norm(tr.keypoints2d - go, axis=-1).mean(-1) / size
        wrong = tr.present & (d_other < d_own)
        assert not wrong.any(), f"{clip}: {s} track on the {o} hand in frames {np.flatnonzero(wrong)}"
        found += int(tr.present.sum())
    assert found >= 36  # both tracks together hold at least one clip's worth of frames


def _on_right_hand(tracking, gt) -> dict:
    """side -> (T,) bool: track present and on its own GT hand (mean 2D keypoint distance
    < 0.5 hand sizes and nearer than to the other hand), as bench/interaction.py counts."""
    out = {}
    for s in SIDES:
        o = "right" if s == "left" else "left"
        tr = tracking.tracks[s]
        size = np.array([hand_size(k) for k in gt[f"{s}_keypoints2d"]])
        d_own = np.linalg.norm(tr.keypoints2d - gt[f"{s}_keypoints2d"], axis=-1).mean(-1) / size
        d_other = np.linalg.norm(tr.keypoints2d - gt[f"{o}_keypoints2d"], axis=-1).mean(-1) / size
        out[s] = tr.present & (d_own < 0.5) & (d_own < d_other)
    return out


# Measured on the committed clips (raw MediaPipe finds one hand of two visible ones in
# pray 6, interlace 8, occlude 21, cross 4 frames): ours holds both, on the right hands, in
# all of them but pray 1 (frame 19: the one detection lies midway between the two palms) and
# interlace 1 (frame 0: the second hand has never been seen, so there is nothing to follow).
# Before optical-flow following interlace missed frames 34-35 (the clip's end, nothing to
# bridge to).  With the direct engine (engines/hands_tracker.py) pray was 3 until its region
# arithmetic became MediaPipe's float32 arithmetic bit for bit (engines/mp_geometry.py): before,
# float noise (~0.1 px) let the crossing hand's presence fall just under 0.5 in frame 17, palm
# detection restarted the region chain and the midway detection of frames 20-22 went to the
# other side.  Now the engine's hands equal the legacy graph's, and pray is 1 again.
@pytest.mark.parametrize("clip,max_missed", [("pray", 1), ("interlace", 1), ("occlude", 0), ("cross", 0)])
def test_both_hands_where_raw_mediapipe_finds_one(clip, max_missed):
    raw = _run("mediapipe-raw", clip)[0]
    ours = _run("mediapipe", clip)[0]
    gt = np.load(SAMPLES / f"interact_{clip}.npz")
    both_visible = (gt["left_visible"] >= 0.3) & (gt["right_visible"] >= 0.3)
    raw_one = both_visible & (np.array([len(f.hands) for f in raw]) == 1)
    assert raw_one.sum() >= 4
    tracking = track_hands(ours, interaction_tracker_config(int(gt["image_size"][0])))
    ok = _on_right_hand(tracking, gt)
    missed = raw_one & ~(ok["left"] & ok["right"])
    assert missed.sum() <= max_missed, f"{clip}: both hands not held in frames {np.flatnonzero(missed)}"
    # Only frames where the engine found fewer than two hands are bridged.
    n_found = np.array([len(f.hands) for f in ours])
    for s in SIDES:
        assert (n_found[tracking.tracks[s].bridged] < 2).all()


def test_hidden_hand_is_followed_not_lost():
    # interact_occlude: the left hand slides behind the right one; raw MediaPipe sees one hand in
    # 21 frames (0-1, 10-28).  The engine follows the hidden hand by optical flow
    # (engines/follow.py) in 10-24, where its recovery search finds nothing; each followed hand
    # lies on the hidden hand, never on the front one.
    raw = _run("mediapipe-raw", "occlude")[0]
    ours, stats = _run("mediapipe", "occlude")
    gt = np.load(SAMPLES / "interact_occlude.npz")
    raw_one = np.array([len(f.hands) for f in raw]) == 1
    followed = [(f.index, h) for f in ours for h in f.hands if h.extra.get("followed")]
    assert stats["followed"] == len(followed)
    frames_followed = {i for i, _ in followed}
    # Measured: followed in 15 of the 21 frames where raw MediaPipe sees one hand (the rest recovered).
    assert len(frames_followed & set(np.flatnonzero(raw_one))) >= 12
    for i, h in followed:
        g, go = gt["left_keypoints2d"][i], gt["right_keypoints2d"][i]
        d_own = np.linalg.norm(h.keypoints2d - g, axis=-1).mean() / hand_size(g)
        d_other = np.linalg.norm(h.keypoints2d - go, axis=-1).mean() / hand_size(go)
        assert d_own < 0.15 and d_own < 0.5 * d_other, (i, d_own, d_other)
        assert 0 < h.score < 1 and h.keypoints3d.shape == (21, 3) and np.isfinite(h.keypoints3d).all()
    # The follow never runs for longer than its limit after the last detection.
    assert max(h.extra["since"] for _, h in followed) <= 1.5 + 1e-6


def test_two_hand_fit_places_the_hands_like_the_image_aligned_fit():
    """The joint two-hand fit starts from the image-aligned single fits: its
    right-minus-left wrist error on interact_occlude (82.5 mm when its single
    fits took the hand's size from the detector's 3D alone, which one followed
    frame instead of a recovered one threw off for the whole track) stays
    within a few mm of the default single-hand path's (22 mm)."""
    from lagc_hand.options import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline
    from lagc_hand.placement.intrinsics import horizontal_fov_deg

    gt = np.load(SAMPLES / "interact_occlude.npz")
    opts = ReconstructOptions(engine="mediapipe", device="cpu",
                              fov_deg=horizontal_fov_deg(gt["K"], int(gt["image_size"][0])))
    err = {}
    for two in (False, True):
        m = run_pipeline(SAMPLES / "interact_occlude.mp4", opts, interaction=True, two_hand_fit=two).motion
        both = m.hands["left"].present & m.hands["right"].present
        pred = m.hands["right"].clean.root[both] - m.hands["left"].clean.root[both]
        true = gt["right_keypoints3d"][: m.num_frames, 0][both] - gt["left_keypoints3d"][: m.num_frames, 0][both]
        err[two] = float(np.linalg.norm(pred - true, axis=-1).mean() * 1000)
    assert err[False] < 35.0
    assert err[True] < err[False] + 10.0, err
