"""Fit the hand model to the detector's keypoints: all frames of one hand in one batch.

Unknowns (``T`` frames of one hand): 16 joint rotations and a translation per
frame, and one shape ``betas`` for the whole sequence.  Cost per frame:

* keypoints: squared distance to the placed 3D target keypoints (cm^2,
  per-keypoint weights);
* joint limits: squared excess beyond the anatomical boxes of :mod:`.limits`
  (flexion / abduction / twist), so twist goes to the wrist and not into
  impossible finger rolls;
* image (when the detector's 2D keypoints and K are given): robust,
  confidence-weighted reprojection of the model's keypoints onto them
  (:mod:`.image_term`).  The keypoint term then compares wrist-relative
  positions of targets scaled to the model's size, so the detector's 3D gives
  the pose and proportions, and the translation, depth included, comes from the
  image and the model's size (one shape for the sequence, held by its prior);

plus a shape prior ``w_betas |betas|^2`` for the sequence (``w_betas_image``
with the image term).

Steps: analytic start (global orientation by Kabsch on the five palm points,
then each finger bone swung onto its target bone); betas by linear least
squares at those rotations (keypoints are affine in betas) and the start redone
with that shape; with the image term, the translation started by a robust PnP of
that model onto the 2D keypoints; batched Levenberg-Marquardt over every frame's
pose and translation with analytic Jacobians (:mod:`.lm`); betas re-solved at the
fitted rotations (with the image term jointly with every frame's translation,
:func:`.shape.solve_betas_image`) and a few more LM iterations, twice
(``shape_rounds``).  Works for any
:class:`~lagc_hand.handmodel.layer.HandModel` with MANO's tree (open model or MANO).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from lagc_hand.fitting.limits import _CHILD, anatomical_frames, joint_limit_boxes
from lagc_hand.fitting.image_term import ImageTerm, make_image_term, project
from lagc_hand.fitting.landmarks import convention_for, to_model_points
from lagc_hand.fitting.lm import FINGER_JOINTS, PoseProblem, levenberg_marquardt
from lagc_hand.fitting.shape import size_and_gradient, solve_betas, solve_betas_image
from lagc_hand.fitting.so3 import rotvec
from lagc_hand.placement.pnp import solve_translation
from lagc_hand.handmodel.torch_rotations import matrix_to_rot6d, rot6d_to_matrix
from lagc_hand_blender.core.rotations import kabsch_rotation, matrix_to_quat, quat_sign_continuity
from lagc_hand_blender.core.skeleton import NUM_JOINTS, PUBLIC_PARENTS, PUBLIC_TO_MANO21

#: Public indices of the palm points used to initialise the global orientation.
PALM_POINTS = np.array([0, 5, 9, 13, 17])
#: Public indices of the thumb base and the four MCPs (see FitConfig.w_palm3d).
PALM_3D_POINTS = np.array([1, 5, 9, 13, 17])
#: Frames used for the starting shape (all of them up to this many).
SHAPE_START_FRAMES = 512


@dataclass
class FitConfig:
    """Fitting options.  Weights are relative to the keypoint term (cm^2)."""

    #: Levenberg-Marquardt iterations with the first betas.
    iterations: int = 2
    #: LM iterations after each re-solve of the betas at the fitted pose (``fit_shape`` only).
    shape_iterations: int = 2
    #: Rounds of (shape re-solve, ``shape_iterations`` LM iterations) (``fit_shape`` only).
    #: Shape and pose are solved in turn, so with the palm-layout shape directions one
    #: round left the fit short of its own optimum (bench/fit_joints.py): output vs
    #: MediaPipe's landmarks on tfjs_asl_hand 4.17 px at 1 round of 1 iteration, 3.65 at
    #: 2 x 2, 3.38 converged (8 + 4 x 3 iterations); OneHand10K 2D error / detector's
    #: 1.14, 1.05, 1.03; RHD PA-MPJPE 11.3, 11.6, 12.0 mm.  It costs ~2x the fit's time
    #: (0.9 ms per hand-frame with the image term, ~1 % of end to end).
    shape_rounds: int = 2
    w_limits: float = 30.0
    w_betas: float = 0.05
    fit_shape: bool = True
    #: Weight of the image (reprojection) term per keypoint, relative to the 3D keypoint
    #: term, where 2D keypoints and K are given (0: fit the placed 3D keypoints only, the
    #: fit before issue 13).  A residual of 0.1 hand sizes costs like 1.8 cm in 3D at 1.0.
    #: 20 on the realdev stills (bench/fit_align.py): fitted-vs-detector 2D 0.020 hand
    #: sizes (5: 0.026, 100: 0.018) for RHD PA-MPJPE 12.6 mm (5: 11.8, 100: 13.4).
    w_image: float = 20.0
    #: Weight of the thumb base and finger MCPs in the wrist-relative 3D term (with the
    #: image term).  MediaPipe's world landmarks have a long palm (wrist-to-middle-MCP /
    #: middle finger 1.06-1.17 on realdev clips; 0.97 in the hand model, 0.99 in RHD).
    #: Measured at 0.1: palm ratio 1.07 -> 1.02 on mpsamples_hand_landmarker, 2D vs the
    #: detector 0.020 -> 0.019 hand sizes on the stills, RHD PA-MPJPE 12.6 -> 12.7 mm:
    #: too small a difference on this little data to change the default.
    w_palm3d: float = 1.0
    #: With the image term: scale the detector's 3D keypoints of every frame to the
    #: model's size, so the hand's size (and with it its depth) comes from the shape
    #: prior and the image, not from the detector's world-landmark size.
    normalise_size: bool = True
    #: Shape prior with the image term.  The hand's size sets its depth there, and the
    #: detector's 3D only gives proportions, so the prior holds the shape nearer the mean
    #: hand: 1.0 against 0.05 gave RHD wrist-rooted MPJPE 25.8 vs 26.7 mm, absolute wrist
    #: 50 vs 61 mm, sample clip MPJPE 15.6 vs 16.5 mm (bench/fit_align.py, bench/accuracy.py).
    w_betas_image: float = 1.0
    #: With the image term and ``normalise_size``: hold the hand's size (summed bone lengths of the rest
    #: skeleton) at the starting shape's (the mean hand, or ``betas_init``).  One camera
    #: sees only size / depth, so a size that the fit picks is a depth error: with the
    #: shape free, single stills ended 6-10 % small (RHD 11111: 752 vs 866 mm labelled,
    #: 84 mm wrist error) as the shape directions bent the proportions to the landmarks.
    #: The proportions stay free.
    hold_size: bool = True
    #: Huber threshold of the image term, in hand sizes (beyond it a keypoint's pull is constant).
    image_delta: float = 0.1
    device: str = "cpu"
    #: Whose landmarks the 2D (and 3D) keypoints are (:mod:`.landmarks`; an engine name):
    #: with the image term the model's keypoints are fitted to where the detector's
    #: landmarks put the model's joints, not onto the landmarks themselves.  MediaPipe's
    #: lie short of the joints along the fingers; fitted as they are, the hand comes out
    #: ~5 % small in the image and ~5 % too far from the camera.  None / an engine
    #: without a known convention: the landmarks are the model's keypoints.
    #: Only the 2D landmarks are moved: MediaPipe's world landmarks come from another
    #: model (moving them too: RHD PA-MPJPE 11.60 vs 11.15 mm, rendered two_hands 7.78 vs 7.65).
    landmarks: Optional[str] = "mediapipe"
    #: CPU threads for torch during the fit.  The tensors are tiny (3x3 .. 15x15
    #: blocks), so extra threads only add synchronisation; on a busy 2-core machine
    #: the default (all cores) was 14x slower than 1 thread (18.4 s vs 1.3 s for 60 frames).
    cpu_threads: int = 1


@dataclass
class HandFit:
    """A fitted hand sequence (``T`` frames, ``B`` shape coefficients).

    rotmats:     (T, 16, 3, 3) float32, MANO semantics (joint 0 global, rest frame -> camera).
    quats:       (T, 16, 4) float32 w-x-y-z, sign-continuous over time.
    root:        (T, 3) float32, wrist joint in the camera frame, metres.
    keypoints3d: (T, 21, 3) float32, posed model keypoints, camera frame, public order.
    betas:       (B,) float32.
    error:       (T,) float32, mean keypoint distance to the target, metres
                 (wrist-relative, to the size-normalised target, with an image term).
    reproj_px:   (T,) float32, mean distance of the projected keypoints to the
                 2D keypoints (pixels), or None when the fit had no image term.
    """

    rotmats: np.ndarray
    quats: np.ndarray
    root: np.ndarray
    keypoints3d: np.ndarray
    betas: np.ndarray
    error: np.ndarray
    reproj_px: Optional[np.ndarray] = None


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched minimal rotation (no twist) taking direction a (..., 3) onto b (..., 3) -> (..., 3, 3)."""
    a = a / np.maximum(np.sqrt(np.sum(a * a, -1, keepdims=True)), 1e-12)
    b = b / np.maximum(np.sqrt(np.sum(b * b, -1, keepdims=True)), 1e-12)
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    v = (ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx)
    c = ax * bx + ay * by + az * bz
    # Rodrigues I + [v]x + [v]x^2 / (1 + c), with [v]x^2 = v v^T - |v|^2 I, written
    # per entry (cheaper than building [v]x and a batched product); opposite
    # vectors (c ~ -1) are left unrotated.
    f = np.where(c > -0.999, 1.0 / np.maximum(1.0 + c, 1e-3), 0.0)
    vv = v[0] * v[0] + v[1] * v[1] + v[2] * v[2]
    R = np.empty(c.shape + (3, 3))
    for i in range(3):
        R[..., i, i] = 1.0 + f * (v[i] * v[i] - vv)
        j, k = (i + 1) % 3, (i + 2) % 3
        R[..., i, j] = f * v[i] * v[j] - v[k]  # [v]x[i, j] = -v_k for (i, j, k) cyclic
        R[..., j, i] = f * v[i] * v[j] + v[k]
    return R


def initial_pose(rest_kp: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Analytic start: global orientation by Kabsch on the palm, then each finger
    joint (parents first) swung so its bone points at the target's bone.

    rest_kp: (21, 3) rest keypoints, public order.  target: (T, 21, 3).
    Returns (T, 16, 3, 3) parent-relative rotations (MANO order).
    """
    T = len(target)
    rest21 = rest_kp[PUBLIC_TO_MANO21]
    rot = np.empty((T, NUM_JOINTS, 3, 3))
    glob_parent = kabsch_rotation(rest_kp[PALM_POINTS], target[:, PALM_POINTS])[:, None]  # (T, 1, 3, 3)
    rot[:, 0] = glob_parent[:, 0]
    # One level of the five fingers at a time (base, middle, distal joints).
    for level in range(FINGER_JOINTS.shape[1]):
        j = FINGER_JOINTS[:, level]
        c = _CHILD[j]
        b_rest = rest21[c] - rest21[j]  # (5, 3)
        b_tgt = target[:, PUBLIC_TO_MANO21[c]] - target[:, PUBLIC_TO_MANO21[j]]
        b_loc = np.einsum("tfji,tfj->tfi", glob_parent, b_tgt)
        r = _swing(np.broadcast_to(b_rest, b_loc.shape), b_loc)
        rot[:, j] = r
        glob_parent = glob_parent @ r
    return rot


def _rotvec(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) rotation vectors (see :func:`.so3.rotvec`)."""
    return rotvec(R)


def fit_hand(model, target: np.ndarray, weights: Optional[np.ndarray] = None,
             config: FitConfig | None = None, betas_init: Optional[np.ndarray] = None,
             keypoints2d: Optional[np.ndarray] = None, K: Optional[np.ndarray] = None,
             confidence: Optional[np.ndarray] = None) -> HandFit:
    """Fit ``model`` (a HandModel) to ``target`` keypoints (and their image).

    target:  (T, 21, 3) metres, camera frame, public order (T >= 1, all frames used):
             the placed detector keypoints; with an image term only their
             wrist-relative shape and the starting translation are used.
    weights: (T, 21) >= 0 per-keypoint confidence of the 3D term, or None.
    betas_init: (nb,) start (and, with ``fit_shape=False``, the fixed shape).
    keypoints2d: (T, 21, 2) detector pixels and K (3, 3) intrinsics (principal
             point included): turn on the image term (``config.w_image > 0``);
             the 2D keypoints are then read in ``config.landmarks``' convention.
    confidence: (T,) or (T, 21) >= 0 weights of the image term (None: 1).
    """
    cfg = config or FitConfig()
    old = torch.get_num_threads()
    if cfg.device == "cpu" and cfg.cpu_threads:
        torch.set_num_threads(int(cfg.cpu_threads))
    try:
        # inference_mode, not no_grad: no version counters or view tracking, which is
        # ~20 % of the time of a 120-frame fit (thousands of small ops).
        with torch.inference_mode():
            image = None
            if keypoints2d is not None and K is not None and cfg.w_image > 0:
                beta = convention_for(cfg.landmarks)
                if beta is not None:
                    keypoints2d = to_model_points(keypoints2d, beta)
                conf = np.ones(len(target)) if confidence is None else confidence
                image = make_image_term(keypoints2d, K, conf, cfg.w_image, cfg.image_delta,
                                        model.v_template.dtype, torch.device(cfg.device))
            return _fit_hand(model, target, weights, cfg, betas_init, image)
    finally:
        torch.set_num_threads(old)


def _fit_hand(model, target: np.ndarray, weights: Optional[np.ndarray], cfg: FitConfig,
              betas_init: Optional[np.ndarray], image: Optional[ImageTerm]) -> HandFit:
    target = np.asarray(target, np.float64)
    T = target.shape[0]
    dev = torch.device(cfg.device)
    model = model.to(dev)
    dtype = model.v_template.dtype
    nb = model.num_betas
    w_np = np.ones((T, 21)) if weights is None else np.asarray(weights, np.float64)
    if image is not None and cfg.w_palm3d != 1.0:
        w_np = w_np.copy()
        w_np[:, PALM_3D_POINTS] *= cfg.w_palm3d

    t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=dev)  # noqa: E731
    eye = torch.eye(3, dtype=dtype, device=dev).expand(1, NUM_JOINTS, 3, 3)

    def rest_of(b: np.ndarray):
        out = model.forward_rotmat(eye, t(b[None]), return_vertices=False)
        return out.keypoints[0].cpu().numpy().astype(np.float64), out.joints[0, 0].cpu().numpy().astype(np.float64)

    b = np.zeros(nb)
    if betas_init is not None:  # a shorter vector (a file of a model with fewer directions): the rest zero
        init_b = np.asarray(betas_init, np.float64).reshape(-1)[:nb]
        b[: len(init_b)] = init_b
    rest_kp, rest_j0 = rest_of(b)
    w_betas = cfg.w_betas
    if image is not None:
        w_betas = cfg.w_betas_image
        if cfg.normalise_size:
            target = _at_model_size(target, rest_kp)
    init = initial_pose(rest_kp, target)
    size0 = _skeleton_size(rest_kp)

    def hold(b: np.ndarray):
        """The size constraint of the shape solves at betas b (see FitConfig.hold_size)."""
        if image is None or not (cfg.hold_size and cfg.normalise_size):
            return None
        size, grad = size_and_gradient(model, b)
        return grad, size - size0

    if cfg.fit_shape:
        # With the rotations fixed, keypoints are affine in betas: solve for them.
        # (Without this the pose iterations absorb the wrong shape: on noise-free
        # targets with betas (0.8, -0.6) the fit ended at (0.45, -0.28).  Redoing
        # the swing start with the new shape gave the same optimum, slower.)  This
        # is only the starting shape (it is re-solved on all frames after the pose
        # iterations), so long sequences use evenly spaced frames for it.
        sub = np.unique(np.linspace(0, T - 1, min(T, SHAPE_START_FRAMES)).round().astype(np.int64))
        out = model.forward_rotmat(t(init[sub]), t(b[None]), return_vertices=False)
        b, _ = solve_betas(model, out.global_rotmats, out.keypoints, t(b), target[sub], w_np[sub], w_betas,
                           hold(b))
        rest_kp, rest_j0 = rest_of(b)

    lo, hi = joint_limit_boxes()
    frames = anatomical_frames(rest_kp[PUBLIC_TO_MANO21], model.side)
    tgt, w = t(target), t(w_np)

    def problem(b: np.ndarray) -> PoseProblem:
        return PoseProblem(model, t(b), tgt, w, t(frames), t(lo), t(hi), cfg.w_limits,
                           image=image, relative3d=image is not None)

    prob = problem(b)
    R0 = t(init)
    transl0 = t(target[:, 0] - rest_j0) if image is None else _place_in_image(model, R0, t(b), image)
    state = levenberg_marquardt(prob, R0, transl0, cfg.iterations)
    for _ in range(cfg.shape_rounds if cfg.fit_shape and cfg.shape_iterations > 0 else 0):
        # Re-solve the shape at the fitted rotations (translation follows), then polish.
        if image is None:
            b, dt = solve_betas(model, state.glob, state.keypoints / 100.0, t(b), target, w_np, w_betas)
            dt = t(dt)
        else:
            b, dt = solve_betas_image(model, state, t(b), prob.sw, state.img_rows, state.img_res, w_betas, hold(b))
        prob = problem(b)
        state = levenberg_marquardt(prob, state.R, state.transl + dt, cfg.shape_iterations)

    return _result(state, b, target, image)


def _result(state, b: np.ndarray, target: np.ndarray, image: Optional[ImageTerm]) -> HandFit:
    """The :class:`HandFit` of the final LM state (target (T, 21, 3) metres as fitted)."""
    # Orthonormal rotations out (the updates are products of float32 matrices,
    # off by ~1e-7; the keypoints of the last evaluation stand).
    rot = rot6d_to_matrix(matrix_to_rot6d(state.R)).cpu().numpy()
    kp = (state.keypoints / 100.0).cpu().numpy()
    d = kp - target
    if image is not None:  # the 3D term was wrist-relative; the image placed the hand
        d = d - d[:, :1]
    err = np.linalg.norm(d, axis=-1).mean(-1)
    root = (state.joints[:, 0] / 100.0).cpu().numpy()
    quats = quat_sign_continuity(matrix_to_quat(rot))
    reproj = None
    if image is not None:
        reproj = torch.linalg.norm(project(state.keypoints, image.K) - image.uv, dim=-1).mean(-1).cpu().numpy()
    return HandFit(
        rotmats=rot.astype(np.float32),
        quats=quats.astype(np.float32),
        root=root.astype(np.float32),
        keypoints3d=kp.astype(np.float32),
        betas=np.asarray(b, np.float32),
        error=err.astype(np.float32),
        reproj_px=None if reproj is None else reproj.astype(np.float32),
    )


def _skeleton_size(kp: np.ndarray) -> np.ndarray:
    """(..., 21, 3) -> (...,) summed length of the 20 bones of the public skeleton."""
    return np.linalg.norm(kp[..., 1:, :] - kp[..., PUBLIC_PARENTS[1:], :], axis=-1).sum(-1)


def _at_model_size(target: np.ndarray, rest_kp: np.ndarray) -> np.ndarray:
    """Targets (T, 21, 3) scaled about their wrist to the model's skeleton size (rest_kp (21, 3)).

    The detector's world landmarks have a size of their own that varies from frame
    to frame (depth foreshortened: on RHD's rendered stills MediaPipe's wrist to
    middle MCP was 56-96 mm against 91-95 mm labelled); with the image term the
    hand's size sets its depth, so the size comes from the model (its mean hand and
    the shape prior) and only the proportions from the detector."""
    s = _skeleton_size(rest_kp) / np.maximum(_skeleton_size(target), 1e-9)
    return target[:, :1] + (target - target[:, :1]) * s[:, None, None]


def _place_in_image(model, R: torch.Tensor, betas: torch.Tensor, image: ImageTerm) -> torch.Tensor:
    """Translation (T, 3) metres that puts the model at rotations R (T, 16, 3, 3)
    onto the image keypoints (robust translation-only PnP): the depth start of the
    fit.  A start from the placement would be at the detector's idea of the hand's
    size; LM is slow to move the depth (the image sees it only through scale)."""
    X = model.forward_rotmat(R, betas.reshape(1, -1), return_vertices=False).keypoints
    tr, _ = solve_translation(X.double().cpu().numpy(), image.uv.double().cpu().numpy(),
                              image.K.double().cpu().numpy(), image.weight.double().cpu().numpy())
    return torch.as_tensor(tr, dtype=R.dtype, device=R.device)


def pose_keypoints(model, quats: np.ndarray, root: np.ndarray, betas: np.ndarray,
                   present: Optional[np.ndarray] = None, device: str = "cpu") -> np.ndarray:
    """Posed keypoints from a HandMotion-style pose.

    quats: (T, 16, 4) w-x-y-z; root: (T, 3) wrist in the camera frame; betas: (B,).
    Returns (T, 21, 3) float32 camera-frame keypoints, public order (zeros where
    ``present`` is False).
    """
    from lagc_hand_blender.core.rotations import quat_to_matrix

    T = len(quats)
    out = np.zeros((T, 21, 3), np.float32)
    idx = np.arange(T) if present is None else np.flatnonzero(present)
    if idx.size == 0:
        return out
    dtype = model.v_template.dtype
    dev = model.v_template.device
    with torch.no_grad():
        R = torch.as_tensor(quat_to_matrix(np.asarray(quats)[idx]), dtype=dtype, device=dev)
        b = torch.as_tensor(np.asarray(betas)[None], dtype=dtype, device=dev)
        rest_j0 = model.rest_joints(b)[0, 0]
        transl = torch.as_tensor(np.asarray(root)[idx], dtype=dtype, device=dev) - rest_j0
        kp = model.forward_rotmat(R, b, transl, return_vertices=False).keypoints
    out[idx] = kp.cpu().numpy()
    return out
