"""Error of limiting skin weights to 4 influences per vertex (glTF / game engines).

Imports one HandMotion twice with the add-on's scene writer, once with the
model's full weights and once limited to 4 (``max_influences=4``, renormalised),
and compares the evaluated (Blender-deformed) vertices on every frame:
max / mean displacement in millimetres.  By default the motion comes from real
footage: a realdev clip reconstructed with ``lagc-hand reconstruct``.

    python bench/skin_influences.py [--motion M.npz | --video V.mp4 --frames 0:90] [--realdev PATH]
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CLIP = "mpsamples_hand_landmarker_test_video.mp4"


def realdev_dir(arg: str | None) -> str | None:
    for cand in (arg, os.environ.get("LAGC_REALDEV"), os.path.join(REPO, "..", "shared", "realdev"),
                 "/work/shared/realdev"):
        if cand and os.path.isdir(cand):
            return os.path.abspath(cand)
    return None


def reconstruct(video: str, frames: str) -> str:
    out = os.path.join(tempfile.mkdtemp(prefix="lagc-skin-"), "motion.npz")
    cmd = [sys.executable, "-m", "lagc_hand.cli", "reconstruct", video, "-o", out, "--frames", frames]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def evaluated_vertices(objs, frames) -> np.ndarray:
    """(F, O, V, 3) world-space vertices of the meshes ``objs`` on ``frames``."""
    import bpy

    out = []
    for f in frames:
        bpy.context.scene.frame_set(int(f))
        dg = bpy.context.evaluated_depsgraph_get()
        per = []
        for ob in objs:
            ev = ob.evaluated_get(dg)
            me = ev.to_mesh()
            co = np.empty(len(me.vertices) * 3)
            me.vertices.foreach_get("co", co)
            m = np.array(ev.matrix_world)
            per.append(co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])
            ev.to_mesh_clear()
        out.append(per)
    return np.array(out)


def measure(motion_path: str) -> dict:
    import bpy
    from lagc_hand_blender.blender import scene as scene_writer
    from lagc_hand_blender.core import handmotion as hm
    from lagc_hand_blender.core.skinning import influence_counts

    motion = hm.load(motion_path)
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    full = scene_writer.import_motion(motion, scene_writer.ImportOptions(name="full", camera=False))
    four = scene_writer.import_motion(motion, scene_writer.ImportOptions(name="four", camera=False,
                                                                          max_influences=4))
    sides = sorted(full.meshes)
    frames = np.asarray(motion.frames) + 1
    a = evaluated_vertices([full.meshes[s] for s in sides], frames)
    b = evaluated_vertices([four.meshes[s] for s in sides], frames)
    present = np.stack([motion.hands[s].present for s in sides], axis=1)  # (F, O)
    d = np.linalg.norm(a - b, axis=-1)[present] * 1000.0  # (N, V) mm, frames where the hand is seen
    counts = influence_counts(motion.skin_weights)
    dropped = np.sort(motion.skin_weights, axis=1)[:, ::-1][:, 4:].sum(axis=1)
    return {"frames": int(len(frames)), "hands": sides, "max_mm": float(d.max()), "mean_mm": float(d.mean()),
            "p99_mm": float(np.percentile(d, 99)), "max_influences_before": int(counts.max()),
            "vertices_over_4": int((counts > 4).sum()), "vertices": int(counts.size),
            "max_dropped_weight": float(dropped.max())}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--motion", help="a HandMotion .npz (skips the reconstruction)")
    p.add_argument("--video", help=f"video to reconstruct (default: realdev/videos/{DEFAULT_CLIP})")
    p.add_argument("--frames", default="0:90")
    p.add_argument("--realdev")
    args = p.parse_args(argv)
    source = args.motion
    if source is None:
        video = args.video
        if video is None:
            root = realdev_dir(args.realdev)
            if root is None:
                print("realdev not found (--realdev PATH or LAGC_REALDEV); pass --motion or --video")
                return 2
            video = os.path.join(root, "videos", DEFAULT_CLIP)
        source = reconstruct(video, args.frames)
        label = f"{os.path.basename(video)} frames {args.frames}"
    else:
        label = os.path.basename(source)
    r = measure(source)
    if args.motion is None:
        os.unlink(source)
        os.rmdir(os.path.dirname(source))
    print(f"skin influences 4 vs all on {label}: {r['frames']} frames, hands {','.join(r['hands'])}; "
          f"{r['vertices_over_4']} of {r['vertices']} vertices have more than 4 (at most "
          f"{r['max_influences_before']}), largest weight dropped {r['max_dropped_weight']:.2e}")
    print(f"vertex displacement 4 vs all influences: max {r['max_mm']:.4f} mm, mean {r['mean_mm']:.6f} mm, "
          f"p99 {r['p99_mm']:.4f} mm")
    print(f"({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{platform.processor() or platform.machine()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
