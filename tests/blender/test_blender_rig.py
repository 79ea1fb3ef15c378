"""numpy-only rig maths of the add-on (core/rig.py); no bpy needed."""
from __future__ import annotations

import numpy as np

import lagc_synth
from lagc_hand_blender.core import rig
from lagc_hand_blender.core.rotations import axis_angle_to_quat, quat_angle_between


def test_bone_layout_and_rest_frames():
    joints, tips = lagc_synth.right_skeleton()
    verts, faces, weights, tip_ids = lagc_synth.bipyramid_mesh(joints, tips)
    layout = rig.bone_layout(joints, verts, tip_ids, "right")
    assert layout.names[0] == "wrist.R" and layout.names[16] == "thumb_tip.R" and len(layout.names) == 21
    np.testing.assert_allclose(layout.heads[:16], joints)
    np.testing.assert_allclose(layout.tails[3], tips[1])  # index3 ends at the index tip
    R = layout.rest_matrices()
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    # Roll: every bone's local +Z points out of the back of the hand (+y in the model frame).
    assert np.all(R[:, 1, 2] > 0.3)
    left = rig.bone_layout(joints * [-1, 1, 1], verts * [-1, 1, 1], tip_ids, "left")
    np.testing.assert_allclose(left.z_axes[0], layout.z_axes[0] * [-1, 1, 1], atol=1e-12)


def test_bone_quaternion_conversion_round_trip():
    rng = np.random.default_rng(1)
    q = axis_angle_to_quat(rng.normal(scale=0.8, size=(50, 16, 3)))
    rest = np.stack([np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(16)])
    rest *= np.sign(np.linalg.det(rest))[:, None, None]
    bone = rig.motion_to_bone_quats(q, rest)
    assert np.all(np.sum(bone[1:] * bone[:-1], axis=-1) >= 0)
    assert np.max(quat_angle_between(rig.bone_quats_to_motion(bone, rest), q)) < 1e-6
    loc = rig.root_to_bone_location(np.array([[0.1, 0.2, 0.5]]), rest[0], np.array([0.01, 0.0, 0.0]))
    np.testing.assert_allclose(loc @ rest[0].T + [0.01, 0.0, 0.0], [[0.1, 0.2, 0.5]])


def test_camera_params_and_rates():
    K = np.array([[800.0, 0, 300.0], [0, 800.0, 260.0], [0, 0, 1]])
    p = rig.camera_params(K, (640, 480))
    assert abs(p.lens_mm - 800 * 36 / 640) < 1e-12
    assert p.shift_x > 0 and p.shift_y > 0  # principal point left of and below the centre
    assert rig.blender_fps(29.97) == (30, 30 / 29.97)
    assert rig.source_fps(15.0, np.array([0, 2, 4, 6])) == 30.0
    np.testing.assert_array_equal(rig.change_points(np.array([1, 1, 0, 0, 1], bool)), [0, 2, 4])


def test_fix_winding_turns_mirrored_meshes_outward():
    joints, tips = lagc_synth.right_skeleton()
    verts, faces, _, _ = lagc_synth.bipyramid_mesh(joints, tips)

    def volume(v, f):
        a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
        return np.sum(np.einsum("ij,ij->i", a, np.cross(b, c))) / 6

    for v in (verts, verts * [-1, 1, 1]):
        assert volume(v, rig.fix_winding(v, faces)) > 0
