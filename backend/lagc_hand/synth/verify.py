"""Check a rendered clip with real MediaPipe: is each ground-truth hand found?

Runs the legacy ``mediapipe.solutions.hands`` graph (bundled models, offline)
in tracking mode over the video, projects the ground-truth keypoints with the
clip's intrinsics, and counts a hand as *detected* in a frame when some
MediaPipe hand's 21 2D keypoints lie within ``match_px`` pixels (mean) of it.
"""
from __future__ import annotations

import os

import numpy as np


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``(..., 3)`` camera-frame points -> ``(..., 2)`` pixels."""
    p = np.asarray(points, dtype=np.float64)
    uv = p[..., :2] / p[..., 2:3]
    return uv * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]


def mediapipe_keypoints(video: str | os.PathLike, max_hands: int = 2, model_complexity: int = 1) -> list[list[np.ndarray]]:
    """Per frame, a list of ``(21, 2)`` pixel keypoints (public order) of the hands MediaPipe found."""
    import cv2
    from mediapipe.python.solutions import hands as mp_hands

    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise FileNotFoundError(f"cannot open {video}")
    out = []
    with mp_hands.Hands(static_image_mode=False, max_num_hands=max_hands, model_complexity=model_complexity,
                        min_detection_confidence=0.5, min_tracking_confidence=0.5) as hands:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            res = hands.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            found = []
            for lm in res.multi_hand_landmarks or []:
                found.append(np.array([[p.x * w, p.y * h] for p in lm.landmark]))
            out.append(found)
    cap.release()
    return out


def detection_report(video: str | os.PathLike, gt_path: str | os.PathLike, match_px: float = 25.0) -> dict:
    """Detection rate of each ground-truth hand, and the mean 2D error of matched hands (pixels)."""
    with np.load(gt_path, allow_pickle=False) as z:
        gt = {k: z[k] for k in z.files}
    K = gt["intrinsics"]
    found = mediapipe_keypoints(video)
    report: dict = {"frames": len(found), "match_px": match_px}
    both = np.ones(len(found), bool)
    for side in ("left", "right"):
        kp = project(gt[f"{side}_keypoints"][: len(found)], K)
        present = gt[f"{side}_present"][: len(found)]
        hit = np.zeros(len(found), bool)
        errs = []
        for t, dets in enumerate(found):
            if not present[t] or not dets:
                continue
            e = [float(np.linalg.norm(d - kp[t], axis=1).mean()) for d in dets]
            if min(e) < match_px:
                hit[t] = True
                errs.append(min(e))
        both &= hit | ~present
        report[side] = {
            "detection_rate": float(hit[present].mean()) if present.any() else None,
            "mean_2d_error_px": float(np.mean(errs)) if errs else None,
            "missed_frames": [int(i) for i in np.flatnonzero(present & ~hit)],
        }
    report["both_detected_rate"] = float(both.mean())
    return report
