"""Overlay pictures of the real-footage benchmark (:mod:`bench.real`).

One picture per input: rows are frames (one for a still; for a clip three spread
over it plus the one most worth a look, see :func:`_worst_frame`), columns are engines.  Drawn on the real image: the cleaned output's
skeleton (green, side letter at the wrist) and its mesh outline (cyan), both
projected with the K the pipeline used; the engine's own 2D keypoints per
detection (red, thin); labelled keypoints (yellow dots) where there are labels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

#: Bones of the public 21-keypoint order (parent, child).
BONES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10), (10, 11), (11, 12),
         (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19), (19, 20), (5, 9), (9, 13), (13, 17)]
PANEL_WIDTH = 480
GREEN, CYAN, RED, YELLOW = (60, 220, 60), (255, 220, 0), (40, 40, 255), (0, 230, 255)  # BGR


def pick_frames(num_frames: int, count: int = 4) -> list[int]:
    """Positions spread over a clip (1/8, 3/8, 5/8, 7/8 for four); [0] for a still."""
    if num_frames <= 1:
        return [0]
    pos = sorted({min(num_frames - 1, int((2 * i + 1) * num_frames / (2 * count))) for i in range(count)})
    return pos


def _worst_frame(frames: list[dict]) -> Optional[int]:
    """The clip position most worth a look: an output duplicate first, then det
    duplicates, then the most det hands; None for a still."""
    from bench.real_metrics import duplicate_pairs

    if len(frames) <= 1:
        return None
    score = [100 * duplicate_pairs([k for _, k, _ in f["out"]]) + 10 * duplicate_pairs([k for _, k, _ in f["det"]])
             + len(f["det"]) for f in frames]
    return int(np.argmax(score))


def read_frames(path: Path, indices: list[int]) -> dict[int, np.ndarray]:
    """Source frame index -> (H, W, 3) uint8 RGB."""
    from lagc_hand.video import FrameRange, open_video

    src = open_video(path)
    out = {}
    for i in indices:
        for fr in src.frames(FrameRange(i, i + 1)):
            out[i] = fr.image
    return out


def mesh_vertices(motion, side: str, t: int, model) -> np.ndarray:
    """(V, 3) cleaned mesh vertices of ``side`` at frame position ``t``, camera frame, metres."""
    from bench.interaction import _mesh

    h = motion.hands[side]
    return _mesh(model, h.clean.quats[t:t + 1], h.clean.root[t:t + 1], h.betas)[0]


def crop_box(shape: tuple, points: list[np.ndarray], margin: float = 0.35, aspect: float = 0.75) -> np.ndarray:
    """``x0, y0, x1, y1`` px: the box around ``points`` ((N, 2) px arrays) grown by
    ``margin`` of its size, widened to ``aspect`` (h / w) and kept in the image
    of ``shape`` (H, W, ...); the whole image when there are no points."""
    H, W = shape[:2]
    pts = [p.reshape(-1, 2) for p in points if p is not None and np.size(p)]
    pts = np.concatenate(pts) if pts else np.zeros((0, 2))
    pts = pts[np.isfinite(pts).all(1) & (np.abs(pts) < 1e5).all(1)]
    if len(pts) == 0:
        return np.array([0.0, 0.0, W, H])
    lo, hi = np.maximum(pts.min(0), 0), np.minimum(pts.max(0), [W, H])
    c, size = (lo + hi) / 2, np.maximum(hi - lo, 32) * (1 + 2 * margin)
    w = max(size[0], size[1] / aspect)
    w = min(w, W, H / aspect)
    h = w * aspect
    x0 = float(np.clip(c[0] - w / 2, 0, W - w))
    y0 = float(np.clip(c[1] - h / 2, 0, H - h))
    return np.array([x0, y0, x0 + w, y0 + h])


def draw_panel(rgb: np.ndarray, motion, t: int, frame_pred: dict, label_hands: Optional[list],
               models: dict, title: str, box: Optional[np.ndarray] = None) -> np.ndarray:
    """One BGR panel (PANEL_WIDTH wide) of frame position ``t``, cropped to ``box``
    (``x0, y0, x1, y1`` px; None = whole image); see the module docstring."""
    import cv2

    from bench.real_metrics import project

    img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if box is None:
        box = np.array([0.0, 0.0, img.shape[1], img.shape[0]])
    x0, y0, x1, y1 = box
    img = img[int(y0):max(int(y0) + 1, int(round(y1))), int(x0):max(int(x0) + 1, int(round(x1)))]
    s = PANEL_WIDTH / img.shape[1]
    img = cv2.resize(img, (PANEL_WIDTH, max(1, round(img.shape[0] * s))),
                     interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    off = np.array([int(x0), int(y0)], np.float64)
    K = np.asarray(motion.intrinsics, np.float64)
    for side in ("left", "right"):
        if not motion.hands[side].present[t]:
            continue
        uv = (project(mesh_vertices(motion, side, t, models[side]), K) - off) * s
        mask = np.zeros(img.shape[:2], np.uint8)
        tris = np.round(uv[np.asarray(motion.faces)]).astype(np.int32)
        ok = np.isfinite(uv).all() and np.abs(uv).max() < 1e5
        if ok:
            cv2.fillPoly(mask, list(tris), 255)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(img, contours, -1, CYAN, 1, cv2.LINE_AA)
    for _, k2, _ in frame_pred["det"]:
        _skeleton(img, (k2 - off) * s, RED, 1)
    for side, k2, _ in frame_pred["clean"]:
        _skeleton(img, (k2 - off) * s, GREEN, 1)
        cv2.putText(img, side[0].upper(), _pt((k2[0] - off) * s + (6, 16)), cv2.FONT_HERSHEY_SIMPLEX, 0.7, GREEN, 2)
    for lab in label_hands or []:
        for k, v in zip(lab.kp2d, lab.visible):
            if v:
                cv2.circle(img, _pt((k - off) * s), 3, YELLOW, -1, cv2.LINE_AA)
    cv2.rectangle(img, (0, 0), (PANEL_WIDTH, 18), (0, 0, 0), -1)
    cv2.putText(img, title, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def _pt(p) -> tuple[int, int]:
    return int(round(float(np.clip(p[0], -1e4, 1e4)))), int(round(float(np.clip(p[1], -1e4, 1e4))))


def _skeleton(img: np.ndarray, k2: np.ndarray, colour, width: int) -> None:
    import cv2

    for a, b in BONES:
        cv2.line(img, _pt(k2[a]), _pt(k2[b]), colour, width, cv2.LINE_AA)
    for p in k2:
        cv2.circle(img, _pt(p), width + 1, colour, -1, cv2.LINE_AA)


def write_overlay(path: Path, source: Path, runs: dict, preds: dict, labels: Optional[dict]) -> Path:
    """Write the picture of one input: ``runs`` / ``preds`` are engine -> Run / predictions."""
    import cv2

    from lagc_hand.pipeline import load_hand_model

    first = next(iter(runs.values())).motion
    positions = pick_frames(first.num_frames, 3)
    worst = _worst_frame(next(iter(preds.values())))
    if worst is not None and worst not in positions:
        positions = sorted(positions + [worst])
    indices = [int(first.frames[p]) for p in positions]
    images = read_frames(source, indices)
    models = {s: load_hand_model("open", s, "cpu")[1] for s in ("left", "right")}
    rows = []
    for p, i in zip(positions, indices):
        panels = []
        pts = [k for e in runs for var in ("clean", "det") for _, k, _ in preds[e][p][var]]
        pts += [lab.kp2d[lab.visible] for lab in (labels.get(i, []) if labels else [])]
        box = crop_box(images[i].shape, pts)
        for engine, run in runs.items():
            title = f"{engine}  frame {i}  out {len(preds[engine][p]['clean'])} det {len(preds[engine][p]['det'])}"
            panels.append(draw_panel(images[i], run.motion, p, preds[engine][p],
                                     labels.get(i) if labels else None, models, title, box))
        h = max(q.shape[0] for q in panels)
        rows.append(np.concatenate([np.pad(q, ((0, h - q.shape[0]), (0, 0), (0, 0))) for q in panels], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.concatenate(rows, axis=0))
    return path
