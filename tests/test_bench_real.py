"""The real-footage benchmark (bench/real.py): its metric functions on hand-made
arrays, and one real run on a realdev still and a short realdev clip."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import real_metrics as rm  # noqa: E402


def _hand(offset=(0.0, 0.0), scale=100.0, seed=0) -> np.ndarray:
    """A (21, 2) px hand-like point set about ``scale`` px across."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (21, 2)) * scale + np.asarray(offset)


def test_match_hands_hungarian_and_found_threshold():
    a, b = _hand((0, 0)), _hand((300, 0), seed=1)
    vis = np.ones(21, bool)
    # Predictions in the other order, slightly off; a third, far away, prediction.
    preds = [b + 3.0, _hand((900, 900), seed=2), a - 2.0]
    m = rm.match_hands([a, b], [vis, vis], [100.0, 100.0], preds)
    assert sorted((li, pi) for li, pi, _ in m) == [(0, 2), (1, 0)]
    assert m[0][2] == pytest.approx(np.hypot(2, 2), rel=1e-6) or m[1][2] == pytest.approx(np.hypot(2, 2), rel=1e-6)
    # 60 px off a 100 px hand is not found (threshold 0.5 x size), 40 px is.
    assert rm.match_hands([a], [vis], [100.0], [a + [60.0, 0.0]]) == []
    assert len(rm.match_hands([a], [vis], [100.0], [a + [40.0, 0.0]])) == 1
    # Only visible points count: a wildly wrong invisible point changes nothing.
    vis2 = vis.copy()
    vis2[5] = False
    p = a.copy()
    p[5] += 1000.0
    assert rm.match_hands([a], [vis2], [100.0], [p])[0][2] == pytest.approx(0.0)
    # One prediction, two labels: only one is matched.
    assert len(rm.match_hands([a, a + 1.0], [vis, vis], [100.0, 100.0], [a])) == 1


def test_keypoint_errors_pck():
    lab = _hand()
    pred = lab.copy()
    pred[:10, 0] += 30.0  # 30 px off on 10 joints of a 100 px hand: outside PCK@0.2 (20 px)
    e = rm.keypoint_errors(pred, lab, np.ones(21, bool), 100.0)
    assert e["px"].mean() == pytest.approx(300.0 / 21)
    assert e["rel"].mean() == pytest.approx(3.0 / 21)
    assert e["pck"].sum() == 11


def test_pa_mpjpe_and_rooted_mpjpe():
    from scipy.spatial.transform import Rotation

    g = np.random.default_rng(3).normal(size=(21, 3)) * 30.0
    R = Rotation.from_rotvec([0.4, -1.1, 2.2]).as_matrix()
    p = 1.3 * g @ R.T + [10.0, -5.0, 400.0]
    assert rm.pa_mpjpe(p, g) == pytest.approx(0.0, abs=1e-9)
    # A mirror image is not a rotation: PA-MPJPE stays well above zero.
    assert rm.pa_mpjpe(g * [1, 1, -1], g) > 1.0
    # Rooted: a pure translation costs nothing, a 5 mm shift of one joint costs 5/21 mm.
    assert rm.rooted_mpjpe(g + 100.0, g) == pytest.approx(0.0, abs=1e-9)
    q = g.copy()
    q[7, 2] += 5.0
    assert rm.rooted_mpjpe(q, g) == pytest.approx(5.0 / 21)


def test_jitter_formula():
    T = 10
    t = np.arange(T, dtype=np.float64)
    lin = np.zeros((T, 21, 2))
    lin[..., 0] = 3.0 * t[:, None]  # constant velocity: no acceleration
    assert rm.jitter(lin, np.ones(T, bool), np.full(T, 50.0)) == pytest.approx(0.0)
    par = np.zeros((T, 21, 2))
    par[..., 1] = 2.0 * t[:, None] ** 2  # |p(t+1) - 2p(t) + p(t-1)| = 4 px
    assert rm.jitter(par, np.ones(T, bool), np.full(T, 50.0)) == pytest.approx(4.0 / 50.0)
    # A frame whose neighbour is absent is left out, with its wild value.
    pres = np.ones(T, bool)
    par[5] += 1000.0
    pres[5] = False
    assert rm.jitter(par, pres, np.full(T, 50.0)) == pytest.approx(4.0 / 50.0)
    assert np.isnan(rm.jitter(par[:2], pres[:2], np.full(2, 50.0)))


def test_duplicates_flips_and_swaps():
    a, b = _hand((0, 0)), _hand((300, 0), seed=1)
    assert rm.duplicate_pairs([a, b]) == 0
    assert rm.duplicate_pairs([a, b, a + 5.0]) == 1
    assert rm.duplicate_pairs([a, b, a[rm.MIRRORED_FINGERS] + 5.0]) == 1  # a mirrored skeleton on hand a
    # Two tracks over 4 frames; the det label of the first flips once.
    frames = [[a, b], [a + 2, b + 2], [b + 4, a + 4], [a + 6, b + 6]]
    ids = rm.link_tracks(frames)
    assert ids[0] == [0, 1] and ids[2] == [1, 0] and ids[3] == [0, 1]
    sides = [["left", "right"], ["left", "right"], ["right", "right"], ["left", "right"]]
    assert rm.side_flips(ids, sides) == 2  # hand 0 -> right at frame 2 (listed second), back to left at 3
    # Output tracks that exchange hands at frame 2.
    L = np.stack([a, a, b, b])
    R = np.stack([b, b, a, a])
    ones = np.ones(4, bool)
    assert rm.track_swaps(L, R, ones, ones) == 1
    assert rm.track_swaps(np.stack([a] * 4), np.stack([b] * 4), ones, ones) == 0


def test_duplicates_count_a_nested_skeleton_in_another_pose():
    """A second skeleton on one hand, smaller and turned (keypoints pairwise and
    mirrored far apart: the old rule missed it), is a duplicate; two hands crossed
    with their wrists on opposite sides, and two hands side by side, are not."""
    def tf(k, ang, scale, shift):
        c = k.mean(0)
        R = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        return (k - c) @ R.T * scale + c + shift

    ang = np.linspace(-0.6, 0.6, 5)
    hand = np.array([[0.0, 0.0]] + [[np.sin(a) * r, -np.cos(a) * r] for a in ang for r in (0.5, 0.8, 1.0, 1.2)]) * 60
    hand += [300.0, 300.0]
    nested = tf(hand, 0.9, 0.8, [3.0, 2.0])
    size = max(rm.box_size(hand), rm.box_size(nested))
    assert min(rm.mean_distance(hand, nested), rm.mean_distance(hand, nested[rm.MIRRORED_FINGERS])) \
        > rm.DUPLICATE_FRACTION * size
    assert rm.duplicate_pairs([hand, nested]) == 1
    mirrored = hand.copy()
    mirrored[:, 0] = 600.0 - hand[:, 0]
    assert rm.duplicate_pairs([tf(hand, 1.2, 1.0, 0.0), tf(mirrored, -1.2, 1.0, 0.0)]) == 0
    assert rm.duplicate_pairs([hand, hand + [90.0, 0.0]]) == 0


def test_project_pinhole():
    K = np.array([[500.0, 0, 320], [0, 400.0, 240], [0, 0, 1]])
    uv = rm.project(np.array([[0.1, -0.2, 2.0]]), K)
    assert uv[0] == pytest.approx([320 + 25.0, 240 - 40.0])


def test_bench_real_runs_on_one_still_and_one_clip(realdev, tmp_path):
    """The bench end to end on real MediaPipe: rows for both engines and an overlay per input."""
    from bench import real

    rc = real.main(["--realdev", str(realdev), "--only", "75,slp_pose_sample_video", "--no-rendered",
                    "--no-write", "--out", str(tmp_path)])
    assert rc == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert {(r["name"], r["engine"]) for r in rows} == {(n, e) for n in ("75", "slp_pose_sample_video")
                                                         for e in ("mediapipe", "mediapipe-raw")}
    still = [r for r in rows if r["name"] == "75"]
    for r in still:  # one open palm, labelled (OneHand10K): found, close to its label
        assert r["row"]["labelled"] == 1 and r["row"]["found_det"] == 1
        assert r["row"]["rel_det"] < 0.2
    clip = [r for r in rows if r["name"] == "slp_pose_sample_video"]
    for r in clip:
        assert r["frames"] == 9 and r["row"]["hands_out"] > 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 2
    import cv2

    for p in tmp_path.glob("*.png"):
        img = cv2.imread(str(p))
        assert img is not None and img.shape[1] == 2 * 480


def test_labelled_duplicates():
    a, b = _hand((0, 0)), _hand((300, 0), seed=1)
    vis = np.ones(21, bool)
    lab = ([a, b], [vis, vis], [100.0, 100.0])
    assert rm.labelled_duplicates(*lab, [a + 1, b + 1]) == 0
    assert rm.labelled_duplicates(*lab, [a + 1, a + 8, b]) == 1  # a second skeleton on hand a
    assert rm.labelled_duplicates(*lab, [a + 1, _hand((900, 900), seed=2)]) == 0  # a false hand, not a duplicate
    # Two labelled hands overlapping in the image, each found once: no duplicate.
    c = a + [25.0, 0.0]
    assert rm.labelled_duplicates([a, c], [vis, vis], [100.0, 100.0], [a, c]) == 0


def test_a_bridged_hand_behind_the_other_is_counted_apart_from_duplicates():
    """Of two output skeletons on one hand, a pair whose nesting comes from a hand the
    tracker bridged behind the other is listed as ``behind`` (the ground truth does the
    same); the same pair of seen hands stays a duplicate; the detector column is unchanged."""
    from bench.real import Run, evaluate

    a = _hand((300.0, 300.0))
    b = a + 5.0
    run = Run(None, None, None, {"seconds": {}}, 1.0)

    def frame(hidden):
        return {"index": 0, "out": [("left", a, None), ("right", b, None)], "clean": [], "hidden": hidden,
                "det": [("left", a, None), ("right", b, None)]}

    behind = evaluate([frame([True, False])], run, None, None)
    assert (behind["dup_out"], behind["behind_out"], behind["dup_det"]) == (0, 1, 1)
    seen = evaluate([frame([False, False])], run, None, None)
    assert (seen["dup_out"], seen["behind_out"], seen["dup_det"]) == (1, 0, 1)


def test_a_bridged_hand_is_counted_apart_against_complete_labels_too():
    """Rendered labels leave a hidden hand out (visibility < 0.3), so the bridged hand
    behind the front one pairs with the front hand's label: listed as ``behind``."""
    from bench.real import LabelHand, Run, evaluate

    a = _hand((300.0, 300.0))
    vis = np.ones(21, bool)
    labels = {0: [LabelHand(a, vis, rm.box_size(a), "right", None)]}
    run = Run(None, None, None, {"seconds": {}}, 1.0)
    out = [("right", a + 1.0, None), ("left", a + 6.0, None)]
    f = {"index": 0, "out": out, "clean": out, "hidden": [False, True], "det": [("right", a + 1.0, None)]}
    acc = evaluate([f], run, labels, None, complete=True)
    assert (acc["dup_out"], acc["behind_out"], acc["dup_det"]) == (0, 1, 0)
    f["hidden"] = [False, False]
    assert evaluate([f], run, labels, None, complete=True)["dup_out"] == 1
