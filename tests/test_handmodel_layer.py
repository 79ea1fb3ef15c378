"""The torch hand layer: forward kinematics against hand-computed poses, and
agreement with smplx.MANO on the same MANO-format file."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.spatial.transform import Rotation

from lagc_hand.handmodel import load_hand_model_params
from lagc_hand.handmodel.layer import HandModel
from lagc_hand.handmodel.params import HandModelParams
from lagc_hand.handmodel.torch_rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from lagc_hand_blender.core.skeleton import MANO21_TO_PUBLIC


@pytest.fixture(scope="module")
def params():
    return load_hand_model_params("open", "right")


@pytest.fixture(scope="module")
def model(params):
    return HandModel(params)


def _pose(joint: int, rotvec) -> torch.Tensor:
    p = torch.zeros(1, 45)
    p[0, 3 * (joint - 1): 3 * joint] = torch.as_tensor(rotvec, dtype=torch.float32)
    return p


def test_rest_pose_is_the_template(params, model):
    out = model(torch.zeros(3, 3), torch.zeros(3, 45))
    np.testing.assert_allclose(out.vertices[1].numpy(), params.v_template, atol=1e-6)
    np.testing.assert_allclose(out.joints[2].numpy(), params.rest_joints(), atol=1e-6)
    mano21 = np.concatenate([params.rest_joints(), params.v_template[params.tip_vertex_ids]])
    np.testing.assert_allclose(out.keypoints[0].numpy(), mano21[MANO21_TO_PUBLIC], atol=1e-6)


def test_index_mcp_flexion_90_degrees_moves_tip_where_geometry_says(params, model):
    """Rest: fingers along -x, palm towards -y.  A 90 degree turn of the index
    MCP (joint 1) about +z swings the whole finger to point along -y (into the
    palm side), pivoting on the MCP."""
    j = params.rest_joints()
    tip_rest = params.v_template[params.tip_vertex_ids[1]].astype(np.float64)
    out = model(torch.zeros(1, 3), _pose(1, [0.0, 0.0, np.pi / 2]))
    rz = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # +90 deg about z
    for k in (2, 3):  # PIP and DIP
        np.testing.assert_allclose(out.joints[0, k].numpy(), j[1] + rz @ (j[k] - j[1]), atol=1e-6)
    tip = out.keypoints[0, 8].numpy()  # public 8 = index tip
    np.testing.assert_allclose(tip, j[1] + rz @ (tip_rest - j[1]), atol=1e-6)
    # the tip now lies on the palm side, one finger length below the MCP
    assert tip[1] < j[1][1] - 0.8 * np.linalg.norm(tip_rest - j[1])
    # other fingers and the wrist do not move
    np.testing.assert_allclose(out.joints[0, 4:].numpy(), j[4:], atol=1e-7)


def test_chained_flexion_adds_up(params, model):
    """45 degrees at each of PIP and DIP = 90 degrees at the DIP's child relative to the PIP."""
    j = params.rest_joints()
    pose = _pose(2, [0, 0, np.pi / 4]) + _pose(3, [0, 0, np.pi / 4])
    out = model(torch.zeros(1, 3), pose)
    rz45 = Rotation.from_rotvec([0, 0, np.pi / 4]).as_matrix()
    dip = j[2] + rz45 @ (j[3] - j[2])
    np.testing.assert_allclose(out.joints[0, 3].numpy(), dip, atol=1e-6)
    tip_rest = params.v_template[params.tip_vertex_ids[1]]
    np.testing.assert_allclose(out.keypoints[0, 8].numpy(), dip + rz45 @ rz45 @ (tip_rest - j[3]), atol=1e-6)


def test_global_orient_rotates_about_the_wrist_then_translates(params, model):
    rv = np.array([0.3, -1.1, 0.7])
    tr = np.array([0.05, -0.02, 0.6])
    out = model(torch.as_tensor(rv, dtype=torch.float32)[None], torch.zeros(1, 45), transl=torch.as_tensor(tr, dtype=torch.float32)[None])
    r = Rotation.from_rotvec(rv).as_matrix()
    j0 = params.rest_joints()[0]
    expect = (params.v_template - j0) @ r.T + j0 + tr
    np.testing.assert_allclose(out.vertices[0].numpy(), expect, atol=2e-6)


def test_batch_rotmat_and_keypoint_only_paths_agree(model):
    torch.manual_seed(0)
    glob = torch.randn(5, 3)
    pose = torch.randn(5, 45) * 0.5
    betas = torch.randn(5, 10)
    full = model(glob, pose, betas)
    rot = axis_angle_to_matrix(torch.cat([glob[:, None], pose.view(5, 15, 3)], 1))
    kp = model.forward_rotmat(rot, betas, return_vertices=False)
    assert kp.vertices is None
    np.testing.assert_allclose(kp.keypoints.numpy(), full.keypoints.numpy(), atol=1e-6)
    one = model(glob[2:3], pose[2:3], betas[2:3])
    np.testing.assert_allclose(one.vertices[0].numpy(), full.vertices[2].numpy(), atol=1e-6)
    # one shared shape for the whole batch broadcasts
    shared = model(glob, pose, betas[:1])
    np.testing.assert_allclose(shared.vertices[0].numpy(), full.vertices[0].numpy(), atol=1e-6)
    # the rest joints are what J_regressor gives on the shaped mesh
    jr = torch.as_tensor(model_params_jreg(model))
    np.testing.assert_allclose(model.rest_joints(betas).numpy(),
                               torch.einsum("jv,bvd->bjd", jr, model.shaped_vertices(betas)).numpy(), atol=1e-6)


def model_params_jreg(model):
    return load_hand_model_params("open", model.side).J_regressor


def test_gradients_flow_through_6d_rotations(model):
    d6 = matrix_to_rot6d(torch.eye(3).expand(4, 16, 3, 3)).clone().requires_grad_(True)
    betas = torch.zeros(1, 10, requires_grad=True)
    out = model.forward_rotmat(rot6d_to_matrix(d6), betas, return_vertices=False)
    out.keypoints.square().sum().backward()
    assert torch.isfinite(d6.grad).all() and d6.grad.abs().sum() > 0
    assert betas.grad.abs().sum() > 0
    m = rot6d_to_matrix(torch.randn(100, 6))
    np.testing.assert_allclose((m @ m.transpose(1, 2)).numpy(), np.broadcast_to(np.eye(3), (100, 3, 3)), atol=1e-5)
    np.testing.assert_allclose(torch.det(m).numpy(), 1.0, atol=1e-5)


def test_axis_angle_matches_scipy_including_small_angles():
    rv = np.concatenate([np.random.default_rng(1).normal(size=(50, 3)), [[0, 0, 0], [1e-7, 0, 0], [0, 3e-5, 1e-5]]])
    got = axis_angle_to_matrix(torch.as_tensor(rv, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, Rotation.from_rotvec(rv).as_matrix(), atol=1e-12)


def test_pose_correctives_are_applied(params):
    """posedirs: offset[v, d] = sum_k posedirs[v, d, k] * (R_j - I) flattened."""
    rng = np.random.default_rng(2)
    pd = rng.normal(size=params.posedirs.shape).astype(np.float32) * 1e-3
    p2 = HandModelParams(**{**params.__dict__, "posedirs": pd})
    m1, m2 = HandModel(params), HandModel(p2)
    pose = _pose(5, [0.0, 0.0, 0.8])
    rot = Rotation.from_rotvec([0.0, 0.0, 0.8]).as_matrix()
    feat = np.zeros((15, 3, 3))
    feat[4] = rot - np.eye(3)
    offset = np.einsum("vdk,k->vd", pd.astype(np.float64), feat.reshape(135))
    # at zero pose correctives vanish
    np.testing.assert_allclose(m2(torch.zeros(1, 3), torch.zeros(1, 45)).vertices.numpy(), m1(torch.zeros(1, 3), torch.zeros(1, 45)).vertices.numpy(), atol=1e-7)
    # a vertex fully on the wrist joint sees its offset unrotated
    v = np.flatnonzero(params.weights[:, 0] > 0.9999)[0]
    d = m2(torch.zeros(1, 3), pose).vertices[0, v].numpy() - m1(torch.zeros(1, 3), pose).vertices[0, v].numpy()
    np.testing.assert_allclose(d, offset[v], atol=1e-6)


def _plain_mano_file(params, path, posedirs):
    d = {
        "v_template": params.v_template.astype(np.float64), "f": params.f.astype(np.uint32),
        "weights": params.weights.astype(np.float64),
        "J_regressor": scipy.sparse.csc_matrix(params.J_regressor.astype(np.float64)),
        "kintree_table": np.vstack([[4294967295] + list(params.kintree_table[0, 1:]), np.arange(16)]).astype(np.int64),
        "shapedirs": params.shapedirs.astype(np.float64), "posedirs": posedirs,
        "hands_components": params.hands_components.astype(np.float64), "hands_mean": params.hands_mean.astype(np.float64),
        "tip_vertex_ids": params.tip_vertex_ids,
    }
    if str(path).endswith(".npz"):
        d["J_regressor"] = d["J_regressor"].toarray()
        np.savez(path, **d)
    else:
        path.write_bytes(pickle.dumps(d, protocol=2))


@pytest.mark.parametrize("ext", ["pkl", "npz"])
def test_agrees_with_smplx_mano(tmp_path, params, ext):
    smplx = pytest.importorskip("smplx")
    rng = np.random.default_rng(3)
    posedirs = rng.normal(size=params.posedirs.shape) * 2e-3  # exercise the correctives too
    path = tmp_path / f"MANO_RIGHT.{ext}"
    _plain_mano_file(params, path, posedirs)
    ours = HandModel(load_hand_model_params(path, "right"))
    theirs = smplx.MANO(str(path), is_rhand=True, use_pca=False, flat_hand_mean=True, num_betas=10, ext=ext)
    torch.manual_seed(4)
    b = 6
    glob, pose = torch.randn(b, 3) * 0.8, torch.randn(b, 45) * 0.6
    betas, transl = torch.randn(b, 10), torch.randn(b, 3) * 0.1
    o = ours(glob, pose, betas, transl)
    t = theirs(betas=betas, global_orient=glob, hand_pose=pose, transl=transl)
    np.testing.assert_allclose(o.vertices.detach().numpy(), t.vertices.detach().numpy(), atol=2e-6)
    np.testing.assert_allclose(o.joints.detach().numpy(), t.joints[:, :16].detach().numpy(), atol=2e-6)
