"""Import speed of the add-on's scene writer: a 10,000-frame two-hand motion.

``python bench/addon_import.py [--frames 10000] [--slice 300] [--no-write]``

Measures, in one run and one Blender (the ``bpy`` module of this venv):

* **bulk**: the whole import (two armatures, two skinned meshes, camera, raw and
  clean actions, confidence and visibility channels) with the add-on's bulk
  ``keyframe_points.add`` + ``foreach_set`` writer;
* **per-key**: the same channels keyed the way many add-ons do it, one
  ``keyframe_insert`` per bone channel per frame, on the first ``--slice``
  frames, extrapolated linearly to the full length (linear is generous to the
  per-key way: appending keys at the end never gets cheaper as curves grow).

Prints both and their ratio, and appends a section to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests", "blender")]

import bpy  # noqa: E402
import numpy as np  # noqa: E402

import lagc_synth  # noqa: E402
from lagc_hand_blender.blender import scene as scene_writer  # noqa: E402
from lagc_hand_blender.core import rig  # noqa: E402
from lagc_hand_blender.core.handmotion import VARIANTS  # noqa: E402


def reset():
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)


def bulk_import(motion) -> tuple[float, float, int]:
    reset()
    t0, c0 = time.perf_counter(), time.process_time()
    result = scene_writer.import_motion(motion, scene_writer.ImportOptions(name="Bench"))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    from lagc_hand_blender.blender import compat

    keys = sum(len(fc.keyframe_points) for acts in result.actions.values() for a in acts.values()
               for fc in compat.action_fcurves(a))
    keys += sum(len(fc.keyframe_points) for m in result.meshes.values()
                for fc in compat.action_fcurves(m.animation_data.action))
    return elapsed, cpu, keys


def per_key_slice(motion, n: int) -> tuple[float, float, int]:
    """Key the first ``n`` frames of every channel with ``keyframe_insert``.

    The armatures and meshes are built by the scene writer first (not timed);
    its actions are then replaced by empty ones and filled key by key.
    """
    reset()
    result = scene_writer.import_motion(motion, scene_writer.ImportOptions(name="Slow"))
    keys = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for side, arm in result.armatures.items():
        hand = motion.hands[side]
        names = rig.bone_names(side)
        rest = np.array([np.array(arm.data.bones[b].matrix_local) for b in names[:16]])
        mesh = result.meshes[side]
        for variant in VARIANTS:
            v = hand.variant(variant)
            arm.animation_data.action = bpy.data.actions.new(f"slow_{side}_{variant}")
            bone_q = rig.motion_to_bone_quats(v.quats[:n], rest[:, :3, :3])
            loc = rig.root_to_bone_location(v.root[:n], rest[0, :3, :3], rest[0, :3, 3])
            for i in range(n):
                frame = float(motion.frames[i] + 1)
                if hand.present[i]:
                    pb = arm.pose.bones[names[0]]
                    pb.location = loc[i]
                    pb.keyframe_insert("location", frame=frame, group=names[0])
                    keys += 3
                    for j in range(16):
                        pb = arm.pose.bones[names[j]]
                        pb.rotation_quaternion = bone_q[i, j]
                        pb.keyframe_insert("rotation_quaternion", frame=frame, group=names[j])
                        keys += 4
                arm["lagc_confidence"] = float(hand.confidence[i])
                arm.keyframe_insert('["lagc_confidence"]', frame=frame, group="LAGC")
                arm.hide_viewport = not hand.present[i]
                arm.keyframe_insert("hide_viewport", frame=frame, group="Visibility")
                keys += 2
        for i in range(n):
            frame = float(motion.frames[i] + 1)
            mesh.hide_viewport = mesh.hide_render = not hand.present[i]
            mesh.keyframe_insert("hide_viewport", frame=frame)
            mesh.keyframe_insert("hide_render", frame=frame)
            keys += 2
    return time.perf_counter() - t0, time.process_time() - c0, keys


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--slice", type=int, default=300, help="frames keyed one by one (then extrapolated)")
    ap.add_argument("--no-write", action="store_true", help="do not append to bench/RESULTS.md")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    motion = lagc_synth.make_motion(T=args.frames, seed=1)
    print(f"synthetic motion: {args.frames} frames, 2 hands ({time.perf_counter() - t0:.1f} s to generate)")
    bulk_import(lagc_synth.make_motion(T=50, seed=2))  # warm-up: first operator calls load Python modules
    load = os.getloadavg()[0]
    bulk_s, bulk_cpu, bulk_keys = bulk_import(motion)
    n = min(args.slice, args.frames)
    slow_s, slow_cpu, slow_keys = per_key_slice(motion, n)
    scale = args.frames / n
    ratio, ratio_cpu = slow_s * scale / bulk_s, slow_cpu * scale / bulk_cpu
    lines = [
        f"bpy {bpy.app.version_string}; {args.frames} frames, two hands, raw + clean actions; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs (other jobs share them)",
        f"bulk import (whole scene, {bulk_keys:,} keys): {bulk_s:.2f} s wall, {bulk_cpu:.2f} s CPU  (target <= 3 s)",
        f"per-key keyframe_insert: {slow_s:.2f} s wall / {slow_cpu:.2f} s CPU for {n} frames ({slow_keys:,} keys) "
        f"-> {slow_s * scale:.1f} s wall extrapolated to {args.frames} frames",
        f"speed-up: {ratio:.0f}x wall, {ratio_cpu:.0f}x CPU  (target >= 30x)",
    ]
    print("\n".join(lines))
    if not args.no_write:
        from bench.common import append_results

        append_results("Blender add-on import (bench/addon_import.py)", "\n".join(f"- {line}" for line in lines))
    return 0 if min(bulk_s, bulk_cpu) <= 3.0 and ratio >= 30 else 1


if __name__ == "__main__":
    sys.exit(main())
