"""Triangle-mesh utilities in numpy: topology checks, adjacency, smoothing, volume.

Meshes are ``verts (V, 3)`` float and ``faces (F, 3)`` int, counter-clockwise
seen from outside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def directed_edges(faces: np.ndarray) -> np.ndarray:
    """``(3F, 2)`` directed edges (a->b) of every face."""
    f = np.asarray(faces, dtype=np.int64)
    return np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=0)


@dataclass
class ManifoldReport:
    """Topology summary; ``ok`` when the mesh is a closed, oriented 2-manifold."""

    num_vertices: int
    num_faces: int
    boundary_edges: int      # undirected edges with one face
    nonmanifold_edges: int   # undirected edges with more than two faces
    misoriented_edges: int   # directed edges used twice (neighbours disagree on orientation)
    degenerate_faces: int    # faces repeating a vertex
    unused_vertices: int
    nonmanifold_vertices: int  # vertices whose faces form more than one fan
    components: int
    euler_characteristic: int

    @property
    def ok(self) -> bool:
        return (self.boundary_edges == 0 and self.nonmanifold_edges == 0 and self.misoriented_edges == 0
                and self.degenerate_faces == 0 and self.unused_vertices == 0 and self.nonmanifold_vertices == 0)


def manifold_report(verts: np.ndarray, faces: np.ndarray) -> ManifoldReport:
    f = np.asarray(faces, dtype=np.int64)
    nv = len(verts)
    de = directed_edges(f)
    und = np.sort(de, axis=1)
    _, counts = np.unique(und, axis=0, return_counts=True)
    _, dcounts = np.unique(de, axis=0, return_counts=True)
    degenerate = int(np.sum((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])))
    used = np.zeros(nv, bool)
    used[f.ravel()] = True
    # A vertex is manifold when its incident faces form one fan: the "next
    # vertex" links (a->b->c around the vertex) form a single cycle.
    nonmanifold_v = _count_nonmanifold_vertices(f, nv)
    ncomp = connected_components(f, nv)[0]
    return ManifoldReport(
        num_vertices=nv,
        num_faces=len(f),
        boundary_edges=int(np.sum(counts == 1)),
        nonmanifold_edges=int(np.sum(counts > 2)),
        misoriented_edges=int(np.sum(dcounts > 1)),
        degenerate_faces=degenerate,
        unused_vertices=int(np.sum(~used)),
        nonmanifold_vertices=nonmanifold_v,
        components=int(ncomp),
        euler_characteristic=int(nv - len(counts) + len(f)),
    )


def _count_nonmanifold_vertices(f: np.ndarray, nv: int) -> int:
    # faces per vertex vs. length of the fan cycle through one of them
    deg = np.bincount(f.ravel(), minlength=nv)
    # map (vertex, next-around) -> following vertex
    centre = f.ravel()
    nxt = np.roll(f, -1, axis=1).ravel()
    prv = np.roll(f, 1, axis=1).ravel()
    order = np.lexsort((nxt, centre))
    succ = {}
    for c, a, b in zip(centre[order], nxt[order], prv[order]):
        succ[(int(c), int(a))] = int(b)
    bad = 0
    seen = set()
    for c, a in succ:
        if c in seen:
            continue
        seen.add(c)
        start = a
        n = 0
        cur = a
        while True:
            nb = succ.get((c, cur))
            if nb is None:
                break
            n += 1
            cur = nb
            if cur == start or n > deg[c]:
                break
        if n != deg[c]:
            bad += 1
    return bad


def connected_components(faces: np.ndarray, nv: int) -> tuple[int, np.ndarray]:
    """Number of components and a label per vertex (edge connectivity)."""
    de = directed_edges(faces)
    adj = sp.coo_matrix((np.ones(len(de)), (de[:, 0], de[:, 1])), shape=(nv, nv)).tocsr()
    return sp.csgraph.connected_components(adj, directed=False)


def vertex_adjacency(faces: np.ndarray, nv: int) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency ``(V, V)``."""
    de = directed_edges(faces)
    a = sp.coo_matrix((np.ones(len(de)), (de[:, 0], de[:, 1])), shape=(nv, nv)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    return a.tocsr()


def umbrella_operator(faces: np.ndarray, nv: int) -> sp.csr_matrix:
    """Row-normalised adjacency: ``(P @ x)[i]`` = mean of ``x`` over i's neighbours."""
    a = vertex_adjacency(faces, nv)
    deg = np.asarray(a.sum(axis=1)).ravel()
    return sp.diags(1.0 / np.maximum(deg, 1)) @ a


def face_normals(verts: np.ndarray, faces: np.ndarray, unit: bool = True) -> np.ndarray:
    v = np.asarray(verts, dtype=np.float64)
    n = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    if unit:
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    return n


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals ``(V, 3)``."""
    fn = face_normals(verts, faces, unit=False)
    vn = np.zeros((len(verts), 3))
    for k in range(3):
        np.add.at(vn, faces[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-20)


def signed_volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume (m^3 for metres); positive when normals point outward."""
    v = np.asarray(verts, dtype=np.float64)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def edge_lengths(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    e = np.unique(np.sort(directed_edges(faces), axis=1), axis=0)
    return np.linalg.norm(verts[e[:, 0]] - verts[e[:, 1]], axis=1)


def triangle_quality(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-face quality in (0, 1]: 1 = equilateral (4*sqrt(3)*area / sum of squared edges)."""
    v = np.asarray(verts, dtype=np.float64)
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    s = ((b - a) ** 2).sum(1) + ((c - b) ** 2).sum(1) + ((a - c) ** 2).sum(1)
    return 4.0 * np.sqrt(3.0) * area / np.maximum(s, 1e-30)


def mirror_x(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror across the ``x = 0`` plane; face winding is reversed so normals stay outward."""
    v = np.array(verts, copy=True)
    v[:, 0] *= -1
    return v, np.ascontiguousarray(np.asarray(faces)[:, [0, 2, 1]])


def self_intersections(verts: np.ndarray, faces: np.ndarray, chunk: int = 512) -> np.ndarray:
    """``(K, 2)`` pairs of faces that share no vertex yet intersect.

    Broad phase: axis-aligned box overlap (in chunks); narrow phase: does an
    edge of one triangle pierce the other (Moller-Trumbore, both ways).
    Touching at shared vertices/edges is not counted."""
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tri = v[f]  # (F, 3, 3)
    lo, hi = tri.min(1), tri.max(1)
    pairs = []
    for s in range(0, len(f), chunk):
        a = slice(s, min(s + chunk, len(f)))
        ov = np.all((lo[a, None] <= hi[None]) & (hi[a, None] >= lo[None]), axis=2)
        i, j = np.nonzero(ov)
        i = i + s
        keep = i < j
        pairs.append(np.stack([i[keep], j[keep]], 1))
    cand = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    share = (f[cand[:, 0], :, None] == f[cand[:, 1], None, :]).any(axis=(1, 2))
    cand = cand[~share]
    if len(cand) == 0:
        return cand
    hit = _edges_pierce(tri[cand[:, 0]], tri[cand[:, 1]]) | _edges_pierce(tri[cand[:, 1]], tri[cand[:, 0]])
    return cand[hit]


def _edges_pierce(edge_tris: np.ndarray, tris: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Does any edge of ``edge_tris[k]`` cross triangle ``tris[k]``?  ``(K,)`` bool."""
    out = np.zeros(len(tris), bool)
    v0, v1, v2 = tris[:, 0], tris[:, 1], tris[:, 2]
    e1, e2 = v1 - v0, v2 - v0
    for a, b in ((0, 1), (1, 2), (2, 0)):
        p0 = edge_tris[:, a]
        d = edge_tris[:, b] - p0
        h = np.cross(d, e2)
        det = np.einsum("ij,ij->i", e1, h)
        ok = np.abs(det) > eps
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        s = p0 - v0
        u = inv * np.einsum("ij,ij->i", s, h)
        q = np.cross(s, e1)
        w = inv * np.einsum("ij,ij->i", d, q)
        t = inv * np.einsum("ij,ij->i", e2, q)
        out |= ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t >= 0) & (t <= 1)
    return out
