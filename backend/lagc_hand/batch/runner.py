"""Run :func:`lagc_hand.batch.worker.process_video` over many inputs.

Two back ends, one per-video function:

* local (default): one **fresh spawned process per video** (``bpy`` keeps
  global state and must not be forked; a crash -- even a segfault inside
  Blender -- takes down that video only), at most ``workers`` at a time.
  Progress messages come back over a queue.
* Ray (``ray_address``): the same function as Ray tasks with
  ``max_calls=1`` (a fresh worker process per video, for the same reason);
  ``"local"`` starts a local Ray cluster, anything else is passed to
  ``ray.init(address=...)``.

A failed video is reported and skipped; finished videos are skipped before any
process starts, so a re-run costs almost nothing.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import queue
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

from lagc_hand.batch.worker import ALL_FORMATS, VideoResult, VideoTask, is_finished, process_video
from lagc_hand.errors import InputError

Printer = Callable[[str], None]


def discover(inputs: Iterable[str]) -> list[Path]:
    """Videos, image folders and HandMotion files named by ``inputs``.

    A folder that holds videos is expanded (not recursively) to its videos and
    ``.npz`` files; a folder of images is one input.  Raises InputError for a
    path that does not exist or holds nothing usable.
    """
    from lagc_hand.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    found: list[Path] = []
    for text in inputs:
        p = Path(text).expanduser()
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")
        if p.is_file():
            found.append(p)
            continue
        entries = sorted(f for f in p.iterdir() if f.is_file())
        vids = [f for f in entries if f.suffix.lower() in VIDEO_EXTENSIONS + (".npz",)]
        if vids:
            found.extend(vids)
        elif any(f.suffix.lower() in IMAGE_EXTENSIONS for f in entries):
            found.append(p)
        else:
            raise InputError(f"{p}: the folder holds no videos, images or HandMotion files")
    unique = list(dict.fromkeys(f.resolve() for f in found))
    if not unique:
        raise InputError("no inputs given")
    return unique


def output_names(paths: list[Path]) -> list[str]:
    """File stems, made unique with a short hash of the path where two collide."""
    stems = [p.stem if p.is_file() else p.name for p in paths]
    out = []
    for p, s in zip(paths, stems):
        if stems.count(s) > 1:
            s = f"{s}-{hashlib.sha1(str(p).encode()).hexdigest()[:6]}"
        out.append(s)
    return out


def parse_formats(text: str) -> tuple:
    fmts = tuple(dict.fromkeys(f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()))
    bad = [f for f in fmts if f not in ALL_FORMATS]
    if bad or not fmts:
        raise InputError(f"unknown format(s) {', '.join(bad) or '(none)'}; choose from {', '.join(ALL_FORMATS)}")
    return fmts


def make_tasks(inputs: Iterable[str], out_dir: str, formats: tuple, options: dict, force: bool = False,
               max_influences: int = 0) -> list[VideoTask]:
    """One task per input; ``max_influences`` (0..8, 0 = all) limits the scene files' skin weights."""
    if not 0 <= int(max_influences) <= 8:
        raise InputError(f"--max-influences must be 0 (all) to 8, got {max_influences}")
    paths = discover(inputs)
    return [VideoTask(str(p), os.path.join(out_dir, name), name, tuple(formats), dict(options), force,
                      int(max_influences))
            for p, name in zip(paths, output_names(paths))]


# --------------------------------------------------------------------------- local pool


def _child(task: VideoTask, q) -> None:
    """Entry point of a spawned worker: progress and the result go over ``q``."""
    def progress(msg: dict) -> None:
        q.put(("progress", task.name, msg))

    result = process_video(task, progress)
    q.put(("result", task.name, result.to_dict()))


@dataclass
class _Running:
    task: VideoTask
    proc: object
    started: float


def _fmt_progress(msg: dict) -> str:
    stage = msg.get("stage", "")
    if stage == "detect" and msg.get("frames_total"):
        return f"{stage} {msg.get('frames_done', 0)}/{msg['frames_total']} ({msg.get('fps', 0):.1f} fps)"
    return stage + (f": {msg['message']}" if msg.get("message") else "")


def run_local(tasks: list[VideoTask], workers: int, printer: Printer, done_before: int = 0,
              total: int | None = None) -> list[VideoResult]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    pending = list(tasks)
    running: dict[str, _Running] = {}
    results: dict[str, VideoResult] = {}
    last_line: dict[str, tuple] = {}  # name -> (time, stage) of its last printed line
    total = total or len(tasks)
    while pending or running:
        while pending and len(running) < workers:
            t = pending.pop(0)
            proc = ctx.Process(target=_child, args=(t, q), name=f"lagc-batch-{t.name}", daemon=False)
            proc.start()
            running[t.name] = _Running(t, proc, time.perf_counter())
            printer(f"[{done_before + len(results) + len(running)}/{total}] {t.name}: started")
        try:
            kind, name, payload = q.get(timeout=0.25)
        except queue.Empty:
            kind = None
        if kind == "progress":
            # Every stage shows once when it starts; detect's frame counts then once a second.
            now, stage = time.perf_counter(), payload.get("stage")
            t_last, stage_last = last_line.get(name, (0.0, None))
            if stage != "detect" or stage != stage_last or now - t_last >= 1.0:
                last_line[name] = (now, stage)
                printer(f"    {name}: {_fmt_progress(payload)}")
        elif kind == "result":
            res = VideoResult(**payload)
            results[name] = res
            r = running.pop(name, None)
            if r is not None:
                r.proc.join(timeout=60)
            _print_result(res, done_before + len(results), total, printer)
        # A worker that died without a result (crash, killed, out of memory).
        for name, r in list(running.items()):
            if not r.proc.is_alive() and name not in results:
                try:  # its result may still be in the queue
                    kind2, name2, payload2 = q.get(timeout=0.5)
                    if kind2 == "result":
                        res = VideoResult(**payload2)
                        results[name2] = res
                        running.pop(name2, None)
                        _print_result(res, done_before + len(results), total, printer)
                        continue
                except queue.Empty:
                    pass
                if name in running:
                    running.pop(name)
                    res = VideoResult(r.task.source, name, "failed",
                                      error=f"the worker process died (exit code {r.proc.exitcode})",
                                      seconds=time.perf_counter() - r.started)
                    results[name] = res
                    _print_result(res, done_before + len(results), total, printer)
    return [results[t.name] for t in tasks]


def _print_result(res: VideoResult, n: int, total: int, printer: Printer) -> None:
    if res.status == "failed":
        first = res.error.strip().splitlines()[0] if res.error.strip() else "unknown error"
        printer(f"[{n}/{total}] {res.name}: FAILED - {first}")
    elif res.status == "skipped":
        printer(f"[{n}/{total}] {res.name}: already done, skipped")
    else:
        printer(f"[{n}/{total}] {res.name}: done in {res.seconds:.1f} s ({', '.join(res.outputs)})")


# --------------------------------------------------------------------------- Ray


def _ray_process(task: VideoTask) -> dict:
    return process_video(task).to_dict()


def run_ray(tasks: list[VideoTask], address: str, workers: int, printer: Printer) -> list[VideoResult]:
    try:
        import ray
    except ImportError:
        raise InputError("--ray needs Ray: pip install 'lagc-hand[ray]' (or pip install ray)") from None
    started_here = False
    if not ray.is_initialized():
        kw = {"include_dashboard": False, "log_to_driver": False, "ignore_reinit_error": True}
        # Workers import lagc_hand from this checkout, like the spawned local workers.
        kw["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}}
        if address == "local":
            ray.init(num_cpus=max(1, workers), **kw)
        else:
            ray.init(address=address, **kw)
        started_here = True
    try:
        remote = ray.remote(max_calls=1, num_cpus=1)(_ray_process)
        refs = {remote.remote(t): t for t in tasks}
        printer(f"submitted {len(refs)} video(s) to Ray ({address})")
        results: dict[str, VideoResult] = {}
        waiting = list(refs)
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=1)
            t = refs[done[0]]
            try:
                res = VideoResult(**ray.get(done[0]))
            except Exception as exc:  # noqa: BLE001 - a lost worker fails that video only
                res = VideoResult(t.source, t.name, "failed", error=f"Ray task failed: {exc}")
            results[t.name] = res
            _print_result(res, len(results), len(tasks), printer)
        return [results[t.name] for t in tasks]
    finally:
        if started_here:
            ray.shutdown()


# --------------------------------------------------------------------------- entry


def run_batch(tasks: list[VideoTask], out_dir: str, workers: int = 1, ray_address: Optional[str] = None,
              printer: Printer = print) -> list[VideoResult]:
    """Run ``tasks``; write ``OUT/batch_summary.json``; return the results in task order."""
    if workers < 1:
        raise InputError(f"--workers must be 1 or more, got {workers}")
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.perf_counter()
    todo, results = [], {}
    for t in tasks:
        if is_finished(t):
            results[t.name] = process_video(t)  # returns "skipped" from the manifest, no heavy imports
            _print_result(results[t.name], len(results), len(tasks), printer)
        else:
            todo.append(t)
    if todo:
        run = (run_ray(todo, ray_address, workers, printer) if ray_address
               else run_local(todo, workers, printer, len(results), len(tasks)))
        results.update({r.name: r for r in run})
    ordered = [results[t.name] for t in tasks]
    counts = {s: sum(r.status == s for r in ordered) for s in ("done", "skipped", "failed")}
    printer(f"batch: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
            f"in {time.perf_counter() - t0:.1f} s -> {out_dir}")
    summary = {"results": [r.to_dict() for r in ordered], "counts": counts}
    tmp = os.path.join(out_dir, ".batch_summary.json.part")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    os.replace(tmp, os.path.join(out_dir, "batch_summary.json"))
    return ordered
