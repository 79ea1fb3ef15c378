"""Headless batch: many videos -> HandMotion + .blend / .glb / .fbx / .bvh + QA reports.

:func:`~lagc_hand.batch.worker.process_video` does one video (the unit the
local process pool, Ray and ``scripts/blender_batch.py`` all run);
:func:`~lagc_hand.batch.runner.run_batch` runs many.  See ``docs/batch.md``.
"""
from lagc_hand.batch.runner import make_tasks, parse_formats, run_batch
from lagc_hand.batch.worker import ALL_FORMATS, SCENE_FORMATS, VideoResult, VideoTask, process_video

__all__ = ["ALL_FORMATS", "SCENE_FORMATS", "VideoResult", "VideoTask", "make_tasks", "parse_formats",
           "process_video", "run_batch"]
