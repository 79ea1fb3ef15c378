"""The whole path: a rendered two-hand clip -> reconstruct() -> HandMotion, plus the CLI."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from hand_helpers import palm_facing_camera, render_hands
from lagc_hand.api import ReconstructOptions, reconstruct
from lagc_hand.errors import Cancelled, InputError
from lagc_hand_blender.core import handmotion

N = 48  # two detect chunks (engines/parallel.py MIN_CHUNK_FRAMES = 24): a real seam
FOV = 60.0


@pytest.fixture(scope="module")
def clip(open_models, tmp_path_factory):
    """An avi of two hands moving apart, with ground-truth keypoints per frame."""
    path = tmp_path_factory.mktemp("clip") / "two_hands.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    gts = []
    for t in range(N):
        d = 0.11 + 0.003 * t
        img, K, gt = render_hands(
            [(open_models["right"], palm_facing_camera("right"), [-d, 0.08, 0.5]),
             (open_models["left"], palm_facing_camera("left"), [d, 0.08, 0.5])], fov_deg=FOV)
        w.write(cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        gts.append(gt)
    w.release()
    return path, np.stack(gts)  # (N, 2, 21, 3): [:, 0] right, [:, 1] left


def test_reconstruct_rendered_clip(clip):
    path, gt = clip
    seen = []
    res = reconstruct(path, ReconstructOptions(fov_deg=FOV), progress=seen.append)
    m = res.motion
    assert m.num_frames == N and m.image_size == (640, 480)
    assert [p.stage for p in seen][0] == "decode" and seen[-1].stage == "done"
    right, left = m.hands["right"], m.hands["left"]
    assert right.present.mean() > 0.9 and left.present.mean() > 0.9
    assert res.summary["identity_switches"] == 0
    assert res.summary["frames_bridged"] == {"left": 0, "right": 0}  # the hands never overlap here
    assert res.summary["frames_followed"] == {"left": 0, "right": 0}  # nor hide one another
    for h, g in ((right, gt[:, 0]), (left, gt[:, 1])):
        for var in ("raw", "clean"):
            kp = h.variant(var).keypoints3d[h.present]
            gg = g[h.present]
            rel = np.linalg.norm((kp - kp[:, :1]) - (gg - gg[:, :1]), axis=-1).mean()
            assert rel < 0.03, (h.side, var, rel)  # root-relative error under 3 cm (a mirrored or mis-axed hand is > 5 cm)
    # The two hands keep their relative placement (MRRPE).
    both = right.present & left.present
    rel_pred = right.clean.root[both] - left.clean.root[both]
    rel_gt = gt[both, 0, 0] - gt[both, 1, 0]
    assert np.linalg.norm(rel_pred - rel_gt, axis=1).mean() < 0.04
    assert right.clean.root[both, 0].mean() < left.clean.root[both, 0].mean()  # right hand on image left
    # The file round-trips.
    data = handmotion.dumps(m)
    assert handmotion.loads(data).hands["right"].present.sum() == right.present.sum()


def test_reconstruct_in_parallel_chunks(clip):
    """Two chunks detected at once: same frames, both hands, no identity switch at the seam."""
    path, gt = clip
    res = reconstruct(path, ReconstructOptions(fov_deg=FOV, detect_workers=2))
    m = res.motion
    assert res.summary["detect_workers"] == 2 and list(m.frames) == list(range(N))
    assert res.summary["identity_switches"] == 0
    for side, g in (("right", gt[:, 0]), ("left", gt[:, 1])):
        h = m.hands[side]
        assert h.present.mean() > 0.9
        # Each hand stays on its own side of the image across the chunk boundary.
        assert np.all(np.sign(h.clean.root[h.present, 0]) == np.sign(g[h.present, 0, 0]))


def test_no_hands_video(tmp_path):
    path = tmp_path / "empty_scene.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    for i in range(6):
        w.write(np.full((120, 160, 3), 40 + 10 * i, np.uint8))
    w.release()
    res = reconstruct(path, ReconstructOptions(stride=2))
    assert res.motion.num_frames == 3 and list(res.motion.frames) == [0, 2, 4]
    assert res.motion.fps == pytest.approx(12.5)
    assert not res.summary["hands_found"] and "no hands" in res.summary["message"]
    assert not res.motion.hands["left"].present.any() and not res.motion.hands["right"].present.any()


def test_cancel_and_bad_input(tmp_path, clip):
    with pytest.raises(Cancelled):
        reconstruct(clip[0], ReconstructOptions(), should_cancel=lambda: True)
    with pytest.raises(InputError):
        reconstruct(tmp_path / "missing.mp4")
    with pytest.raises(InputError):
        reconstruct(clip[0], ReconstructOptions(smoothing=-1))


def test_cli_reconstruct(clip, tmp_path):
    out = tmp_path / "m.npz"
    summ = tmp_path / "s.json"
    cmd = [sys.executable, "-m", "lagc_hand.cli", "reconstruct", str(clip[0]), "-o", str(out),
           "--fov", str(FOV), "--frames", "2:10", "--smoothing", "0", "--summary", str(summ),
           "--detect-workers", "1"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    m = handmotion.load(out)
    assert list(m.frames) == list(range(2, 10))
    assert "identity switches" in p.stdout
    s = json.loads(summ.read_text())
    assert s["frames"] == 8 and s["detect_workers"] == 1
    # smoothing 0: cleaned == raw
    np.testing.assert_allclose(m.hands["right"].clean.quats, m.hands["right"].raw.quats, atol=1e-6)
    bad = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "reconstruct", str(tmp_path / "nope.mp4"),
                          "-o", str(tmp_path / "x.npz")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no such file" in bad.stderr
    assert not (tmp_path / "x.npz").exists()
