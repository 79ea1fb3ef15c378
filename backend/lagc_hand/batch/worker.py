"""The per-video job of ``lagc-hand batch``: one function, run in a fresh process.

:func:`process_video` reconstructs one video (or takes a HandMotion file as
is), writes the requested formats through the add-on's own scene writer
(``lagc_hand_blender.blender.export.write_scene_files`` under the ``bpy``
module), writes the QA report, and writes ``manifest.json`` **last**.  The
local pool, Ray and ``scripts/blender_batch.py`` all call it, so they produce
the same files.

Layout of one video's folder ``OUT/<name>/``::

    <name>.npz  <name>.blend  <name>.glb  <name>.fbx  <name>_left.bvh  <name>_right.bvh
    qa/report.md  qa/confidence.png  qa/jitter.png  qa/thumbnail.png
    manifest.json        (written last: its presence with "complete": true means done)

Resuming: a finished video (manifest complete, same source size and mtime,
every requested format listed and its files present) is skipped; an
unfinished one reuses a valid ``<name>.npz`` and redoes the rest.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

#: Formats written by the scene writer (bpy), in writing order.
SCENE_FORMATS = ("blend", "glb", "fbx", "bvh")
ALL_FORMATS = ("npz",) + SCENE_FORMATS
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


@dataclass
class VideoTask:
    """One input: ``source`` a video file, image folder or HandMotion ``.npz``;
    ``out_dir`` this video's output folder; ``name`` the file stem of outputs;
    ``options`` a :class:`lagc_hand.api.ReconstructOptions` as a dict."""

    source: str
    out_dir: str
    name: str
    formats: tuple
    options: dict = field(default_factory=dict)
    force: bool = False
    #: Skin weights kept per vertex in the scene files (blend/fbx/glb); 0 = all of the model's.
    max_influences: int = 0


@dataclass
class VideoResult:
    """status: ``done``, ``skipped`` (already finished) or ``failed``."""

    source: str
    name: str
    status: str
    outputs: dict = field(default_factory=dict)
    qa: dict = field(default_factory=dict)
    error: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_fingerprint(path: str) -> dict:
    """Size and mtime of a file, or of the newest file in a folder."""
    p = Path(path)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file()]
        return {"size": sum(f.stat().st_size for f in files), "mtime": max((f.stat().st_mtime for f in files), default=0),
                "count": len(files)}
    st = p.stat()
    return {"size": st.st_size, "mtime": st.st_mtime}


def read_manifest(out_dir: str) -> Optional[dict]:
    path = Path(out_dir) / MANIFEST
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == MANIFEST_VERSION else None


def is_finished(task: VideoTask) -> bool:
    """The task's outputs exist from an earlier run of the same source."""
    if task.force:
        return False
    m = read_manifest(task.out_dir)
    if not m or not m.get("complete"):
        return False
    try:
        if m.get("source_fingerprint") != source_fingerprint(task.source):
            return False
    except OSError:
        return False
    outs = m.get("outputs", {})
    for fmt in task.formats:
        if fmt not in outs:
            return False
        if not all(os.path.isfile(os.path.join(task.out_dir, f)) for f in outs[fmt]):
            return False
    return True


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _rel(out_dir: str, paths) -> list[str]:
    return [os.path.relpath(p, out_dir) for p in paths]


def process_video(task: VideoTask, progress: Optional[Callable[[dict], None]] = None) -> VideoResult:
    """Do one video; never raises for a bad video (the result says ``failed``)."""
    report = progress or (lambda msg: None)
    t0 = time.perf_counter()
    if is_finished(task):
        m = read_manifest(task.out_dir) or {}
        return VideoResult(task.source, task.name, "skipped", m.get("outputs", {}), m.get("qa", {}))
    try:
        outputs, qa = _process(task, report)
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the batch
        from lagc_hand.errors import LagcHandError
        from lagc_hand_blender.core.handmotion import HandMotionError

        if isinstance(exc, (LagcHandError, HandMotionError, ValueError)):
            msg = str(exc)
        else:
            msg = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
        try:  # a video that failed before writing anything leaves no empty folder behind
            os.rmdir(task.out_dir)
        except OSError:
            pass
        return VideoResult(task.source, task.name, "failed", error=msg, seconds=time.perf_counter() - t0)
    return VideoResult(task.source, task.name, "done", outputs, qa, seconds=time.perf_counter() - t0)


def _process(task: VideoTask, report: Callable[[dict], None]) -> tuple[dict, dict]:
    from lagc_hand_blender.core import handmotion as hm

    out = Path(task.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = source_fingerprint(task.source)
    old = read_manifest(task.out_dir)
    if old and old.get("source_fingerprint") != fingerprint:
        old = None  # the source changed: nothing from the old run counts
    npz = out / f"{task.name}.npz"
    summary: dict = {}
    motion = None
    video_path: Optional[str] = task.source
    if task.source.lower().endswith(".npz"):
        report({"stage": "load"})
        motion = hm.load(task.source)
        summary = motion.meta.get("summary", {}) if isinstance(motion.meta, dict) else {}
        video_path = motion.meta.get("source") if isinstance(motion.meta, dict) else None
        if os.path.abspath(task.source) != os.path.abspath(npz):
            hm.save(motion, npz)
    elif old is not None and npz.is_file():
        try:
            motion = hm.load(npz)  # resumed: the reconstruction finished last time
            summary = motion.meta.get("summary", {})
            report({"stage": "resume", "message": "reusing the reconstruction from the last run"})
        except hm.HandMotionError:
            motion = None
    if motion is None:
        from lagc_hand.api import ReconstructOptions, reconstruct

        opts = ReconstructOptions(**task.options)

        def on_progress(p) -> None:
            report({"stage": p.stage, "frames_done": p.frames_done, "frames_total": p.frames_total,
                    "fps": round(p.fps, 2)})

        result = reconstruct(task.source, opts, on_progress)
        motion, summary = result.motion, result.summary
        hm.save(motion, npz)
    outputs: dict[str, list[str]] = {"npz": [npz.name]}
    progress_manifest = {"version": MANIFEST_VERSION, "complete": False, "source": os.path.abspath(task.source),
                         "source_fingerprint": fingerprint, "outputs": outputs}
    _write_json(out / MANIFEST, progress_manifest)

    scene_formats = [f for f in SCENE_FORMATS if f in task.formats]
    if scene_formats:
        report({"stage": "scene", "message": ", ".join(scene_formats)})
        from lagc_hand_blender.blender.export import write_scene_files

        video = video_path if video_path and os.path.exists(video_path) else None
        written = write_scene_files(str(npz), str(out), scene_formats, video_path=video, name=task.name,
                                    max_influences=task.max_influences)
        for fmt in scene_formats:
            outputs[fmt] = _rel(str(out), written.get(fmt, []))
        _write_json(out / MANIFEST, progress_manifest)

    report({"stage": "qa"})
    from lagc_hand.batch.qa import write_report

    qa, qa_files = write_report(motion, out / "qa", task.name, video_path, summary, outputs)
    qa_dict = qa.to_dict()
    manifest = dict(progress_manifest, complete=True, qa=qa_dict, qa_files=_rel(str(out), qa_files.values()),
                    summary=summary, formats=list(task.formats))
    if "npz" not in task.formats:
        manifest["outputs"] = {k: v for k, v in outputs.items() if k in task.formats}
        outputs = manifest["outputs"]
    _write_json(out / MANIFEST, manifest)  # last: marks the video finished
    return outputs, qa_dict
