"""The network's modules: attention maths, the encoder's maps, the graph
module's cross-hand injection, the Hamba scan, whole-model outputs and cost."""
import numpy as np
import pytest
import torch

from lagc_hand.net.attention import MultiHeadSelfAttention, SeparableSelfAttention
from lagc_hand.net.config import EncoderConfig, NetConfig
from lagc_hand.net.encoder import LinearAttentionEncoder
from lagc_hand.net.hamba import SelectiveSSM, selective_scan, soft_argmax
from lagc_hand.net.model import LAGCHandNet, project_weak
from lagc_hand.net.procedural import procedural_topology
from lagc_hand.net.topology import joint_matrix



@pytest.fixture(autouse=True)
def _no_grad():
    """Forward-only tests.  Scoped per test: a module-level
    ``torch.set_grad_enabled(False)`` leaked into every later test module."""
    with torch.no_grad():
        yield


@pytest.fixture(scope="module")
def topo():
    return procedural_topology(3)


def test_separable_attention_matches_its_formula():
    torch.manual_seed(0)
    att = SeparableSelfAttention(8)
    x = torch.randn(2, 5, 8)
    w, b = att.qkv.weight, att.qkv.bias
    i = x @ w[:1].T + b[:1]
    k = x @ w[1:9].T + b[1:9]
    v = x @ w[9:].T + b[9:]
    cs = torch.softmax(i, dim=1)  # over the 5 tokens
    cv = (cs * k).sum(1, keepdim=True)
    ref = att.out(torch.relu(v) * cv)
    assert torch.allclose(att(x), ref, atol=1e-6)
    # linear cost: every output token depends on the others only through one context vector
    x2 = x.clone()
    x2[:, 1:] = x2[:, 1:].flip(1)  # permuting other tokens leaves token 0's output unchanged
    assert torch.allclose(att(x)[:, 0], att(x2)[:, 0], atol=1e-5)


def test_mhsa_matches_torch_reference():
    torch.manual_seed(1)
    ours = MultiHeadSelfAttention(16, heads=4)
    ref = torch.nn.MultiheadAttention(16, 4, batch_first=True)
    ref.in_proj_weight.copy_(ours.qkv.weight)
    ref.in_proj_bias.copy_(ours.qkv.bias)
    ref.out_proj.weight.copy_(ours.out.weight)
    ref.out_proj.bias.copy_(ours.out.bias)
    x = torch.randn(3, 7, 16)
    assert torch.allclose(ours(x), ref(x, x, x, need_weights=False)[0], atol=1e-5)


@pytest.mark.parametrize("attention", ["separable", "mhsa"])
def test_encoder_feature_maps(attention):
    enc = LinearAttentionEncoder(EncoderConfig(attention=attention)).eval()
    out = enc(torch.rand(1, 3, 256, 256))
    assert out["c2"].shape == (1, 24, 64, 64)
    assert out["c3"].shape == (1, 64, 32, 32)
    assert out["c4"].shape == (1, 80, 16, 16)
    assert out["c5"].shape == (1, 128, 8, 8)
    assert out["exp"].shape == (1, 512, 8, 8)


@pytest.mark.parametrize("head", ["graph", "hamba"])
def test_model_outputs_and_joint_regression(topo, head):
    torch.manual_seed(0)
    net = LAGCHandNet(NetConfig(head=head), topo).eval()
    out = net(torch.rand(2, 3, 256, 256))
    v = topo.num_vertices
    assert out["vertices"].shape == (2, 2, v, 3)
    assert out["joints"].shape == (2, 2, 21, 3)
    assert out["camera"].shape == (2, 2, 3)
    assert out["heatmaps"].shape == (2, 42, 64, 64) and out["masks"].shape == (2, 2, 64, 64)
    jm = torch.from_numpy(joint_matrix(topo))
    assert torch.allclose(out["joints"][1, 0], jm[0] @ out["vertices"][1, 0], atol=1e-5)
    uv = project_weak(out["joints"], out["camera"])
    assert torch.allclose(uv, out["joints2d"])
    assert torch.isfinite(out["vertices"]).all()


def test_cross_hand_injection_gates(topo):
    """eqs. 9-10 at the last level: a = b = 0 hands each hand the other's
    features (HF_L = H_R, HF_R = H_L), a = b = 1 keeps them; the gates are learnt.
    Raw coordinate output, so the swapped features show as swapped coordinates
    (the default adds each hand's own template, which does not swap)."""
    torch.manual_seed(0)
    cfg = NetConfig()
    cfg.graph.output = "direct"
    net = LAGCHandNet(cfg, topo).eval()
    g = net.head
    gf = torch.randn(1, 512)
    pyr = [torch.randn(1, c, s, s) for c, s in zip(net.compact.pyramid_channels, (8, 16, 32))]
    assert torch.allclose(g.gates(), torch.full_like(g.gates(), 0.9), atol=1e-6)
    g.gate[-1] = 50.0
    keep = g(gf, pyr)
    g.gate[-1] = -50.0
    swap = g(gf, pyr)
    assert torch.allclose(swap["coarse"][:, 0], keep["coarse"][:, 1], atol=1e-5)
    assert torch.allclose(swap["coarse"][:, 1], keep["coarse"][:, 0], atol=1e-5)
    assert not torch.allclose(keep["coarse"][:, 0], keep["coarse"][:, 1])
    g.gate[-1] = 0.0
    with torch.enable_grad():
        out = g(gf, pyr)["coarse"]
        (out[:, 0] ** 2).sum().backward()
    assert g.gate.grad is not None and g.gate.grad[-1].abs().sum() > 0


def test_selective_scan_matches_explicit_recurrence():
    torch.manual_seed(0)
    b, l, d, n = 2, 6, 3, 4
    x, delta = torch.randn(b, l, d), torch.rand(b, l, d)
    a = -torch.rand(d, n) - 0.1
    bm, cm, dd = torch.randn(b, l, n), torch.randn(b, l, n), torch.randn(d)
    y = selective_scan(x, delta, a, bm, cm, dd)
    h = torch.zeros(b, d, n)
    for t in range(l):
        h = torch.exp(delta[:, t, :, None] * a) * h + delta[:, t, :, None] * bm[:, t, None, :] * x[:, t, :, None]
        ref = (h * cm[:, t, None, :]).sum(-1) + dd * x[:, t]
        assert torch.allclose(y[:, t], ref, atol=1e-5)
    # causal: the output at t does not depend on later inputs
    ssm = SelectiveSSM(8, 4, 2, 3)
    u = torch.randn(1, 21, 8)
    u2 = u.clone()
    u2[:, 10:] += 1.0
    assert torch.allclose(ssm(u)[:, :10], ssm(u2)[:, :10], atol=1e-6)
    assert not torch.allclose(ssm(u)[:, 10:], ssm(u2)[:, 10:])


def test_soft_argmax_finds_peaks():
    hm = torch.zeros(1, 2, 64, 64)
    hm[0, 0, 10, 40] = 1.0
    hm[0, 1, 63, 0] = 1.0
    p = soft_argmax(hm * 10)
    assert torch.allclose(p[0, 0], torch.tensor([(40.5 / 64) * 2 - 1, (10.5 / 64) * 2 - 1]), atol=0.02)
    assert p[0, 1, 0] < -0.9 and p[0, 1, 1] > 0.9


@pytest.mark.parametrize("attention", ["separable", "mhsa"])
def test_flops_within_the_papers_budget(topo, attention):
    from lagc_hand.net.flops import count_flops

    cfg = NetConfig()
    cfg.encoder.attention = attention
    rep = count_flops(LAGCHandNet(cfg, topo).eval())
    assert rep["total"] <= 0.81e9
    # the rest is the joint regression (2 x 21 x V x 3 multiply-adds)
    assert rep["other"] == pytest.approx(2 * 21 * topo.num_vertices * 3, abs=64)
    assert 1.0e6 < rep["params"] < 4.0e6


def test_rotation_from_6d_is_a_rotation():
    from lagc_hand.net.anchor import rotation_from_6d

    r = rotation_from_6d(torch.randn(50, 6, dtype=torch.float64))
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    assert torch.allclose(r.transpose(-1, -2) @ r, eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(r), torch.ones(50, dtype=torch.float64), atol=1e-10)
    # the identity's 6D code gives the identity
    assert torch.allclose(rotation_from_6d(torch.tensor([1.0, 0, 0, 0, 1, 0])), torch.eye(3))


@pytest.mark.parametrize("head", ["graph", "hamba"])
def test_untrained_network_predicts_the_template_hand(topo, head):
    """Anchored output (either head): before any training each hand is the
    template in the training frame (middle MCP at the origin, wrist-to-middle-MCP
    9.5 cm, left = mirror of right), whatever the image, so early predictions
    are hand-sized."""
    from lagc_hand.net.anchor import BONE_LENGTH

    torch.manual_seed(0)
    net = LAGCHandNet(NetConfig(head=head), topo).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 256, 256))
    j = out["joints"]
    bone = (j[:, :, 9] - j[:, :, 0]).norm(dim=-1)
    assert torch.allclose(bone, torch.full_like(bone, BONE_LENGTH), rtol=0.03)
    assert j[:, :, 9].abs().max() < 0.01
    v = out["vertices"]
    assert torch.allclose(v[0], v[1], atol=1e-6)  # image-independent
    assert torch.allclose(v[:, 0, :, 0], -v[:, 1, :, 0], atol=1e-6)  # mirror in x
    assert torch.allclose(v[:, 0, :, 1:], v[:, 1, :, 1:], atol=1e-6)
    # the upsampled template reproduces the topology's template shape
    t = torch.from_numpy(topo.template).double()
    t = t - t.mean(0)
    r = v[0, 1].double() - v[0, 1].double().mean(0)
    s = (r * t).sum() / (t * t).sum()
    assert (r - s * t).norm(dim=-1).max() < 0.05 * (s * t).norm(dim=-1).max()
