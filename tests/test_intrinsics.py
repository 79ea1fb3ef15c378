"""Full intrinsics: --intrinsics, --calibration (files written by OpenCV itself),
undistortion of the detected keypoints, and an off-centre crop reconstructed end
to end with real MediaPipe, whose hands land where they are only when the
principal point is right."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from hand_helpers import palm_facing_camera, render_hands
from lagc_hand.api import ReconstructOptions, reconstruct
from lagc_hand.errors import InputError
from lagc_hand.placement import load_calibration, resolve_camera, undistort_keypoints
from lagc_hand.placement.intrinsics import CameraModel
from lagc_hand_blender.core import camera, handmotion

K_CV = np.array([[812.5, 0.0, 301.25], [0.0, 790.0, 255.5], [0.0, 0.0, 1.0]])
DIST = np.array([-0.28, 0.09, 0.0012, -0.0008, -0.01])


def _write_opencv(path, K, dist=None, size=None):
    fs = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    if size is not None:
        fs.write("image_width", size[0])
        fs.write("image_height", size[1])
    fs.write("camera_matrix", K)
    if dist is not None:
        fs.write("distortion_coefficients", dist.reshape(-1, 1))
    fs.release()


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".xml"])
def test_opencv_calibration_file(tmp_path, suffix):
    path = tmp_path / f"cam{suffix}"
    _write_opencv(path, K_CV, DIST, (640, 480))
    cam = load_calibration(path, (640, 480))
    # OpenCV counts from the centre of the top-left pixel, HandMotion from its corner.
    np.testing.assert_allclose(cam.K, camera.opencv_to_corner(K_CV))
    assert cam.K[0, 2] == K_CV[0, 2] + 0.5
    np.testing.assert_allclose(cam.distortion, DIST)
    # Same aspect, half the resolution: scaled; another aspect: refused.
    half = load_calibration(path, (320, 240)).K
    np.testing.assert_allclose(half, camera.opencv_to_corner(K_CV) * [[0.5, 1, 0.5], [1, 0.5, 0.5], [1, 1, 1]])
    with pytest.raises(InputError, match="aspect"):
        load_calibration(path, (640, 360))


def test_json_calibration_and_bad_files(tmp_path):
    good = tmp_path / "cam.json"
    good.write_text(json.dumps({"K": K_CV.tolist(), "distortion": DIST.tolist()}))
    cam = load_calibration(good, (640, 480))
    np.testing.assert_allclose(cam.K, camera.opencv_to_corner(K_CV))
    assert cam.source == "calibration"
    cases = {
        "missing.yaml": None,
        "garbage.yaml": "this: [is, not\n  a camera",
        "nok.json": json.dumps({"distortion": [0, 0, 0, 0]}),
        "notjson.json": "{K: ",
        "shape.json": json.dumps({"K": [[1, 0], [0, 1]]}),
        "skew.json": json.dumps({"K": [[800, 3, 320], [0, 800, 240], [0, 0, 1]]}),
        "negative.json": json.dumps({"K": [[-800, 0, 320], [0, 800, 240], [0, 0, 1]]}),
        "dist.json": json.dumps({"K": K_CV.tolist(), "distortion": [0.1, 0.2, 0.3]}),
        "nomatrix.yaml": "%YAML:1.0\n---\nimage_width: 640\n",
    }
    for name, text in cases.items():
        p = tmp_path / name
        if text is not None:
            p.write_text(text)
        with pytest.raises(InputError) as exc:
            load_calibration(p, (640, 480))
        assert name.split(".")[0] in str(exc.value) or "calibration file" in str(exc.value), exc.value


def test_camera_options_precedence_and_conflicts(tmp_path):
    cam = resolve_camera(640, 480, intrinsics=(700, 710, 100.5, 50.25))
    np.testing.assert_allclose(cam.K, [[700, 0, 100.5], [0, 710, 50.25], [0, 0, 1]])
    assert cam.source == "intrinsics"
    assert resolve_camera(640, 480).source == "default"
    # focal length and FOV together: the focal length wins, as it always has
    both = resolve_camera(640, 480, focal_mm=18, fov_deg=90)
    assert both.K[0, 0] == pytest.approx(320.0) and both.source == "focal_mm"
    k4 = (700, 700, 320, 240)
    for kw in ({"intrinsics": k4, "fov_deg": 60}, {"intrinsics": k4, "focal_mm": 20},
               {"calibration": "x.yaml", "fov_deg": 60}, {"calibration": "x.yaml", "intrinsics": (1, 1, 1, 1)}):
        with pytest.raises(InputError, match="cannot be combined"):
            resolve_camera(640, 480, **kw)
    with pytest.raises(InputError, match="positive"):
        resolve_camera(640, 480, intrinsics=(0, 700, 320, 240))
    with pytest.raises(InputError):
        ReconstructOptions(intrinsics=(700, 700, 320)).validate()
    with pytest.raises(InputError, match="cannot be combined"):
        ReconstructOptions(intrinsics=(700, 700, 320, 240), fov_deg=50).validate()


def test_undistort_keypoints_gives_the_pinhole_projection():
    rng = np.random.default_rng(0)
    X = np.stack([rng.uniform(-0.25, 0.25, (6, 21)), rng.uniform(-0.2, 0.2, (6, 21)),
                  rng.uniform(0.6, 1.2, (6, 21))], axis=-1)
    K = camera.opencv_to_corner(K_CV)
    cam = CameraModel(K, DIST, "calibration")
    # What a real lens shows: OpenCV's own distortion model, in OpenCV's pixel convention.
    seen, _ = cv2.projectPoints(X.reshape(-1, 3), np.zeros(3), np.zeros(3), K_CV, DIST)
    seen = seen.reshape(6, 21, 2) + 0.5
    present = np.array([True, True, False, True, True, True])
    seen[~present] = 0.0
    out = undistort_keypoints(seen.astype(np.float32), cam, present)
    pin = camera.project(K, X)
    assert np.abs(seen[present] - pin[present]).max() > 10  # the distortion is strong here
    assert np.abs(out[present] - pin[present]).max() < 0.05
    assert np.all(out[~present] == 0)  # absent frames stay zeros
    np.testing.assert_array_equal(undistort_keypoints(seen, CameraModel(K)), seen.astype(np.float32))


# --------------------------------------------------------------------------- end to end

FULL_W, FULL_H, FOV = 960, 480, 60.0
CROP_X0 = 480  # the right half: its principal point sits on its left edge


@pytest.fixture(scope="module")
def crop_clip(open_models, tmp_path_factory):
    """The right half of a wide render: an off-centre crop (cx = 0), with ground truth."""
    path = tmp_path_factory.mktemp("crop") / "crop.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (FULL_W - CROP_X0, FULL_H))
    gts = []
    for t in range(6):
        img, K, gt = render_hands(
            [(open_models["right"], palm_facing_camera("right"), [0.07 + 0.004 * t, 0.07, 0.55]),
             (open_models["left"], palm_facing_camera("left"), [0.22 + 0.004 * t, 0.07, 0.55])],
            width=FULL_W, height=FULL_H, fov_deg=FOV)
        w.write(cv2.cvtColor(img[:, CROP_X0:], cv2.COLOR_RGB2BGR))
        gts.append(gt)
    w.release()
    K_crop = K.copy()
    K_crop[0, 2] -= CROP_X0
    return path, K_crop, np.stack(gts)  # gt (T, 2, 21, 3): right, left


def _root_error(motion, gt) -> float:
    errs = []
    for i, side in enumerate(("right", "left")):
        h = motion.hands[side]
        assert h.present.mean() > 0.8, side
        errs.append(np.linalg.norm(h.raw.root[h.present] - gt[h.present, i, 0], axis=-1).mean())
    return float(np.mean(errs))


def test_off_centre_crop_needs_its_principal_point(crop_clip, tmp_path):
    path, K, gt = crop_clip
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    assert cx == 0.0
    right = reconstruct(path, ReconstructOptions(intrinsics=(fx, fy, cx, cy), detect_workers=1, device="cpu"))
    np.testing.assert_allclose(right.motion.intrinsics, K)
    assert right.motion.meta["camera"]["source"] == "intrinsics"
    centred = reconstruct(path, ReconstructOptions(intrinsics=(fx, fy, (FULL_W - CROP_X0) / 2, cy),
                                                   detect_workers=1, device="cpu"))
    e_right, e_centred = _root_error(right.motion, gt), _root_error(centred.motion, gt)
    # The centred guess shifts both hands by 240 px at 0.55 m: about 16 cm.
    assert e_right < 0.04 and e_centred > 0.12, (e_right, e_centred)

    # The same camera as an OpenCV calibration file through the command line; the file stores K.
    calib = tmp_path / "crop_camera.yaml"
    _write_opencv(calib, camera.corner_to_opencv(K), np.zeros(5), (FULL_W - CROP_X0, FULL_H))
    out = tmp_path / "m.npz"
    p = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "reconstruct", str(path), "-o", str(out),
                        "--calibration", str(calib), "--detect-workers", "1", "--device", "cpu", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    m = handmotion.load(out)
    np.testing.assert_allclose(m.intrinsics, K, atol=1e-9)
    assert _root_error(m, gt) < 0.04
    # Readers refuse a K no pinhole (or Blender) camera can have.
    arrays = handmotion.to_arrays(m)
    arrays["intrinsics"] = arrays["intrinsics"].copy()
    arrays["intrinsics"][0, 1] = 3.0
    with pytest.raises(handmotion.HandMotionError, match="pinhole"):
        handmotion.from_arrays(arrays)
    # A camera given twice is refused before anything runs, and nothing is written.
    bad = tmp_path / "bad.npz"
    p = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "reconstruct", str(path), "-o", str(bad),
                        "--calibration", str(calib), "--fov", "50"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "not allowed with" in p.stderr and not bad.exists()
    p = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "reconstruct", str(path), "-o", str(bad),
                        "--intrinsics", "700,700,320"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "intrinsics must be 4 numbers" in p.stderr and not bad.exists()


def test_server_takes_intrinsics_and_calibration_files(tmp_path):
    """A real server process: a calibration file outside the allowed folders is refused
    (403), one inside is read and its K ends up in the result; bad intrinsics are a 422."""
    from test_server_harness import ServerProcess, wait_for, write_video

    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    video = write_video(allowed / "clip.mp4", 4)
    K_cv = np.array([[150.0, 0, 70.0], [0, 152.0, 50.0], [0, 0, 1]])
    _write_opencv(allowed / "cam.yaml", K_cv, np.zeros(5), (160, 120))
    _write_opencv(outside / "cam.yaml", K_cv)
    srv = ServerProcess(tmp_path / "state", "--allow-dir", str(allowed))
    srv.start()
    try:
        with srv.client() as c:
            r = c.post("/api/v1/jobs/from-path",
                       json={"path": str(video), "options": {"calibration": str(outside / "cam.yaml")}})
            assert r.status_code == 403 and r.json()["error"]["code"] == "path_not_allowed", r.text
            for bad in ({"intrinsics": [150, 150, 80]}, {"intrinsics": [150, 150, 80, 60], "fov_deg": 40}):
                r = c.post("/api/v1/jobs/from-path", json={"path": str(video), "options": bad})
                assert r.status_code == 422, r.text
            r = c.post("/api/v1/jobs/from-path",
                       json={"path": str(video), "options": {"calibration": str(allowed / "cam.yaml"),
                                                             "device": "cpu"}})
            assert r.status_code == 201, r.text
            job = wait_for(c, r.json()["id"], ("done", "failed"), timeout=180)
            assert job["state"] == "done", job
            motion = handmotion.loads(c.get(f"/api/v1/jobs/{job['id']}/result").content)
            np.testing.assert_allclose(motion.intrinsics, camera.opencv_to_corner(K_cv))
            r = c.post("/api/v1/jobs/from-path",
                       json={"path": str(video), "options": {"intrinsics": [150, 152, 10.5, 60], "device": "cpu"}})
            job = wait_for(c, r.json()["id"], ("done", "failed"), timeout=180)
            motion = handmotion.loads(c.get(f"/api/v1/jobs/{job['id']}/result").content)
            np.testing.assert_allclose(motion.intrinsics, [[150, 0, 10.5], [0, 152, 60], [0, 0, 1]])
    finally:
        srv.stop()


DIST_LENS = np.array([-0.42, 0.16, 0.0, 0.0, 0.0])


def _distort_image(img: np.ndarray, K_cv: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """What a lens with ``dist`` shows of the pinhole image ``img``: each output
    (distorted) pixel samples the pinhole image where its ray lands."""
    h, w = img.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 1, 2).astype(np.float64)
    und = cv2.undistortPoints(grid, K_cv, dist, P=K_cv).reshape(h, w, 2).astype(np.float32)
    return cv2.remap(img, und[..., 0], und[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_distorted_video_with_its_calibration(open_models, tmp_path):
    """A rendered clip seen through a barrel-distorting lens: with the calibration
    file the stored keypoints are undistorted onto the pinhole projection of the
    true joints and the hands are placed better than with K alone."""
    path = tmp_path / "distorted.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    gts = []
    for t in range(5):
        img, K, gt = render_hands(
            [(open_models["right"], palm_facing_camera("right"), [-0.19 - 0.003 * t, 0.1, 0.5]),
             (open_models["left"], palm_facing_camera("left"), [0.19 + 0.003 * t, 0.1, 0.5])])
        K_cv = camera.corner_to_opencv(K)
        w.write(cv2.cvtColor(_distort_image(img, K_cv, DIST_LENS), cv2.COLOR_RGB2BGR))
        gts.append(gt)
    w.release()
    gt = np.stack(gts)
    calib = tmp_path / "lens.yaml"
    _write_opencv(calib, K_cv, DIST_LENS, (640, 480))
    runs = {name: reconstruct(path, ReconstructOptions(detect_workers=1, device="cpu", **kw)).motion
            for name, kw in (("calibrated", {"calibration": str(calib)}),
                             ("pinhole only", {"intrinsics": (K[0, 0], K[1, 1], K[0, 2], K[1, 2])}))}
    err2d, err_root = {}, {}
    for name, m in runs.items():
        np.testing.assert_allclose(m.intrinsics, K, atol=1e-9)
        e2, er = [], []
        for i, side in enumerate(("right", "left")):
            h = m.hands[side]
            assert h.present.mean() > 0.8, (name, side)
            truth2d = camera.project(K, gt[h.present, i])
            e2.append(np.linalg.norm(h.keypoints2d[h.present] - truth2d, axis=-1).mean())
            er.append(np.linalg.norm(h.raw.root[h.present] - gt[h.present, i, 0], axis=-1).mean())
        err2d[name], err_root[name] = float(np.mean(e2)), float(np.mean(er))
    assert runs["calibrated"].meta["camera"]["distortion"] == pytest.approx(DIST_LENS.tolist())
    assert err2d["pinhole only"] > 8.0, err2d  # the lens moves the hands by many pixels here
    # Measured: 17.4 px -> 7.3 px (what is left is the detector's own error on the warped
    # hands); wrist 84 mm -> 30 mm.
    assert err2d["calibrated"] < 0.5 * err2d["pinhole only"], err2d
    assert err_root["calibrated"] < err_root["pinhole only"], err_root
