"""Interacting hands on the rendered clips (assets/samples/interact_*.mp4, ground truth in .npz):
second-hand recovery finds hands raw MediaPipe misses, and tracked sides never swap."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lagc_hand.engines import FrameObservations, create_engine
from lagc_hand.interaction.dedup import hand_size
from lagc_hand.interaction.sides import interaction_tracker_config
from lagc_hand.tracking import track_hands
from lagc_hand.video import open_video

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"
SIDES = ("left", "right")


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


# Not "pray": in its 3 edge-on frames (20-22) MediaPipe's only detection sits on the left hand
# with right-hand chirality and label, and the tracker follows it (a known limitation, see bench/RESULTS.md).
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
