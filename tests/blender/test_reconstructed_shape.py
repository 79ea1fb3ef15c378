"""A file reconstructed with the current open hand model (its whole shape space: the
palm-layout and phalanx directions) builds in Blender with the bones where the file's
fitted keypoints are."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bpy
from addon_paths import REPO, ext_module

import lagc_synth
from lagc_hand_blender.core.skeleton import MANO21_TO_PUBLIC


@pytest.fixture(scope="module")
def reconstructed():
    from lagc_hand.options import ReconstructOptions
    from lagc_hand.pipeline import run_pipeline

    clip = Path(REPO) / "assets" / "samples" / "two_hands.mp4"
    return run_pipeline(clip, ReconstructOptions(frame_end=12, device="cpu")).motion


def test_reconstructed_file_builds_with_its_shape(clean, reconstructed):
    from lagc_hand.handmodel import load_hand_model_params

    motion = reconstructed
    scene_mod = ext_module(clean, "blender.scene")
    rig = ext_module(clean, "core.rig")
    result = scene_mod.import_motion(motion, scene_mod.ImportOptions(name="R"))
    seen = 0
    for side in ("left", "right"):
        hand = motion.hands[side]
        if not hand.present.any():
            continue
        params = load_hand_model_params("open", side)
        assert hand.betas.shape == (params.num_betas,) and np.abs(hand.betas[5:]).max() > 0  # the new directions in use
        np.testing.assert_allclose(hand.rest_joints, params.rest_joints(hand.betas), atol=1e-5)
        v = hand.variant("clean")
        tips = hand.rest_vertices[hand.tip_vertex_ids].astype(np.float64)
        posed, _ = lagc_synth.forward_kinematics(v.quats.astype(np.float64), v.root.astype(np.float64),
                                                 hand.rest_joints.astype(np.float64), tips)
        arm, names = result.armatures[side], rig.bone_names(side)
        for i in np.flatnonzero(hand.present)[::4]:
            bpy.context.scene.frame_set(int(motion.frames[i]) + 1)
            heads = np.array([arm.pose.bones[n].head for n in names])
            np.testing.assert_allclose(heads, posed[i], atol=1e-5)
            # and the file's own keypoints are those joints
            np.testing.assert_allclose(posed[i][MANO21_TO_PUBLIC], v.keypoints3d[i], atol=2e-4)
            seen += 1
    assert seen, "no hand found in the sample clip"
