"""``lagc-hand cleanup`` end to end: the real CLI in a subprocess on HandMotion
files with injected jitter, gaps and an identity switch."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "blender"))
import lagc_synth  # noqa: E402

from lagc_hand_blender.core import handmotion as hm  # noqa: E402
from lagc_hand_blender.core.mocap_edit import angle_error_deg, forward_keypoints, rotation_jitter_deg  # noqa: E402
from lagc_hand_blender.core.rotations import axis_angle_to_quat, quat_multiply  # noqa: E402
from lagc_hand_blender.core.skeleton import MANO21_TO_PUBLIC  # noqa: E402

T = 80


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lagc_hand.cli", "cleanup", *args],
                          capture_output=True, text=True, timeout=120)


def _truth() -> hm.HandMotion:
    # stride 2: source frames 10, 12, ... at 15 samples/s
    return lagc_synth.always_present_motion(T, 5, np.arange(T, dtype=np.int64) * 2 + 10, fps=15.0, focal=600.0)


@pytest.fixture
def noisy(tmp_path):
    truth = _truth()
    m = hm.from_arrays({k: np.array(v, copy=True) for k, v in hm.to_arrays(truth).items()})
    rng = np.random.default_rng(1)
    for s in hm.SIDES:
        c = m.hands[s].clean
        c.quats = quat_multiply(c.quats, axis_angle_to_quat(rng.normal(scale=np.radians(2.0), size=(T, 16, 3))))
        c.quats = c.quats.astype(np.float32)
    path = tmp_path / "in.npz"
    hm.save(m, path)
    return truth, m, path


def test_smooth_halves_jitter_and_keeps_raw(noisy, tmp_path):
    """--smooth 2: clean rotation jitter -50% or better; raw bit-identical; keypoints = FK."""
    truth, m, path = noisy
    out = tmp_path / "out.npz"
    p = _run(str(path), "-o", str(out), "--smooth", "2", "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    r = hm.load(out)
    for s in hm.SIDES:
        before = rotation_jitter_deg(m.hands[s].clean.quats, m.hands[s].present)
        after = rotation_jitter_deg(r.hands[s].clean.quats, r.hands[s].present)
        assert after <= 0.5 * before
        assert rep["hands"][s]["jitter_deg_before"] == pytest.approx(before, abs=1e-3)
        np.testing.assert_array_equal(r.hands[s].raw.quats, m.hands[s].raw.quats)
        h = r.hands[s]
        kp = forward_keypoints(h.clean.quats, h.clean.root, h.rest_joints, h.rest_vertices[h.tip_vertex_ids])
        np.testing.assert_allclose(h.clean.keypoints3d, kp, atol=1e-5)
    # the independent FK of the test helper agrees with ours
    h = truth.hands["right"]
    posed, _ = lagc_synth.forward_kinematics(h.clean.quats.astype(float), h.clean.root.astype(float),
                                             h.rest_joints.astype(float), h.rest_vertices[h.tip_vertex_ids].astype(float))
    np.testing.assert_allclose(posed[:, MANO21_TO_PUBLIC], h.clean.keypoints3d, atol=1e-5)
    assert r.meta["cleanup_history"][-1]["smooth"] == 2.0


def test_fill_gaps_and_swap(tmp_path):
    """--fill-gaps 6 bridges a 5-sample gap within 2 deg of the truth; --swap
    undoes an injected identity switch exactly."""
    truth = _truth()
    m = hm.from_arrays({k: np.array(v, copy=True) for k, v in hm.to_arrays(truth).items()})
    h = m.hands["left"]
    gap = slice(30, 35)
    lagc_synth.hide(h, gap)
    sw = slice(50, 60)  # source frames 110..128
    L, R = m.hands["left"], m.hands["right"]
    for var in hm.VARIANTS:
        for name in ("quats", "root", "keypoints3d"):
            a, b = getattr(L.variant(var), name), getattr(R.variant(var), name)
            a[sw], b[sw] = b[sw].copy(), a[sw].copy()
    path, out = tmp_path / "in.npz", tmp_path / "out.npz"
    hm.save(m, path)
    p = _run(str(path), "-o", str(out), "--fill-gaps", "6", "--swap", "110:128")
    assert p.returncode == 0, p.stderr
    assert "swapped left/right on 10 frames" in p.stdout
    r = hm.load(out)
    assert r.hands["left"].present.all()
    err = angle_error_deg(r.hands["left"].clean.quats[gap], truth.hands["left"].clean.quats[gap])
    assert err.max() < 2.0
    for s in hm.SIDES:
        np.testing.assert_array_equal(r.hands[s].clean.quats[sw], truth.hands[s].clean.quats[sw])
        np.testing.assert_array_equal(r.hands[s].raw.root[sw], truth.hands[s].raw.root[sw])


def test_reduce_snaps_to_few_keys_within_tolerance(noisy, tmp_path):
    """--reduce 1: each joint and the wrist keyed on its own (as the add-on's Reduce
    Keys), at 15 fps samples: >= 2.5x fewer F-Curve keys, every rotation within 1 deg,
    the wrist within the default 1 mm, and the snapped values linear between each
    channel's listed key frames."""
    truth, _, _ = noisy
    path, out = tmp_path / "t.npz", tmp_path / "o.npz"
    hm.save(truth, path)
    p = _run(str(path), "-o", str(out), "--reduce", "1.0", "--json")
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    r = hm.load(out)
    for s in hm.SIDES:
        h = rep["hands"][s]
        assert h["keys_before"] == T * (16 * 4 + 3)
        assert h["keys_kept"] * 2.5 <= h["keys_before"]
        assert len(h["key_frames"]) == 17 and all(k[0] == 10 and k[-1] == 10 + 2 * (T - 1)
                                                  for k in h["key_frames"].values())
        assert h["keys_kept"] == sum((4 if c != "wrist_location" else 3) * len(k) for c, k in h["key_frames"].items())
        err = angle_error_deg(r.hands[s].clean.quats, truth.hands[s].clean.quats)
        assert err.max() <= 1.0 + 1e-3
        dist = np.linalg.norm(r.hands[s].clean.root - truth.hands[s].clean.root, axis=-1)
        assert dist.max() <= 0.001 + 1e-6
        for c, k in h["key_frames"].items():
            assert set(k) <= set(truth.frames.tolist())
        # the wrist rotation between its keys is the renormalised lerp of the key values
        kf = np.asarray(h["key_frames"]["wrist"])
        q = r.hands[s].clean.quats[:, 0].astype(np.float64)
        i = np.searchsorted(r.frames, kf)
        mid = (i[:-1] + i[1:]) // 2
        f = ((r.frames[mid] - r.frames[i[:-1]]) / (r.frames[i[1:]] - r.frames[i[:-1]]))[:, None]
        a, b = q[i[:-1]], q[i[1:]]
        b = np.where(np.sum(a * b, axis=-1, keepdims=True) < 0, -b, b)
        assert angle_error_deg((1 - f) * a + f * b, q[mid]).max() < 0.01
    p = _run(str(path), "-o", str(tmp_path / "o2.npz"), "--reduce", "1.0", "--reduce-mm", "0")
    assert p.returncode != 0 and "--reduce-mm" in p.stderr


def test_bad_input_gives_clear_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    p = _run(str(bad), "-o", str(tmp_path / "o.npz"))
    assert p.returncode == 2 and "damaged" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "o.npz").exists()
    good = tmp_path / "g.npz"
    hm.save(_truth(), good)
    p = _run(str(good), "-o", str(tmp_path / "o.npz"), "--swap", "9-3")
    assert p.returncode == 2 and "FIRST:LAST" in p.stderr
    p = _run(str(good), "-o", str(good))
    assert p.returncode == 2 and "new file" in p.stderr
