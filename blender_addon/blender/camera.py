"""The camera-frame rig: an empty mapping OpenCV's camera frame into Blender,
a camera matching the intrinsics, and the source video as its background."""
from __future__ import annotations

import math
import os

import bpy
from mathutils import Matrix

from ..core import camera as pinhole
from ..core import rig
from ..core.handmotion import HandMotion

#: World transform of the camera-frame empty.  OpenCV's camera frame (x right,
#: y down, z forward) must become a Blender camera's frame (looks down -Z, +Y up):
#: a 180 degree turn about X.  Turning the whole rig a further -90 degrees about
#: world X makes the camera look along +Y with world +Z up, Blender's usual
#: "front" view, so the hands stand upright in the viewport.
CAMERA_FRAME_MATRIX = Matrix.Rotation(math.radians(-90.0), 4, 'X')


def camera_frame_empty(name: str, collection, created: list) -> bpy.types.Object:
    """The parent of everything in camera coordinates (OpenCV, metres)."""
    empty = bpy.data.objects.new(name, None)
    created.append(empty)
    collection.objects.link(empty)
    empty.empty_display_type = 'ARROWS'
    empty.empty_display_size = 0.05
    empty.matrix_world = CAMERA_FRAME_MATRIX
    return empty


def build_camera(name: str, motion: HandMotion, parent, collection, created: list) -> bpy.types.Object:
    """A camera at the camera frame's origin whose projection equals ``motion.intrinsics``."""
    params = pinhole.camera_params(motion.intrinsics, motion.image_size)
    data = bpy.data.cameras.new(name)
    created.append(data)
    for attr, value in params.camera_data_settings().items():
        setattr(data, attr, value)
    data.clip_start = 0.01
    data.clip_end = 100.0
    obj = bpy.data.objects.new(name, data)
    created.append(obj)
    collection.objects.link(obj)
    obj.parent = parent
    # Blender's camera looks down its -Z with +Y up; OpenCV's looks down +Z with y down.
    obj.rotation_euler = (math.pi, 0.0, 0.0)
    return obj


def apply_render_settings(scene, motion: HandMotion) -> None:
    """Resolution, pixel aspect, frame range and fps of the scene from the motion."""
    params = pinhole.camera_params(motion.intrinsics, motion.image_size)
    r = scene.render
    for attr, value in params.render_settings().items():
        setattr(r, attr, value)
    fps, base = rig.blender_fps(rig.source_fps(motion.fps, motion.frames))
    r.fps, r.fps_base = fps, base
    if motion.num_frames:
        scene.frame_start = int(motion.frames[0]) + 1
        scene.frame_end = int(motion.frames[-1]) + 1


def attach_video(camera_obj, video_path: str, created: list):
    """Load ``video_path`` as a Movie Clip and show it behind the camera view.

    Scene frame 1 shows video frame 0, the same offset the keys use.
    Returns the clip, or ``None`` when the file is missing (not an error: the
    motion is still useful without its footage).
    """
    if not video_path or not os.path.isfile(video_path):
        return None
    clip = bpy.data.movieclips.load(video_path)
    created.append(clip)
    clip.frame_start = 1
    cam = camera_obj.data
    cam.show_background_images = True
    bg = cam.background_images.new()
    bg.source = 'MOVIE_CLIP'
    bg.clip = clip
    bg.use_camera_clip = False
    bg.alpha = 1.0
    bg.display_depth = 'BACK'
    return clip
