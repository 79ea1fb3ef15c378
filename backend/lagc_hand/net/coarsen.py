"""Coarse-to-fine graphs over a hand mesh, built from its own faces.

Deterministic heavy-edge matching (Graclus-style, as in IntagHand's graph
construction): vertices are visited in order of increasing weighted degree;
each unmatched vertex merges with the unmatched neighbour of largest
normalised-cut weight ``w_ij (1/d_i + 1/d_j)``.  The levels are then padded
with fake nodes into a binary tree so that every coarser level has exactly
half the nodes of the finer one, and the nodes of level ``l+1`` are the
children ``2q, 2q+1`` of node ``q`` of level ``l`` (coarse to fine indexing).
Upsampling between graph levels is then ``repeat_interleave(2)``.

For MANO (778 vertices, 1538 faces) and 4 coarsenings the real node counts are
778, 419, 223, 122, 63 and the padded sizes 1008, 504, 252, 126, 63.

A fixed linear map ``upsample`` (V, N_fine) takes features of the finest used
graph level back to the full mesh; each row is an affine combination (rows sum
to 1, so it commutes with translations) of the centroids of the vertex's own
cluster and its neighbouring clusters, fitted to reproduce the template mesh.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lagc_hand.errors import ModelFileError


def mesh_adjacency(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Symmetric 0/1 vertex adjacency (V, V) of a triangle mesh, no self loops."""
    f = np.asarray(faces, dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 3 or f.size == 0:
        raise ModelFileError(f"faces must be a non-empty (F, 3) array, got shape {f.shape}")
    if f.min() < 0 or f.max() >= num_vertices:
        raise ModelFileError(f"face indices out of range [0, {num_vertices})")
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2]])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0]])
    a = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(num_vertices, num_vertices)).tocsr()
    a = ((a + a.T) > 0).astype(np.float64)
    a.setdiag(0)
    a.eliminate_zeros()
    return a.tocsr()


def heavy_edge_matching(w: sp.csr_matrix) -> np.ndarray:
    """One HEM pass.  w: (n, n) symmetric weights.  Returns cluster (n,) int64,
    ids 0..m-1 in order of creation; each cluster has 1 or 2 members."""
    n = w.shape[0]
    degree = np.asarray(w.sum(axis=1)).ravel()
    order = np.argsort(degree, kind="stable")
    inv_deg = np.where(degree > 0, 1.0 / np.maximum(degree, 1e-12), 0.0)
    cluster = np.full(n, -1, dtype=np.int64)
    count = 0
    indptr, indices, data = w.indptr, w.indices, w.data
    for i in order:
        if cluster[i] >= 0:
            continue
        best, best_w = -1, 0.0
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            if cluster[j] >= 0 or j == i:
                continue
            score = data[k] * (inv_deg[i] + inv_deg[j])
            if score > best_w:
                best, best_w = j, score
        cluster[i] = count
        if best >= 0:
            cluster[best] = count
        count += 1
    return cluster


def coarsen_weights(w: sp.csr_matrix, cluster: np.ndarray) -> sp.csr_matrix:
    """Weights of the coarse graph: summed edge weights between clusters."""
    m = int(cluster.max()) + 1
    p = sp.coo_matrix((np.ones(len(cluster)), (np.arange(len(cluster)), cluster)), shape=(len(cluster), m)).tocsr()
    c = (p.T @ w @ p).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    return c


@dataclass
class GraphHierarchy:
    """Padded graph levels, coarse to fine.

    sizes:      padded node counts per level, e.g. (63, 126, 252) for MANO.
    real_sizes: real (non-fake) node counts per level, e.g. (63, 122, 223).
    nodes:      per level (N_l,) int64 real node id at that HEM level, -1 = fake.
    adjacency:  per level (N_l, N_l) float32 normalised adjacency
                ``D^-1/2 A D^-1/2`` on real nodes; a fake node's row copies its
                binary-tree sibling (so fakes never feed real nodes).
    positions:  per level (N_l, 3) float32 cluster centroids of the template
                (metres, model frame); fakes copy their sibling.
    upsample:   (V, N_last) float32 fixed map from the finest used level to the mesh.
    vertex_cluster: (V,) int64 padded node of the finest used level holding each vertex.
    """

    sizes: tuple[int, ...]
    real_sizes: tuple[int, ...]
    nodes: list[np.ndarray]
    adjacency: list[np.ndarray]
    positions: list[np.ndarray]
    upsample: np.ndarray
    vertex_cluster: np.ndarray


def _normalised(a: sp.csr_matrix) -> np.ndarray:
    a = (a > 0).astype(np.float64).toarray()
    d = a.sum(1)
    inv = np.where(d > 0, 1.0 / np.sqrt(np.maximum(d, 1e-12)), 0.0)
    return a * inv[:, None] * inv[None, :]


def _coarsen_graphs(w: sp.csr_matrix, coarsen: int | None,
                    target_coarsest: int) -> tuple[list[sp.csr_matrix], list[np.ndarray]]:
    """HEM passes from the (V, V) mesh weights ``w``: ``coarsen`` of them (None: until at
    most ``target_coarsest`` nodes).  Returns the graphs of every HEM level (finest first,
    ``graphs[0] is w``) and per pass the (n_l,) int64 cluster of each node of level l."""
    graphs = [w]
    parents: list[np.ndarray] = []
    while (coarsen is None and graphs[-1].shape[0] > target_coarsest) or (coarsen is not None and len(parents) < coarsen):
        c = heavy_edge_matching(graphs[-1])
        if c.max() + 1 == graphs[-1].shape[0]:
            raise ModelFileError("the mesh cannot be coarsened further (no edges left to match)")
        parents.append(c)
        graphs.append(coarsen_weights(graphs[-1], c))
    return graphs, parents


def _binary_tree_nodes(n_coarsest: int, parents: list[np.ndarray]) -> list[np.ndarray]:
    """Binary-tree ordering, coarsest first: ``nodes[k]`` (n_coarsest * 2^k,) int64 is the
    real id at HEM level ``len(parents) - k`` of each padded node, -1 = fake."""
    nodes = [np.arange(n_coarsest, dtype=np.int64)]
    for lvl in range(len(parents) - 1, -1, -1):
        parent = parents[lvl]
        children: dict[int, list[int]] = {}
        for child, par in enumerate(parent):
            children.setdefault(int(par), []).append(child)
        coarse = nodes[-1]
        fine = np.full(2 * len(coarse), -1, dtype=np.int64)
        for q, node in enumerate(coarse):
            if node < 0:
                continue
            kids = sorted(children[int(node)])
            fine[2 * q] = kids[0]
            if len(kids) > 1:
                fine[2 * q + 1] = kids[1]
        nodes.append(fine)
    return nodes


def _padded_level(g: sp.csr_matrix, nd: np.ndarray, cid: np.ndarray, template: np.ndarray,
                  coarser_positions: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """One padded level: (N, N) float32 normalised adjacency and (N, 3) float32 cluster
    centroids (template units, metres) of its nodes ``nd`` (N,) (-1 = fake).

    g: (n, n) HEM graph of the level; cid: (V,) cluster id of each vertex at it;
    coarser_positions: (N/2, 3) positions of the next coarser padded level, or None
    at the coarsest (fake pairs under a fake parent take the parent's position)."""
    real = nd >= 0
    n = len(nd)
    a = np.zeros((n, n))
    idx = np.flatnonzero(real)
    a[np.ix_(idx, idx)] = _normalised(g[nd[idx]][:, nd[idx]])
    counts = np.bincount(cid, minlength=g.shape[0]).astype(np.float64)
    cent = np.stack([np.bincount(cid, weights=template[:, d], minlength=g.shape[0]) for d in range(3)], 1) / np.maximum(counts, 1)[:, None]
    pos = np.zeros((n, 3))
    pos[idx] = cent[nd[idx]]
    for p in np.flatnonzero(~real):
        # Walk up to the nearest real ancestor's real child: copy a real sibling.
        s = p ^ 1
        a[p, s] = 1.0
        pos[p] = pos[s] if real[s] else pos[p]
    for p in np.flatnonzero(~real):
        if not real[p ^ 1]:
            # fake pair under a fake parent: take the parent's position
            pos[p] = coarser_positions[p // 2] if coarser_positions is not None else pos[p]
    return a.astype(np.float32), pos.astype(np.float32)


def build_hierarchy(faces: np.ndarray, template: np.ndarray, coarsen: int | None = 4, levels: int = 3, ridge: float = 1e-2,
                    target_coarsest: int = 80) -> GraphHierarchy:
    """Coarsen the mesh ``coarsen`` times (None: until the coarsest level has
    at most ``target_coarsest`` real nodes) and keep the ``levels`` coarsest
    padded levels.  faces (F, 3) int, template (V, 3) float metres."""
    template = np.asarray(template, dtype=np.float64)
    v = template.shape[0]
    if template.ndim != 2 or template.shape[1] != 3:
        raise ModelFileError(f"template must be (V, 3), got {template.shape}")
    w = mesh_adjacency(faces, v)
    graphs, parents = _coarsen_graphs(w, coarsen, target_coarsest)
    coarsen = len(parents)
    if not 1 <= levels <= coarsen + 1:
        raise ValueError(f"levels must be in [1, coarsen+1], got {levels} with coarsen={coarsen}")
    if graphs[-1].shape[0] < 2:
        raise ModelFileError("the mesh is too small for this many coarsening levels")

    nodes = _binary_tree_nodes(graphs[-1].shape[0], parents)
    # Vertex -> cluster at every HEM level, to get centroids.
    members_at = [np.arange(v)]
    for lvl in range(coarsen):
        members_at.append(parents[lvl][members_at[-1]])  # (V,) cluster id at level lvl+1

    keep = nodes[:levels]
    adjacency, positions = [], []
    for k, nd in enumerate(keep):
        hem_level = coarsen - k
        a, pos = _padded_level(graphs[hem_level], nd, members_at[hem_level], template,
                               positions[-1] if positions else None)
        adjacency.append(a)
        positions.append(pos)

    # Full-mesh upsampling from the finest kept level.
    fine_nodes = keep[-1]
    hem_level = coarsen - (levels - 1)
    real_to_pad = np.full(graphs[hem_level].shape[0], -1, dtype=np.int64)
    real_to_pad[fine_nodes[fine_nodes >= 0]] = np.flatnonzero(fine_nodes >= 0)
    vertex_cluster = real_to_pad[members_at[hem_level]]
    upsample = _fit_upsample(template, vertex_cluster, adjacency[-1], positions[-1], ridge)
    return GraphHierarchy(
        sizes=tuple(len(n) for n in keep),
        real_sizes=tuple(int((n >= 0).sum()) for n in keep),
        nodes=keep,
        adjacency=adjacency,
        positions=positions,
        upsample=upsample.astype(np.float32),
        vertex_cluster=vertex_cluster,
    )


def _fit_upsample(template: np.ndarray, vertex_cluster: np.ndarray, adjacency: np.ndarray, centroids: np.ndarray, ridge: float) -> np.ndarray:
    """Rows w_v over the support S = own cluster + its graph neighbours:
    minimise ``|C_S^T w - x_v|^2 + ridge |w - w0|^2`` subject to ``sum w = 1``,
    with w0 inverse-square-distance weights (all in template units scaled to
    unit size, so ``ridge`` is scale-free)."""
    v = template.shape[0]
    centre = template.mean(0)
    scale = max(float(np.abs(template - centre).max()), 1e-9)
    x = (template - centre) / scale
    c = (centroids.astype(np.float64) - centre) / scale
    up = np.zeros((v, c.shape[0]))
    for i in range(v):
        k = vertex_cluster[i]
        support = np.unique(np.concatenate([[k], np.flatnonzero(adjacency[k] > 0)]))
        m = c[support]  # (s, 3)
        d2 = ((m - x[i]) ** 2).sum(1) + 1e-4
        w0 = (1.0 / d2) / (1.0 / d2).sum()
        s = len(support)
        kkt = np.zeros((s + 1, s + 1))
        kkt[:s, :s] = m @ m.T + ridge * np.eye(s)
        kkt[:s, s] = 1.0
        kkt[s, :s] = 1.0
        rhs = np.concatenate([m @ x[i] + ridge * w0, [1.0]])
        sol = np.linalg.lstsq(kkt, rhs, rcond=None)[0]
        up[i, support] = sol[:s]
    return up


def level_pooling(hierarchy: GraphHierarchy) -> list[np.ndarray]:
    """Per kept level (coarse to fine), a (N_l, V) float32 map taking mesh
    vertices to the centroids of the level's clusters (rows sum to 1): how a
    full-mesh target is brought to a graph level for the sub-mesh losses.

    Real nodes average the vertices below them in the binary tree (the HEM
    cluster); a fake node copies its sibling's row, or its parent's when the
    sibling is fake too (as :func:`build_hierarchy` places fake positions)."""
    v = len(hierarchy.vertex_cluster)
    n_last = hierarchy.sizes[-1]
    depth = len(hierarchy.sizes) - 1
    out: list[np.ndarray] = []
    for lvl, n in enumerate(hierarchy.sizes):
        node = hierarchy.vertex_cluster >> (depth - lvl)  # ancestor of each vertex's finest node
        p = np.zeros((n, v))
        p[node, np.arange(v)] = 1.0
        counts = p.sum(1)
        p[counts > 0] /= counts[counts > 0, None]
        for q in np.flatnonzero(counts == 0):
            if counts[q ^ 1] > 0:
                p[q] = p[q ^ 1]
            elif lvl > 0:
                p[q] = out[-1][q // 2]
        out.append(p.astype(np.float32))
    assert out[-1].shape == (n_last, v)
    return out
