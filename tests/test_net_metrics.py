"""IntagHand-protocol metrics and the training losses on hand-built cases with known answers."""
import numpy as np
import pytest
import torch

from lagc_hand.net.losses import LAGCLoss, edge_loss, normal_loss, unique_edges
from lagc_hand.net.metrics import IntagHandMeter, align_hand, hand_errors


def _hand(seed=0):
    rng = np.random.default_rng(seed)
    j = rng.normal(0, 0.03, (21, 3))
    j[9] = j[0] + np.array([0.0, -0.09, 0.0])  # wrist -> middle MCP = 9 cm
    return j


def test_perfect_prediction_scores_zero():
    g = _hand()
    mj, mv = hand_errors(g, g, g, g)
    assert mj == pytest.approx(0) and mv == pytest.approx(0)


def test_root_and_bone_rescale_remove_translation_and_scale():
    g = _hand()
    pred = 2.5 * g + np.array([0.3, -1.0, 4.0])  # wrong place, wrong size, same shape
    mj, _ = hand_errors(pred, g)
    assert mj == pytest.approx(0, abs=1e-9)


def test_known_error_in_mm():
    g = _hand()
    pred = g.copy()
    pred[4] += np.array([0.0, 0.0, 0.021])  # thumb tip 21 mm off, not wrist/MCP: no rescale
    mj, _ = hand_errors(pred, g)
    assert mj == pytest.approx(21.0 / 21, rel=1e-9)  # 21 mm on 1 of 21 joints -> 1 mm


def test_root_is_middle_mcp_not_wrist():
    g = _hand()
    pred = g.copy()
    # move every joint but the middle MCP and wrist by the same 10 mm: with a
    # middle-MCP root this is 10 mm on 19 joints
    others = [k for k in range(21) if k not in (0, 9)]
    pred[others] += np.array([0.01, 0, 0])
    mj, _ = hand_errors(pred, g)
    assert mj == pytest.approx(10.0 * 19 / 21, rel=1e-9)
    pj, gj, _, _ = align_hand(pred, g)
    assert np.allclose(pj[9], 0) and np.allclose(gj[9], 0)


def test_bone_rescale_uses_ground_truth_length():
    g = _hand()
    pred = g.copy()
    pred[0] = g[9] + (g[0] - g[9]) * 2  # predicted wrist twice as far: scale 0.5
    pj, _, _, _ = align_hand(pred, g)
    assert np.linalg.norm(pj[0] - pj[9]) == pytest.approx(0.09)
    # every other joint shrinks by half around the root
    assert np.allclose(pj[4], (g[4] - g[9]) * 0.5)


def test_meter_reports_left_right_and_mean():
    g = np.stack([_hand(1), _hand(2)])[None]  # (1, 2, 21, 3)
    p = g.copy()
    p[0, 0, 4] += [0.042, 0, 0]  # left: 2 mm mean
    p[0, 1, 8] += [0, 0.021, 0]  # right: 1 mm mean
    m = IntagHandMeter()
    m.update(p, g, p[:, :, :5], g[:, :, :5])
    s = m.summary()
    assert s["mpjpe_left"] == pytest.approx(2.0) and s["mpjpe_right"] == pytest.approx(1.0)
    assert s["mpjpe"] == pytest.approx(1.5)
    assert s["mpvpe_left"] == pytest.approx(42.0 / 5)  # vertex 4 of 5 is 42 mm off
    with pytest.raises(ValueError):
        m.update(p[0], g[0])


def _tetra():
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return v, f


def test_normal_and_edge_losses_known_values():
    v, f = _tetra()
    ft = torch.as_tensor(f)
    e = torch.as_tensor(unique_edges(f))
    assert e.shape == (6, 2)
    assert normal_loss(v, v, ft) == pytest.approx(0, abs=1e-7)
    assert normal_loss(2 * v + 1, v, ft) == pytest.approx(0, abs=1e-6)  # same planes: no normal error
    assert edge_loss(v, v, e) == 0
    # scaled by 2: every edge is as long again: mean |l_p - l_g| = mean edge length
    lengths = np.array([1, 1, 1, np.sqrt(2), np.sqrt(2), np.sqrt(2)])
    assert float(edge_loss(2 * v, v, e)) == pytest.approx(lengths.mean(), rel=1e-6)
    # flatten the apex onto the base plane z=0: only faces with a z-normal change
    flat = v.clone()
    flat[3] = torch.tensor([0.0, 0.0, 0.0]) + torch.tensor([0.3, 0.3, 0.0])
    assert float(normal_loss(flat, v, ft)) > 0.05


def _batch(v, f, b=2):
    vv = v[None, None].expand(b, 2, -1, -1).clone()
    j = vv[:, :, :1].expand(-1, -1, 21, -1).clone()
    return {
        "vertices": vv, "joints": j, "vertices2d": vv[..., :2] * 100, "joints2d": j[..., :2] * 100,
        "heatmaps": torch.zeros(b, 42, 64, 64), "masks": torch.full((b, 2, 64, 64), -20.0),
    }


def test_total_loss_is_zero_for_perfect_prediction_and_weighted_otherwise():
    v, f = _tetra()
    loss = LAGCLoss(f)
    pred = _batch(v, f)
    target = {"verts3d": pred["vertices"], "joints3d": pred["joints"], "verts2d": pred["vertices2d"],
              "joints2d": pred["joints2d"], "heatmaps": pred["heatmaps"], "masks": torch.zeros(2, 2, 64, 64)}
    total, terms = loss(pred, target, use_edge=True)
    assert float(total) == pytest.approx(0, abs=1e-6)
    assert set(terms) == {"vert3d", "joint3d", "proj2d", "normal", "edge", "heatmap", "mask"}
    # shift all vertices 1 cm: vertex L1 mean = 1 cm / 3 axes... (only x moves)
    moved = dict(pred, vertices=pred["vertices"] + torch.tensor([0.01, 0, 0]))
    _, terms = loss(moved, target)
    assert terms["vert3d"] == pytest.approx(100 * 0.01 / 3, rel=1e-5)
    assert "edge" not in terms  # edge loss only when switched on
    # heatmaps all 0.1 off: MSE 0.01 x 100
    _, terms = loss(dict(pred, heatmaps=pred["heatmaps"] + 0.1), target)
    assert terms["heatmap"] == pytest.approx(1.0, rel=1e-5)
    # masks: sigmoid(0) = 0.5 against 0 -> smooth-L1 (beta .05) = 0.5 - 0.025, x500
    _, terms = loss(dict(pred, masks=torch.zeros(2, 2, 64, 64)), target)
    assert terms["mask"] == pytest.approx(500 * 0.475, rel=1e-5)
    # 2D: 12.8 px off in u of every point -> normalised 0.1 -> MSE .005 per set (u and v averaged)
    _, terms = loss(dict(pred, vertices2d=pred["vertices2d"] + torch.tensor([12.8, 0])), target)
    assert terms["proj2d"] == pytest.approx(50 * 0.005, rel=1e-4)
