"""The training sample both data sources produce, and the shared maths to build it.

A sample is a dict of numpy arrays (hand 0 = left, 1 = right):

* ``image``     (3, 256, 256) float32 RGB in [0, 1] (the model normalises);
* ``verts3d``   (2, V, 3) float32, metres x ``scale``, camera axes, origin at the
  LEFT hand's middle MCP (IntagHand's training frame);
* ``joints3d``  (2, 21, 3) float32, same frame, public order, regressed from the mesh;
* ``verts2d``   (2, V, 2) / ``joints2d`` (2, 21, 2) float32, crop pixels (true perspective);
* ``heatmaps``  (42, 64, 64) float32 Gaussians (sigma 2 at 64 px), left 21 then right 21;
* ``masks``     (2, 64, 64) float32 hand silhouettes;
* ``scale``     () float32: factor that maps metres to the training frame (mean
  wrist-to-middle-MCP length -> 9.5 cm); ``verts3d / scale`` are metres again;
* ``K``         (3, 3) float32 intrinsics of the crop.
"""
from __future__ import annotations

import numpy as np

from lagc_hand_blender.core.skeleton import PUBLIC_MIDDLE_MCP, PUBLIC_WRIST

from .raster import project, rasterize

IMG_SIZE = 256
HEATMAP_SIZE = 64
HEATMAP_SIGMA = 2.0
HAND_BBOX_RATIO = 0.8
BONE_LENGTH = 0.095


def crop_box(points2d: np.ndarray, ratio: float = HAND_BBOX_RATIO) -> tuple[np.ndarray, float]:
    """Square box around 2D points (N, 2): (centre (2,), half side) with
    half side = max(w, h) / 2 / ratio (IntagHand's ``cut_img``)."""
    lo, hi = points2d.min(0), points2d.max(0)
    centre = (lo + hi) / 2
    half = float(max(hi - lo)) / 2 / ratio
    return centre, max(half, 1.0)


def crop_affine(centre: np.ndarray, half: float, size: int = IMG_SIZE) -> np.ndarray:
    """(2, 3) affine taking full-image pixels to crop pixels."""
    s = size / (2 * half)
    return np.array([[s, 0, -s * (centre[0] - half)], [0, s, -s * (centre[1] - half)]], dtype=np.float64)


def crop_intrinsics(k: np.ndarray, affine: np.ndarray) -> np.ndarray:
    a = np.vstack([affine, [0, 0, 1]])
    return a @ k


def gaussian_heatmaps(points: np.ndarray, size: int = HEATMAP_SIZE, sigma: float = HEATMAP_SIGMA) -> np.ndarray:
    """points (J, 2) in heatmap pixels -> (J, size, size) float32, peak 1 at
    the point (pixel centres at integer + 0.5)."""
    xs = np.arange(size) + 0.5
    gx = np.exp(-((xs[None, :] - points[:, 0:1]) ** 2) / (2 * sigma**2))
    gy = np.exp(-((xs[None, :] - points[:, 1:2]) ** 2) / (2 * sigma**2))
    return (gy[:, :, None] * gx[:, None, :]).astype(np.float32)


def normalise_hands(verts: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """verts (2, V, 3), joints (2, 21, 3), metres camera frame -> the training
    frame: origin at the left middle MCP, scaled so the mean of the two
    wrist-to-middle-MCP lengths is 9.5 cm.  Returns (verts, joints, scale)."""
    bones = np.linalg.norm(joints[:, PUBLIC_MIDDLE_MCP] - joints[:, PUBLIC_WRIST], axis=-1)
    scale = BONE_LENGTH / max(float(bones.mean()), 1e-6)
    root = joints[0, PUBLIC_MIDDLE_MCP]
    return (verts - root) * scale, (joints - root) * scale, scale


def build_sample(image_crop: np.ndarray, k_crop: np.ndarray, verts_cam: np.ndarray, joints_cam: np.ndarray,
                 faces: np.ndarray, masks64: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """image_crop (256, 256, 3) uint8 or float in [0, 1]; k_crop (3, 3);
    verts_cam (2, V, 3) and joints_cam (2, 21, 3) metres camera frame.
    Masks are rendered from the meshes when not given."""
    img = image_crop.astype(np.float32)
    if image_crop.dtype == np.uint8:
        img = img / 255.0
    v2d = project(verts_cam, k_crop).astype(np.float32)
    j2d = project(joints_cam, k_crop).astype(np.float32)
    hm_scale = HEATMAP_SIZE / IMG_SIZE
    heat = np.concatenate([gaussian_heatmaps(j2d[h] * hm_scale) for h in range(2)])
    if masks64 is None:
        masks64 = hand_masks(verts_cam, faces, k_crop, HEATMAP_SIZE)
    v3, j3, scale = normalise_hands(verts_cam, joints_cam)
    return {
        "image": np.ascontiguousarray(img.transpose(2, 0, 1)),
        "verts3d": v3.astype(np.float32),
        "joints3d": j3.astype(np.float32),
        "verts2d": v2d,
        "joints2d": j2d,
        "heatmaps": heat,
        "masks": masks64.astype(np.float32),
        "scale": np.float32(scale),
        "K": k_crop.astype(np.float32),
    }


def hand_masks(verts_cam: np.ndarray, faces: np.ndarray, k_crop: np.ndarray, size: int) -> np.ndarray:
    """(2, size, size) visible silhouettes of the two hands (where each hand
    is the nearest surface)."""
    s = size / IMG_SIZE
    k = k_crop.copy()
    k[:2] *= s
    r = rasterize([(verts_cam[0], faces), (verts_cam[1], faces)], k, size, size)
    return np.stack([r.mesh == 0, r.mesh == 1]).astype(np.float32)
