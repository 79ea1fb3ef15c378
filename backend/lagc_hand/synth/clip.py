"""Render clips of posed hand models with exact ground truth (Blender Cycles CPU).

A clip is a list of :class:`HandTrack` (one hand's pose over time, camera
frame) and a :class:`~lagc_hand.synth.scene.CameraIntrinsics`.
:func:`render_clip` poses each hand with the torch layer, writes the meshes
(plus a simple forearm in a sleeve, which real footage has and hand detectors
expect) into one Blender scene and renders every frame; :class:`ClipGroundTruth`
holds what was rendered: 21 public-order keypoints and 16 joints per hand in
the OpenCV camera frame (metres), presence, intrinsics and the pose parameters.

Numpy/torch pose maths lives here; ``bpy`` is imported only inside
:func:`render_clip` (via :mod:`lagc_hand.synth.scene`).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from lagc_hand.handmodel.params import HandModelParams


@dataclass
class HandTrack:
    """One hand over ``T`` frames, MANO semantics, camera frame.

    * ``global_orient`` ``(T, 3)`` axis-angle (rad): model frame -> camera frame,
      about the wrist joint.
    * ``hand_pose`` ``(T, 45)`` axis-angle of joints 1..15 relative to the flat hand.
    * ``transl`` ``(T, 3)`` metres, added after the rotation.
    * ``betas`` ``(B,)`` one shape for the clip.
    * ``present`` ``(T,)`` bool: rendered in that frame.
    """

    side: str
    params: HandModelParams
    global_orient: np.ndarray
    hand_pose: np.ndarray
    transl: np.ndarray
    betas: np.ndarray = field(default_factory=lambda: np.zeros(10))
    present: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = len(self.global_orient)
        if self.hand_pose.shape != (t, 45) or self.transl.shape != (t, 3) or self.global_orient.shape != (t, 3):
            raise ValueError("HandTrack: global_orient (T,3), hand_pose (T,45), transl (T,3) must share T")
        if self.present is None:
            self.present = np.ones(t, bool)

    @property
    def num_frames(self) -> int:
        return len(self.global_orient)


@dataclass
class PosedTrack:
    """Layer output for a track: ``vertices (T, V, 3)``, ``joints (T, 16, 3)``,
    ``keypoints (T, 21, 3)`` public order, camera frame, metres."""

    vertices: np.ndarray
    joints: np.ndarray
    keypoints: np.ndarray


def pose_track(track: HandTrack) -> PosedTrack:
    import torch

    from lagc_hand.handmodel.layer import HandModel

    model = HandModel(track.params)
    f = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        out = model(f(track.global_orient), f(track.hand_pose), f(track.betas)[None], f(track.transl))
    return PosedTrack(out.vertices.numpy().astype(np.float64), out.joints.numpy().astype(np.float64),
                      out.keypoints.numpy().astype(np.float64))


@dataclass
class ClipGroundTruth:
    """Ground truth of a rendered clip (see :meth:`to_arrays` for the file keys)."""

    fps: float
    K: np.ndarray               # (3, 3)
    image_size: tuple           # (width, height)
    tracks: list                # [HandTrack]
    posed: list                 # [PosedTrack]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Keys: ``intrinsics (3,3)``, ``image_size (2,)`` = (w, h), ``fps ()``,
        ``model_id ()``; per side (``left_``/``right_``): ``keypoints (T,21,3)``
        public order, ``joints (T,16,3)`` MANO order, both camera frame, metres;
        ``present (T,)``; ``global_orient (T,3)``, ``hand_pose (T,45)``,
        ``transl (T,3)``, ``betas (B,)``.  Absent frames hold NaN keypoints."""
        out = {
            "intrinsics": np.asarray(self.K, np.float64),
            "image_size": np.asarray(self.image_size, np.int64),
            "fps": np.asarray(float(self.fps)),
            "model_id": np.asarray(self.tracks[0].params.model_id),
        }
        for tr, po in zip(self.tracks, self.posed):
            s = tr.side
            kp = po.keypoints.astype(np.float32).copy()
            j = po.joints.astype(np.float32).copy()
            kp[~tr.present] = np.nan
            j[~tr.present] = np.nan
            out[f"{s}_keypoints"] = kp
            out[f"{s}_joints16"] = j
            out[f"{s}_present"] = tr.present.astype(bool)
            out[f"{s}_global_orient"] = tr.global_orient.astype(np.float32)
            out[f"{s}_hand_pose"] = tr.hand_pose.astype(np.float32)
            out[f"{s}_transl"] = tr.transl.astype(np.float32)
            out[f"{s}_betas"] = np.asarray(tr.betas, np.float32)
        return out

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **self.to_arrays())
        tmp.replace(path)


def forearm_mesh(length: float = 0.30, r_wrist: tuple = (0.026, 0.018), r_elbow: tuple = (0.038, 0.030),
                 n_around: int = 24, n_along: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """A closed elliptic tube from the wrist (``x = 0.005``) to ``x = length``
    in the right hand's model frame (the forearm continues along ``+x``, away
    from the fingers).  Returns ``verts (N, 3)``, outward ``faces (M, 3)``."""
    xs = np.linspace(0.005, length, n_along)
    ang = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    rings = []
    for k, x in enumerate(xs):
        t = k / (n_along - 1)
        rz = r_wrist[0] + (r_elbow[0] - r_wrist[0]) * t  # across the palm (z)
        ry = r_wrist[1] + (r_elbow[1] - r_wrist[1]) * t  # palm-back (y)
        rings.append(np.stack([np.full(n_around, x), ry * np.sin(ang), rz * np.cos(ang)], 1))
    v = np.concatenate(rings + [np.array([[xs[0], 0, 0], [xs[-1], 0, 0]])])
    f = []
    for k in range(n_along - 1):
        for i in range(n_around):
            a, b = k * n_around + i, k * n_around + (i + 1) % n_around
            c, d = a + n_around, b + n_around
            f += [(a, c, b), (b, c, d)]
    cap0, cap1 = len(v) - 2, len(v) - 1
    last = (n_along - 1) * n_around
    for i in range(n_around):
        j = (i + 1) % n_around
        f.append((cap0, i, j))
        f.append((cap1, last + j, last + i))
    f = np.array(f, np.int64)
    from lagc_hand.handmodel.meshops import signed_volume

    if signed_volume(v, f) < 0:
        f = f[:, [0, 2, 1]]
    return v, f


def _rodrigues(rv: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(rv).as_matrix()


def render_clip(tracks: list[HandTrack], cam, fps: float = 30.0, samples: int = 8, forearms: bool = True,
                progress: Callable[[int, int], None] | None = None, threads: int = 2) -> Iterator[np.ndarray]:
    """Yield each frame ``(H, W, 3)`` uint8 RGB.  Use :func:`clip_ground_truth`
    for the matching ground truth (pure maths, no rendering)."""
    from lagc_hand.synth import scene as sc

    posed = [pose_track(t) for t in tracks]
    n = tracks[0].num_frames
    scene = sc.new_scene(cam, samples=samples, background=(0.40, 0.42, 0.45), threads=threads)
    sc.add_lights(scene, key=(-0.35, -0.6, -0.7), strength=3.0)
    skin = sc.skin_material()
    sleeve = sc.skin_material("Sleeve", color=(0.10, 0.16, 0.30))
    objs = []
    arm_v, arm_f = forearm_mesh()
    for k, (tr, po) in enumerate(zip(tracks, posed)):
        hand = sc.add_mesh(scene, f"Hand_{tr.side}", po.vertices[0], tr.params.f, skin)
        arm = None
        if forearms:
            av, af = (arm_v, arm_f) if tr.side == "right" else (arm_v * [-1, 1, 1], arm_f[:, [0, 2, 1]])
            arm = sc.add_mesh(scene, f"Forearm_{tr.side}", av, af, sleeve)
        objs.append((hand, arm, av if forearms else None))
    for t in range(n):
        for tr, po, (hand, arm, av) in zip(tracks, posed, objs):
            show = bool(tr.present[t])
            hand.hide_render = not show
            if show:
                sc.set_mesh_vertices(hand, po.vertices[t])
            if arm is not None:
                arm.hide_render = not show
                if show:
                    r = _rodrigues(tr.global_orient[t])
                    j0 = tr.params.rest_joints(tr.betas)[0]
                    sc.set_mesh_vertices(arm, (av - j0) @ r.T + j0 + tr.transl[t])
        scene.frame_set(t)
        frame = sc.render_to_array(scene)
        if progress is not None:
            progress(t + 1, n)
        yield frame


def clip_ground_truth(tracks: list[HandTrack], cam, fps: float) -> ClipGroundTruth:
    return ClipGroundTruth(fps=fps, K=cam.K, image_size=(cam.width, cam.height), tracks=tracks,
                           posed=[pose_track(t) for t in tracks])


def write_video(frames, path: str | os.PathLike, fps: float, size: tuple) -> str:
    """Encode RGB frames to ``path`` (.mp4: H.264 'avc1' when OpenCV has it,
    else MPEG-4 'mp4v'); temp file then rename.  Returns the codec used."""
    import cv2

    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    writer = None
    for codec in ("avc1", "mp4v"):
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*codec), float(fps), tuple(size))
        if writer.isOpened():
            break
        writer.release()
        writer = None
    if writer is None:
        raise RuntimeError(f"OpenCV cannot write {path.suffix} video here")
    try:
        for fr in frames:
            writer.write(cv2.cvtColor(fr, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    tmp.replace(path)
    return codec


def render_to_files(tracks, cam, video_path, gt_path, fps: float = 30.0, samples: int = 8,
                    progress=None, keep_frames: list | None = None) -> dict:
    """Render a clip to ``video_path`` and its ground truth to ``gt_path``;
    returns timing info.  ``keep_frames`` (a list) receives the RGB frames."""
    t0 = time.perf_counter()
    gt = clip_ground_truth(tracks, cam, fps)

    def frames():
        for fr in render_clip(tracks, cam, fps, samples=samples, progress=progress):
            if keep_frames is not None:
                keep_frames.append(fr)
            yield fr

    codec = write_video(frames(), video_path, fps, (cam.width, cam.height))
    gt.save(gt_path)
    n = tracks[0].num_frames
    dt = time.perf_counter() - t0
    return {"frames": n, "seconds": dt, "seconds_per_frame": dt / n, "codec": codec}
