"""Interpenetration of two hand meshes.

Two tools, for two jobs:

* :class:`CapsuleHand` + :func:`capsule_penetration_loss` — a cheap,
  differentiable proxy for fitting: each hand's volume is a set of capsules
  (one per bone: wrist->finger bases, and finger segments up to the tips) whose
  radii come from the rest mesh.  Vertices of one hand that enter the other
  hand's capsules are penalised by the squared depth.  Cost is
  ``O(batch x vertices x bones)``, fully batched in torch.
* :func:`penetration_depth` — the measurement: for closed meshes, the
  vertices of one hand that lie inside the other hand's mesh (generalised
  winding number > 0.5) and how deep (distance to the nearest surface
  vertex).  Used by benchmarks and tests, in numpy.

Everything is in metres; points are ``(..., 3)`` in any common frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lagc_hand_blender.core import skeleton as sk

# Capsule segments in MANO-21 order (16 joints + 5 tips): each finger chain
# base->...->tip, plus the palm as wrist->each finger base.
_FINGER_CHAINS = ((13, 14, 15, 16), (1, 2, 3, 17), (4, 5, 6, 18), (10, 11, 12, 19), (7, 8, 9, 20))
SEGMENTS = np.array(
    [(0, c[0]) for c in _FINGER_CHAINS] + [(a, b) for c in _FINGER_CHAINS for a, b in zip(c[:-1], c[1:])],
    dtype=np.int64,
)  # (20, 2) indices into MANO-21 points


def _segment_distance(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance from points (B, N, 3) to segments a, b (B, S, 3) -> (B, N, S)."""
    ab = b - a  # (B,S,3)
    ap = points[:, :, None, :] - a[:, None, :, :]  # (B,N,S,3)
    denom = (ab * ab).sum(-1).clamp_min(1e-12)  # (B,S)
    t = ((ap * ab[:, None]).sum(-1) / denom[:, None]).clamp(0.0, 1.0)  # (B,N,S)
    closest = a[:, None] + t[..., None] * ab[:, None]
    return (points[:, :, None, :] - closest).norm(dim=-1)


@dataclass
class CapsuleHand:
    """Capsule radii of one hand model (rest mesh), metres.

    radii: (20,) one per :data:`SEGMENTS` row.
    """

    radii: np.ndarray

    @classmethod
    def from_rest_mesh(
        cls, rest_vertices: np.ndarray, rest_joints: np.ndarray, tip_vertex_ids: np.ndarray, shrink: float = 0.9
    ) -> "CapsuleHand":
        """Fit radii to a rest mesh: each vertex is assigned to its nearest
        segment, and a segment's radius is ``shrink`` x the median distance of
        its vertices (a slightly thin proxy, so touching is not punished)."""
        v = np.asarray(rest_vertices, dtype=np.float64)
        pts21 = np.concatenate([np.asarray(rest_joints, np.float64), v[np.asarray(tip_vertex_ids)]], 0)
        a = torch.as_tensor(pts21[SEGMENTS[:, 0]])[None]
        b = torch.as_tensor(pts21[SEGMENTS[:, 1]])[None]
        d = _segment_distance(torch.as_tensor(v)[None], a, b)[0].numpy()  # (V,S)
        nearest = d.argmin(1)
        radii = np.empty(len(SEGMENTS))
        for s in range(len(SEGMENTS)):
            sel = d[nearest == s, s]
            radii[s] = np.median(sel) if sel.size else np.median(d.min(1))
        return cls(radii=(radii * shrink).astype(np.float32))


def capsule_penetration_loss(
    vertices_a: torch.Tensor,
    points21_b: torch.Tensor,
    capsules_b: CapsuleHand,
    weight_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean squared depth of hand A's vertices inside hand B's capsules.

    vertices_a: (B, V, 3) posed vertices of hand A.
    points21_b: (B, 21, 3) posed joints + tips of hand B, **MANO-21 order**.
    capsules_b: radii of hand B.
    weight_mask: optional (B,) weights (e.g. 1 where both hands are present).
    Returns a scalar (metres squared).
    """
    seg = torch.as_tensor(SEGMENTS, device=points21_b.device)
    a = points21_b[:, seg[:, 0]]
    b = points21_b[:, seg[:, 1]]
    r = torch.as_tensor(capsules_b.radii, dtype=vertices_a.dtype, device=vertices_a.device)
    depth = (r - _segment_distance(vertices_a, a, b)).clamp_min(0.0)  # (B,V,S)
    per_frame = (depth.amax(-1) ** 2).mean(-1)  # deepest capsule per vertex
    if weight_mask is not None:
        return (per_frame * weight_mask).sum() / weight_mask.sum().clamp_min(1.0)
    return per_frame.mean()


def symmetric_penetration_loss(
    verts_left: torch.Tensor,
    pts21_left: torch.Tensor,
    caps_left: CapsuleHand,
    verts_right: torch.Tensor,
    pts21_right: torch.Tensor,
    caps_right: CapsuleHand,
    weight_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Both directions: left vertices in right capsules + right vertices in left capsules."""
    return capsule_penetration_loss(verts_left, pts21_right, caps_right, weight_mask) + capsule_penetration_loss(
        verts_right, pts21_left, caps_left, weight_mask
    )


# ----------------------------------------------------------------------------- contact


def contact_pairs(
    keypoints_left: np.ndarray, keypoints_right: np.ndarray, threshold: float = 0.02
) -> np.ndarray:
    """Observed contacts between the two hands' keypoints.

    keypoints_*: (T, 21, 3) camera frame, metres, public order (observations).
    Returns a bool mask (T, 21, 21): ``[t, i, j]`` is True when left keypoint i
    and right keypoint j were closer than ``threshold`` in frame t.
    """
    d = np.linalg.norm(keypoints_left[:, :, None, :] - keypoints_right[:, None, :, :], axis=-1)
    return d < threshold


def contact_loss(
    keypoints_left: torch.Tensor, keypoints_right: torch.Tensor, pairs: torch.Tensor, target: float = 0.0
) -> torch.Tensor:
    """Keep observed contacts touching: mean over contact pairs of
    ``relu(distance - target)^2``.  keypoints_*: (T, 21, 3); pairs: (T, 21, 21) bool."""
    if not bool(pairs.any()):
        return keypoints_left.new_zeros(())
    d = (keypoints_left[:, :, None, :] - keypoints_right[:, None, :, :]).norm(dim=-1)
    return ((d - target).clamp_min(0.0) ** 2)[pairs].mean()


# ----------------------------------------------------------------------------- measurement


def winding_numbers(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Generalised winding number of a closed, outward-oriented triangle mesh at
    ``points`` (N, 3) -> (N,): ~1 inside, ~0 outside (Van Oosterom-Strackee solid angles)."""
    tri = vertices[faces]  # (F,3,3)
    out = np.empty(len(points))
    for s in range(0, len(points), chunk):
        p = points[s : s + chunk, None, None, :]  # (n,1,1,3)
        r = tri[None] - p  # (n,F,3,3)
        n = np.linalg.norm(r, axis=-1)  # (n,F,3)
        a, b, c = r[:, :, 0], r[:, :, 1], r[:, :, 2]
        det = np.einsum("nfi,nfi->nf", a, np.cross(b, c))
        la, lb, lc = n[..., 0], n[..., 1], n[..., 2]
        den = (
            la * lb * lc
            + np.einsum("nfi,nfi->nf", a, b) * lc
            + np.einsum("nfi,nfi->nf", b, c) * la
            + np.einsum("nfi,nfi->nf", c, a) * lb
        )
        out[s : s + chunk] = (2.0 * np.arctan2(det, den)).sum(-1) / (4.0 * np.pi)
    return out


def penetration_depth(
    vertices_a: np.ndarray, vertices_b: np.ndarray, faces_b: np.ndarray
) -> tuple[float, int]:
    """How deep hand A's vertices (V, 3) reach inside hand B's closed mesh.

    Returns ``(max_depth_m, count_inside)``; depth of an inside vertex is its
    distance to the nearest vertex of B (a close upper bound of the distance
    to B's surface for meshes with ~1-3 mm edges).
    """
    wn = winding_numbers(vertices_a, vertices_b, faces_b)
    inside = wn > 0.5
    if not inside.any():
        return 0.0, 0
    pts = vertices_a[inside]
    d = np.linalg.norm(pts[:, None, :] - vertices_b[None, :, :], axis=-1).min(1)
    return float(d.max()), int(inside.sum())


def mano21_from_public(points: np.ndarray) -> np.ndarray:
    """Convenience: public-order (…, 21, 3) -> MANO-21 order for the capsule functions."""
    return sk.public_to_mano21(points)
