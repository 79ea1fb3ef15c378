"""The reconstruction pipeline: decode -> engine -> tracking -> placement -> fit -> cleanup -> HandMotion.

:func:`run_pipeline` is what :func:`lagc_hand.api.reconstruct` calls; every
front end goes through it.  Each stage lives in its own package; this module
only chains them, reports progress and collects the summary.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from lagc_hand.options import ReconstructOptions
from lagc_hand.progress import CancelCheck, Progress, ProgressCallback, ReconstructResult
from lagc_hand.engines import create_engine
from lagc_hand.engines.parallel import detect
from lagc_hand.errors import Cancelled, InputError
from lagc_hand.placement import intrinsics_matrix, place_hand
from lagc_hand.tracking import track_hands
from lagc_hand.video import FrameRange, open_video
from lagc_hand_blender.core.handmotion import HandMotion, HandTrackMotion, HandVariant, absent_hand
from lagc_hand_blender.core.skeleton import SIDES

#: Use the interaction side evidence (3D chirality) in tracking unless told otherwise.
INTERACTION_DEFAULT = True
#: The joint two-hand fit (interpenetration + contact terms).  Off by default:
#: on the rendered interacting clips it trims penetration only slightly (pray
#: 1.6 -> 1.5 mm, occlude 0.9 -> 0.0 mm) for 30-50 % less end-to-end speed
#: (bench/RESULTS.md, "ours" vs "ours+2fit").
TWO_HAND_FIT_DEFAULT = False
#: Report detect progress at most this often (seconds), plus the first and last frame.
PROGRESS_INTERVAL_S = 0.2


@dataclass
class _Timer:
    stages: dict

    def add(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds


_MODEL_CACHE: dict[tuple[str, str, str], Any] = {}


def load_hand_model(hand_model: str, side: str, device: str = "cpu"):
    """The torch HandModel for ``side`` (cached: the server runs many jobs)."""
    key = (str(hand_model), side, device)
    if key not in _MODEL_CACHE:
        from lagc_hand.handmodel import HandModel, load_hand_model_params

        params = load_hand_model_params(hand_model, side)
        _MODEL_CACHE[key] = (params, HandModel(params).to(device).eval())
    return _MODEL_CACHE[key]


def _device(name: str) -> str:
    if name in ("", "auto", None):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda', not {name!r}")
    return name


def _check_options(o: ReconstructOptions) -> None:
    if not (np.isfinite(o.smoothing) and 0 <= o.smoothing <= 10):
        raise InputError(f"smoothing must be between 0 and 10, got {o.smoothing}")
    if o.stride < 1:
        raise InputError(f"stride must be 1 or more, got {o.stride}")


def run_pipeline(
    video: Path,
    options: ReconstructOptions,
    progress: Optional[ProgressCallback] = None,
    should_cancel: Optional[CancelCheck] = None,
    fit_config=None,
    intermediates: Optional[dict] = None,
    interaction: Optional[bool] = None,
    two_hand_fit: Optional[bool] = None,
) -> ReconstructResult:
    """Reconstruct both hands of ``video``; see :func:`lagc_hand.api.reconstruct`.

    fit_config: a :class:`lagc_hand.fitting.FitConfig` to override the default.
    interaction: two-hand stages of :mod:`lagc_hand.interaction` -- side evidence
    from 3D chirality in tracking, and the joint two-hand fit (interpenetration
    and contact terms); None = :data:`INTERACTION_DEFAULT`.
    two_hand_fit: the joint two-hand fit (needs ``interaction``); None =
    :data:`TWO_HAND_FIT_DEFAULT`.
    intermediates: if a dict is given, it receives ``tracking``
    (:class:`~lagc_hand.tracking.TrackingResult`) and ``placements``
    (side -> :class:`~lagc_hand.placement.Placement`), for benchmarks and debugging.
    """
    report = progress or (lambda p: None)
    cancelled = should_cancel or (lambda: False)
    _check_options(options)
    timer = _Timer({})
    t_start = time.perf_counter()

    # ---- decode + detect
    report(Progress("decode", message=f"opening {Path(video).name}"))
    src = open_video(video)
    frange = FrameRange(options.frame_start, options.frame_end, options.stride)
    engine_kw: dict[str, Any] = {}
    if options.engine != "mediapipe":
        engine_kw = {"checkpoint": options.checkpoint, "device": options.device}
    elif src.info.kind == "images" and src.info.frame_count == 1:
        engine_kw = {"still": True}  # one photo: search beyond the palm detector (engines/candidates.py)
    detected = detect(
        src, frange, lambda: create_engine(options.engine, **engine_kw),
        # The network engine already spreads one batch over all cores (and a GPU): one chunk.
        workers=options.detect_workers or (1 if options.engine == "lagc" else 0),
        on_progress=lambda done, total, fps: report(Progress("detect", done, total, fps)),
        should_cancel=cancelled,
    )
    observations = detected.observations
    n_frames = len(observations)
    # Stage seconds are wall-clock shares: with k chunks in parallel the engine's
    # share is its summed time / k, and decoding (plus thread overhead) the rest.
    timer.add("engine", detected.engine_seconds / detected.workers)
    timer.add("decode", max(0.0, detected.wall_seconds - detected.engine_seconds / detected.workers))
    if cancelled():
        raise Cancelled("reconstruction cancelled by the user")

    # ---- track
    report(Progress("track", n_frames, n_frames))
    t0 = time.perf_counter()
    use_interaction = INTERACTION_DEFAULT if interaction is None else bool(interaction)
    tracker_cfg = None
    if use_interaction:
        from lagc_hand.tracking.sides import interaction_tracker_config

        tracker_cfg = interaction_tracker_config(src.info.width)
    tracking = track_hands(observations, tracker_cfg)
    timer.add("track", time.perf_counter() - t0)

    # ---- place
    report(Progress("place", n_frames, n_frames))
    t0 = time.perf_counter()
    W, H = src.info.width, src.info.height
    K = intrinsics_matrix(W, H, options.focal_mm, options.fov_deg)
    placements = {
        s: place_hand(tracking.tracks[s].keypoints3d, tracking.tracks[s].keypoints2d, tracking.tracks[s].present, K)
        for s in SIDES
    }
    timer.add("place", time.perf_counter() - t0)
    if intermediates is not None:
        intermediates.update(tracking=tracking, placements=placements, intrinsics=K)

    # ---- fit + cleanup, per hand
    from lagc_hand.cleanup import CleanConfig, clean_hand
    from lagc_hand.fitting import FitConfig, fit_hand, pose_keypoints

    device = _device(options.device)
    fps = src.info.fps / options.stride
    hands: dict[str, HandTrackMotion] = {}
    fit_errors: dict[str, Optional[float]] = {}
    faces = skin = None
    model_id = None
    # The fit and cleanup tensors are tiny ((T, 16, 3, 3) blocks): one torch thread is
    # 4-15x faster than two when the engine's threads or other jobs share the cores.
    with _torch_threads(1 if device == "cpu" else 0):
        pre_fits: dict = {}
        use_two_hand_fit = use_interaction and (TWO_HAND_FIT_DEFAULT if two_hand_fit is None else bool(two_hand_fit))
        if use_two_hand_fit and all(tracking.tracks[s].present.any() for s in SIDES):
            from lagc_hand.fitting.two_hand import TwoHandConfig, fit_both_hands

            report(Progress("fit", n_frames, n_frames, message="both hands"))
            t0 = time.perf_counter()
            pre_fits = fit_both_hands({s: load_hand_model(options.hand_model, s, device)[1] for s in SIDES},
                                      {s: placements[s].keypoints3d for s in SIDES},
                                      {s: tracking.tracks[s].present for s in SIDES},
                                      fit_config or FitConfig(device=device), TwoHandConfig(device=device))
            timer.add("fit", time.perf_counter() - t0)
        for side in SIDES:
            if cancelled():
                raise Cancelled("reconstruction cancelled by the user")
            t0 = time.perf_counter()
            params, model = load_hand_model(options.hand_model, side, device)
            timer.add("model", time.perf_counter() - t0)
            model_id = params.model_id
            if faces is None:
                faces, skin = params.f.astype(np.int32), params.weights.astype(np.float32)
            tr = tracking.tracks[side]
            idx = np.flatnonzero(tr.present)
            if idx.size == 0:
                rest_v = model.shaped_vertices()[0].detach().cpu().numpy()
                rest_j = model.rest_joints()[0].detach().cpu().numpy()
                hands[side] = absent_hand(side, n_frames, rest_v, rest_j, params.tip_vertex_ids,
                                          np.zeros(model.num_betas))
                fit_errors[side] = None
                continue
            report(Progress("fit", n_frames, n_frames, message=f"{side} hand, {idx.size} frames"))
            t0 = time.perf_counter()
            cfg = fit_config or FitConfig(device=device)
            fit = pre_fits[side] if side in pre_fits else fit_hand(model, placements[side].keypoints3d[idx],
                                                                   weights=None, config=cfg)
            timer.add("fit", time.perf_counter() - t0)
            fit_errors[side] = float(fit.error.mean() * 1000.0)

            report(Progress("cleanup", n_frames, n_frames, message=f"{side} hand"))
            t0 = time.perf_counter()
            T = n_frames
            quats = np.zeros((T, 16, 4), np.float32)
            quats[..., 0] = 1.0
            root = np.zeros((T, 3), np.float32)
            quats[idx] = fit.quats
            root[idx] = fit.root
            cleaned = clean_hand(tr.present, tr.confidence, quats, root, tr.keypoints2d, fps,
                                 CleanConfig(strength=float(options.smoothing)))
            present = cleaned.present
            raw_kp = pose_keypoints(model, cleaned.raw_quats, cleaned.raw_root, fit.betas, present, device)
            raw_kp[idx] = fit.keypoints3d  # observed frames: exactly the fitted keypoints
            clean_kp = pose_keypoints(model, cleaned.quats, cleaned.root, fit.betas, present, device)
            # Absent frames: identity rotation, last known root, zero keypoints (HandMotion convention).
            raw_root, clean_root = _hold_last(cleaned.raw_root, present), _hold_last(cleaned.root, present)
            raw_q, clean_q = cleaned.raw_quats.copy(), cleaned.quats.copy()
            raw_q[~present] = clean_q[~present] = np.array([1, 0, 0, 0], np.float32)
            kp2d = cleaned.keypoints2d.copy()
            kp2d[~present] = 0.0
            betas_t = fit.betas
            import torch

            with torch.no_grad():
                b = torch.as_tensor(betas_t[None], dtype=model.v_template.dtype, device=model.v_template.device)
                rest_v = model.shaped_vertices(b)[0].cpu().numpy()
                rest_j = model.rest_joints(b)[0].cpu().numpy()
            hands[side] = HandTrackMotion(
                side=side,
                present=present,
                confidence=np.where(present, cleaned.confidence, 0).astype(np.float32),
                keypoints2d=kp2d.astype(np.float32),
                betas=betas_t.astype(np.float32),
                rest_vertices=rest_v.astype(np.float32),
                rest_joints=rest_j.astype(np.float32),
                tip_vertex_ids=np.asarray(params.tip_vertex_ids, np.int64),
                raw=HandVariant(raw_q.astype(np.float32), raw_root.astype(np.float32), raw_kp.astype(np.float32)),
                clean=HandVariant(clean_q.astype(np.float32), clean_root.astype(np.float32),
                                  clean_kp.astype(np.float32)),
            )
            timer.add("cleanup", time.perf_counter() - t0)

    report(Progress("write", n_frames, n_frames))
    total_s = time.perf_counter() - t_start
    summary = _summary(n_frames, tracking, hands, fit_errors, timer.stages, total_s, src.info, options, K, detected)
    motion = HandMotion(
        fps=float(fps),
        frames=np.array([o.index for o in observations], np.int64),
        times=np.array([o.time for o in observations], np.float64),
        image_size=(int(W), int(H)),
        intrinsics=K,
        faces=faces,
        skin_weights=skin,
        hand_model=str(model_id),
        hands=hands,
        meta={"source": str(video), "engine": options.engine, "options": options.to_dict(), "summary": summary},
    ).validate()
    report(Progress("done", n_frames, n_frames, n_frames / max(total_s, 1e-9), message=summary["message"]))
    return ReconstructResult(motion=motion, summary=summary)


@contextmanager
def _torch_threads(n: int):
    """Run the block with ``n`` torch CPU threads (0 = leave as is), then restore."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _hold_last(root: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Absent frames take the last known root (or the first one before any)."""
    out = np.asarray(root, np.float32).copy()
    idx = np.flatnonzero(present)
    if idx.size == 0:
        return np.zeros_like(out)
    last = out[idx[0]]
    for t in range(len(out)):
        if present[t]:
            last = out[t]
        else:
            out[t] = last
    return out


def _summary(n, tracking, hands, fit_errors, stages, total_s, info, options, K, detected) -> dict[str, Any]:
    pct = lambda m: round(100.0 * float(np.mean(m)), 1) if n else 0.0  # noqa: E731
    left, right = hands["left"].present, hands["right"].present
    stages = {k: round(v, 4) for k, v in stages.items()}
    # Our share: tracking, placement, fitting, cleanup (not decode, the engine or one-off model loading).
    ours = sum(v for k, v in stages.items() if k not in ("engine", "decode", "model"))
    any_found = bool(np.any(left) or np.any(right))
    if not any_found:
        message = f"no hands found in {n} frames"
    else:
        message = (f"{n} frames: left hand in {pct(left)}%, right hand in {pct(right)}% of frames, "
                   f"{tracking.identity_switches} identity switches")
    return {
        "frames": n,
        "source_fps": info.fps,
        "image_size": [info.width, info.height],
        "hfov_deg": round(float(np.degrees(2 * np.arctan(0.5 * info.width / K[0, 0]))), 3),
        "hands_found_pct": {"left": pct(left), "right": pct(right), "any": pct(left | right),
                            "both": pct(left & right)},
        "hands_found": any_found,
        "identity_switches": tracking.identity_switches,
        "label_flips_fixed": tracking.label_flips_fixed,
        # Frames filled in while a hand was hidden behind the other one (tracking/occlusion.py);
        # they count as present above, with low confidence.
        "frames_bridged": {s: int(tracking.tracks[s].bridged.sum()) for s in SIDES},
        # Frames where the engine followed a hidden hand by optical flow (engines/follow.py);
        # present, with a lower confidence than a detection.
        "frames_followed": {s: int(tracking.tracks[s].followed.sum()) for s in SIDES},
        "detections_dropped": tracking.dropped,
        "fit_error_mm": fit_errors,
        "seconds": stages,
        "total_seconds": round(total_s, 4),
        "fps": round(n / max(total_s, 1e-9), 2),
        # One engine stream's throughput (frames / time inside the engine, summed over chunks).
        "engine_fps": round(n / max(detected.engine_seconds, 1e-9), 2),
        "detect_fps": round(n / max(detected.wall_seconds, 1e-9), 2),
        "detect_workers": detected.workers,
        "detect_chunks": detected.chunks,
        "our_stages_share": round(ours / max(total_s, 1e-9), 4),
        "engine": options.engine,
        "message": message,
    }
