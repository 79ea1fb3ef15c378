"""The refine stage: both tracked hands through the trained two-hand graph
refiner (:mod:`lagc_hand.net.refiner`), between tracking and placement.

Data flow: :class:`~lagc_hand.tracking.TrackingResult` + intrinsics K ->
:func:`refiner_input` (:class:`~lagc_hand.net.refiner.features.RefinerInput`,
per frame) -> :func:`refine_tracking` (:class:`RefinedHands`) ->
:func:`apply_refinement` (a new TrackingResult whose present frames carry the
refined 3D keypoints; 2D keypoints, presence and flags are untouched, so
placement keeps the detector's 2D alignment).

Off by default in the pipeline (``refiner`` option): see bench/RESULTS.md,
"Two-hand refiner", for the numbers that decide it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lagc_hand_blender.core.skeleton import SIDES

#: Shipped weights, trained by ``lagc-hand train --config configs/refiner.yaml``.
WEIGHTS_NAME = Path("refiner") / "refiner.pt"
_CACHE: dict = {}


@dataclass
class RefinedHands:
    """Refiner output for T frames (hand 0 = left, 1 = right).

    keypoints3d: (T, 2, 21, 3) float32 metres, root-relative (wrist = 0), camera axes.
    rel_root:    (T, 3) float32 metres, right wrist minus left wrist, camera frame
                 (meaningful where both hands are present).
    confidence:  (T, 2, 21) float32 in (0, 1), the refiner's per-joint confidence.
    present:     (T, 2) bool, the hands the refiner had input for.
    """

    keypoints3d: np.ndarray
    rel_root: np.ndarray
    confidence: np.ndarray
    present: np.ndarray


def default_weights() -> Path:
    """``assets/refiner/refiner.pt`` (``$LAGC_HAND_ASSETS_DIR`` first, then the repository's)."""
    from lagc_hand.handmodel.loading import assets_dir

    for base in (assets_dir(), Path(__file__).resolve().parents[3] / "assets"):
        if (base / WEIGHTS_NAME).is_file():
            return base / WEIGHTS_NAME
    return Path(__file__).resolve().parents[3] / "assets" / WEIGHTS_NAME


def _model(weights):
    from lagc_hand.errors import InputError
    from lagc_hand.net.refiner.training import load_refiner

    path = Path(weights) if weights else default_weights()
    if not path.is_file():
        raise InputError(f"refiner weights not found: {path} (train them: lagc-hand train --config configs/refiner.yaml)")
    key = str(path.resolve())
    if key not in _CACHE:
        _CACHE[key] = load_refiner(path)[0]
    return _CACHE[key]


def refiner_input(tracking, K: np.ndarray):
    """Per-frame :class:`~lagc_hand.net.refiner.features.RefinerInput` (T, ...) from both tracks.

    Tracks: 2D pixels (normalised here with K (3, 3)), 3D hand-relative
    (made wrist-relative here), per-frame confidence (given to every joint)."""
    from lagc_hand.net.refiner.features import RefinerInput, normalise_pixels

    tr = [tracking.tracks[s] for s in SIDES]
    present = np.stack([t.present for t in tr], 1)  # (T, 2)
    k2 = np.stack([normalise_pixels(t.keypoints2d, K) for t in tr], 1)
    k3 = np.stack([t.keypoints3d - t.keypoints3d[:, :1] for t in tr], 1).astype(np.float64)
    conf = np.stack([t.confidence for t in tr], 1)
    flags = np.stack([np.stack([t.followed, t.bridged, ~t.present], -1) for t in tr], 1)
    k2 = np.where(present[..., None, None], k2, 0.0)
    k3 = np.where(present[..., None, None], k3, 0.0)
    conf = np.where(present, conf, 0.0)
    return RefinerInput(k2.astype(np.float32), k3.astype(np.float32),
                        np.repeat(conf[..., None], 21, -1).astype(np.float32), flags.astype(bool))


def refine_tracking(tracking, K: np.ndarray, weights=None, batch: int = 512) -> RefinedHands:
    """Run the refiner on every frame of ``tracking`` (see :class:`RefinedHands`)."""
    import torch

    from lagc_hand.net.refiner.features import encode

    model = _model(weights)
    x = refiner_input(tracking, K)
    outs = {"keypoints3d": [], "rel_root": [], "confidence": []}
    with torch.no_grad():
        for i in range(0, len(x), batch):
            part = type(x)(*(np.asarray(a)[i:i + batch] for a in dataclasses.astuple(x)))
            feats, roots = encode(part)
            o = model(feats, roots)
            for k in outs:
                outs[k].append(o[k].numpy())
    cat = {k: (np.concatenate(v) if v else np.zeros((0,) + s, np.float32))
           for (k, v), s in zip(outs.items(), [(2, 21, 3), (3,), (2, 21)])}
    return RefinedHands(cat["keypoints3d"].astype(np.float32), cat["rel_root"].astype(np.float32),
                        cat["confidence"].astype(np.float32), ~x.flags[..., 2])


#: How the refined keypoints enter the tracks: ``"full"`` (the refiner's keypoints)
#: or ``"scale"`` (the detector's articulation, scaled to the refined hand size;
#: the refiner's size fixes the depth placement solves, not the finger pose).
MODES = ("full", "scale")
DEFAULT_MODE = "full"


def _size(k: np.ndarray) -> np.ndarray:
    """(..., 21, 3) -> (...) wrist->middle MCP + index->pinky MCP length (metres)."""
    return np.linalg.norm(k[..., 9, :] - k[..., 0, :], axis=-1) + np.linalg.norm(k[..., 5, :] - k[..., 17, :], axis=-1)


def apply_refinement(tracking, refined: RefinedHands, mode: str | None = None):
    """A copy of ``tracking`` whose frames with **both** hands present carry the
    refined 3D keypoints per ``mode`` (:data:`MODES`), root-relative, which
    placement accepts: it solves each hand's translation.  Frames with one hand
    keep the detector's keypoints: the refiner is a two-hand model, trained with
    both hands in view (the measured detector error model drops a hand in 0.3 %
    of frames).  mode None = :data:`DEFAULT_MODE`."""
    mode = DEFAULT_MODE if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"refiner mode must be one of {MODES}, not {mode!r}")
    both = refined.present.all(1)
    tracks = {}
    for k, s in enumerate(SIDES):
        t = tracking.tracks[s]
        new = refined.keypoints3d[:, k]
        if mode == "scale":
            own = t.keypoints3d - t.keypoints3d[:, :1]
            new = own * (_size(new) / np.maximum(_size(own), 1e-6))[:, None, None]
        kp = np.where(both[:, None, None], new, t.keypoints3d).astype(np.float32)
        tracks[s] = dataclasses.replace(t, keypoints3d=kp)
    return dataclasses.replace(tracking, tracks=tracks)
