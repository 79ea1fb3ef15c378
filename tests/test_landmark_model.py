"""The directly run hand landmark model and the candidate search, on real photos
from ``shared/realdev`` (never copied here) and real MediaPipe."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.real import find_realdev
from lagc_hand.engines import create_engine
from lagc_hand.engines.dedup import same_hand
from lagc_hand.engines.landmark_model import HandLandmarkModel, Roi, roi_from_keypoints

ROOT = Path(__file__).resolve().parents[1]


REALDEV = find_realdev()
needs_realdev = pytest.mark.skipif(REALDEV is None, reason="shared/realdev (real photos) is not present: set "
                                   "LAGC_REALDEV or place it at <repo>/../shared/realdev")


def _image(rel: str) -> np.ndarray:
    import cv2

    img = cv2.imread(str(REALDEV / rel))
    assert img is not None, rel
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


def _labelled(label_file: str, name: str) -> dict:
    items = json.loads((REALDEV / "labels" / label_file).read_text())["items"]
    return next(i for i in items if i["file"].endswith(name))


def _match_dist(obs, hand: dict) -> float:
    """Mean 2D distance over the labelled points, in max(bbox w, h) (realdev README's rule: found < 0.5)."""
    k = np.array([p if p is not None else [np.nan, np.nan] for p in hand["keypoints_2d"]], float)
    v = np.array(hand["visible"]) & ~np.isnan(k[:, 0])
    return float(np.linalg.norm(obs.keypoints2d[v] - k[v], axis=1).mean()) / max(hand["bbox_xywh"][2:])


@needs_realdev
def test_direct_landmark_model_matches_mediapipe():
    """MediaPipe's tracking graph, given one frame twice, runs the landmark model on the region
    of the first frame's keypoints; the direct runner on that region gives the same answer."""
    from mediapipe.python.solutions import hands as mp_hands

    img = _image("images/acr/magic.jpg")
    H, W = img.shape[:2]
    with mp_hands.Hands(static_image_mode=False, max_num_hands=1, model_complexity=1) as graph:
        first, second = graph.process(img), graph.process(img)
    kp1 = np.array([[p.x * W, p.y * H] for p in first.multi_hand_landmarks[0].landmark])
    kp2 = np.array([[p.x * W, p.y * H] for p in second.multi_hand_landmarks[0].landmark])
    z2 = np.array([p.z * W for p in second.multi_hand_landmarks[0].landmark])
    w2 = np.array([[p.x, p.y, p.z] for p in second.multi_hand_world_landmarks[0].landmark])
    label = second.multi_handedness[0].classification[0]

    res = HandLandmarkModel().run(img, roi_from_keypoints(kp1))
    assert np.abs(res.keypoints2d - kp2).max() < 0.5  # px, on a ~400 px hand
    assert np.abs(res.depth - z2).max() < 0.5
    assert np.abs(res.world - w2).max() < 1e-3  # metres
    assert res.presence > 0.9
    # MediaPipe's label is selfie-convention: "Left" means a real right hand.
    assert (res.p_right > 0.5) == (label.label == "Left")

    # Mirrored input, un-mirrored output: the same hand, the same side.
    flipped = HandLandmarkModel().run(img, roi_from_keypoints(kp1), flip=True)
    assert np.linalg.norm(flipped.keypoints2d - kp2, axis=1).mean() < 0.05 * np.ptp(kp2, 0).max()
    assert (flipped.p_right > 0.5) == (res.p_right > 0.5)


@needs_realdev
def test_landmark_model_presence_low_off_the_hand():
    """The presence score is what confirms candidates: low on a region without a hand."""
    img = _image("images/acr/magic.jpg")
    res = HandLandmarkModel().run(img, Roi(150.0, 950.0, 260.0, 0.0))  # bottom-left corner, no hand
    assert res.presence < 0.5


@needs_realdev
def test_candidate_finds_labelled_hand_palm_detection_misses():
    """A hand that fills the frame (OneHand10K 5.jpg cut to its labelled box): the palm detector
    finds nothing; the still search (padded whole frame) finds it, on the label."""
    item = _labelled("onehand10k_hands.json", "5.jpg")
    hand = item["hands"][0]
    x, y, w, h = (int(v) for v in hand["bbox_xywh"])
    img = np.ascontiguousarray(_image(item["file"])[y:y + h, x:x + w])
    shifted = dict(hand, keypoints_2d=[None if p is None else [p[0] - x, p[1] - y] for p in hand["keypoints_2d"]])
    with create_engine("mediapipe-raw") as raw:
        assert raw.process(img, 0.0) == []
    with create_engine("mediapipe", still=True) as eng:
        found = eng.process(img, 0.0)
    assert len(found) == 1
    assert found[0].extra.get("candidate") in ("grid", "body")
    assert _match_dist(found[0], shifted) < 0.5


@needs_realdev
@pytest.mark.parametrize("rel", ["images/onehand10k/5.jpg", "images/onehand10k/75.jpg",
                                 "images/onehand10k/160.jpg", "images/acr/magic.jpg"])
def test_single_hand_photos_get_one_skeleton(rel):
    with create_engine("mediapipe", still=True) as eng:
        hands = eng.process(_image(rel), 0.0)
    assert len(hands) == 1, [h.extra for h in hands]


@needs_realdev
def test_fragment_of_a_hand_is_not_a_second_hand():
    """OneHand10K 160.jpg cut to its box: the grid proposes a half-size 'hand' folded onto the
    index finger; duplicate suppression must treat it as part of the hand."""
    item = _labelled("onehand10k_hands.json", "160.jpg")
    x, y, w, h = (int(v) for v in item["hands"][0]["bbox_xywh"])
    img = np.ascontiguousarray(_image(item["file"])[y:y + h, x:x + w])
    with create_engine("mediapipe", still=True) as eng:
        hands = eng.process(img, 0.0)
    assert len(hands) == 1
    for i in range(len(hands)):
        for j in range(i):
            assert not same_hand(hands[i], hands[j])[0]


@needs_realdev
def test_no_hand_on_a_hand_free_photo():
    """magic.jpg with its one hand painted out (box of the detected hand, 1.5x, filled with
    the image's median colour): no hand, no candidate."""
    img = _image("images/acr/magic.jpg")
    with create_engine("mediapipe-raw") as raw:
        (hand,) = raw.process(img, 0.0)
    b = hand.box
    c, half = 0.5 * (b[:2] + b[2:]), 0.75 * (b[2:] - b[:2])
    x0, y0 = np.maximum(c - half, 0).astype(int)
    x1, y1 = (c + half).astype(int)
    img[y0:y1, x0:x1] = np.median(img.reshape(-1, 3), axis=0).astype(np.uint8)
    with create_engine("mediapipe", still=True) as eng:
        assert eng.process(img, 0.0) == []
        assert eng.stats["landmark_passes"] > 50  # the grid really ran


@needs_realdev
@pytest.mark.parametrize("rel", ["images/acr/magic.jpg", "images/wilor/test4.jpg", "images/onehand10k/160.jpg"])
def test_direct_palm_and_landmark_models_reproduce_mediapipe_hands(rel):
    """Palm detector (anchors, decoding, weighted NMS) -> MediaPipe's palm region -> landmark
    model, all run directly, give MediaPipe Hands' still-image keypoints."""
    from mediapipe.python.solutions import hands as mp_hands

    from lagc_hand.engines.palm_model import PalmModel

    img = _image(rel)
    H, W = img.shape[:2]
    with mp_hands.Hands(static_image_mode=True, max_num_hands=4, model_complexity=1) as graph:
        res = graph.process(img)
    theirs = [np.array([[p.x * W, p.y * H] for p in lm.landmark]) for lm in res.multi_hand_landmarks]
    model = HandLandmarkModel()
    ours = [r for r in (model.run(img, p.roi()) for p in PalmModel().detect(img)) if r.presence > 0.5]
    assert len(ours) == len(theirs) >= 1
    for kp in theirs:
        assert min(np.abs(o.keypoints2d - kp).max() for o in ours) < 1.0  # px


@needs_realdev
def test_one_hand_real_clip_no_duplicate_and_no_fewer_hands():
    """slp_pose_test_video: one hand waved fast (motion blur), entering and leaving.  The
    recovery search re-finds blurred frames but must never put a second skeleton on the hand."""
    import cv2

    cap = cv2.VideoCapture(str(REALDEV / "videos" / "slp_pose_test_video.mp4"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)))
    assert len(frames) > 50
    counts = {}
    for name in ("mediapipe-raw", "mediapipe"):
        with create_engine(name) as eng:
            counts[name] = [len(eng.process(f, i / 30)) for i, f in enumerate(frames)]
    assert max(counts["mediapipe"]) == 1, counts["mediapipe"]
    assert sum(counts["mediapipe"]) >= sum(counts["mediapipe-raw"])
