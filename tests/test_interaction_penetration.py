"""Interpenetration proxy and measurement on geometry with known answers."""
import numpy as np
import torch

from lagc_hand.fitting import penetration as pen


def uv_sphere(radius=1.0, n_lat=16, n_lon=24, center=(0, 0, 0)):
    verts = [(0, 0, radius)]
    for i in range(1, n_lat):
        th = np.pi * i / n_lat
        for j in range(n_lon):
            ph = 2 * np.pi * j / n_lon
            verts.append((radius * np.sin(th) * np.cos(ph), radius * np.sin(th) * np.sin(ph), radius * np.cos(th)))
    verts.append((0, 0, -radius))
    verts = np.array(verts) + np.asarray(center)
    faces = []
    for j in range(n_lon):
        faces.append((0, 1 + j, 1 + (j + 1) % n_lon))
    for i in range(n_lat - 2):
        r0, r1 = 1 + i * n_lon, 1 + (i + 1) * n_lon
        for j in range(n_lon):
            a, b = r0 + j, r0 + (j + 1) % n_lon
            c, d = r1 + j, r1 + (j + 1) % n_lon
            faces += [(a, c, b), (b, c, d)]
    last = len(verts) - 1
    r0 = 1 + (n_lat - 2) * n_lon
    for j in range(n_lon):
        faces.append((r0 + j, last, r0 + (j + 1) % n_lon))
    return verts, np.array(faces)


def test_winding_number_inside_outside():
    v, f = uv_sphere(1.0)
    pts = np.array([[0, 0, 0], [0.5, 0.2, -0.3], [2, 0, 0], [0, 0, 1.5]])
    wn = pen.winding_numbers(pts, v, f)
    np.testing.assert_allclose(wn, [1, 1, 0, 0], atol=1e-6)


def test_penetration_depth_of_overlapping_spheres():
    va, _ = uv_sphere(0.01, center=(0, 0, 0))
    vb, fb = uv_sphere(0.01, center=(0.015, 0, 0))
    depth, count = pen.penetration_depth(va, vb, fb)
    # A's point at x=+0.01 lies 0.005 inside B (B spans 0.005..0.025 on x).
    assert count > 0
    assert 0.004 < depth < 0.0065
    far, _ = uv_sphere(0.01, center=(0.05, 0, 0))
    assert pen.penetration_depth(va, far, fb) == (0.0, 0)


def _straight_hand(offset):
    """21 MANO-21 points: a wrist and five straight fingers along +y, 2 cm apart."""
    pts = np.zeros((21, 3))
    fingers = ((13, 14, 15, 16), (1, 2, 3, 17), (4, 5, 6, 18), (10, 11, 12, 19), (7, 8, 9, 20))
    for k, chain in enumerate(fingers):
        for s, j in enumerate(chain):
            pts[j] = [(k - 2) * 0.02, 0.08 + 0.025 * s, 0]
    return pts + np.asarray(offset)


def test_capsule_loss_zero_apart_positive_overlapping_and_pushes_apart():
    caps = pen.CapsuleHand(radii=np.full(20, 0.008, np.float32))
    b = torch.tensor(_straight_hand((0, 0, 0)), dtype=torch.float32)[None]
    far = torch.tensor(_straight_hand((0, 0, 0.1)), dtype=torch.float32)[None]
    assert pen.capsule_penetration_loss(far, b, caps).item() == 0.0
    near = torch.tensor(_straight_hand((0.003, 0, 0.004)), dtype=torch.float32)[None].requires_grad_(True)
    loss = pen.capsule_penetration_loss(near, b, caps)
    assert loss.item() > 0
    loss.backward()
    # descending the gradient moves the points away along +z (they sit above B's plane)
    assert near.grad[0, :, 2].sum().item() < 0


def test_capsule_radii_from_a_tube_mesh():
    # A cylinder-like point cloud of radius 1 cm around every segment gives radii ~ shrink * 1 cm.
    pts21 = _straight_hand((0, 0, 0))
    rng = np.random.default_rng(0)
    verts = []
    for a, b in pen.SEGMENTS:
        for t in np.linspace(0.1, 0.9, 6):
            c = pts21[a] + t * (pts21[b] - pts21[a])
            axis = (pts21[b] - pts21[a]) / np.linalg.norm(pts21[b] - pts21[a])
            u = np.cross(axis, [0, 0, 1.0]) if abs(axis[2]) < 0.9 else np.cross(axis, [1.0, 0, 0])
            u /= np.linalg.norm(u)
            w = np.cross(axis, u)
            for ang in np.linspace(0, 2 * np.pi, 12, endpoint=False):
                verts.append(c + 0.01 * (np.cos(ang) * u + np.sin(ang) * w))
    verts = np.array(verts)
    tips = np.array([len(verts) - 1] * 5)
    caps = pen.CapsuleHand.from_rest_mesh(verts, pts21[:16], tips, shrink=1.0)
    # palm segments overlap the finger tubes, so only check the finger segments
    np.testing.assert_allclose(np.median(caps.radii[5:]), 0.01, rtol=0.15)


def test_contact_pairs_and_loss():
    left = np.zeros((2, 21, 3))
    left[:, :, 0] = np.arange(21) * 0.05  # keypoints 5 cm apart
    right = np.ones((2, 21, 3))
    right[1, 4] = left[1, 8] + [0.01, 0, 0]  # right thumb tip touches left index tip in frame 1
    pairs = pen.contact_pairs(left, right, threshold=0.02)
    assert pairs.sum() == 1 and pairs[1, 8, 4]
    l = torch.tensor(left, dtype=torch.float32)
    r = torch.tensor(right, dtype=torch.float32)
    loss = pen.contact_loss(l, r, torch.tensor(pairs))
    np.testing.assert_allclose(loss.item(), 0.01**2, rtol=1e-4)
    assert pen.contact_loss(l, r, torch.zeros_like(torch.tensor(pairs))).item() == 0.0
