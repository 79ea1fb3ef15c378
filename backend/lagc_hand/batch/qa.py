"""Per-video QA report: numbers from a HandMotion, Markdown + PNG plots + a
thumbnail with the keypoints drawn on a video frame.

Metrics (per hand):

* detected %: share of samples where the hand is present;
* identity switches: from the reconstruction summary (tracker), when known;
* jitter before/after cleanup: keypoint jitter (mean second difference of the
  21 keypoints, mm / frame^2) and rotation jitter (deg / frame^2) of the raw
  and the clean variant (:mod:`lagc_hand_blender.core.mocap_edit`);
* low-confidence ranges: source-frame ranges where the hand is present with
  confidence below a threshold; missing ranges: where it is absent.

Nothing here imports ``bpy``.  Plots use matplotlib's non-interactive Agg
backend; every file is written to a temp name and renamed.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from lagc_hand_blender.core import handmotion as hm
from lagc_hand_blender.core.mocap_edit import position_jitter_mm, rotation_jitter_deg
from lagc_hand_blender.core.skeleton import PUBLIC_PARENTS

#: Confidence under which a present sample counts as low-confidence.
LOW_CONFIDENCE = 0.5
#: BGR colours of the hands in the thumbnail (left blue, right orange).
HAND_COLOURS = {"left": (230, 140, 40), "right": (40, 140, 240)}


@dataclass
class HandQA:
    detected_pct: float
    jitter_mm_raw: float
    jitter_mm_clean: float
    jitter_deg_raw: float
    jitter_deg_clean: float
    low_confidence_ranges: list = field(default_factory=list)
    missing_ranges: list = field(default_factory=list)
    mean_confidence: float = 0.0


@dataclass
class VideoQA:
    name: str
    frames: int
    fps: float
    hands: dict
    identity_switches: Optional[int] = None
    any_hand_pct: float = 0.0
    both_hands_pct: float = 0.0
    thumbnail_frame: Optional[int] = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hands"] = {k: asdict(v) for k, v in self.hands.items()}
        return d


def ranges(mask: np.ndarray, frames: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in ``mask`` (T,) as inclusive ``(first, last)`` source frames."""
    m = np.asarray(mask, bool).astype(np.int8)
    d = np.diff(np.concatenate([[0], m, [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    return [(int(frames[s]), int(frames[e])) for s, e in zip(starts, ends)]


def measure(motion: hm.HandMotion, name: str, summary: Optional[dict] = None,
            low_confidence: float = LOW_CONFIDENCE) -> VideoQA:
    """QA numbers of one motion (``summary``: the reconstruction summary, if any)."""
    summary = summary or (motion.meta.get("summary") if isinstance(motion.meta, dict) else None) or {}
    T = motion.num_frames
    hands = {}
    for side in hm.SIDES:
        h = motion.hands[side]
        p = np.asarray(h.present, bool)
        low = p & (np.asarray(h.confidence) < low_confidence)
        hands[side] = HandQA(
            detected_pct=round(100.0 * float(p.mean()) if T else 0.0, 1),
            jitter_mm_raw=round(position_jitter_mm(h.raw.keypoints3d, p), 3),
            jitter_mm_clean=round(position_jitter_mm(h.clean.keypoints3d, p), 3),
            jitter_deg_raw=round(rotation_jitter_deg(h.raw.quats, p), 3),
            jitter_deg_clean=round(rotation_jitter_deg(h.clean.quats, p), 3),
            low_confidence_ranges=ranges(low, motion.frames),
            missing_ranges=ranges(~p, motion.frames),
            mean_confidence=round(float(np.mean(h.confidence[p])) if p.any() else 0.0, 3),
        )
    L, R = motion.hands["left"].present, motion.hands["right"].present
    return VideoQA(
        name=name, frames=T, fps=float(motion.fps), hands=hands,
        identity_switches=summary.get("identity_switches"),
        any_hand_pct=round(100.0 * float(np.mean(L | R)) if T else 0.0, 1),
        both_hands_pct=round(100.0 * float(np.mean(L & R)) if T else 0.0, 1),
    )


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _save_figure(fig, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _atomic_write(path, buf.getvalue())


def plot_confidence(motion: hm.HandMotion, path: Path, low_confidence: float = LOW_CONFIDENCE) -> None:
    """Confidence of each hand over source frames (0 where absent)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.6))
    for side, colour in (("left", "tab:blue"), ("right", "tab:orange")):
        h = motion.hands[side]
        conf = np.where(h.present, h.confidence, np.nan)
        ax.plot(motion.frames, conf, color=colour, label=f"{side}")
    ax.axhline(low_confidence, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("source frame")
    ax.set_ylabel("confidence")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def plot_jitter(motion: hm.HandMotion, path: Path) -> None:
    """Per-frame keypoint acceleration (mm / frame^2), raw vs clean, per hand."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8, 4), sharex=True)
    for ax, side in zip(axes, hm.SIDES):
        h = motion.hands[side]
        p = np.asarray(h.present, bool)
        for var, colour in (("raw", "tab:red"), ("clean", "tab:green")):
            x = np.asarray(h.variant(var).keypoints3d, np.float64)
            acc = np.full(len(x), np.nan)
            if len(x) >= 3:
                a = 1000.0 * np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1).mean(axis=-1)
                ok = p[:-2] & p[1:-1] & p[2:]
                acc[1:-1] = np.where(ok, a, np.nan)
            ax.plot(motion.frames, acc, color=colour, lw=0.9, label=var)
        ax.set_ylabel(f"{side}\nmm/frame²")
        ax.legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("source frame")
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def best_frame(motion: hm.HandMotion) -> int:
    """Sample index with the most hands present and the highest total confidence."""
    score = sum(motion.hands[s].present.astype(float) * (1.0 + motion.hands[s].confidence) for s in hm.SIDES)
    return int(np.argmax(score)) if len(score) else 0


def thumbnail(motion: hm.HandMotion, video: Optional[str], path: Path, width: int = 480) -> Optional[int]:
    """The frame with the most / surest hands, keypoints and bones drawn on it.

    Returns the source frame drawn, or None when the video cannot be read (the
    keypoints are then drawn on a grey canvas of the video's size).
    """
    import cv2

    t = best_frame(motion)
    frame_index = int(motion.frames[t]) if motion.num_frames else 0
    W, H = motion.image_size
    image = None
    used: Optional[int] = None
    if video and os.path.isfile(video):
        cap = cv2.VideoCapture(video)
        try:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
            ok, img = cap.read()
            if ok and img is not None:
                image, used = img, frame_index
        finally:
            cap.release()
    elif video and os.path.isdir(video):
        from lagc_hand.video import open_video, FrameRange

        for fr in open_video(video).frames(FrameRange(frame_index, frame_index + 1)):
            image, used = cv2.cvtColor(fr.image, cv2.COLOR_RGB2BGR), frame_index
    if image is None:
        image = np.full((H, W, 3), 90, np.uint8)
    scale = width / float(image.shape[1])
    image = cv2.resize(image, (width, max(1, int(round(image.shape[0] * scale)))), interpolation=cv2.INTER_AREA)
    for side in hm.SIDES:
        h = motion.hands[side]
        if not motion.num_frames or not h.present[t]:
            continue
        pts = np.asarray(h.keypoints2d[t], np.float64) * scale
        colour = HAND_COLOURS[side]
        for k in range(1, 21):
            a, b = pts[k], pts[PUBLIC_PARENTS[k]]
            cv2.line(image, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(image, (int(p[0]), int(p[1])), 3, (255, 255, 255), -1, cv2.LINE_AA)
        wx, wy = pts[0]
        cv2.putText(image, side[0].upper(), (int(wx) + 4, int(wy) + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                    cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("OpenCV could not encode the thumbnail")
    _atomic_write(path, buf.tobytes())
    return used


def _fmt_ranges(rs: list, limit: int = 12) -> str:
    if not rs:
        return "none"
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in rs[:limit])
    return text + (f" (+{len(rs) - limit} more)" if len(rs) > limit else "")


def write_report(motion: hm.HandMotion, out_dir: Path, name: str, video: Optional[str] = None,
                 summary: Optional[dict] = None, outputs: Optional[dict] = None) -> tuple[VideoQA, dict]:
    """Write ``report.md``, ``confidence.png``, ``jitter.png``, ``thumbnail.png``
    into ``out_dir``; return the numbers and ``{kind: path}`` of the files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    qa = measure(motion, name, summary)
    files = {"confidence": out_dir / "confidence.png", "jitter": out_dir / "jitter.png",
             "thumbnail": out_dir / "thumbnail.png", "report": out_dir / "report.md"}
    plot_confidence(motion, files["confidence"])
    plot_jitter(motion, files["jitter"])
    qa.thumbnail_frame = thumbnail(motion, video, files["thumbnail"])
    lines = [
        f"# QA: {name}",
        "",
        f"{qa.frames} frames at {qa.fps:g} fps; a hand in {qa.any_hand_pct}% of frames, both in {qa.both_hands_pct}%; "
        f"identity switches: {'unknown' if qa.identity_switches is None else qa.identity_switches}.",
        "",
        "| | left | right |",
        "|---|---|---|",
    ]
    L, R = qa.hands["left"], qa.hands["right"]
    rows = [
        ("detected", f"{L.detected_pct}%", f"{R.detected_pct}%"),
        ("mean confidence", L.mean_confidence, R.mean_confidence),
        ("keypoint jitter raw -> clean (mm/frame²)", f"{L.jitter_mm_raw} -> {L.jitter_mm_clean}",
         f"{R.jitter_mm_raw} -> {R.jitter_mm_clean}"),
        ("rotation jitter raw -> clean (deg/frame²)", f"{L.jitter_deg_raw} -> {L.jitter_deg_clean}",
         f"{R.jitter_deg_raw} -> {R.jitter_deg_clean}"),
        (f"low confidence (< {LOW_CONFIDENCE}), frames", _fmt_ranges(L.low_confidence_ranges),
         _fmt_ranges(R.low_confidence_ranges)),
        ("missing, frames", _fmt_ranges(L.missing_ranges), _fmt_ranges(R.missing_ranges)),
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", "![confidence](confidence.png)", "", "![jitter](jitter.png)", "",
              f"![thumbnail](thumbnail.png) (source frame {qa.thumbnail_frame if qa.thumbnail_frame is not None else 'n/a: video not readable'})",
              ""]
    if outputs:
        lines += ["## Outputs", ""] + [f"- {fmt}: " + ", ".join(os.path.basename(p) for p in paths)
                                       for fmt, paths in outputs.items()] + [""]
    _atomic_write(files["report"], "\n".join(lines).encode("utf-8"))
    return qa, {k: str(v) for k, v in files.items()}
