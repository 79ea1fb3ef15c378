"""Renders of an imported motion over its footage (docs, QA, quick checks).

Camera background images do not appear in renders, so :func:`add_video_plate`
puts the video on a plane that exactly fills the camera's view at ``depth``
metres (behind the hands), shaded as pure emission so the footage keeps its
colours; :func:`render_still` renders one frame.
"""
from __future__ import annotations

import os

import numpy as np

import bpy

from ..core.handmotion import HandMotion


def plate_corners(intrinsics: np.ndarray, image_size: tuple[int, int], depth: float) -> np.ndarray:
    """(4, 3) camera-frame corners (OpenCV, metres) of the image rectangle at ``depth``:
    top-left, top-right, bottom-right, bottom-left pixel corners."""
    K = np.asarray(intrinsics, dtype=np.float64)
    w, h = image_size
    uv = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
    x = (uv[:, 0] - K[0, 2]) / K[0, 0] * depth
    y = (uv[:, 1] - K[1, 2]) / K[1, 1] * depth
    return np.stack([x, y, np.full(4, depth)], axis=1)


def add_video_plate(result, motion: HandMotion, video_path: str, depth: float = 3.0, created: list | None = None):
    """A plane showing ``video_path`` in sync with the keys (scene frame 1 = video frame 0)."""
    if not os.path.isfile(video_path):
        raise FileNotFoundError(f"video {video_path} does not exist")
    created = created if created is not None else []
    corners = plate_corners(motion.intrinsics, motion.image_size, depth)
    mesh = bpy.data.meshes.new("LAGC_video_plate")
    created.append(mesh)
    # Face wound so its normal faces the camera (towards -z in the camera frame).
    mesh.from_pydata(corners.tolist(), [], [(0, 3, 2, 1)])
    uv = mesh.uv_layers.new(name="UV")
    uvs = {0: (0.0, 1.0), 1: (1.0, 1.0), 2: (1.0, 0.0), 3: (0.0, 0.0)}
    for loop in mesh.loops:
        uv.data[loop.index].uv = uvs[loop.vertex_index]
    image = bpy.data.images.load(video_path, check_existing=True)
    image.source = 'MOVIE'
    mat = bpy.data.materials.new("LAGC_video_plate")
    created.append(mat)
    if bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    nodes.clear()
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.image_user.frame_duration = max(1, image.frame_duration)
    tex.image_user.frame_start = 1
    tex.image_user.use_auto_refresh = True
    emit = nodes.new("ShaderNodeEmission")
    out = nodes.new("ShaderNodeOutputMaterial")
    links.new(tex.outputs["Color"], emit.inputs["Color"])
    links.new(emit.outputs["Emission"], out.inputs["Surface"])
    mesh.materials.append(mat)
    obj = bpy.data.objects.new("LAGC_video_plate", mesh)
    created.append(obj)
    result.collection.objects.link(obj)
    obj.parent = result.root
    return obj


def render_still(path: str, frame: int, samples: int = 16, percentage: int = 100) -> str:
    """Render ``frame`` of the context scene with Cycles (CPU, works headless) to ``path`` (PNG)."""
    scene = bpy.context.scene
    scene.frame_set(frame)
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = samples
    scene.render.resolution_percentage = percentage
    scene.view_settings.view_transform = 'Standard'  # the plate keeps the footage's colours
    if scene.world is None:
        scene.world = bpy.data.worlds.new("LAGC_world")
    scene.world.color = (0.6, 0.6, 0.6)
    if scene.camera is not None and not any(o.type == 'LIGHT' for o in scene.objects):
        # A sun shining along the view direction (a child of the camera: its -Z is forward).
        sun = bpy.data.objects.new("LAGC_sun", bpy.data.lights.new("LAGC_sun", 'SUN'))
        sun.data.energy = 4.0
        scene.collection.objects.link(sun)
        sun.parent = scene.camera
        sun.rotation_euler = (0.35, -0.25, 0.0)
    scene.render.image_settings.file_format = 'PNG'
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)
    return path


HIGHLIGHT = {"left": (0.05, 0.55, 0.95, 1.0), "right": (0.1, 0.85, 0.3, 1.0)}


def highlight_hands(result) -> None:
    """Vivid per-hand colours (left blue, right green), so that a render shows
    where the meshes sit against skin-coloured footage."""
    for side, mesh in result.meshes.items():
        mat = mesh.data.materials[0]
        mat.diffuse_color = HIGHLIGHT[side]
        bsdf = mat.node_tree.nodes.get("Principled BSDF") if mat.node_tree else None
        if bsdf is not None:
            bsdf.inputs["Base Color"].default_value = HIGHLIGHT[side]


def render_overlay(motion_path: str, video_path: str, out_png: str, frame: int | None = None,
                   samples: int = 16, percentage: int = 100, highlight: bool = False) -> str:
    """Import ``motion_path`` into an empty scene, put ``video_path`` behind it and
    render one frame (default: the middle one of the frames where both hands are
    present) to ``out_png``.  ``highlight`` colours the hands vividly.  Returns the path."""
    from ..core.handmotion import load
    from . import scene as scene_writer

    motion = load(motion_path)
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    result = scene_writer.import_motion(motion, scene_writer.ImportOptions(name="overlay", video_path=""))
    add_video_plate(result, motion, video_path)
    if highlight:
        highlight_hands(result)
    if frame is None:
        both = motion.hands["left"].present & motion.hands["right"].present
        i = int(np.nonzero(both)[0][len(np.nonzero(both)[0]) // 2]) if both.any() else motion.num_frames // 2
        frame = int(motion.frames[i]) + 1
    return render_still(os.path.abspath(out_png), frame, samples=samples, percentage=percentage)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Render a HandMotion over its video (one frame, Cycles CPU).")
    ap.add_argument("motion")
    ap.add_argument("video")
    ap.add_argument("-o", "--out", required=True, help="PNG to write")
    ap.add_argument("--frame", type=int, help="scene frame (video frame + 1); default: both hands present")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--highlight", action="store_true", help="colour the hands vividly (left blue, right green)")
    args = ap.parse_args()
    print(render_overlay(args.motion, args.video, args.out, args.frame, args.samples, highlight=args.highlight))
