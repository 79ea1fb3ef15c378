"""Mocap cleanup operators in the real ``bpy`` module, on motions with injected
jitter, spikes, gaps and identity switches.  Each edit must improve the metric
it targets by a stated amount (see each test's docstring)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

from lagc_hand_blender.blender import cleanup_ops as co  # noqa: E402
from lagc_hand_blender.blender import compat  # noqa: E402
from lagc_hand_blender.blender.scene import ImportOptions, import_motion  # noqa: E402
from lagc_hand_blender.core import handmotion as hm  # noqa: E402
from lagc_hand_blender.core import keyreduce, rig  # noqa: E402
from lagc_hand_blender.core.mocap_edit import angle_error_deg, rotation_jitter_deg  # noqa: E402
from lagc_hand_blender.core.rotations import axis_angle_to_quat, quat_multiply  # noqa: E402
from lagc_hand_blender.core.skeleton import MANO21_TO_PUBLIC  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lagc_synth  # noqa: E402

T = 72


def _motion(seed: int = 3) -> hm.HandMotion:
    """Both hands present on every frame (the ground truth of every test)."""
    return lagc_synth.always_present_motion(T, seed, np.arange(T, dtype=np.int64), fps=30.0, focal=700.0)


def _copy(m: hm.HandMotion) -> hm.HandMotion:
    return hm.from_arrays({k: np.array(v, copy=True) for k, v in hm.to_arrays(m).items()})


def _import(m: hm.HandMotion):
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    return import_motion(m, ImportOptions(name="T", camera=False))


def _bone_truth(arm, quats_motion: np.ndarray) -> np.ndarray:
    rest_rot, _ = co.rest_frames(arm)
    return rig.motion_to_bone_quats(quats_motion, rest_rot)


def _noise(rng, shape, deg: float) -> np.ndarray:
    return axis_angle_to_quat(rng.normal(scale=np.radians(deg), size=shape + (3,)))


@pytest.fixture(scope="module")
def truth():
    return _motion()


def test_smooth_halves_jitter_and_moves_toward_truth(truth):
    """Smooth (strength 2): rotation jitter -50% or better, mean error to the
    truth -25% or better; the raw action is untouched."""
    rng = np.random.default_rng(0)
    m = _copy(truth)
    clean = m.hands["right"].clean
    true_q = clean.quats.copy()
    clean.quats = quat_multiply(true_q, _noise(rng, (T, 16), 2.0)).astype(np.float32)
    res = _import(m)
    arm = res.armatures["right"]
    raw_before = co.read_hand_keys(arm, co.raw_action(arm))
    k0 = co.read_hand_keys(arm)
    truth_b = _bone_truth(arm, true_q)
    rep = co.smooth_hand(arm, 1, T, strength=2.0)
    k1 = co.read_hand_keys(arm)
    j0, j1 = rotation_jitter_deg(k0.quats, k0.present), rotation_jitter_deg(k1.quats, k1.present)
    e0, e1 = angle_error_deg(k0.quats, truth_b).mean(), angle_error_deg(k1.quats, truth_b).mean()
    print(f"smooth: jitter {j0:.3f} -> {j1:.3f} deg/frame^2, error {e0:.3f} -> {e1:.3f} deg")
    assert j1 <= 0.5 * j0
    assert e1 <= 0.75 * e0
    assert rep.before == pytest.approx(j0, rel=1e-6) and rep.changed == T
    raw_after = co.read_hand_keys(arm, co.raw_action(arm))
    np.testing.assert_array_equal(raw_after.quats, raw_before.quats)


def test_smooth_inside_range_only(truth):
    res = _import(_copy(truth))
    arm = res.armatures["left"]
    k0 = co.read_hand_keys(arm)
    co.smooth_hand(arm, 30, 50, strength=3.0)
    k1 = co.read_hand_keys(arm)
    out = ~k0.select(30, 50)
    np.testing.assert_allclose(k1.quats[out], k0.quats[out], atol=1e-6)
    assert np.abs(k1.quats[~out] - k0.quats[~out]).max() > 1e-4


def test_despike_removes_spikes_and_leaves_the_rest(truth):
    """Remove spikes: every injected 45 degree spike ends within 2 degrees of the
    truth; frames without spikes are unchanged."""
    m = _copy(truth)
    clean = m.hands["right"].clean
    true_q = clean.quats.copy()
    spikes = [(12, 3), (13, 3), (30, 7), (47, 14), (60, 0)]  # (sample, joint); 12-13 is a 2-frame spike
    for t, j in spikes:
        clean.quats[t, j] = quat_multiply(clean.quats[t, j], axis_angle_to_quat(np.radians([45.0, 0, 0])))
    res = _import(m)
    arm = res.armatures["right"]
    truth_b = _bone_truth(arm, true_q)
    k0 = co.read_hand_keys(arm)
    before = angle_error_deg(k0.quats, truth_b)
    rep = co.despike_hand(arm, 1, T, angle_deg=20.0)
    k1 = co.read_hand_keys(arm)
    after = angle_error_deg(k1.quats, truth_b)
    print("despike: spike errors", [round(float(before[t, j]), 2) for t, j in spikes], "->",
          [round(float(after[t, j]), 3) for t, j in spikes])
    assert rep.changed >= len(spikes)
    for t, j in spikes:
        assert before[t, j] > 40.0 and after[t, j] < 2.0
    mask = np.ones((T, 16), bool)
    for t, j in spikes:
        mask[t, j] = False
    assert np.abs(after[mask] - before[mask]).max() < 0.05


@pytest.mark.parametrize("method,limit_deg", [("SLERP", 2.0), ("SPLINE", 1.2)])
def test_fill_gaps_within_tolerance_of_truth(truth, method, limit_deg):
    """Fill a 6-frame gap: every joint of every filled frame within ``limit_deg``
    of the truth (slerp 2 deg, spline 1.2 deg); the hand is visible there again."""
    m = _copy(truth)
    h = m.hands["right"]
    true_q = h.clean.quats.copy()
    gap = slice(20, 26)
    lagc_synth.hide(h, gap)
    res = _import(m)
    arm = res.armatures["right"]
    k0 = co.read_hand_keys(arm)
    assert not k0.present[gap].any()
    rep = co.fill_gaps_hand(arm, 1, T, max_gap=8, method=method)
    k1 = co.read_hand_keys(arm)
    err = angle_error_deg(k1.quats[gap], _bone_truth(arm, true_q)[gap])
    print(f"fill gaps {method}: max {err.max():.3f} deg, mean {err.mean():.3f} deg")
    assert rep.changed == 6 and k1.present.all()
    assert err.max() < limit_deg
    mesh = co.hand_mesh(arm)
    hide = compat.find_fcurve(mesh.animation_data.action, "hide_viewport", 0)
    assert all(hide.evaluate(f) < 0.5 for f in range(21, 27))
    gen = compat.keyframe_type_value('GENERATED')
    assert (k1.types[gap] == gen).all()


def test_fill_gaps_leaves_long_gaps(truth):
    m = _copy(truth)
    h = m.hands["left"]
    h.present[10:40] = False
    for v in (h.raw, h.clean):
        v.quats[10:40] = (1, 0, 0, 0)
    res = _import(m)
    rep = co.fill_gaps_hand(res.armatures["left"], 1, T, max_gap=10)
    assert rep.changed == 0


def test_swap_fixes_identity_switch_exactly(truth):
    """Swap left/right over the switched range: both hands' keys equal the
    un-switched import's keys (float32 precision)."""
    ref = _import(_copy(truth))
    ref_keys = {s: co.read_hand_keys(ref.armatures[s]) for s in hm.SIDES}
    m = _copy(truth)
    L, R = m.hands["left"], m.hands["right"]
    sw = slice(30, 41)
    for a, b in ((L.clean.quats, R.clean.quats), (L.clean.root, R.clean.root), (L.present, R.present)):
        a[sw], b[sw] = b[sw].copy(), a[sw].copy()
    res = _import(m)
    broken = co.read_hand_keys(res.armatures["right"])
    assert angle_error_deg(broken.quats[sw], ref_keys["right"].quats[sw]).max() > 5.0
    co.swap_hands(res.armatures["right"], 31, 41)  # scene frame = sample + 1
    for s in hm.SIDES:
        k = co.read_hand_keys(res.armatures[s])
        np.testing.assert_allclose(k.frames, ref_keys[s].frames)
        assert angle_error_deg(k.quats, ref_keys[s].quats).max() < 0.01
        np.testing.assert_allclose(k.loc, ref_keys[s].loc, atol=1e-5)


def test_reset_to_raw_restores_range_only(truth):
    res = _import(_copy(truth))
    arm = res.armatures["right"]
    raw = co.read_hand_keys(arm, co.raw_action(arm))
    co.smooth_hand(arm, 1, T, strength=4.0)
    smoothed = co.read_hand_keys(arm)
    co.reset_to_raw(arm, 20, 40)
    k = co.read_hand_keys(arm)
    inside = k.select(20, 40)
    np.testing.assert_allclose(k.quats[inside], raw.quats[inside], atol=1e-6)
    np.testing.assert_allclose(k.quats[~inside], smoothed.quats[~inside], atol=1e-6)


def test_edits_on_raw_action_make_a_copy(truth):
    res = _import(_copy(truth))
    arm = res.armatures["right"]
    raw = co.raw_action(arm)
    compat.assign_action(arm, raw)
    before = co.read_hand_keys(arm, raw)
    co.smooth_hand(arm, 1, T, 2.0)
    assert arm.animation_data.action != raw
    np.testing.assert_array_equal(co.read_hand_keys(arm, raw).quats, before.quats)


def test_reduce_keys_three_times_fewer_within_tolerance(truth):
    """Reduce keys (1 deg, 1 mm): >= 3x fewer keys, and Blender's own F-Curve
    evaluation stays within the tolerance of every original sample."""
    res = _import(_copy(truth))
    arm = res.armatures["right"]
    k0 = co.read_hand_keys(arm)
    rep = co.reduce_hand_keys(arm, 1, T, angle_deg=1.0, distance_mm=1.0)
    action = arm.animation_data.action
    names = rig.bone_names("right")
    counts = [len(compat.find_fcurve(action, co.ROT_PATH.format(n), 0).keyframe_points) for n in names[:16]]
    q = np.zeros((T, 16, 4))
    for j, n in enumerate(names[:16]):
        for c in range(4):
            fc = compat.find_fcurve(action, co.ROT_PATH.format(n), c)
            q[:, j, c] = [fc.evaluate(float(f)) for f in k0.frames]
    err = angle_error_deg(q, k0.quats)
    loc = np.array([[compat.find_fcurve(action, co.LOC_PATH.format(names[0]), c).evaluate(float(f))
                     for c in range(3)] for f in k0.frames])
    print(f"reduce: {rep.before:.0f} -> {rep.after:.0f} keys ({rep.before / rep.after:.1f}x), "
          f"max err {err.max():.3f} deg, wrist {1000 * np.abs(loc - k0.loc).max():.3f} mm")
    assert rep.before / rep.after >= 3.0
    assert sum(counts) * 3 <= 16 * T
    assert err.max() <= 1.0 + 0.02  # float32 key values
    assert np.linalg.norm(loc - k0.loc, axis=1).max() <= 0.00101


def test_refit_shape_matches_keypoint_bone_lengths(truth):
    """Re-fit hand size: keypoints of a hand 12% larger -> scale 1.12 +- 1%, and
    the posed fingertips in Blender land within 2 mm of those keypoints."""
    m = _copy(truth)
    h = m.hands["right"]
    joints, tips = lagc_synth.right_skeleton()
    s = 1.12
    big_j = joints[0] + s * (joints - joints[0])
    big_t = joints[0] + s * (tips - joints[0])
    posed, _ = lagc_synth.forward_kinematics(h.clean.quats.astype(np.float64), h.clean.root.astype(np.float64),
                                             big_j, big_t)
    kp = posed[:, MANO21_TO_PUBLIC]
    res = _import(m)
    arm = res.armatures["right"]
    fit = co.refit_hand_shape(arm, kp, h.present)
    assert fit.scale == pytest.approx(s, rel=0.01)
    scene = bpy.context.scene
    tip_names = rig.bone_names("right")[16:]
    errs = []
    for t in (0, 17, 45, 70):
        scene.frame_set(int(m.frames[t]) + 1)
        got = np.array([np.array(arm.pose.bones[n].head) for n in tip_names])
        errs.append(np.linalg.norm(got - kp[t, [4, 8, 12, 16, 20]], axis=1).max())
    print(f"refit: scale {fit.scale:.4f}, tip error max {1000 * max(errs):.3f} mm")
    assert max(errs) < 0.002


def test_operators_register_and_run_undoably(truth):
    co.register()
    try:
        res = _import(_copy(truth))
        arm = res.armatures["right"]
        bpy.context.view_layer.objects.active = arm
        for cls in co.CLASSES:
            assert 'UNDO' in cls.bl_options and 'REGISTER' in cls.bl_options
        assert bpy.ops.lagc_hand.cleanup_smooth(strength=2.0) == {'FINISHED'}
        assert bpy.ops.lagc_hand.cleanup_reduce(angle=1.0) == {'FINISHED'}
        assert bpy.ops.lagc_hand.cleanup_swap(frame_start=10, frame_end=20) == {'FINISHED'}
        bpy.context.view_layer.objects.active = res.meshes["right"]
        assert not bpy.ops.lagc_hand.cleanup_smooth.poll()
        with pytest.raises(co.CleanupError, match="not a LAGC-Hand armature"):
            co.smooth_hand(res.meshes["right"], 1, 10)
        with pytest.raises(co.CleanupError, match="empty"):
            co.smooth_hand(arm, 10, 1)
    finally:
        co.unregister()


def _fcurve_key_frames(arm) -> list[np.ndarray]:
    """Scene frames of the keys of each of the 17 key channels (16 bone rotations, wrist location)."""
    action = arm.animation_data.action
    names = co.joint_bone_names(arm)
    paths = [co.ROT_PATH.format(n) for n in names] + [co.LOC_PATH.format(names[0])]
    out = []
    for path in paths:
        comps = [compat.find_fcurve(action, path, c) for c in range(3 if "location" in path else 4)]
        frames = [np.array([kp.co[0] for kp in fc.keyframe_points]) for fc in comps]
        for f in frames[1:]:
            np.testing.assert_array_equal(f, frames[0])  # every component keyed on the same frames
        out.append(frames[0])
    return out


def test_reduce_keys_cli_and_addon_give_the_same_keys(tmp_path):
    """The same motion (noisy, one hand with a 5-sample gap, source stride 2) reduced by
    ``lagc-hand cleanup --reduce 1 --reduce-mm 1`` and by the add-on's Reduce Keys
    (1 deg, 1 mm): the same key frames on every channel of both hands (scene frame =
    source frame + 1), no key inside the gap and keys on both sides of it, and
    Blender's evaluation of the reduced F-Curves equals the command line's snapped
    rotations within 0.01 deg and its wrist within 0.01 mm."""
    n = 90
    m = lagc_synth.always_present_motion(n, 8, np.arange(n, dtype=np.int64) * 2 + 10, fps=15.0, focal=700.0)
    rng = np.random.default_rng(2)
    for s in hm.SIDES:
        c = m.hands[s].clean
        c.quats = quat_multiply(c.quats, _noise(rng, (n, 16), 0.3)).astype(np.float32)
    h = m.hands["left"]
    gap = slice(40, 45)
    lagc_synth.hide(h, gap)
    path, out = tmp_path / "m.npz", tmp_path / "r.npz"
    hm.save(m, path)
    p = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "cleanup", str(path), "-o", str(out),
                        "--reduce", "1.0", "--reduce-mm", "1.0", "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    cli = json.loads(p.stdout)["hands"]
    reduced = hm.load(out)
    res = _import(m)
    for s in hm.SIDES:
        arm = res.armatures[s]
        rep = co.reduce_hand_keys(arm, 1, 1000, angle_deg=1.0, distance_mm=1.0)
        blender_keys = _fcurve_key_frames(arm)
        cli_keys = list(cli[s]["key_frames"].values())
        assert len(cli_keys) == 17
        for c in range(17):
            np.testing.assert_array_equal(blender_keys[c] - 1, cli_keys[c], err_msg=f"{s} channel {c}")
        assert (rep.before, rep.after) == (cli[s]["keys_before"], cli[s]["keys_kept"])
        assert rep.after * 3 <= rep.before
        if s == "left":
            for keys in cli_keys:  # source frames: 10 + 2 * sample
                assert 10 + 2 * 39 in keys and 10 + 2 * 45 in keys
                assert not set(keys) & set(range(10 + 2 * 40, 10 + 2 * 45))
        # what Blender evaluates = what the command line wrote
        k = co.read_hand_keys(arm)
        q, root, present = co._to_motion(arm, k)
        np.testing.assert_array_equal(present, reduced.hands[s].present)
        err = angle_error_deg(q[present], reduced.hands[s].clean.quats[present])
        dist = np.linalg.norm(root[present] - reduced.hands[s].clean.root[present], axis=-1)
        print(f"reduce {s}: keys {rep.before} -> {rep.after}; Blender vs CLI max {err.max():.5f} deg, "
              f"{1000 * dist.max():.5f} mm")
        assert err.max() < 0.01 and dist.max() < 1e-5


def test_swap_after_reduce_keeps_the_reduced_keys(truth):
    """Swap Left/Right after Reduce Keys: each hand keeps about its reduced number of
    keys (at most the two hands' reduced keys plus the range edges, not a key per
    frame), and the swapped motion is exactly the swap of the reduced motion
    (0.001 deg, 0.01 mm)."""
    res = _import(_copy(truth))
    arms = [res.armatures[s] for s in hm.SIDES]
    reduced = [co.reduce_hand_keys(a, 1, T, angle_deg=1.0, distance_mm=1.0).after for a in arms]
    before = [co._to_motion(a, co.read_hand_keys(a)) for a in arms]
    co.swap_hands(arms[0], 25, 50)
    dense = T * (16 * 4 + 3)
    sel = (np.arange(T) + 1 >= 25) & (np.arange(T) + 1 <= 50)
    for i, a in enumerate(arms):
        k = co.read_hand_keys(a)
        n_keys = keyreduce.fcurve_key_count(k.keyed)
        print(f"swap after reduce {a[co.SIDE_PROP]}: {reduced[i]} keys reduced -> {n_keys} after swap (dense {dense})")
        assert n_keys <= sum(reduced) + 4 * (16 * 4 + 3) and n_keys < dense / 2
        q, root, present = co._to_motion(a, k)
        want = [np.where(sel[:, None, None] if x.ndim == 3 else sel[:, None] if x.ndim == 2 else sel,
                         before[1 - i][c], before[i][c]) for c, x in enumerate(before[i])]
        np.testing.assert_array_equal(present, want[2])
        assert angle_error_deg(q, want[0]).max() < 0.001
        assert np.abs(root - want[1]).max() < 1e-5


def test_reduce_keys_reports_integer_key_counts(truth, capfd):
    """The operator's report prints key counts as integers ("keys 4824 -> 708"), not
    "keys 4.82e+03 -> 708"."""
    co.register()
    try:
        res = _import(_copy(truth))
        bpy.context.view_layer.objects.active = res.armatures["right"]
        capfd.readouterr()
        assert bpy.ops.lagc_hand.cleanup_reduce(angle=1.0) == {'FINISHED'}
        text = capfd.readouterr()
        line = [ln for ln in (text.out + text.err).splitlines() if "Reduce Keys" in ln]
        assert line and re.search(r"keys 4824 -> \d+$", line[-1]), line
    finally:
        co.unregister()
