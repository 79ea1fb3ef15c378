"""HandMotion: the versioned motion file the backend writes and the add-on reads.

A HandMotion file is an **uncompressed or compressed numpy ``.npz``** holding a
JSON header and plain numeric arrays only (it is read with
``allow_pickle=False``, so opening a file never executes code).  Readers need
numpy and the standard library alone, which is all Blender ships.

Coordinate frame
----------------
Everything 3D is in the **camera frame of the source video, OpenCV convention**:
x right, y down, z forward (away from the camera), in **metres**.  Image
coordinates are pixels with the origin at the top-left corner of the top-left
pixel.

Contents (``T`` frames, ``V`` mesh vertices, ``F`` faces, ``B`` shape coefficients)
----------------------------------------------------------------------------------
``header``          JSON (stored as a uint8 array), see :class:`HandMotion` fields.
``frames``          (T,) int64   source frame index of each sample.
``times``           (T,) float64 seconds from the start of the video.
``intrinsics``      (3, 3) float64 pinhole matrix K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
                    (pixels; fx may differ from fy, the principal point may lie
                    anywhere, even outside a cropped image).  When the source camera
                    had lens distortion (``meta["camera"]["distortion"]``, OpenCV
                    coefficients), ``h_keypoints2d`` are already undistorted, so
                    K alone projects the 3D data onto them.  The Blender camera
                    reproducing K: ``core.camera.camera_params``.
``faces``           (F, 3) int32  mesh triangles (shared by both hands' meshes), wound
                    outward for the right hand; the left hand is a mirror image,
                    so readers orient each hand's triangles to a positive signed
                    volume (``lagc_hand_blender.core.rig.fix_winding``).
``skin_weights``    (V, 16) float32 linear-blend-skinning weights, MANO joint order.

Per hand ``h`` in ``left``, ``right`` (all present even when a hand is never seen):

``h_present``        (T,) bool    the hand was observed (or gap-filled) in that frame.
``h_confidence``     (T,) float32 in [0, 1]; 0 where not present.
``h_keypoints2d``    (T, 21, 2) float32 observed keypoints, pixels, public order.
``h_betas``          (B,) float32 shape coefficients of the hand model.
``h_rest_vertices``  (V, 3) float32 shaped rest mesh, hand-model frame, metres.
``h_rest_joints``    (16, 3) float32 shaped rest joints (MANO order), same frame.
``h_tip_vertex_ids`` (5,) int64   fingertip vertices (thumb, index, middle, ring, pinky).

and per variant ``v`` in ``raw``, ``clean``:

``h_v_quats``        (T, 16, 4) float32 joint rotations, w-x-y-z, MANO joint order.
                     Joint 0 is the global orientation (rest-model frame -> camera
                     frame), joints 1..15 are parent-relative rotations expressed in
                     the rest-model frame, exactly as MANO's axis-angle pose.
``h_v_root``         (T, 3) float32 wrist joint position in the camera frame, metres.
``h_v_keypoints3d``  (T, 21, 3) float32 posed keypoints, camera frame, public order.

So a rest-frame point ``x`` maps to the camera frame as
``R0 @ (x - rest_joints[0]) + root`` for the rigid part of the hand.

Frames where a hand is absent hold the identity rotation, the last known root
(or zeros) and zero keypoints; readers must look at ``h_present``.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .atomic import write_atomic

FORMAT_NAME = "lagc-handmotion"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)

SIDES = ("left", "right")
VARIANTS = ("raw", "clean")
NUM_JOINTS = 16
NUM_KEYPOINTS = 21


class HandMotionError(ValueError):
    """A HandMotion file is missing, malformed or of an unsupported version.

    The message is meant for the user: it names the file and the problem.
    """


@dataclass
class HandVariant:
    """One variant (raw or cleaned) of one hand's motion.

    quats:       (T, 16, 4) float32, w-x-y-z, MANO joint order.
    root:        (T, 3) float32, wrist position in the camera frame, metres.
    keypoints3d: (T, 21, 3) float32, camera frame, metres, public order.
    """

    quats: np.ndarray
    root: np.ndarray
    keypoints3d: np.ndarray


@dataclass
class HandTrackMotion:
    """Everything about one hand (``side`` is ``"left"`` or ``"right"``).

    present:          (T,) bool.
    confidence:       (T,) float32 in [0, 1].
    keypoints2d:      (T, 21, 2) float32 pixels, public order.
    betas:            (B,) float32.
    rest_vertices:    (V, 3) float32, hand-model frame, metres.
    rest_joints:      (16, 3) float32, hand-model frame, metres.
    tip_vertex_ids:   (5,) int64.
    raw / clean:      :class:`HandVariant`.
    """

    side: str
    present: np.ndarray
    confidence: np.ndarray
    keypoints2d: np.ndarray
    betas: np.ndarray
    rest_vertices: np.ndarray
    rest_joints: np.ndarray
    tip_vertex_ids: np.ndarray
    raw: HandVariant
    clean: HandVariant

    def variant(self, name: str) -> HandVariant:
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; expected one of {VARIANTS}")
        return getattr(self, name)


@dataclass
class HandMotion:
    """Two hands' motion over a video, in the camera frame.

    fps:          frames per second of the samples (source fps / stride).
    frames:       (T,) int64 source frame indices.
    times:        (T,) float64 seconds.
    image_size:   (width, height) pixels.
    intrinsics:   (3, 3) float64 K.
    faces:        (F, 3) int32.
    skin_weights: (V, 16) float32.
    hand_model:   id of the hand model, e.g. ``"lagc-open-hand-v1"`` or ``"mano"``.
    hands:        ``{"left": HandTrackMotion, "right": HandTrackMotion}``.
    meta:         free-form JSON-able dict (source path, engine, options, stats).
    """

    fps: float
    frames: np.ndarray
    times: np.ndarray
    image_size: tuple[int, int]
    intrinsics: np.ndarray
    faces: np.ndarray
    skin_weights: np.ndarray
    hand_model: str
    hands: dict[str, HandTrackMotion]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def validate(self, source: str = "HandMotion") -> "HandMotion":
        """Check every array's dtype, shape and values; raise :class:`HandMotionError`."""
        _validate(self, source)
        return self


# --------------------------------------------------------------------------- writing


def to_arrays(motion: HandMotion) -> dict[str, np.ndarray]:
    """Flatten ``motion`` into the named arrays stored in the ``.npz``."""
    motion.validate()
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "fps": float(motion.fps),
        "image_size": [int(motion.image_size[0]), int(motion.image_size[1])],
        "hand_model": str(motion.hand_model),
        "num_frames": motion.num_frames,
        "meta": motion.meta,
    }
    arrays: dict[str, np.ndarray] = {
        "header": np.frombuffer(json.dumps(header, sort_keys=True).encode("utf-8"), dtype=np.uint8),
        "frames": np.asarray(motion.frames, dtype=np.int64),
        "times": np.asarray(motion.times, dtype=np.float64),
        "intrinsics": np.asarray(motion.intrinsics, dtype=np.float64),
        "faces": np.asarray(motion.faces, dtype=np.int32),
        "skin_weights": np.asarray(motion.skin_weights, dtype=np.float32),
    }
    for side in SIDES:
        h = motion.hands[side]
        arrays[f"{side}_present"] = np.asarray(h.present, dtype=bool)
        arrays[f"{side}_confidence"] = np.asarray(h.confidence, dtype=np.float32)
        arrays[f"{side}_keypoints2d"] = np.asarray(h.keypoints2d, dtype=np.float32)
        arrays[f"{side}_betas"] = np.asarray(h.betas, dtype=np.float32)
        arrays[f"{side}_rest_vertices"] = np.asarray(h.rest_vertices, dtype=np.float32)
        arrays[f"{side}_rest_joints"] = np.asarray(h.rest_joints, dtype=np.float32)
        arrays[f"{side}_tip_vertex_ids"] = np.asarray(h.tip_vertex_ids, dtype=np.int64)
        for var in VARIANTS:
            v = h.variant(var)
            arrays[f"{side}_{var}_quats"] = np.asarray(v.quats, dtype=np.float32)
            arrays[f"{side}_{var}_root"] = np.asarray(v.root, dtype=np.float32)
            arrays[f"{side}_{var}_keypoints3d"] = np.asarray(v.keypoints3d, dtype=np.float32)
    return arrays


def save(motion: HandMotion, path: str | os.PathLike, compress: bool = True) -> None:
    """Write ``motion`` to ``path`` atomically (temp file in the same folder, then rename),
    so a crash never leaves a half-written file under the final name."""
    arrays = to_arrays(motion)
    savez = np.savez_compressed if compress else np.savez
    write_atomic(path, lambda f: savez(f, **arrays), prefix=".handmotion-", suffix=".npz.part")


def dumps(motion: HandMotion) -> bytes:
    """The file's bytes (what :func:`save` writes), for sending over HTTP."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **to_arrays(motion))
    return buf.getvalue()


# --------------------------------------------------------------------------- reading


def load(path: str | os.PathLike) -> HandMotion:
    """Read and validate a HandMotion file; raise :class:`HandMotionError` with a
    message naming the file and the problem on any defect."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise HandMotionError(f"{path}: no such file")
    if os.path.isdir(path):
        raise HandMotionError(f"{path}: is a folder, not a HandMotion file")
    with open(path, "rb") as f:
        data = f.read()
    return loads(data, source=path)


def loads(data: bytes, source: str = "HandMotion data") -> HandMotion:
    if not data:
        raise HandMotionError(f"{source}: the file is empty")
    if not data.startswith(b"PK"):
        raise HandMotionError(f"{source}: not a HandMotion file (expected a numpy .npz archive)")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile, zlib, numpy header parsing: all mean "damaged"
        raise HandMotionError(f"{source}: the archive is damaged or truncated ({exc})") from None
    return from_arrays(arrays, source)


def from_arrays(arrays: dict[str, np.ndarray], source: str = "HandMotion data") -> HandMotion:
    if "header" not in arrays:
        raise HandMotionError(f"{source}: no header; this is not a HandMotion file")
    try:
        header = json.loads(np.asarray(arrays["header"], dtype=np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise HandMotionError(f"{source}: the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise HandMotionError(f"{source}: the header does not name the {FORMAT_NAME!r} format")
    version = header.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise HandMotionError(
            f"{source}: HandMotion version {version!r} is not supported by this reader "
            f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))}); update the add-on or backend"
        )

    def get(name: str) -> np.ndarray:
        if name not in arrays:
            raise HandMotionError(f"{source}: the array {name!r} is missing")
        return arrays[name]

    try:
        fps = float(header["fps"])
        w, h = (int(x) for x in header["image_size"])
        hand_model = str(header["hand_model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise HandMotionError(f"{source}: the header lacks or garbles a field ({exc})") from None
    hands = {}
    for side in SIDES:
        variants = {
            var: HandVariant(
                quats=get(f"{side}_{var}_quats"),
                root=get(f"{side}_{var}_root"),
                keypoints3d=get(f"{side}_{var}_keypoints3d"),
            )
            for var in VARIANTS
        }
        hands[side] = HandTrackMotion(
            side=side,
            present=get(f"{side}_present"),
            confidence=get(f"{side}_confidence"),
            keypoints2d=get(f"{side}_keypoints2d"),
            betas=get(f"{side}_betas"),
            rest_vertices=get(f"{side}_rest_vertices"),
            rest_joints=get(f"{side}_rest_joints"),
            tip_vertex_ids=get(f"{side}_tip_vertex_ids"),
            raw=variants["raw"],
            clean=variants["clean"],
        )
    motion = HandMotion(
        fps=fps,
        frames=get("frames"),
        times=get("times"),
        image_size=(w, h),
        intrinsics=get("intrinsics"),
        faces=get("faces"),
        skin_weights=get("skin_weights"),
        hand_model=hand_model,
        hands=hands,
        meta=header.get("meta") or {},
    )
    return motion.validate(source)


# --------------------------------------------------------------------------- validation


def _check(source: str, name: str, arr: Any, shape: tuple, kinds: str) -> None:
    """``shape`` entries are ints or None (any size); ``kinds`` are numpy dtype kinds."""
    if not isinstance(arr, np.ndarray):
        raise HandMotionError(f"{source}: {name} is not an array")
    if arr.dtype.kind not in kinds:
        raise HandMotionError(f"{source}: {name} has dtype {arr.dtype}, expected kind {kinds!r}")
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise HandMotionError(f"{source}: {name} has shape {tuple(arr.shape)}, expected {want}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise HandMotionError(f"{source}: {name} contains NaN or infinite values")


def _validate(m: HandMotion, source: str) -> None:
    if not (np.isfinite(m.fps) and 0 < m.fps <= 10000):
        raise HandMotionError(f"{source}: fps {m.fps!r} is not a positive number")
    if m.image_size[0] <= 0 or m.image_size[1] <= 0:
        raise HandMotionError(f"{source}: image size {m.image_size} is not positive")
    _check(source, "frames", m.frames, (None,), "iu")
    T = m.frames.shape[0]
    _check(source, "times", m.times, (T,), "f")
    if T > 1 and np.any(np.diff(m.frames) <= 0):
        raise HandMotionError(f"{source}: frames are not strictly increasing")
    _check(source, "intrinsics", m.intrinsics, (3, 3), "f")
    K = m.intrinsics
    if not (K[0, 0] > 0 and K[1, 1] > 0 and K[0, 1] == 0 and K[1, 0] == 0 and np.all(K[2] == [0, 0, 1])):
        raise HandMotionError(f"{source}: intrinsics is not a pinhole matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] "
                              f"with positive focal lengths")
    _check(source, "faces", m.faces, (None, 3), "iu")
    _check(source, "skin_weights", m.skin_weights, (None, NUM_JOINTS), "f")
    V = m.skin_weights.shape[0]
    if m.faces.size and (m.faces.min() < 0 or m.faces.max() >= V):
        raise HandMotionError(f"{source}: faces index vertices outside 0..{V - 1}")
    if set(m.hands) != set(SIDES):
        raise HandMotionError(f"{source}: hands must be exactly {SIDES}, got {sorted(m.hands)}")
    for side in SIDES:
        h = m.hands[side]
        p = f"{side} hand"
        _check(source, f"{p} present", h.present, (T,), "b")
        _check(source, f"{p} confidence", h.confidence, (T,), "f")
        if np.any(h.confidence < 0) or np.any(h.confidence > 1):
            raise HandMotionError(f"{source}: {p} confidence is outside [0, 1]")
        _check(source, f"{p} keypoints2d", h.keypoints2d, (T, NUM_KEYPOINTS, 2), "f")
        _check(source, f"{p} betas", h.betas, (None,), "f")
        _check(source, f"{p} rest_vertices", h.rest_vertices, (V, 3), "f")
        _check(source, f"{p} rest_joints", h.rest_joints, (NUM_JOINTS, 3), "f")
        _check(source, f"{p} tip_vertex_ids", h.tip_vertex_ids, (5,), "iu")
        if np.any(h.tip_vertex_ids < 0) or np.any(h.tip_vertex_ids >= V):
            raise HandMotionError(f"{source}: {p} fingertip vertex ids are outside the mesh")
        for var in VARIANTS:
            v = h.variant(var)
            _check(source, f"{p} {var} quats", v.quats, (T, NUM_JOINTS, 4), "f")
            norms = np.linalg.norm(v.quats, axis=-1)
            if T and np.max(np.abs(norms - 1.0)) > 1e-3:
                raise HandMotionError(f"{source}: {p} {var} quaternions are not unit length")
            _check(source, f"{p} {var} root", v.root, (T, 3), "f")
            _check(source, f"{p} {var} keypoints3d", v.keypoints3d, (T, NUM_KEYPOINTS, 3), "f")


# --------------------------------------------------------------------------- builders


def absent_hand(
    side: str,
    num_frames: int,
    rest_vertices: np.ndarray,
    rest_joints: np.ndarray,
    tip_vertex_ids: np.ndarray,
    betas: np.ndarray,
) -> HandTrackMotion:
    """A hand that is never seen: present all False, identity rotations, zeros.

    Used when a video holds only one hand (or none), so every file has both.
    """
    T = int(num_frames)
    quats = np.zeros((T, NUM_JOINTS, 4), dtype=np.float32)
    quats[..., 0] = 1.0

    def variant() -> HandVariant:
        return HandVariant(
            quats=quats.copy(),
            root=np.zeros((T, 3), dtype=np.float32),
            keypoints3d=np.zeros((T, NUM_KEYPOINTS, 3), dtype=np.float32),
        )

    return HandTrackMotion(
        side=side,
        present=np.zeros(T, dtype=bool),
        confidence=np.zeros(T, dtype=np.float32),
        keypoints2d=np.zeros((T, NUM_KEYPOINTS, 2), dtype=np.float32),
        betas=np.asarray(betas, dtype=np.float32),
        rest_vertices=np.asarray(rest_vertices, dtype=np.float32),
        rest_joints=np.asarray(rest_joints, dtype=np.float32),
        tip_vertex_ids=np.asarray(tip_vertex_ids, dtype=np.int64),
        raw=variant(),
        clean=variant(),
    )
