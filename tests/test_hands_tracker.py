"""The directly run MediaPipe Hands tracker (engines/hands_tracker.py) against MediaPipe's own
legacy graph, on the bundled rendered clip and on real footage from ``shared/realdev`` (never
copied here), and the default engine's independence from ``mediapipe.python.solutions``."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

from bench.common import rgb_frames
from bench.hands_agreement import compare
from bench.real import find_realdev
from lagc_hand.engines.hands_tracker import HandsTracker, associate, rect_iou
from lagc_hand.engines.landmark_model import Roi

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "two_hands.mp4"


REALDEV = find_realdev()
needs_realdev = pytest.mark.skipif(REALDEV is None, reason="shared/realdev (real videos) is not present: set "
                                   "LAGC_REALDEV or place it at <repo>/../shared/realdev")


def _frames(path: Path, limit: Optional[int] = None) -> list[np.ndarray]:
    frames = rgb_frames(path, limit)[0]
    assert frames, path
    return frames


def _compare(frames: list[np.ndarray]) -> dict:
    """The agreement of the direct tracker with the legacy graph (:func:`bench.hands_agreement.compare`)."""
    r = compare(frames)
    return dict(r, same_count=r["same"])


def test_association_keeps_the_later_region_of_an_overlapping_pair():
    """MediaPipe's AssociationNormRectCalculator: rotation ignored, IoU > 0.5 overlaps, the later
    stream (tracked regions) wins, and within a stream the later element wins."""
    palm = Roi(100.0, 100.0, 80.0, 0.3)
    tracked = Roi(110.0, 100.0, 80.0, -1.0)  # IoU 70/90 = 0.78
    far = Roi(300.0, 100.0, 80.0, 0.0)
    assert rect_iou(palm, tracked) == pytest.approx(70 / 90)
    assert rect_iou(palm, Roi(100.0, 100.0, 80.0, 2.0)) == pytest.approx(1.0)  # rotation ignored
    assert associate([palm, far], [tracked]) == [far, tracked]
    # Squares overlapping by IoU 0.45 are two hands; two tracks on one hand become one.
    assert associate([Roi(140.0, 100.0, 80.0)], [tracked]) == [Roi(140.0, 100.0, 80.0), tracked]
    assert associate([], [tracked, Roi(112.0, 101.0, 80.0)]) == [Roi(112.0, 101.0, 80.0)]


def test_direct_tracker_agrees_with_mediapipe_graph_on_rendered_clip():
    """The bundled two-hand clip (120 frames): the direct tracker's hands are the legacy
    graph's, bit for bit in practice (measured: every hand, 0.00000 px; asserted: every
    hand within 1e-3 px).  Before its region arithmetic was MediaPipe's float32 arithmetic
    (engines/mp_geometry.py) the two drifted apart by 0.30 px on average, sides 98 %."""
    frames = _frames(SAMPLE)
    r = _compare(frames)
    assert r["hands"] > 1.5 * len(frames)
    assert r["same_count"] == 1.0, r["same_count"]
    assert r["exact"] == 1.0 and r["mean_px"] < 1e-3, (r["exact"], r["mean_px"])
    assert r["side"] == 1.0, r["side"]
    assert r["score_median"] < 1e-4, r["score_median"]
    # Tracking: palm detection runs only while fewer than two hands are tracked.
    assert r["palm_runs"] < 0.5 * len(frames)
    for hands in r["ours"]:
        for h in hands:
            assert h.keypoints2d.shape == (21, 2) and h.keypoints3d.shape == (21, 3)
            assert h.extra["presence"] >= 0.5 and 0.5 <= h.score <= 1.0


def test_crossing_hand_near_the_presence_cutoff_is_kept_as_by_mediapipe():
    """interact_pray (36 rendered frames, the hands cross): the crossing hand's presence is
    near 0.5 around frame 17.  Before the float32 region arithmetic the direct tracker lost
    it there (presence just under 0.5, the legacy graph's just over) and differed by 2.7 px
    on average; now every hand equals the legacy graph's."""
    r = _compare(_frames(ROOT / "assets" / "samples" / "interact_pray.mp4"))
    assert r["hands"] >= 60
    assert r["same_count"] == 1.0 and r["exact"] == 1.0, (r["same_count"], r["exact"], r["mean_px"])


@needs_realdev
@pytest.mark.parametrize("clip,min_hands", [("mpsamples_hand_landmarker_test_video.mp4", 180),
                                            ("slp_pose_SOUP.mp4", 70)])
def test_direct_tracker_agrees_with_mediapipe_graph_on_real_clip(clip, min_hands):
    """Real footage: MediaPipe's own hand landmarker test video (202 frames, one hand; before
    the float32 region arithmetic 0.07 px apart) and slp_pose_SOUP (41 frames, two hands; before:
    1.14 px apart, and in frame 39 the legacy region gave presence 0.65 where the direct
    tracker's, ~1 px away, gave 0.41 and lost the hand).  Measured now: every hand equal."""
    r = _compare(_frames(REALDEV / "videos" / clip))
    assert r["hands"] >= min_hands
    assert r["same_count"] == 1.0, r["same_count"]
    assert r["exact"] == 1.0 and r["mean_px"] < 1e-3, (r["exact"], r["mean_px"])
    assert r["side"] == 1.0, r["side"]


def test_normalised_rect_round_trip_and_pixel_rule_agree():
    """A region from MediaPipe's float32 NormalizedRect keeps it bit for bit through pixels
    (what lets the tracker carry exact regions in pixel units), and the tracking-region
    rule in pixel units (no image size) is the same rule: within 1e-3 px of the normalised one."""
    from lagc_hand.engines import mp_geometry as mpg
    from lagc_hand.engines.landmark_model import roi_from_keypoints

    W, H = 640, 480
    rect = (np.float32(0.4123457), np.float32(0.6172839), np.float32(0.3456791), np.float32(0.4609055),
            np.float32(-0.7123))
    back = Roi.from_normalized(rect, W, H).normalized(W, H)
    assert all(a == b and a.dtype == np.float32 for a, b in zip(back, rect))
    rng = np.random.default_rng(3)
    kp = np.array([200.0, 300.0]) + rng.normal(0, 40, (21, 2))
    exact, plain = roi_from_keypoints(kp, (W, H)), roi_from_keypoints(kp)
    assert abs(exact.cx - plain.cx) < 1e-3 and abs(exact.cy - plain.cy) < 1e-3
    assert abs(exact.side - plain.side) < 1e-3 and abs(exact.angle - plain.angle) < 1e-6
    assert abs(exact.height - exact.side) < 1e-3  # square in pixels up to float32 rounding
    assert float(mpg.normalize_radians(3 * np.pi / 2)) == pytest.approx(-np.pi / 2, abs=1e-6)


def test_image_size_change_restarts_tracking():
    frames = _frames(SAMPLE, 3)
    with HandsTracker() as eng:
        first = eng.process(frames[0])
        assert eng.palm_runs == 1 and len(first) == 2
        eng.process(frames[1])
        assert eng.palm_runs == 1  # two hands tracked: no palm detection
        small = np.ascontiguousarray(frames[2][::2, ::2])
        again = eng.process(small)
        assert eng.palm_runs == 2 and len(again) == 2
        assert max(float(h.keypoints2d[:, 0].max()) for h in again) <= small.shape[1] + 5


def test_default_engine_runs_without_the_legacy_solutions_api():
    """Building the default engine and running it on a frame (tracking and the recovery's crop
    search) leaves MediaPipe's legacy API -- removed in MediaPipe 0.10.30 -- unimported."""
    code = f"""
import sys, numpy as np, cv2
from lagc_hand.engines import create_engine
cap = cv2.VideoCapture({str(SAMPLE)!r}); ok, f = cap.read(); assert ok
img = np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
with create_engine("mediapipe") as eng:
    hands = eng.process(img, 0.0)
b = hands[0].box.astype(int)
img[max(b[1] - 20, 0):b[3] + 20, max(b[0] - 20, 0):b[2] + 20] = np.median(img.reshape(-1, 3), 0)
with create_engine("mediapipe") as eng:  # one hand left: the first frame's crop search runs
    one = eng.process(img, 0.0)
    assert eng.stats["passes"] > 0, eng.stats
print(len(hands), len(one), eng.stats["passes"])
bad = sorted(m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe."))
print("MEDIAPIPE_MODULES", bad)
"""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "MEDIAPIPE_MODULES []", lines
    n_hands, n_one = (int(v) for v in lines[-2].split()[:2])
    assert n_hands == 2 and n_one >= 1
