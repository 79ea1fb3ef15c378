"""HandMotion format: round trip, and every kind of damage gives a HandMotionError
(never a crash deep in a reader)."""
import io
import json
import zipfile

import numpy as np
import pytest

from lagc_hand_blender.core import handmotion as hm
from lagc_hand_blender.core.rotations import axis_angle_to_quat


def make_motion(T=12, V=30, seed=0) -> hm.HandMotion:
    rng = np.random.default_rng(seed)
    faces = np.array([[i, (i + 1) % V, (i + 2) % V] for i in range(V)], dtype=np.int32)
    weights = rng.uniform(size=(V, 16)).astype(np.float32)
    weights /= weights.sum(1, keepdims=True)
    hands = {}
    for side in hm.SIDES:
        h = hm.absent_hand(side, T, rng.normal(size=(V, 3)) * 0.05, rng.normal(size=(16, 3)) * 0.05, np.arange(5), np.zeros(10))
        h.present[2:] = True
        h.confidence[2:] = rng.uniform(0.5, 1.0, size=T - 2)
        h.keypoints2d[:] = rng.uniform(0, 640, size=(T, 21, 2))
        for var in hm.VARIANTS:
            v = h.variant(var)
            v.quats[:] = axis_angle_to_quat(rng.normal(size=(T, 16, 3)) * 0.3)
            v.root[:] = rng.normal(size=(T, 3)) * 0.1 + [0, 0, 0.6]
            v.keypoints3d[:] = rng.normal(size=(T, 21, 3)) * 0.05
        hands[side] = h
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    return hm.HandMotion(
        fps=30.0, frames=np.arange(T) * 2, times=np.arange(T) * 2 / 60.0, image_size=(640, 480),
        intrinsics=K, faces=faces, skin_weights=weights, hand_model="test-model", hands=hands,
        meta={"source": "unit-test", "engine": "none"},
    )


def test_roundtrip(tmp_path):
    m = make_motion()
    path = tmp_path / "m.npz"
    hm.save(m, path)
    back = hm.load(path)
    assert back.fps == 30.0 and back.image_size == (640, 480) and back.hand_model == "test-model"
    assert back.meta == m.meta
    np.testing.assert_array_equal(back.frames, m.frames)
    for side in hm.SIDES:
        a, b = m.hands[side], back.hands[side]
        np.testing.assert_array_equal(a.present, b.present)
        for var in hm.VARIANTS:
            np.testing.assert_allclose(a.variant(var).quats, b.variant(var).quats, atol=1e-7)
            np.testing.assert_allclose(a.variant(var).root, b.variant(var).root, atol=1e-7)
    assert hm.loads(hm.dumps(m)).num_frames == m.num_frames
    assert not list(tmp_path.glob("*.part"))  # atomic write leaves no temp file


def _arrays(m):
    return hm.to_arrays(m)


def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_truncated_files_are_rejected_cleanly():
    data = hm.dumps(make_motion())
    for cut in (0, 1, 10, 100, len(data) // 3, len(data) // 2, len(data) - 20):
        with pytest.raises(hm.HandMotionError):
            hm.loads(data[:cut])


@pytest.mark.parametrize("compressed", [False, True])
def test_random_byte_damage_never_escapes_as_other_errors(compressed):
    data = bytearray(hm.dumps(make_motion()) if compressed else _npz_bytes(_arrays(make_motion())))
    rng = np.random.default_rng(3)
    for _ in range(150):
        d = bytearray(data)
        for pos in rng.integers(0, len(d), size=8):
            d[pos] = rng.integers(0, 256)
        try:
            hm.loads(bytes(d))
        except hm.HandMotionError:
            pass  # the only acceptable failure


def test_not_a_motion_file(tmp_path):
    p = tmp_path / "x.npz"
    p.write_bytes(b"hello world")
    with pytest.raises(hm.HandMotionError, match="not a HandMotion"):
        hm.load(p)
    with pytest.raises(hm.HandMotionError, match="no such file"):
        hm.load(tmp_path / "missing.npz")
    with pytest.raises(hm.HandMotionError, match="folder"):
        hm.load(tmp_path)
    with pytest.raises(hm.HandMotionError, match="no header"):
        hm.loads(_npz_bytes({"a": np.zeros(3)}))


def test_unknown_version_is_rejected():
    arrays = _arrays(make_motion())
    header = json.loads(arrays["header"].tobytes())
    header["version"] = 99
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with pytest.raises(hm.HandMotionError, match="version 99"):
        hm.loads(_npz_bytes(arrays))


@pytest.mark.parametrize(
    "key,value,message",
    [
        ("left_raw_quats", np.zeros((12, 16, 3), np.float32), "shape"),
        ("right_present", np.ones(12, np.float32), "dtype"),
        ("frames", np.arange(11), "shape"),
        ("left_clean_root", np.full((12, 3), np.nan, np.float32), "NaN"),
        ("right_raw_quats", np.zeros((12, 16, 4), np.float32), "unit length"),
        ("faces", np.full((30, 3), 999, np.int32), "outside"),
        ("left_confidence", np.full(12, 2.0, np.float32), "outside"),
        ("skin_weights", np.zeros((30, 15), np.float32), "shape"),
    ],
)
def test_malformed_arrays_are_named(key, value, message):
    arrays = _arrays(make_motion())
    arrays[key] = value
    with pytest.raises(hm.HandMotionError, match=message):
        hm.loads(_npz_bytes(arrays))


def test_missing_array_is_named():
    arrays = _arrays(make_motion())
    del arrays["right_clean_keypoints3d"]
    with pytest.raises(hm.HandMotionError, match="right_clean_keypoints3d"):
        hm.loads(_npz_bytes(arrays))


def test_pickled_arrays_are_refused():
    arrays = _arrays(make_motion())
    arrays["frames"] = np.array([object()] * 12, dtype=object)
    with pytest.raises(hm.HandMotionError):
        hm.loads(_npz_bytes(arrays))


def test_save_refuses_invalid_motion(tmp_path):
    m = make_motion()
    m.hands["left"].raw.root[0, 0] = np.inf
    with pytest.raises(hm.HandMotionError):
        hm.save(m, tmp_path / "bad.npz")
    assert not any(tmp_path.iterdir())
