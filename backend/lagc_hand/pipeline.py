"""The reconstruction pipeline: decode -> engine -> tracking -> placement -> fit -> cleanup -> HandMotion.

:func:`run_pipeline` is what :func:`lagc_hand.api.reconstruct` calls; every
front end goes through it.  Each stage lives in its own package; this module
only chains them -- one named call per stage (:func:`_decode_and_detect`,
:func:`_track`, :func:`_camera`, :func:`_refine`, :func:`_place`, :func:`_fit_and_clean` with the fit itself in
:func:`_fit_one_hand` and the motion assembler in :mod:`lagc_hand.fitting.motion`,
:func:`_motion`) -- reports progress and collects the summary.  torch is
imported at module level: every caller imports this module only when it runs
a reconstruction (the server's worker process preloads it on purpose).
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from lagc_hand.cleanup import CleanConfig, ImageAlign, clean_hand
from lagc_hand.engines import create_engine
from lagc_hand.engines.parallel import DetectResult, detect
from lagc_hand.errors import Cancelled, InputError
from lagc_hand.fitting import FitConfig, HandFit, fit_hand, pose_keypoints
from lagc_hand.fitting.hidden import place_hidden
from lagc_hand.fitting.landmarks import convention_for, to_detector_points
from lagc_hand.fitting.motion import hand_track_motion, unseen_hand_motion
from lagc_hand.fitting.two_hand import TwoHandConfig, fit_both_hands
from lagc_hand.handmodel import HandModel
from lagc_hand.handmodel.cache import load_hand_model  # noqa: F401  (also the benches' import)
from lagc_hand.options import ReconstructOptions
from lagc_hand.placement import CameraModel, Placement, place_hand, resolve_camera, undistort_keypoints
from lagc_hand.progress import CancelCheck, Progress, ProgressCallback, ReconstructResult
from lagc_hand.refine import apply_refinement, refine_tracking
from lagc_hand.tracking import TrackingResult, track_hands
from lagc_hand.tracking.sides import interaction_tracker_config
from lagc_hand.video import FrameRange, VideoSource, open_video
from lagc_hand_blender.core.camera import horizontal_fov_deg
from lagc_hand_blender.core.handmotion import HandMotion, HandTrackMotion
from lagc_hand_blender.core.skeleton import SIDES

#: Use the interaction side evidence (3D chirality) in tracking unless told otherwise.
INTERACTION_DEFAULT = True
#: The joint two-hand fit (interpenetration + contact terms).  Off by default:
#: on the rendered interacting clips it trims penetration only slightly (pray
#: 1.6 -> 1.5 mm, occlude 0.9 -> 0.0 mm) for 30-50 % less end-to-end speed
#: (bench/RESULTS.md, "ours" vs "ours+2fit").
TWO_HAND_FIT_DEFAULT = False
#: The two-hand graph refiner between tracking and placement (lagc_hand.refine).
#: Off by default: see bench/RESULTS.md, "Two-hand refiner", for the numbers.
REFINER_DEFAULT = False


@dataclass
class _Run:
    """What every stage of one run shares: progress, cancel, stage seconds."""

    report: ProgressCallback
    cancelled: CancelCheck
    stages: dict

    def add(self, name: str, seconds: float) -> None:
        self.stages[name] = self.stages.get(name, 0.0) + seconds

    def check_cancel(self) -> None:
        if self.cancelled():
            raise Cancelled("reconstruction cancelled by the user")


def _device(name: str) -> str:
    if name in ("", "auto", None):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise InputError(f"device must be 'auto', 'cpu' or 'cuda', not {name!r}")
    return name


def run_pipeline(
    video: Path,
    options: ReconstructOptions,
    progress: Optional[ProgressCallback] = None,
    should_cancel: Optional[CancelCheck] = None,
    fit_config=None,
    intermediates: Optional[dict] = None,
    interaction: Optional[bool] = None,
    two_hand_fit: Optional[bool] = None,
    refiner: Optional[bool] = None,
) -> ReconstructResult:
    """Reconstruct both hands of ``video``; see :func:`lagc_hand.api.reconstruct`.

    fit_config: a :class:`lagc_hand.fitting.FitConfig` to override the default.
    interaction: the two-hand stages -- side evidence from 3D chirality in
    tracking, and the joint two-hand fit (interpenetration and contact terms);
    None = :data:`INTERACTION_DEFAULT`.
    two_hand_fit: the joint two-hand fit (needs ``interaction``); None =
    :data:`TWO_HAND_FIT_DEFAULT`.
    refiner: the two-hand graph refiner (:mod:`lagc_hand.refine`) on the tracked
    3D keypoints before placement; None = :data:`REFINER_DEFAULT`.
    intermediates: if a dict is given, it receives ``observations`` (the engine's
    per-frame :class:`~lagc_hand.engines.FrameObservations`, before tracking),
    ``tracking`` (:class:`~lagc_hand.tracking.TrackingResult`), ``placements``
    (side -> :class:`~lagc_hand.placement.Placement`), ``intrinsics`` (3, 3) and
    ``camera`` (:class:`~lagc_hand.placement.CameraModel`), for benchmarks and
    debugging; it changes nothing else.
    """
    options.validate()
    run = _Run(progress or (lambda p: None), should_cancel or (lambda: False), {})
    t_start = time.perf_counter()
    src, detected = _decode_and_detect(Path(video), options, run)
    use_interaction = INTERACTION_DEFAULT if interaction is None else bool(interaction)
    tracking = _track(detected, src.info.width if use_interaction else None, run)
    cam = _camera(tracking, src, options, run)
    if REFINER_DEFAULT if refiner is None else bool(refiner):
        tracking = _refine(tracking, cam.K, run)
    placements = _place(tracking, cam.K, run)
    if intermediates is not None:
        intermediates.update(observations=detected.observations, tracking=tracking, placements=placements,
                             intrinsics=cam.K, camera=cam)
    use_two_hand_fit = use_interaction and (TWO_HAND_FIT_DEFAULT if two_hand_fit is None else bool(two_hand_fit))
    fps = src.info.fps / options.stride
    hands, fit_errors, model_info = _fit_and_clean(tracking, placements, cam.K, options, fit_config,
                                                   use_two_hand_fit, fps, run)
    n_frames = len(detected.observations)
    run.report(Progress("write", n_frames, n_frames))
    total_s = time.perf_counter() - t_start
    summary = _summary(n_frames, tracking, hands, fit_errors, run.stages, total_s, src.info, options, cam.K,
                       detected)
    motion = _motion(video, detected, src, fps, cam, hands, model_info, options, summary)
    run.report(Progress("done", n_frames, n_frames, n_frames / max(total_s, 1e-9), message=summary["message"]))
    return ReconstructResult(motion=motion, summary=summary)


def _decode_and_detect(video: Path, options: ReconstructOptions, run: _Run) -> tuple[VideoSource, DetectResult]:
    """Open the video and run the engine over the frame range (in parallel chunks)."""
    run.report(Progress("decode", message=f"opening {video.name}"))
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
        workers=options.detect_workers, chunked=options.engine != "lagc",
        on_progress=lambda done, total, fps: run.report(Progress("detect", done, total, fps)),
        should_cancel=run.cancelled,
    )
    # Stage seconds are wall-clock shares: with k chunks in parallel the engine's
    # share is its summed time / k, and decoding (plus thread overhead) the rest.
    run.add("engine", detected.engine_seconds / detected.workers)
    run.add("decode", max(0.0, detected.wall_seconds - detected.engine_seconds / detected.workers))
    run.check_cancel()
    return src, detected


def _track(detected: DetectResult, interaction_width: Optional[int], run: _Run) -> TrackingResult:
    """LEFT/RIGHT identities over time; with ``interaction_width`` (the image width)
    the 3D-chirality side evidence is used."""
    n_frames = len(detected.observations)
    run.report(Progress("track", n_frames, n_frames))
    t0 = time.perf_counter()
    tracker_cfg = None if interaction_width is None else interaction_tracker_config(interaction_width)
    tracking = track_hands(detected.observations, tracker_cfg)
    run.add("track", time.perf_counter() - t0)
    return tracking


def _camera(tracking: TrackingResult, src: VideoSource, options: ReconstructOptions, run: _Run) -> CameraModel:
    """The camera from the options; the detected keypoints undistorted to its pinhole
    K (in ``tracking``, so the file stores them)."""
    n = len(tracking.tracks[SIDES[0]].present)
    run.report(Progress("place", n, n))
    t0 = time.perf_counter()
    cam = resolve_camera(src.info.width, src.info.height, options.focal_mm, options.fov_deg, options.intrinsics,
                         options.calibration)
    for s in SIDES:
        tr = tracking.tracks[s]
        tr.keypoints2d = undistort_keypoints(tr.keypoints2d, cam, tr.present)
    run.add("place", time.perf_counter() - t0)
    return cam


def _place(tracking: TrackingResult, K: np.ndarray, run: _Run) -> dict[str, Placement]:
    """Each hand's root in the camera frame of ``K`` (3, 3)."""
    t0 = time.perf_counter()
    placements = {s: place_hand(tracking.tracks[s].keypoints3d, tracking.tracks[s].keypoints2d,
                                tracking.tracks[s].present, K) for s in SIDES}
    run.add("place", time.perf_counter() - t0)
    return placements


def _refine(tracking: TrackingResult, K: np.ndarray, run: _Run) -> TrackingResult:
    """The refine stage: refined 3D keypoints in the tracks' frames where both hands are present."""
    t0 = time.perf_counter()
    with _torch_threads(1):
        tracking = apply_refinement(tracking, refine_tracking(tracking, K))
    run.add("refine", time.perf_counter() - t0)
    return tracking


def _fit_and_clean(tracking: TrackingResult, placements: dict[str, Placement], K: np.ndarray,
                   options: ReconstructOptions, fit_config, two_hand: bool, fps: float, run: _Run):
    """Fit and clean each hand; returns ``(hands, fit_errors_mm, (model_id, faces, skin))``."""
    n_frames = len(tracking.tracks[SIDES[0]].present)
    device = _device(options.device)
    cfg = fit_config or FitConfig(device=device, landmarks=options.engine)
    hands: dict[str, HandTrackMotion] = {}
    fit_errors: dict[str, Optional[float]] = {}
    # The fit and cleanup tensors are tiny ((T, 16, 3, 3) blocks): one torch thread is
    # 4-15x faster than two when the engine's threads or other jobs share the cores.
    with _torch_threads(1 if device == "cpu" else 0):
        pre_fits: dict[str, HandFit] = {}
        if two_hand and all(tracking.tracks[s].present.any() for s in SIDES):
            run.report(Progress("fit", n_frames, n_frames, message="both hands"))
            t0 = time.perf_counter()
            pre_fits = fit_both_hands({s: load_hand_model(options.hand_model, s, device)[1] for s in SIDES},
                                      {s: placements[s].keypoints3d for s in SIDES},
                                      {s: tracking.tracks[s].present for s in SIDES},
                                      cfg, TwoHandConfig(device=device),
                                      keypoints2d={s: tracking.tracks[s].keypoints2d for s in SIDES}, K=K,
                                      confidence={s: tracking.tracks[s].confidence for s in SIDES})
            run.add("fit", time.perf_counter() - t0)
        for side in SIDES:
            run.check_cancel()
            t0 = time.perf_counter()
            params, model = load_hand_model(options.hand_model, side, device)
            run.add("model", time.perf_counter() - t0)
            tr = tracking.tracks[side]
            idx = np.flatnonzero(tr.present)
            if idx.size == 0:
                hands[side], fit_errors[side] = unseen_hand_motion(side, n_frames, model, params), None
                continue
            run.report(Progress("fit", n_frames, n_frames, message=f"{side} hand, {idx.size} frames"))
            t0 = time.perf_counter()
            fit = pre_fits[side] if side in pre_fits else _fit_one_hand(model, placements[side], tr, idx, K, cfg)
            fit = place_hidden(fit, idx, tr.bridged[idx])
            run.add("fit", time.perf_counter() - t0)
            fit_errors[side] = float(fit.error.mean() * 1000.0)
            run.report(Progress("cleanup", n_frames, n_frames, message=f"{side} hand"))
            t0 = time.perf_counter()
            hands[side] = _clean_and_assemble(side, model, params, fit, idx, tr, K, cfg, fps, options.smoothing,
                                              device)
            run.add("cleanup", time.perf_counter() - t0)
    # The mesh of the first side, the model id of the last (as the file has always held).
    first, last = (load_hand_model(options.hand_model, s, device)[0] for s in (SIDES[0], SIDES[-1]))
    return hands, fit_errors, (last.model_id, first.f.astype(np.int32), first.weights.astype(np.float32))


def _fit_one_hand(model: HandModel, placement: Placement, tr, idx: np.ndarray, K: np.ndarray,
                  cfg: FitConfig) -> HandFit:
    """The fit of one hand's observed frames ``idx``: the detector's 2D keypoints through
    ``K`` (3, 3) (principal point included) place the hand in the image; the placed 3D
    keypoints give its pose and proportions."""
    return fit_hand(model, placement.keypoints3d[idx], weights=None, config=cfg,
                    keypoints2d=tr.keypoints2d[idx], K=K, confidence=tr.confidence[idx])


def _clean_and_assemble(side: str, model: HandModel, params, fit: HandFit, idx: np.ndarray, tr, K: np.ndarray,
                        cfg: FitConfig, fps: float, smoothing: float, device: str) -> HandTrackMotion:
    """Clean one fitted hand over all frames and assemble its motion.  The cleaned pose
    is put back onto the detector's 2D keypoints (:class:`ImageAlign`) unless the fit
    itself ignores the image (``cfg.w_image`` 0: the fit and cleanup before issue 13)."""
    T = len(tr.present)
    quats = np.zeros((T, 16, 4), np.float32)
    quats[..., 0] = 1.0
    root = np.zeros((T, 3), np.float32)
    quats[idx] = fit.quats
    root[idx] = fit.root
    # (the cleaned pose goes onto the detector's landmarks as the fit read them: the
    # model's keypoints moved to where the detector puts its landmarks)
    beta = convention_for(cfg.landmarks)
    align = None if cfg.w_image <= 0 else ImageAlign(
        K, lambda q, r, m=model, b=fit.betas: _as_landmarks(pose_keypoints(m, q, r, b, None, device), beta),
        hidden=tr.bridged)
    cleaned = clean_hand(tr.present, tr.confidence, quats, root, tr.keypoints2d, fps,
                         CleanConfig(strength=float(smoothing)), align=align)
    return hand_track_motion(side, model, params, fit, idx, cleaned, device)


def _as_landmarks(kp: np.ndarray, beta: Optional[np.ndarray]) -> np.ndarray:
    """Model keypoints (N, 21, 3) metres -> the detector's landmarks on that hand (see fitting.landmarks)."""
    return kp if beta is None else to_detector_points(kp, beta)


def _motion(video, detected: DetectResult, src: VideoSource, fps: float, cam: CameraModel, hands: dict,
            model_info: tuple, options: ReconstructOptions, summary: dict) -> HandMotion:
    """The HandMotion of the run (camera K and distortion recorded)."""
    model_id, faces, skin = model_info
    observations = detected.observations
    return HandMotion(
        fps=float(fps),
        frames=np.array([o.index for o in observations], np.int64),
        times=np.array([o.time for o in observations], np.float64),
        image_size=(int(src.info.width), int(src.info.height)),
        intrinsics=cam.K,
        faces=faces,
        skin_weights=skin,
        hand_model=str(model_id),
        hands=hands,
        meta={"source": str(video), "engine": options.engine, "options": options.to_dict(),
              "camera": cam.describe(), "summary": summary},
    ).validate()


@contextmanager
def _torch_threads(n: int):
    """Run the block with ``n`` torch CPU threads (0 = leave as is), then restore."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


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
        "hfov_deg": round(horizontal_fov_deg(K, info.width), 3),
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
