"""A small, fast numpy triangle rasteriser (z-buffer, per-vertex attributes).

Good enough for synthetic training images and silhouettes: no anti-aliasing,
no textures, barycentric interpolation in screen space.  Triangles are
processed in buckets by bounding-box size, each bucket fully vectorised.

Coordinates: camera frame (OpenCV: x right, y down, z forward, metres);
pixel (u, v) centres at integer + 0.5, ``u = fx x/z + cx``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Raster:
    """depth: (H, W) float32, inf where empty; face: (H, W) int64 global face
    id (-1 empty); mesh: (H, W) int64 index of the mesh the face belongs to
    (-1 empty); bary: (H, W, 3) float32 barycentric weights."""

    depth: np.ndarray
    face: np.ndarray
    mesh: np.ndarray
    bary: np.ndarray


def project(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    """points (..., 3) camera frame -> (..., 2) pixels with intrinsics k (3, 3)."""
    z = np.maximum(points[..., 2:3], 1e-6)
    uv = points[..., :2] / z
    return uv * np.array([k[0, 0], k[1, 1]]) + np.array([k[0, 2], k[1, 2]])


def _gather_triangles(meshes: list[tuple[np.ndarray, np.ndarray]],
                      k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """All meshes' triangles together: (T, 3, 2) corner pixels, (T, 3) corner depths
    (metres), (T,) int64 mesh index of each, and each mesh's first global face id."""
    tris_uv, tris_z, mesh_id, offsets = [], [], [], []
    off = 0
    for m, (v, f) in enumerate(meshes):
        f = np.asarray(f, dtype=np.int64)
        uv = project(v, k)
        tris_uv.append(uv[f])
        tris_z.append(v[f][..., 2])
        mesh_id.append(np.full(len(f), m, dtype=np.int64))
        offsets.append(off)
        off += len(f)
    return np.concatenate(tris_uv), np.concatenate(tris_z), np.concatenate(mesh_id), offsets


def _bucket_fragments(tuv: np.ndarray, tz: np.ndarray, sel: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      size: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Fragments of the triangles ``sel`` (S,) whose pixel boxes ``lo``..``hi`` (T, 2)
    (inclusive, (u, v) pixels) fit in ``size`` x ``size``; tuv (T, 3, 2) pixels, tz (T, 3)
    metres.  Returns (pixel index (n,) int64 ``v * width + u``, depth (n,) metres,
    global face (n,), barycentric weights (n, 3)), or None when no pixel centre is covered."""
    r = np.arange(size)
    px = lo[sel, 0, None, None] + r[None, None, :]
    py = lo[sel, 1, None, None] + r[None, :, None]
    px, py = np.broadcast_arrays(px, py)
    cu, cv = px + 0.5, py + 0.5
    a, b, c = tuv[sel, 0], tuv[sel, 1], tuv[sel, 2]
    den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    ok_den = np.abs(den) > 1e-12
    den = np.where(ok_den, den, 1.0)[:, None, None]
    w0 = ((b[:, 1] - c[:, 1])[:, None, None] * (cu - c[:, None, None, 0]) + (c[:, 0] - b[:, 0])[:, None, None] * (cv - c[:, None, None, 1])) / den
    w1 = ((c[:, 1] - a[:, 1])[:, None, None] * (cu - c[:, None, None, 0]) + (a[:, 0] - c[:, 0])[:, None, None] * (cv - c[:, None, None, 1])) / den
    w2 = 1 - w0 - w1
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0) & ok_den[:, None, None]
    inside &= (px <= hi[sel, 0, None, None]) & (py <= hi[sel, 1, None, None])
    ti, yi, xi = np.nonzero(inside)
    if not len(ti):
        return None
    bw = np.stack([w0[ti, yi, xi], w1[ti, yi, xi], w2[ti, yi, xi]], 1)
    faces = sel[ti]
    # perspective-correct depth: interpolate 1/z
    inv_z = (bw / tz[faces]).sum(1)
    return py[ti, yi, xi] * width + px[ti, yi, xi], 1.0 / inv_z, faces, bw


def _nearest_fragments(cands: list[tuple], n_pix: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffer over the fragments ``cands`` (as :func:`_bucket_fragments` returns):
    per pixel (n_pix,) float32 depth (inf empty), (n_pix,) int64 global face (-1 empty)
    and (n_pix, 3) float32 barycentric weights of the nearest fragment."""
    depth = np.full(n_pix, np.inf, dtype=np.float32)
    face = np.full(n_pix, -1, dtype=np.int64)
    bary = np.zeros((n_pix, 3), dtype=np.float32)
    if cands:
        pix = np.concatenate([c[0] for c in cands])
        z = np.concatenate([c[1] for c in cands])
        fc = np.concatenate([c[2] for c in cands])
        bw = np.concatenate([c[3] for c in cands])
        order = np.lexsort((z, pix))  # by pixel, then nearest first
        pix_sorted = pix[order]
        first = order[np.concatenate([[True], pix_sorted[1:] != pix_sorted[:-1]])]
        depth[pix[first]] = z[first]
        face[pix[first]] = fc[first]
        bary[pix[first]] = bw[first]
    return depth, face, bary


def rasterize(meshes: list[tuple[np.ndarray, np.ndarray]], k: np.ndarray, height: int, width: int) -> Raster:
    """meshes: list of (vertices (V_i, 3) camera frame, faces (F_i, 3)).
    Both windings are drawn (no back-face culling: the z-buffer decides)."""
    tuv, tz, tmesh, offsets = _gather_triangles(meshes, k)  # (T, 3, 2), (T, 3), (T,)
    n_pix = height * width
    lo = np.floor(tuv.min(1) - 0.5).astype(np.int64)
    hi = np.ceil(tuv.max(1) - 0.5).astype(np.int64)
    lo = np.maximum(lo, 0)
    hi[:, 0] = np.minimum(hi[:, 0], width - 1)
    hi[:, 1] = np.minimum(hi[:, 1], height - 1)
    ext = np.maximum(hi - lo + 1, 0).max(1)
    visible = (ext > 0) & (tz.min(1) > 1e-4)
    cands = []
    size = 2
    remaining = visible.copy()
    while remaining.any():
        sel = np.flatnonzero(remaining & (ext <= size))
        remaining[sel] = False
        if len(sel):
            found = _bucket_fragments(tuv, tz, sel, lo, hi, size, width)
            if found is not None:
                cands.append(found)
        size *= 2
    depth, face, bary = _nearest_fragments(cands, n_pix)
    mesh = np.where(face >= 0, tmesh[np.maximum(face, 0)], -1)
    local_face = face.copy()
    for m, o in enumerate(offsets):
        sel = mesh == m
        local_face[sel] -= o
    return Raster(
        depth=depth.reshape(height, width),
        face=local_face.reshape(height, width),
        mesh=mesh.reshape(height, width),
        bary=bary.reshape(height, width, 3),
    )


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) unit area-weighted vertex normals."""
    f = np.asarray(faces, dtype=np.int64)
    fn = np.cross(verts[f[:, 1]] - verts[f[:, 0]], verts[f[:, 2]] - verts[f[:, 0]])
    n = np.zeros_like(verts)
    for i in range(3):
        np.add.at(n, f[:, i], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def shade(raster: Raster, meshes: list[tuple[np.ndarray, np.ndarray]], colors: list[np.ndarray], light_dir: np.ndarray,
          ambient: float, background: np.ndarray) -> np.ndarray:
    """Lambert shading with per-vertex colours.  colors: per mesh (V_i, 3) in
    [0, 1]; light_dir (3,) camera frame, pointing from the light to the scene;
    background (H, W, 3) float.  Returns (H, W, 3) float32 in [0, 1]."""
    img = background.astype(np.float32).copy()
    l = -np.asarray(light_dir, dtype=np.float64)
    l = l / np.linalg.norm(l)
    for m, (v, f) in enumerate(meshes):
        sel = raster.mesh == m
        if not sel.any():
            continue
        f = np.asarray(f, dtype=np.int64)
        n = vertex_normals(v, f)
        # Both windings may face the camera; light the side we see.
        lam = np.abs(n @ l)
        col = colors[m] * (ambient + (1 - ambient) * lam[:, None])
        fid = raster.face[sel]
        bw = raster.bary[sel]
        img[sel] = (col[f[fid]] * bw[..., None]).sum(1)
    return np.clip(img, 0, 1)
