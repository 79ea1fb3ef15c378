"""A procedural stand-in mesh (an ellipsoidal icosphere with a fake joint
regressor) so the network, the graph coarsening and their tests can run
without any hand-model asset.  Not a hand: for tests and benchmarks of shape
and cost only."""
from __future__ import annotations

import numpy as np

from .topology import MeshTopology


def icosphere(subdivisions: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere: vertices (V, 3) float64, faces (F, 3) int64, outward CCW.
    V = 10 * 4^s + 2 (642 for s = 3)."""
    t = (1.0 + 5**0.5) / 2.0
    verts = [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
             (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)]
    faces = [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6),
             (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10),
             (8, 6, 7), (9, 8, 1)]
    v = [np.array(p, dtype=np.float64) / np.linalg.norm(p) for p in verts]
    f = faces
    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}

        def mid(a: int, b: int) -> int:
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = v[a] + v[b]
                v.append(m / np.linalg.norm(m))
                cache[key] = len(v) - 1
            return cache[key]

        nf = []
        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            nf += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        f = nf
    return np.array(v), np.array(f, dtype=np.int64)


def procedural_topology(subdivisions: int = 3, size: float = 0.09) -> MeshTopology:
    """Ellipsoid of ``size`` metres length with 16 'joints' (each the mean of
    its 8 nearest vertices to points along the long axis) and 5 'tips'."""
    v, f = icosphere(subdivisions)
    v = v * np.array([size / 2, size / 6, size / 4])
    anchors = np.stack([np.linspace(-size / 2.5, size / 2.5, 16), np.zeros(16), np.linspace(-size / 8, size / 8, 16)], 1)
    jr = np.zeros((16, len(v)), dtype=np.float32)
    for j, a in enumerate(anchors):
        near = np.argsort(((v - a) ** 2).sum(1))[:8]
        jr[j, near] = 1.0 / 8
    tips = np.array([int(np.argmax(v @ d)) for d in np.eye(3).tolist() + [[-1, 0, 0], [0, 0, -1]]], dtype=np.int64)
    return MeshTopology(faces=f, template=v.astype(np.float32), j_regressor=np.stack([jr, jr]), tip_ids=tips, name="procedural").validate()
