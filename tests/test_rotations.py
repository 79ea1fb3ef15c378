import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from lagc_hand_blender.core import rotations as r


@pytest.fixture
def rotvecs():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(200, 3))
    v *= (rng.uniform(0, np.pi, size=(200, 1)) / np.linalg.norm(v, axis=1, keepdims=True))
    v[0] = 0.0
    v[1] = [1e-9, 0, 0]
    return v


def test_axis_angle_quat_matrix_agree_with_scipy(rotvecs):
    q = r.axis_angle_to_quat(rotvecs)
    ref = Rotation.from_rotvec(rotvecs)
    np.testing.assert_allclose(r.quat_to_matrix(q), ref.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(r.quat_to_axis_angle(q), rotvecs, atol=1e-9)
    qm = r.matrix_to_quat(ref.as_matrix())
    dots = np.abs(np.sum(qm * q, axis=-1))
    np.testing.assert_allclose(dots, 1.0, atol=1e-9)


def test_multiply_composes_like_matrices(rotvecs):
    a = r.axis_angle_to_quat(rotvecs)
    b = r.axis_angle_to_quat(rotvecs[::-1])
    np.testing.assert_allclose(
        r.quat_to_matrix(r.quat_multiply(a, b)), r.quat_to_matrix(a) @ r.quat_to_matrix(b), atol=1e-12
    )


def test_sign_continuity_and_slerp():
    q = r.axis_angle_to_quat(np.linspace([0, 0, 0], [0, 0, 3.0], 20))
    flipped = q.copy()
    flipped[1::2] *= -1
    fixed = r.quat_sign_continuity(flipped)
    assert np.all(np.sum(fixed[1:] * fixed[:-1], axis=-1) > 0)
    np.testing.assert_allclose(r.quat_angle_between(fixed, q), 0, atol=1e-6)
    mid = r.quat_slerp(q[0], -q[-1], 0.5)  # sign of the end must not matter
    np.testing.assert_allclose(r.quat_to_axis_angle(mid), [0, 0, 1.5], atol=1e-9)


def _continuity_by_loop(q, present):
    """The definition, one sample at a time: each sample takes the sign closer to
    its (already fixed) predecessor in the same run of present samples."""
    q = np.array(q, np.float64, copy=True)
    for t in range(1, len(q)):
        if present[t] and present[t - 1]:
            dot = np.sum(q[t] * q[t - 1], axis=-1, keepdims=True)
            q[t] = np.where(dot < 0, -q[t], q[t])
    return q


def test_sign_continuity_equals_the_loop_per_run_and_keeps_absent_samples():
    """The one (vectorised) implementation against the loop that defines it, on
    (T, 16, 4) random rotations with random signs and three gaps: per-run
    continuity, the first sample of each run keeps its sign, absent samples untouched,
    the same rotations; along another axis too."""
    rng = np.random.default_rng(0)
    q = r.quat_normalize(rng.normal(size=(300, 16, 4)))
    q[rng.random((300, 16)) < 0.5] *= -1
    present = np.ones(300, bool)
    present[[0, 40, 41, 42, 200]] = False
    out = r.quat_sign_continuity(q, 0, present)
    np.testing.assert_array_equal(out, _continuity_by_loop(q, present))
    np.testing.assert_array_equal(out[~present], q[~present])
    for s in (1, 43, 201):  # run starts keep their sign
        np.testing.assert_array_equal(out[s], q[s])
    link = present[1:] & present[:-1]
    assert np.all(np.sum(out[1:] * out[:-1], axis=-1)[link] >= 0)
    assert np.all(r.quat_angle_between(out, q) < 1e-6)
    # without a mask: one run over everything; time on axis 1
    np.testing.assert_array_equal(r.quat_sign_continuity(q), _continuity_by_loop(q, np.ones(300, bool)))
    np.testing.assert_array_equal(np.swapaxes(r.quat_sign_continuity(np.swapaxes(q, 0, 1), axis=1), 0, 1),
                                  r.quat_sign_continuity(q))
    with pytest.raises(ValueError, match="present"):
        r.quat_sign_continuity(q, 0, present[:10])


def test_kabsch_recovers_known_rotations_and_never_reflects():
    rng = np.random.default_rng(11)
    src = rng.normal(size=(21, 3))
    R = Rotation.random(4, random_state=5).as_matrix()
    dst = np.einsum("tij,nj->tni", R, src) + rng.normal(size=(4, 1, 3))  # rotated and moved
    assert np.allclose(r.kabsch_rotation(src, dst), R, atol=1e-9)
    # A mirrored target is best matched by a reflection; the result must stay a rotation.
    got = r.kabsch_rotation(src, (src * [-1.0, 1.0, 1.0])[None])
    assert np.allclose(np.linalg.det(got), 1.0) and np.allclose(got @ got.transpose(0, 2, 1), np.eye(3), atol=1e-9)
