"""The committed open hand model assets: topology, rig, shape space, mirror, determinism."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lagc_hand.handmodel import load_hand_model_params, meshops
from lagc_hand.handmodel.layer import HandModel
from lagc_hand.handmodel.loading import open_model_path
from lagc_hand.handmodel.open_model import (DESIGN_TO_MODEL, NUM_BETAS, PALM_DIRECTIONS, PHALANX_STEP, HandDesign,
                                           write_open_hand_assets)
from lagc_hand_blender.core.skeleton import MANO_PARENTS


@pytest.fixture(scope="module")
def right():
    return load_hand_model_params("open", "right")


@pytest.fixture(scope="module")
def left():
    return load_hand_model_params("open", "left")


def test_mesh_is_closed_manifold_in_budget(right):
    rep = meshops.manifold_report(right.v_template, right.f)
    assert rep.ok, rep
    assert rep.components == 1
    assert rep.euler_characteristic == 2  # a sphere-like closed surface (no handles)
    assert 700 <= right.num_vertices <= 3000
    assert meshops.signed_volume(right.v_template, right.f) > 0  # outward normals
    assert meshops.edge_lengths(right.v_template, right.f).min() > 1e-4


def test_no_self_intersections_at_rest(right):
    assert len(meshops.self_intersections(right.v_template, right.f)) == 0


def test_proportions_like_a_human_hand(right):
    j = right.rest_joints()
    tips = right.v_template[right.tip_vertex_ids].astype(np.float64)
    length = np.linalg.norm(tips[2] - j[0])  # wrist to middle fingertip
    assert 0.175 < length < 0.195
    assert 0.085 < np.linalg.norm(j[4] - j[0]) < 0.10  # wrist to middle MCP
    # fingers along -x, thumb towards +z, palm towards -y (MANO's rest frame)
    assert np.all(tips[1:, 0] < -0.14)
    assert tips[0, 2] > 0.06
    palm_width = np.linalg.norm(j[1] - j[7])
    assert 0.05 < palm_width < 0.07
    # hand volume of an adult hand (~ 250-450 cm^3)
    assert 250e-6 < meshops.signed_volume(right.v_template, right.f) < 450e-6


def test_skinning_weights(right):
    w = right.weights
    assert w.shape == (right.num_vertices, 16)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    assert w.min() >= 0
    # smooth: blended vertices exist around every non-root joint
    for j in range(1, 16):
        assert np.sum((w[:, j] > 0.2) & (w[:, j] < 0.8)) >= 6, j
    # fingertips belong to the last joint of their finger
    for tip, joint in zip(right.tip_vertex_ids, (15, 3, 6, 12, 9)):
        assert np.argmax(w[tip]) == joint


def test_joint_regressor_reproduces_designed_joints(right):
    jr = right.J_regressor
    np.testing.assert_allclose(jr.sum(1), 1.0, atol=1e-5)
    assert jr.min() >= 0
    assert np.all((jr > 0).sum(1) <= 100)  # sparse
    designed = HandDesign().joints() @ DESIGN_TO_MODEL.T
    np.testing.assert_allclose(right.rest_joints(), designed, atol=2e-5)
    assert np.array_equal(right.kintree_table[0, 1:], MANO_PARENTS[1:])


def test_tip_vertices_at_the_fingertips(right):
    designed = HandDesign().tips() @ DESIGN_TO_MODEL.T
    got = right.v_template[right.tip_vertex_ids]
    assert np.linalg.norm(got - designed, axis=1).max() < 0.005


def test_shape_space_directions(right):
    sd = right.shapedirs
    assert sd.shape == (right.num_vertices, 3, NUM_BETAS)
    assert np.all(np.abs(sd).reshape(-1, NUM_BETAS).max(0) > 0)  # every direction used
    model = HandModel(right)
    base_j = model.rest_joints().numpy()[0]
    base_v = model.shaped_vertices().numpy()[0]

    def with_beta(k, value=1.0):
        b = torch.zeros(1, 10)
        b[0, k] = value
        return model.rest_joints(b).numpy()[0], model.shaped_vertices(b).numpy()[0]

    tip = right.tip_vertex_ids[2]
    j, v = with_beta(0)  # size: every length +5.5%
    assert np.linalg.norm(v[tip]) / np.linalg.norm(base_v[tip]) == pytest.approx(1.055, abs=1e-3)
    j, v = with_beta(1)  # finger length: middle finger longer, palm the same
    finger = np.linalg.norm(v[tip] - j[4]) / np.linalg.norm(base_v[tip] - base_j[4])
    assert 1.03 < finger < 1.07
    assert np.linalg.norm(j[4] - j[0]) == pytest.approx(np.linalg.norm(base_j[4] - base_j[0]), rel=2e-3)
    j, v = with_beta(2)  # palm width: index-pinky MCP distance grows
    assert np.linalg.norm(j[1] - j[7]) / np.linalg.norm(base_j[1] - base_j[7]) > 1.03
    j, v = with_beta(3)  # finger thickness: finger gets wider, its length stays
    assert np.linalg.norm(j[5] - j[4]) == pytest.approx(np.linalg.norm(base_j[5] - base_j[4]), rel=0.01)
    idx = np.flatnonzero(right.weights[:, 5] > 0.9)
    axis = base_j[5] - base_j[4]
    axis /= np.linalg.norm(axis)

    def radius(verts, joints):
        q = verts[idx] - joints[4]
        return np.linalg.norm(q - (q @ axis)[:, None] * axis, axis=1).mean()

    assert radius(v, j) / radius(base_v, base_j) > 1.05


@pytest.mark.parametrize("k", range(len(PALM_DIRECTIONS)))
def test_palm_layout_directions_move_one_joint(right, k):
    """Betas 6..9 move the palm joint they name by the stated millimetres in the stated
    direction and leave every other joint, the fingertips and the bone lengths alone."""
    name, joint, direction, step = PALM_DIRECTIONS[k]
    model = HandModel(right)
    b = torch.zeros(1, 10)
    b[0, 6 + k] = 1.0
    moved = (model.rest_joints(b) - model.rest_joints()).numpy()[0].astype(np.float64)
    np.testing.assert_allclose(moved[joint], np.asarray(direction) @ DESIGN_TO_MODEL.T * step, atol=2e-4)
    others = np.delete(np.linalg.norm(moved, axis=1), joint)
    assert others.max() < 2e-4, (name, others)
    tips = model.shaped_vertices(b)[0, right.tip_vertex_ids] - model.shaped_vertices()[0, right.tip_vertex_ids]
    assert float(tips.norm(dim=1).max()) < 1e-5
    # two units either way: still a closed surface without self-intersections
    for value in (-2.0, 2.0):
        b[0, 6 + k] = value
        v = model.shaped_vertices(b).numpy()[0]
        assert len(meshops.self_intersections(v, right.f)) == 0, (name, value)
        assert meshops.signed_volume(v, right.f) == pytest.approx(meshops.signed_volume(right.v_template, right.f),
                                                                  rel=0.03)


def test_palm_length_direction(right):
    """Beta 5 moves the four finger MCPs (and their fingers) away from the wrist, about
    4 % of their distance, and keeps the wrist, the thumb and every finger's length."""
    model = HandModel(right)
    b = torch.zeros(1, 10)
    b[0, 5] = 1.0
    j0, j1 = model.rest_joints()[0].numpy(), model.rest_joints(b)[0].numpy()
    for mcp in (1, 4, 7, 10):  # index, middle, pinky, ring MCPs (MANO order)
        ratio = np.linalg.norm(j1[mcp] - j1[0]) / np.linalg.norm(j0[mcp] - j0[0])
        assert 1.03 < ratio < 1.05, (mcp, ratio)
        # the finger rides along: its bones keep their length (to 0.5 %: the MCP's vertices are part palm)
        assert np.linalg.norm(j1[mcp + 2] - j1[mcp]) == pytest.approx(np.linalg.norm(j0[mcp + 2] - j0[mcp]), rel=5e-3)
    assert np.linalg.norm(j1[0] - j0[0]) < 2e-4
    # the thumb stays (the palm skin near its base moves a little)
    assert np.linalg.norm(j1[13:] - j0[13:], axis=1).max() < 1e-3


def test_phalanx_direction(right):
    """Beta 10 shortens every finger's proximal phalanx and lengthens its last segment,
    the MCPs, the fingertips, the wrist and the thumb staying where they are."""
    model = HandModel(right)
    b = torch.zeros(1, NUM_BETAS)
    b[0, 10] = 1.0
    j0, j1 = model.rest_joints()[0].numpy(), model.rest_joints(b)[0].numpy()
    tips = right.tip_vertex_ids
    v0, v1 = model.shaped_vertices()[0].numpy(), model.shaped_vertices(b)[0].numpy()
    for mcp, tip in ((1, tips[1]), (4, tips[2]), (10, tips[3]), (7, tips[4])):
        proximal = np.linalg.norm(j1[mcp + 1] - j1[mcp]) - np.linalg.norm(j0[mcp + 1] - j0[mcp])
        last = np.linalg.norm(v1[tip] - j1[mcp + 2]) - np.linalg.norm(v0[tip] - j0[mcp + 2])
        assert proximal == pytest.approx(-PHALANX_STEP, abs=5e-4) and last > 0.5 * PHALANX_STEP, (mcp, proximal, last)
        assert np.linalg.norm(j1[mcp] - j0[mcp]) < 2e-4
        assert np.linalg.norm(v1[tip] - v0[tip]) < 5e-5
    assert np.linalg.norm(j1[[0, 13, 14, 15]] - j0[[0, 13, 14, 15]], axis=1).max() < 1e-6
    for value in (-2.0, 2.0):
        b[0, 10] = value
        assert len(meshops.self_intersections(model.shaped_vertices(b).numpy()[0], right.f)) == 0


def _flexed(params, joint, angle):
    model = HandModel(params)
    rest_j = params.rest_joints()
    # flexion axis = cross(finger direction, palm normal)
    from lagc_hand.handmodel.poses import palm_normal

    d = rest_j[joint + 1] - rest_j[joint]
    k = np.cross(d / np.linalg.norm(d), palm_normal(rest_j, params.side))
    pose = torch.zeros(1, 45)
    pose[0, 3 * (joint - 1): 3 * joint] = torch.as_tensor(k / np.linalg.norm(k) * angle)
    with torch.no_grad():
        return model(torch.zeros(1, 3), pose).vertices[0].numpy().astype(np.float64), rest_j


@pytest.mark.parametrize("joint", [2, 5])  # index and middle PIP
def test_no_collapse_at_90_degrees_of_flexion(right, joint):
    posed, rest_j = _flexed(right, joint, np.pi / 2)
    rest = right.v_template.astype(np.float64)
    # thickness at the joint: nearest surface to the joint centre (the joint
    # does not move when only it rotates)
    r_rest = np.linalg.norm(rest - rest_j[joint], axis=1).min()
    r_posed = np.linalg.norm(posed - rest_j[joint], axis=1).min()
    assert r_posed / r_rest > 0.6, (r_rest, r_posed)
    vol_rest = meshops.signed_volume(rest, right.f)
    vol_posed = meshops.signed_volume(posed, right.f)
    assert abs(vol_posed / vol_rest - 1) < 0.02
    # neighbours do not move: the ring finger is untouched by a middle flexion
    other = right.weights[:, 10:13].sum(1) > 0.99
    assert np.abs(posed[other] - rest[other]).max() < 1e-6


def test_left_is_mirror_of_right(right, left):
    np.testing.assert_allclose(left.v_template, right.v_template * [-1, 1, 1], atol=1e-7)
    np.testing.assert_array_equal(left.f, right.f[:, [0, 2, 1]])
    np.testing.assert_array_equal(left.tip_vertex_ids, right.tip_vertex_ids)
    np.testing.assert_allclose(left.weights, right.weights)
    assert meshops.signed_volume(left.v_template, left.f) > 0
    # the same pose, mirrored, gives the mirrored hand
    pose = torch.randn(2, 45) * 0.4
    glob = torch.randn(2, 3) * 0.5
    flip = torch.tensor([1.0, -1.0, -1.0])
    out_r = HandModel(right)(glob, pose)
    out_l = HandModel(left)(glob * flip, (pose.view(2, 15, 3) * flip).view(2, 45))
    np.testing.assert_allclose(out_l.vertices.detach().numpy(), out_r.vertices.detach().numpy() * [-1, 1, 1], atol=1e-5)
    assert left.side == "left" and right.side == "right"


def test_pose_basis(right):
    c = right.hands_components.astype(np.float64)
    np.testing.assert_allclose(c @ c.T, np.eye(45), atol=1e-5)
    assert 0.1 < np.abs(right.hands_mean).max() < 1.0  # a relaxed, not flat, hand
    assert not right.has_pose_correctives  # posedirs are zero for the open model


def test_regenerating_gives_identical_bytes(tmp_path):
    paths = write_open_hand_assets(tmp_path)
    for p in paths:
        committed = open_model_path(p.name.split("_")[-1].removesuffix(".npz"))
        assert p.read_bytes() == committed.read_bytes(), f"{p.name} differs from the committed asset; run scripts/make_open_hand.py"
