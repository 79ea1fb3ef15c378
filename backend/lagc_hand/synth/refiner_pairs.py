"""Two-hand synthetic data for the refiner (numpy + the torch hand layer): the pair
geometry, and :class:`OnTheFlyData`, the training batches made from it.

A *pair* is both hands of one hand model in the **OpenCV camera frame**
(metres; x right, y down, z forward): keypoints (2, 21, 3) public order and
vertices (2, V, 3), hand 0 = left, hand 1 = right.

Sources (:class:`PairSampler`):

* the interaction scenes of :mod:`lagc_hand.synth.scenes` (contact, praying,
  clasping, interlacing, occlusion, crossing), their finger poses perturbed;
* independent poses from the pose prior of
  :class:`lagc_hand.net.data.synthetic.HandPoser`, the hands 2-30 cm apart.

Every pair is rigidly moved to a random view and depth; pairs whose meshes
interpenetrate (winding numbers, :func:`lagc_hand.fitting.penetration.penetration_depth`)
are rejected.  :func:`joint_visibility` marks self- and mutually occluded
joints with the z-buffer rasteriser (:mod:`lagc_hand.net.data.raster`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from lagc_hand.net.refiner.noise import corrupt
from lagc_hand.handmodel.cache import load_hand_model
from lagc_hand.net.refiner.training import Batch, RefinerTrainConfig
from lagc_hand_blender.core.skeleton import SIDES

#: A joint counts as visible when the nearest surface at its pixel is its own
#: hand's and lies at most this far in front of it (metres; joints sit inside
#: the finger, about 1 cm under the skin).
SURFACE_TOLERANCE_M = 0.02
#: Low-resolution raster for visibility (pixels; the intrinsics are scaled to it).
VIS_WIDTH, VIS_HEIGHT = 160, 120


@dataclass
class PairBatch:
    """N two-hand pairs in the camera frame.

    keypoints: (N, 2, 21, 3) metres, public order, hand 0 = left.
    vertices:  (N, 2, V, 3) metres.
    K:         (N, 3, 3) intrinsics (pixels) of the camera that sees them.
    size:      (N, 2) image (width, height) in pixels.
    source:    (N,) int, 0 = interaction scene, 1 = independent poses.
    """

    keypoints: np.ndarray
    vertices: np.ndarray
    K: np.ndarray
    size: np.ndarray
    source: np.ndarray


def _forward(model, rotmats: np.ndarray, wrist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rotmats (B, 16, 3, 3) with joint 0 model->camera, wrist (B, 3) -> vertices (B, V, 3), keypoints (B, 21, 3)."""
    dtype = model.v_template.dtype
    with torch.no_grad():
        j0 = model.rest_joints()[0, 0].cpu().numpy()
        out = model.forward_rotmat(torch.as_tensor(rotmats, dtype=dtype),
                                   transl=torch.as_tensor(np.asarray(wrist) - j0, dtype=dtype))
    return out.vertices.cpu().numpy().astype(np.float64), out.keypoints.cpu().numpy().astype(np.float64)


def scene_pool(models: dict, frames: int = 24, cache=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Frames of every interaction scene (:data:`lagc_hand.synth.scenes.SCENES`):
    side -> (rotmats (S, 16, 3, 3), wrists (S, 3)), S = 5 x ``frames``.

    Building them separates touching hands by winding numbers (about a minute
    of CPU); ``cache`` (a .npz path) keeps the result for the next run.
    """
    from pathlib import Path

    from lagc_hand.synth.scenes import SCENES, build_scene

    if cache is not None and Path(cache).is_file():
        z = np.load(cache)
        if int(z["frames"]) == frames:
            return {s: (z[f"{s}_rot"], z[f"{s}_wrist"]) for s in SIDES}
    rot, wr = {s: [] for s in SIDES}, {s: [] for s in SIDES}
    for name in SCENES:
        sc = build_scene(name, models, frames)
        for s in SIDES:
            rot[s].append(sc[s].rotmats)
            wr[s].append(sc[s].wrist)
    pool = {s: (np.concatenate(rot[s]), np.concatenate(wr[s])) for s in SIDES}
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(cache) + ".tmp.npz")
        np.savez(tmp, frames=frames, **{f"{s}_rot": pool[s][0] for s in SIDES},
                 **{f"{s}_wrist": pool[s][1] for s in SIDES})
        tmp.replace(cache)
    return pool


class PairSampler:
    """Random two-hand pairs (see the module docstring); deterministic for a given rng.

    Interpenetration is rejected with the capsule proxy of
    :mod:`lagc_hand.fitting.penetration` (a vertex more than
    :attr:`max_depth_m` inside the other hand's capsules), batched: the
    winding-number test costs ~0.2 s a pair, too slow for data made on the fly.
    The scene frames themselves were separated by winding numbers.
    """

    max_depth_m = 0.003

    def __init__(self, models: dict, params: dict, pool: dict | None, scene_share: float = 0.6):
        """models/params: side -> torch HandModel / its HandModelParams;
        pool: :func:`scene_pool` (None: independent poses only)."""
        from lagc_hand.fitting.penetration import CapsuleHand
        from lagc_hand.net.data.synthetic import HandPoser

        self.models = models
        self.faces = {s: np.asarray(params[s].f, np.int64) for s in SIDES}
        self.posers = {s: HandPoser(params[s]) for s in SIDES}
        self.pool = pool
        self.scene_share = scene_share if pool is not None else 0.0
        self.capsules = {}
        with torch.no_grad():
            for s in SIDES:
                m = models[s]
                v = m.shaped_vertices()[0].cpu().numpy()
                j = m.rest_joints()[0].cpu().numpy()
                self.capsules[s] = CapsuleHand.from_rest_mesh(v, j, m.tip_vertex_ids.cpu().numpy())

    def _scene(self, rng: np.random.Generator, perturb: bool) -> tuple[np.ndarray, np.ndarray]:
        n_pool = len(self.pool["left"][1])
        i = int(rng.integers(n_pool))
        rot = np.stack([self.pool[s][0][i] for s in SIDES])  # (2, 16, 3, 3)
        wrist = np.stack([self.pool[s][1][i] for s in SIDES])
        if perturb:
            # Finger perturbation (~0.08 rad a joint) keeps the contact pose family.
            d = Rotation.from_rotvec(rng.normal(0, 0.08, (30, 3))).as_matrix().reshape(2, 15, 3, 3)
            rot = rot.copy()
            rot[:, 1:] = rot[:, 1:] @ d
        return rot, wrist

    def _free(self, rng: np.random.Generator, apart: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        from lagc_hand.synth.scenes import orientation

        rot, wrist = np.zeros((2, 16, 3, 3)), np.zeros((2, 3))
        for k, s in enumerate(SIDES):
            pose = self.posers[s].sample_pose(rng).reshape(15, 3)
            fingers = np.array([rng.normal(0, 0.5), -1.0, rng.normal(0, 0.4)])
            palm = np.array([rng.normal(0, 0.6), rng.normal(0, 0.3), -1.0]) * (1 if rng.random() < 0.7 else -1)
            R = orientation(s, fingers, palm) @ Rotation.from_rotvec(rng.normal(0, 0.3, 3)).as_matrix()
            rot[k, 0] = R
            rot[k, 1:] = Rotation.from_rotvec(pose).as_matrix()
            sgn = 1.0 if s == "left" else -1.0  # a person's left hand is on the image's right
            wrist[k] = [sgn * (rng.uniform(0.01, 0.15) + apart), rng.normal(0, 0.04), sgn * rng.normal(0, 0.05)]
        return rot, wrist

    def _posed(self, rot: np.ndarray, wrist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """rot (N, 2, 16, 3, 3), wrist (N, 2, 3) -> vertices (N, 2, V, 3), keypoints (N, 2, 21, 3), bad (N,) bool."""
        from lagc_hand.fitting.penetration import SEGMENTS, _segment_distance
        from lagc_hand_blender.core.skeleton import PUBLIC_TO_MANO21

        vs, ks = [], []
        for k, s in enumerate(SIDES):
            v, kp = _forward(self.models[s], rot[:, k], wrist[:, k])
            vs.append(v)
            ks.append(kp)
        v, kp = np.stack(vs, 1), np.stack(ks, 1)
        depth = np.zeros(len(v))
        with torch.no_grad():
            for a, b in ((0, 1), (1, 0)):
                p21 = torch.as_tensor(kp[:, b][:, PUBLIC_TO_MANO21])
                seg = torch.as_tensor(SEGMENTS)
                dist = _segment_distance(torch.as_tensor(v[:, a, ::3]), p21[:, seg[:, 0]], p21[:, seg[:, 1]])
                r = torch.as_tensor(self.capsules[SIDES[b]].radii, dtype=dist.dtype)
                depth = np.maximum(depth, (r - dist).amax((1, 2)).numpy())
        return v, kp, depth > self.max_depth_m

    def sample(self, rng: np.random.Generator, n: int) -> PairBatch:
        """``n`` interpenetration-free pairs seen by random cameras (see :class:`PairBatch`)."""
        from_scene = rng.random(n) < self.scene_share
        rot, wrist = np.zeros((n, 2, 16, 3, 3)), np.zeros((n, 2, 3))
        for i in range(n):
            rot[i], wrist[i] = self._scene(rng, True) if from_scene[i] else self._free(rng)
        v, kp, bad = self._posed(rot, wrist)
        for attempt in range(4):
            idx = np.flatnonzero(bad)
            if not idx.size:
                break
            last = attempt == 3
            for i in idx:
                # Last try: an unperturbed scene frame, or free hands further apart.
                rot[i], wrist[i] = (self._scene(rng, not last) if from_scene[i]
                                    else self._free(rng, apart=0.05 * (attempt + 1)))
            v[idx], kp[idx], bad_i = self._posed(rot[idx], wrist[idx])
            bad[idx] = bad_i & ~(last & from_scene[idx])
        keep = ~bad
        out_v, out_k, Ks, sizes = [], [], [], []
        for i in np.flatnonzero(keep):
            vv, kk, K, size = _random_view(rng, v[i], kp[i])
            out_v.append(vv)
            out_k.append(kk)
            Ks.append(K)
            sizes.append(size)
        return PairBatch(np.stack(out_k), np.stack(out_v), np.stack(Ks), np.array(sizes),
                         np.where(from_scene[keep], 0, 1))


def _random_view(rng: np.random.Generator, v: np.ndarray, kp: np.ndarray):
    """Turn the pair about its centre, put it 0.3-0.9 m away inside the view of a random camera."""
    w, h = [(640, 480), (1280, 720), (1920, 1080), (720, 1280)][int(rng.integers(4))]
    hfov = np.radians(rng.uniform(45, 80))
    f = 0.5 * w / np.tan(0.5 * hfov)
    K = np.array([[f, 0, w / 2 + rng.normal(0, 0.01 * w)], [0, f, h / 2 + rng.normal(0, 0.01 * h)], [0, 0, 1.0]])
    c = kp.reshape(-1, 3).mean(0)
    R = Rotation.from_euler("yxz", [rng.uniform(-70, 70), rng.uniform(-35, 35), rng.uniform(-40, 40)],
                            degrees=True).as_matrix()
    z = rng.uniform(0.3, 0.9)
    # Centre anywhere in the middle 60 % of the image.
    u, vv = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
    target = np.array([(u - K[0, 2]) / f * z, (vv - K[1, 2]) / f * z, z])
    move = lambda p: (p - c) @ R.T + target  # noqa: E731
    return move(v), move(kp), K, (w, h)


def joint_visibility(keypoints: np.ndarray, vertices: np.ndarray, faces: dict, K: np.ndarray,
                     size: tuple[int, int]) -> np.ndarray:
    """(2, 21) bool: joint seen by the camera (not hidden by either hand, inside the image).

    keypoints (2, 21, 3), vertices (2, V, 3) camera frame; faces side -> (F, 3);
    K (3, 3) for an image of ``size`` (width, height); rendered at
    :data:`VIS_WIDTH` x :data:`VIS_HEIGHT` with K scaled to it.
    """
    from lagc_hand.net.data.raster import project, rasterize

    sx, sy = VIS_WIDTH / size[0], VIS_HEIGHT / size[1]
    k = np.array([[K[0, 0] * sx, 0, K[0, 2] * sx], [0, K[1, 1] * sy, K[1, 2] * sy], [0, 0, 1.0]])
    r = rasterize([(vertices[0], faces["left"]), (vertices[1], faces["right"])], k, VIS_HEIGHT, VIS_WIDTH)
    uv = project(keypoints, k)  # (2, 21, 2)
    px = np.floor(uv).astype(np.int64)
    inside = (px[..., 0] >= 0) & (px[..., 0] < VIS_WIDTH) & (px[..., 1] >= 0) & (px[..., 1] < VIS_HEIGHT)
    pxc = np.clip(px, 0, [VIS_WIDTH - 1, VIS_HEIGHT - 1])
    d = r.depth[pxc[..., 1], pxc[..., 0]]
    m = r.mesh[pxc[..., 1], pxc[..., 0]]
    own = m == np.arange(2)[:, None]
    # Empty pixel: the joint projects just outside a thin silhouette -- still seen.
    seen = (m < 0) | (own & (keypoints[..., 2] - d < SURFACE_TOLERANCE_M)) | (d >= keypoints[..., 2])
    return seen & inside


class OnTheFlyData:
    """Chunks of synthetic pairs with visibility, re-noised for every batch."""

    def __init__(self, cfg: RefinerTrainConfig, rng: np.random.Generator, cache_dir: Path | None):
        pm = {s: load_hand_model(cfg.hand_model, s) for s in ("left", "right")}
        models = {s: pm[s][1] for s in pm}
        pool = None
        if cfg.scene_share > 0:
            cache = None if cache_dir is None else cache_dir / f"scene_pool_{cfg.hand_model}_{cfg.scene_frames}.npz"
            pool = scene_pool(models, cfg.scene_frames, cache)
        self.sampler = PairSampler(models, {s: pm[s][0] for s in pm}, pool, cfg.scene_share)
        self.cfg, self.rng = cfg, rng
        self._chunk = None
        self._served = 0

    def pairs(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """n pairs: keypoints (n, 2, 21, 3), visibility (n, 2, 21), K (n, 3, 3)."""
        kps, vis, Ks = [], [], []
        while sum(len(k) for k in kps) < n:
            b = self.sampler.sample(self.rng, n)
            kps.append(b.keypoints)
            Ks.append(b.K)
            vis.append(np.stack([joint_visibility(b.keypoints[i], b.vertices[i], self.sampler.faces, b.K[i], b.size[i])
                                 for i in range(len(b.K))]))
        return np.concatenate(kps)[:n], np.concatenate(vis)[:n], np.concatenate(Ks)[:n]

    def batch(self) -> Batch:
        c = self.cfg
        if self._chunk is None or self._served >= c.chunk_reuse:
            self._chunk = self.pairs(c.chunk)
            self._served = 0
        self._served += 1
        kp, vis, K = self._chunk
        idx = self.rng.choice(len(kp), c.batch_size, replace=False)
        return Batch(corrupt(self.rng, kp[idx], vis[idx], K[idx], c.noise), kp[idx])

    def validation(self) -> Batch:
        """Held-out pairs from a separate seed (``seed + 10007``)."""
        keep = self.rng
        self.rng = np.random.default_rng(self.cfg.seed + 10007)
        try:
            kp, vis, K = self.pairs(self.cfg.val_samples)
            return Batch(corrupt(self.rng, kp, vis, K, self.cfg.noise), kp)
        finally:
            self.rng = keep
