"""Synthetic two-hand samples from the project's hand model.

Each sample: random shapes (betas ~ N(0, 0.8^2)), random plausible finger
poses (per-joint flexion about the axis across the bone and the palm normal,
derived from the rest geometry, so it works for any MANO-layout model; small
abduction), a random global orientation, the left hand placed 4-16 cm from the
right one (sometimes overlapping), both 0.35-0.8 m from a pinhole camera;
rendered straight into the 256x256 crop (IntagHand's box) with a z-buffer
rasteriser, per-vertex skin colours, Lambert lighting from a random direction
and a random background (gradient, noise, rectangles).  Deterministic per
``(seed, index)``.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from ..topology import MeshTopology, joint_matrix
from .raster import project, rasterize, shade
from .sample import IMG_SIZE, build_sample, crop_affine, crop_box, crop_intrinsics

#: (MANO joint, its child in MANO-21 indexing: joints 16..20 are the tips)
_FINGER_CHILD = {1: 2, 2: 3, 3: 17, 4: 5, 5: 6, 6: 18, 7: 8, 8: 9, 9: 20, 10: 11, 11: 12, 12: 19, 13: 14, 14: 15, 15: 16}
#: flexion range (radians) by position in the finger: base, middle, end
_FLEX = ((-0.25, 1.3), (0.0, 1.6), (0.0, 1.2))


class HandPoser:
    """Random plausible poses for one side of a MANO-layout torch hand model."""

    def __init__(self, params):
        from lagc_hand.handmodel.layer import HandModel

        self.side = params.side
        self.layer = HandModel(params).eval()
        self.num_betas = params.num_betas
        rest = params.rest_joints()
        tips = params.v_template[params.tip_vertex_ids].astype(np.float64)
        pts = np.concatenate([rest, tips])  # MANO-21
        palm = np.cross(pts[1] - pts[0], pts[7] - pts[0])  # index MCP x pinky MCP
        palm /= np.linalg.norm(palm)
        if self.side == "left":
            palm = -palm  # the mirror image flips the cross product
        self.flex_axes = np.zeros((16, 3))
        self.abd_axes = np.zeros((16, 3))
        for j, c in _FINGER_CHILD.items():
            d = pts[c] - pts[j]
            d /= np.linalg.norm(d)
            ax = np.cross(d, palm)
            self.flex_axes[j] = ax / max(np.linalg.norm(ax), 1e-9)
            self.abd_axes[j] = palm

    def sample_pose(self, rng: np.random.Generator) -> np.ndarray:
        """(45,) axis-angle of joints 1..15, radians."""
        pose = np.zeros((16, 3))
        curl = rng.uniform(0, 1)  # shared tendency to make fists
        for j in range(1, 16):
            pos = (j - 1) % 3
            lo, hi = _FLEX[pos]
            t = np.clip(rng.normal(curl, 0.3), 0, 1)
            angle = lo + (hi - lo) * t
            if j >= 13:
                angle *= 0.5  # the thumb bends less in these axes
            pose[j] = self.flex_axes[j] * angle
            if pos == 0:
                pose[j] += self.abd_axes[j] * rng.uniform(-0.25, 0.25)
        return pose[1:].reshape(45)

    @torch.no_grad()
    def posed(self, pose: np.ndarray, betas: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
        """Vertices (V, 3) in the model frame rotated by ``rotvec`` about the wrist."""
        out = self.layer(
            torch.as_tensor(rotvec, dtype=torch.float32).reshape(1, 3),
            torch.as_tensor(pose, dtype=torch.float32).reshape(1, 45),
            torch.as_tensor(betas, dtype=torch.float32).reshape(1, -1),
        )
        return out.vertices[0].double().numpy()


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    c0, c1 = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
    ang = rng.uniform(0, 2 * np.pi)
    t = (np.cos(ang) * x + np.sin(ang) * y)
    t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    img = c0 * (1 - t[..., None]) + c1 * t[..., None]
    for _ in range(rng.integers(0, 6)):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(8, size // 2, 2)
        img[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 1, 3)
    img += rng.normal(0, rng.uniform(0, 0.06), img.shape)
    return np.clip(img, 0, 1)


class SyntheticTwoHands:
    """Map-style dataset of ``length`` synthetic samples (deterministic per index).

    ``hand_model``: ``"open"`` or a MANO folder (see ``lagc_hand.handmodel``)."""

    def __init__(self, length: int, seed: int = 0, hand_model: str = "open", topology: MeshTopology | None = None):
        from lagc_hand.handmodel import load_hand_model_params

        from ..topology import topology_from_hand_model

        self.length = int(length)
        self.seed = int(seed)
        self.posers = [HandPoser(load_hand_model_params(hand_model, s)) for s in ("left", "right")]
        self.topology = topology or topology_from_hand_model(hand_model)
        self.jmap = joint_matrix(self.topology).astype(np.float64)
        self.faces = self.topology.faces

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, index])
        base = Rotation.random(random_state=rng.integers(1 << 31))
        verts = []
        for h, poser in enumerate(self.posers):
            betas = np.clip(rng.normal(0, 0.8, poser.num_betas), -2, 2)
            # the two hands share a rough facing, with their own variation
            rot = base * Rotation.from_rotvec(rng.normal(0, 0.5, 3))
            verts.append(poser.posed(poser.sample_pose(rng), betas, rot.as_rotvec()))
        verts = np.stack(verts)  # (2, V, 3) model frame, wrists at the origin
        joints = np.einsum("hjv,hvc->hjc", self.jmap, verts)
        # place: right hand centre at a random depth, left hand offset from it
        depth = rng.uniform(0.35, 0.8)
        centre = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), depth])
        direction = rng.normal(0, 1, 3)
        direction[2] *= 0.4
        direction /= np.linalg.norm(direction)
        offset = direction * rng.uniform(0.04, 0.16)
        centres = verts.mean(1)
        shift = np.stack([centre + offset - centres[0], centre - centres[1]])
        verts = verts + shift[:, None]
        joints = joints + shift[:, None]
        f = 600.0
        k_full = np.array([[f, 0, 0], [0, f, 0], [0, 0, 1.0]])
        centre2d, half = crop_box(project(verts.reshape(-1, 3), k_full))
        k_crop = crop_intrinsics(k_full, crop_affine(centre2d, half))
        meshes = [(verts[0], self.faces), (verts[1], self.faces)]
        r = rasterize(meshes, k_crop, IMG_SIZE, IMG_SIZE)
        skin = [np.clip(rng.uniform([0.35, 0.2, 0.15], [0.95, 0.75, 0.6]) + rng.normal(0, 0.03, (verts.shape[1], 3)), 0, 1) for _ in range(2)]
        light = rng.normal(0, 1, 3)
        light[2] = abs(light[2]) + 0.5
        img = shade(r, meshes, skin, light, rng.uniform(0.2, 0.6), _background(rng, IMG_SIZE))
        img = np.clip(img * rng.uniform(0.7, 1.3) + rng.normal(0, 0.01, img.shape), 0, 1)
        from .sample import HEATMAP_SIZE, hand_masks

        masks = hand_masks(verts, self.faces, k_crop, HEATMAP_SIZE)
        return build_sample(img, k_crop, verts, joints, self.faces, masks)


def collate(samples: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Stack sample dicts into a batch of tensors."""
    return {k: torch.from_numpy(np.stack([np.asarray(s[k]) for s in samples])) for k in samples[0]}
