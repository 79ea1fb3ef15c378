"""Graph coarsening of a mesh into a padded binary tree (IntagHand-style HEM)."""
import numpy as np
import pytest

from lagc_hand.errors import ModelFileError
from lagc_hand.net.coarsen import build_hierarchy, heavy_edge_matching, mesh_adjacency
from lagc_hand.net.procedural import icosphere, procedural_topology


@pytest.fixture(scope="module")
def topo():
    return procedural_topology(3)


@pytest.fixture(scope="module")
def hier(topo):
    return build_hierarchy(topo.faces, topo.template, coarsen=4, levels=3)


def test_icosphere_is_closed_manifold():
    v, f = icosphere(3)
    assert v.shape == (642, 3) and f.shape == (1280, 3)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), 1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert np.all(counts == 2)  # every edge shared by exactly two faces


def test_heavy_edge_matching_pairs_neighbours_only():
    v, f = icosphere(2)
    a = mesh_adjacency(f, len(v))
    c = heavy_edge_matching(a)
    sizes = np.bincount(c)
    assert sizes.max() <= 2 and sizes.min() >= 1
    for k in np.flatnonzero(sizes == 2):
        i, j = np.flatnonzero(c == k)
        assert a[i, j] == 1  # only mesh neighbours merge
    # most vertices find a partner: roughly halves the graph
    assert len(sizes) < 0.6 * len(v)
    assert np.array_equal(c, heavy_edge_matching(a))  # deterministic


def test_levels_halve_and_form_a_binary_tree(hier, topo):
    s = hier.sizes
    assert s[1] == 2 * s[0] and s[2] == 2 * s[1]
    assert all(r <= n for r, n in zip(hier.real_sizes, s))
    assert hier.real_sizes[0] == s[0]  # the coarsest level has no fakes
    for k in range(1, 3):
        coarse, fine = hier.nodes[k - 1], hier.nodes[k]
        for q, node in enumerate(coarse):
            kids = fine[2 * q : 2 * q + 2]
            if node < 0:
                assert np.all(kids < 0)  # fake parents have fake children
            else:
                assert kids[0] >= 0  # a real node has at least one real child
    # every mesh vertex belongs to a real node of the finest used level
    fine = hier.nodes[-1]
    assert np.all(fine[hier.vertex_cluster] >= 0)
    assert hier.upsample.shape == (topo.num_vertices, s[-1])


def test_adjacency_never_lets_fakes_feed_real_nodes(hier):
    for nodes, a in zip(hier.nodes, hier.adjacency):
        real = nodes >= 0
        assert np.allclose(a[np.ix_(real, ~real)], 0)
        assert np.allclose(a[np.ix_(real, real)], a[np.ix_(real, real)].T)
        for p in np.flatnonzero(~real):
            assert a[p, p ^ 1] == 1.0  # a fake copies its sibling


def test_upsample_is_affine_and_reproduces_the_template(hier, topo):
    up = hier.upsample
    assert np.allclose(up.sum(1), 1.0, atol=1e-5)  # commutes with translation
    assert np.allclose(up[:, hier.nodes[-1] < 0], 0)  # fake nodes unused
    recon = up @ hier.positions[-1]
    err = np.linalg.norm(recon - topo.template, axis=1)
    # template size 9 cm: the fixed map rebuilds it to well under a millimetre on average
    assert err.mean() < 1e-3 and err.max() < 5e-3
    shifted = up @ (hier.positions[-1] + np.array([0.1, -0.2, 0.3], np.float32))
    assert np.allclose(shifted - recon, [0.1, -0.2, 0.3], atol=1e-4)


def test_auto_coarsening_stops_near_64_nodes(topo):
    h = build_hierarchy(topo.faces, topo.template, coarsen=None, levels=3)
    assert 32 < h.real_sizes[0] <= 80


def test_bad_faces_are_a_clear_error():
    with pytest.raises(ModelFileError, match="out of range"):
        mesh_adjacency(np.array([[0, 1, 5]]), 3)
    with pytest.raises(ModelFileError, match=r"\(F, 3\)"):
        mesh_adjacency(np.zeros((0, 3), int), 3)
