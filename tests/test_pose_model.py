"""MediaPipe Pose run directly (``engines.pose_model``) against the legacy ``mp.solutions`` graph
(mediapipe 0.10.21, still installed) on real photos and a real video frame from ``shared/realdev``
(never copied here)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.real import find_realdev
from lagc_hand.engines.palm_model import ssd_anchors
from lagc_hand.engines.pose_model import DETECT_LAYERS, DETECT_SIZE, PoseModel, refine_from_heatmap

ROOT = Path(__file__).resolve().parents[1]
#: Body landmarks the hand regions come from: wrists, pinkies, index fingers.
HAND_POINTS = [15, 16, 17, 18, 19, 20]


REALDEV = find_realdev()
needs_realdev = pytest.mark.skipif(REALDEV is None, reason="shared/realdev (real photos) is not present: set "
                                   "LAGC_REALDEV or place it at <repo>/../shared/realdev")


def _rgb(bgr: np.ndarray) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _photos() -> list[tuple[str, np.ndarray]]:
    """The realdev photos with people (COCO, WiLoR) and frame 40 of a real signing video."""
    import cv2

    out = []
    for sub in ("coco_wholebody", "wilor"):
        for p in sorted((REALDEV / "images" / sub).iterdir()):
            if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                out.append((f"{sub}/{p.name}", _rgb(cv2.imread(str(p)))))
    cap = cv2.VideoCapture(str(REALDEV / "videos" / "slpio_asl_wrong_what.mp4"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 40)
    ok, frame = cap.read()
    cap.release()
    assert ok, "slpio_asl_wrong_what.mp4 frame 40 unreadable"
    out.append(("slpio_asl_wrong_what#40", _rgb(frame)))
    return out


def _legacy_xyv(graph, image: np.ndarray) -> np.ndarray | None:
    res = graph.process(image)
    if res.pose_landmarks is None:
        return None
    H, W = image.shape[:2]
    return np.array([[p.x * W, p.y * H, p.visibility] for p in res.pose_landmarks.landmark])


def test_detector_anchors_match_the_model_output():
    """2254 anchors (28x28x2 + 14x14x2 + 7x7x6) = the detector's output rows; the palm
    detector's default anchors are unchanged (2016)."""
    a = ssd_anchors(DETECT_SIZE, DETECT_LAYERS)
    assert a.shape == (2254, 2)
    assert np.allclose(a[0], [0.5 / 28, 0.5 / 28]) and np.allclose(a[-1], [6.5 / 7, 6.5 / 7])
    assert ssd_anchors().shape == (2016, 2)


def test_heatmap_refinement_moves_only_confident_points():
    """A confident heatmap peak pulls its landmark onto it; an unsure one leaves it alone."""
    heat = np.full((64, 64, 2), -8.0, np.float32)
    heat[20, 30, 0] = 8.0  # landmark 0: a sharp peak at column 30, row 20
    xy = np.array([[31.5 / 64, 21.2 / 64], [0.5, 0.5]])
    out = refine_from_heatmap(xy, heat)
    assert abs(out[0, 0] * 64 - 30) < 0.05 and abs(out[0, 1] * 64 - 20) < 0.05
    assert np.array_equal(out[1], xy[1])
    off = refine_from_heatmap(np.array([[1.2, 0.5], [-0.1, 0.5]]), heat)  # off the map: unchanged
    assert np.array_equal(off, [[1.2, 0.5], [-0.1, 0.5]])


def test_no_person_gives_none():
    """Blank and noise images: no body (the caller then proposes no body regions)."""
    model = PoseModel()
    rng = np.random.default_rng(0)
    assert model(np.full((360, 640, 3), 128, np.uint8)) is None
    assert model(rng.integers(0, 256, (480, 480, 3), dtype=np.uint8)) is None


@needs_realdev
def test_direct_pose_matches_the_legacy_graph_on_real_photos():
    """Same bodies found, and the wrist / index / pinky points within 2 px of the legacy graph's
    (measured: <= 0.43 px on COCO / WiLoR / the video frame, 1.1 px on a 1920 px photo)."""
    from mediapipe.python.solutions import pose as mp_pose

    model = PoseModel()
    found = 0
    with mp_pose.Pose(static_image_mode=True, model_complexity=1) as graph:
        for name, img in _photos():
            ref, got = _legacy_xyv(graph, img), model(img)
            assert (ref is None) == (got is None), name
            if ref is None:
                continue
            found += 1
            assert got.shape == (33, 3)
            err = np.linalg.norm(got[HAND_POINTS, :2] - ref[HAND_POINTS, :2], axis=1)
            assert err.max() < 2.0, (name, err)
            assert np.linalg.norm(got[:, :2] - ref[:, :2], axis=1).mean() < 2.0, name
            assert np.abs(got[:, 2] - ref[:, 2]).max() < 0.02, name  # visibility
    assert found >= 6  # 4 COCO photos, 2 WiLoR photos, the video frame have a body


@needs_realdev
def test_close_up_hand_photo_has_no_body():
    """A real close-up of one hand (OneHand10K) is no person for either runner."""
    import cv2

    img = _rgb(cv2.imread(str(REALDEV / "images" / "onehand10k" / "5.jpg")))
    assert PoseModel()(img) is None


@needs_realdev
def test_tracking_region_matches_the_legacy_video_graph():
    """The legacy graph in video mode runs its second frame on the region of the first frame's
    auxiliary landmarks; :meth:`PoseModel.run` with ``previous`` does the same."""
    from mediapipe.python.solutions import pose as mp_pose

    name, img = _photos()[-1]
    with mp_pose.Pose(static_image_mode=False, smooth_landmarks=False, model_complexity=1) as graph:
        _legacy_xyv(graph, img)
        ref = _legacy_xyv(graph, img)
    model = PoseModel()
    first = model.run(img)
    n = dict(model.calls)
    second = model.run(img, previous=first)
    assert model.calls["detect"] == n["detect"]  # tracked: no detector pass
    err = np.linalg.norm(second.xyv()[HAND_POINTS, :2] - ref[HAND_POINTS, :2], axis=1)
    assert err.max() < 2.0, (name, err)


# ---------------------------------------------------------------------------- body-guided search in video


def _frames(name: str, n: int) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(REALDEV / "videos" / name))
    out = []
    while len(out) < n:
        ok, frame = cap.read()
        if not ok:
            break
        out.append(_rgb(frame))
    cap.release()
    return out


def test_body_guide_runs_pose_only_every_few_frames():
    """No body: Pose runs at frame 0, then after ``idle_every`` frames, the wait doubling after
    each idle run up to ``idle_max`` (defaults 30, 90: frames 0, 30, 90, 180)."""
    from lagc_hand.engines.candidates import BodyGuide

    guide = BodyGuide()
    blank = np.full((240, 320, 3), 90, np.uint8)
    runs = []
    for f in range(200):
        n = guide.calls
        assert guide.free_wrists(blank, f, []) == []
        if guide.calls > n:
            runs.append(f)
    v = guide.cfg.video
    assert runs == [0, v.idle_every, 3 * v.idle_every, 3 * v.idle_every + v.idle_max] == [0, 30, 90, 180]


@needs_realdev
def test_free_body_wrists_give_hands_of_the_body_side():
    """A signer with both wrists visible (slpio_asl_different, frame 45, the right hand blurred):
    with no hand found both wrists are free and confirmed hands lie at the wrist with the body's
    side; once they are found, no wrist is free and nothing is added twice; a wrist given the
    wrong side confirms nothing."""
    from lagc_hand.engines.candidates import BodyGuide, FreeWrist, confirm_at_wrist
    from lagc_hand.engines.dedup import hand_size, same_hand
    from lagc_hand.engines.landmark_model import HandLandmarkModel

    img = _frames("slpio_asl_different.mp4", 46)[45]
    guide, model = BodyGuide(), HandLandmarkModel()
    wrists = guide.free_wrists(img, 0, [])
    assert sorted(w.side for w in wrists) == ["left", "right"]
    hands = []
    for w in wrists:
        new = confirm_at_wrist(model, img, w, hands)
        for h in new:
            assert (h.handedness >= 0.5) == (w.side == "right")
            assert np.linalg.norm(h.keypoints2d[0] - w.wrist) <= 0.6 * hand_size(h.keypoints2d)
        hands += new
    assert len(hands) == 2 and not same_hand(hands[0], hands[1])[0]
    assert guide.free_wrists(img, 100, hands) == []
    for w in wrists:
        assert confirm_at_wrist(model, img, w, hands) == []  # already found
        swapped = FreeWrist("left" if w.side == "right" else "right", w.wrist, w.rois)
        assert confirm_at_wrist(model, img, swapped, []) == []


@needs_realdev
@pytest.mark.parametrize("clip,frames", [("slpio_asl_different.mp4", 64), ("tfjs_asl_hand.25fps.mp4", 90),
                                         ("slpio_asl_wrong_what.mp4", 97)])
def test_engine_body_search_in_video_is_bounded_and_adds_no_duplicate(clip, frames):
    """The default engine on real clips: Pose runs at most every ``every`` frames (only on frames
    with a hand missing) and no frame holds two skeletons of one hand.  No body-guided hand
    appears on one-hand footage (tfjs) nor for a signer whose one hand rests at the chin (found
    already) while the other arm hangs out of the picture (wrong_what)."""
    from lagc_hand.engines.dedup import same_hand
    from lagc_hand.engines.recovery import RecoveringMediaPipeEngine

    video = _frames(clip, frames)
    with RecoveringMediaPipeEngine() as eng:
        body = 0
        for i, img in enumerate(video):
            hands = eng.process(img, i / 30.0)
            for a in range(len(hands)):
                for b in range(a + 1, len(hands)):
                    assert not same_hand(hands[a], hands[b])[0], (clip, i)
            body += sum(h.extra.get("candidate") == "body" for h in hands)
        guide = eng._body
        assert guide is not None and 1 <= guide.calls <= len(video) // guide.cfg.video.every + 1
    if not clip.startswith("slpio_asl_different"):
        assert body == 0


@needs_realdev
def test_default_engine_does_not_use_the_legacy_pose_graph():
    """A still through the default engine (body-guided candidates) and video frames (body-guided
    search) run with the legacy ``mp.solutions`` Pose graph made unusable (it is gone from
    MediaPipe 0.10.30): the body model is :class:`PoseModel`."""
    import subprocess
    import sys

    code = (
        "import cv2, numpy as np\n"
        "import mediapipe.python.solutions.pose as legacy\n"
        "def gone(*a, **k):\n"
        "    raise RuntimeError('legacy Pose graph used')\n"
        "legacy.Pose = gone\n"
        "from lagc_hand.engines.pose_model import PoseModel\n"
        "from lagc_hand.engines.recovery import RecoveringMediaPipeEngine\n"
        f"img = cv2.cvtColor(cv2.imread({str(REALDEV / 'images' / 'wilor' / 'test4.jpg')!r}), cv2.COLOR_BGR2RGB)\n"
        "img = np.ascontiguousarray(img)\n"
        "with RecoveringMediaPipeEngine(still=True) as e:\n"
        "    e.process(img)\n"
        "    assert isinstance(e._pose, PoseModel)\n"
        "with RecoveringMediaPipeEngine(max_hands=3) as e:\n"
        "    [e.process(img, i / 30) for i in range(3)]\n"
        "    assert e._body.calls == 1 and isinstance(e._body._model, PoseModel)\n"
        "print('DIRECT POSE OK')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "backend"), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "DIRECT POSE OK" in out.stdout
