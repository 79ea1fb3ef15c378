"""Synthetic clips: the Blender camera matches the intrinsics, the sample
choreography does what it promises, and the committed sample clip is
consistent with its ground truth and detected by real MediaPipe."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lagc_hand.handmodel import load_hand_model_params, meshops
from lagc_hand.synth.clip import HandTrack, clip_ground_truth, forearm_mesh, pose_track, render_clip, write_video
from lagc_hand.synth.sample import PALM_TO_CAMERA_RIGHT, sample_tracks
from lagc_hand.synth.scene import CameraIntrinsics
from lagc_hand.synth.verify import project

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "two_hands.mp4"
SAMPLE_GT = ROOT / "assets" / "samples" / "two_hands_gt.npz"


@pytest.fixture(scope="module")
def hands():
    return load_hand_model_params("open", "right"), load_hand_model_params("open", "left")


@pytest.fixture(scope="module")
def sample(hands):
    return sample_tracks(*hands)


def test_forearm_is_closed():
    v, f = forearm_mesh()
    rep = meshops.manifold_report(v, f)
    assert rep.ok and rep.euler_characteristic == 2
    assert meshops.signed_volume(v, f) > 0


def _skin_mask(img: np.ndarray) -> np.ndarray:
    """Reddish pixels (skin), after a median filter that removes the low-sample render noise."""
    import cv2

    img = cv2.medianBlur(np.ascontiguousarray(img), 3) if min(img.shape[:2]) >= 3 else img
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return (r > b + 25) & (r > 90)


@pytest.mark.blender
def test_rendered_hand_lands_where_the_intrinsics_project_it(hands):
    """Off-centre principal point and a non-trivial pose: the skin pixels'
    centroid matches the projected mesh's centroid."""
    from scipy.spatial.transform import Rotation

    right = hands[0]
    cam = CameraIntrinsics(width=200, height=150, fx=190.0, cx=84.0, cy=81.0)
    r = Rotation.from_euler("z", 20, degrees=True).as_matrix() @ PALM_TO_CAMERA_RIGHT
    track = HandTrack("right", right, Rotation.from_matrix(r).as_rotvec()[None], np.zeros((1, 45)),
                      np.array([[0.03, 0.08, 0.42]]))
    img = next(render_clip([track], cam, samples=2, forearms=False))
    assert img.shape == (150, 200, 3)
    mask = _skin_mask(img)
    assert 0.05 < mask.mean() < 0.6
    ys, xs = np.nonzero(mask)
    verts = pose_track(track).vertices[0]
    # area-weighted centroid of the projected surface facing the camera
    uv = cam.project(verts)
    import cv2

    proj = np.zeros((150, 200), np.uint8)
    f = right.f
    tri = uv[f].round().astype(np.int32)
    for t in tri:
        cv2.fillConvexPoly(proj, t, 1)
    py, px = np.nonzero(proj)
    assert abs(xs.mean() - px.mean()) < 2.0 and abs(ys.mean() - py.mean()) < 2.0
    iou = (mask & proj.astype(bool)).sum() / (mask | proj.astype(bool)).sum()
    assert iou > 0.85


def test_sample_choreography(sample):
    tracks, cam = sample
    left, right = tracks
    assert left.side == "left" and right.side == "right"
    assert cam.width == 640 and cam.height == 480 and left.num_frames == 120
    pl, pr = pose_track(left), pose_track(right)
    # both hands in view in every frame (all 21 keypoints inside the image)
    for p in (pl, pr):
        uv = cam.project(p.keypoints)
        assert np.all((uv[..., 0] > 0) & (uv[..., 0] < 640) & (uv[..., 1] > 0) & (uv[..., 1] < 480))
        assert np.all(p.keypoints[..., 2] > 0.3)
    # the person faces the camera: the right hand starts on the image's left
    assert pr.keypoints[0, 0, 0] < -0.08 < 0.08 < pl.keypoints[0, 0, 0]
    # ... and ends on its right: the hands crossed
    assert pr.keypoints[-1, 0, 0] > 0.08 and pl.keypoints[-1, 0, 0] < -0.08
    cross = np.flatnonzero(np.diff(np.sign(pr.keypoints[:, 0, 0] - pl.keypoints[:, 0, 0])) != 0)
    assert len(cross) == 1
    t = cross[0]
    assert pr.keypoints[t, 0, 2] < pl.keypoints[t, 0, 2]  # the right hand passes in front
    # interaction: index tips (public 8) and thumb tips (4) touch during the steeple
    d_index = np.linalg.norm(pr.keypoints[:, 8] - pl.keypoints[:, 8], axis=1)
    d_thumb = np.linalg.norm(pr.keypoints[:, 4] - pl.keypoints[:, 4], axis=1)
    touching = np.flatnonzero(d_index < 0.006)
    assert len(touching) >= 10
    assert d_thumb[touching].min() < 0.01
    # away from the touch the meshes keep apart (the crossing passes with depth between them)
    far = np.setdiff1d(np.arange(120), np.arange(touching.min() - 8, touching.max() + 9))
    gaps = [np.linalg.norm(pr.vertices[t, ::4, None] - pl.vertices[t, None, ::4], axis=-1).min() for t in far[::2]]
    assert min(gaps) > 0.01


@pytest.mark.blender
def test_render_write_and_read_back_a_short_clip(tmp_path, sample):
    import cv2

    tracks, cam = sample
    sel = [0, 60]
    small = CameraIntrinsics(160, 120, cam.fx / 4, cam.cx / 4, cam.cy / 4)
    sub = [HandTrack(t.side, t.params, t.global_orient[sel], t.hand_pose[sel], t.transl[sel]) for t in tracks]
    frames = list(render_clip(sub, small, samples=1))
    codec = write_video(frames, tmp_path / "c.mp4", 30.0, (160, 120))
    assert codec in ("avc1", "mp4v")
    cap = cv2.VideoCapture(str(tmp_path / "c.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 2
    gt = clip_ground_truth(sub, small, 30.0)
    gt.save(tmp_path / "gt.npz")
    with np.load(tmp_path / "gt.npz") as z:
        kp = z["right_keypoints"]
        assert kp.shape == (2, 21, 3) and z["intrinsics"].shape == (3, 3)
        # the right wrist projects onto skin (or the sleeve's edge), never onto background
        for i in range(2):
            u, v = project(kp[i, 9], z["intrinsics"]).round().astype(int)  # middle MCP
            assert _skin_mask(frames[i][v - 1:v + 2, u - 1:u + 2]).any()


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample clip not rendered yet (scripts/render_sample.py)")
def test_committed_sample_matches_its_ground_truth(hands):
    import cv2

    assert SAMPLE.stat().st_size < 5_000_000
    with np.load(SAMPLE_GT, allow_pickle=False) as z:
        gt = {k: z[k] for k in z.files}
    cap = cv2.VideoCapture(str(SAMPLE))
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640 and int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == 480
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(float(gt["fps"]))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == len(gt["right_keypoints"]) == len(gt["left_keypoints"])
    assert 3.0 <= n / float(gt["fps"]) <= 5.0
    # the stored pose parameters reproduce the stored keypoints through the layer
    for side, params in zip(("right", "left"), hands):
        tr = HandTrack(side, params, gt[f"{side}_global_orient"].astype(np.float64), gt[f"{side}_hand_pose"].astype(np.float64),
                       gt[f"{side}_transl"].astype(np.float64), gt[f"{side}_betas"].astype(np.float64))
        np.testing.assert_allclose(pose_track(tr).keypoints, gt[f"{side}_keypoints"], atol=1e-5)
    # and they are the current choreography
    tracks, cam = sample_tracks(*hands)
    np.testing.assert_allclose(cam.K, gt["intrinsics"])
    for tr in tracks:
        np.testing.assert_allclose(tr.hand_pose, gt[f"{tr.side}_hand_pose"], atol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not SAMPLE.exists(), reason="sample clip not rendered yet (scripts/render_sample.py)")
def test_mediapipe_finds_both_hands_in_the_sample():
    from lagc_hand.synth.verify import detection_report

    rep = detection_report(SAMPLE, SAMPLE_GT)
    assert rep["left"]["detection_rate"] > 0.8, rep
    assert rep["right"]["detection_rate"] > 0.8, rep
    assert rep["left"]["mean_2d_error_px"] < 12 and rep["right"]["mean_2d_error_px"] < 12
