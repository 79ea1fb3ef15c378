"""Scene settings of the panel and the window manager's job progress."""
from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from . import scene as scene_writer


def _variant_changed(self, context):
    scene_writer.switch_variant(self.variant, context.scene)


class LagcHandSettings(bpy.types.PropertyGroup):
    source_type: EnumProperty(
        name="Source", items=[('FILE', "Video file", "A video file on disk"),
                              ('CLIP', "Movie Clip", "A Movie Clip already loaded in Blender")],
        default='FILE')
    video_path: StringProperty(name="Video", subtype='FILE_PATH', description="Video with the hands to reconstruct")
    clip: PointerProperty(name="Clip", type=bpy.types.MovieClip, description="Movie Clip to reconstruct")
    use_frame_range: BoolProperty(name="Frame range", default=False,
                                  description="Reconstruct only part of the video")
    frame_start: IntProperty(name="First", default=0, min=0, description="First video frame (0-based)")
    frame_end: IntProperty(name="End", default=100, min=1, description="Video frame after the last one")
    stride: IntProperty(name="Every nth frame", default=1, min=1, max=100)
    engine: EnumProperty(
        name="Engine", items=[('mediapipe', "MediaPipe (CPU)", "Fast, works everywhere; recovers a hidden second hand"),
                              ('mediapipe-raw', "MediaPipe, plain", "MediaPipe without second-hand recovery, for comparison"),
                              ('lagc', "LAGC-Hand network", "Needs a trained checkpoint on the backend")],
        default='mediapipe')
    checkpoint: StringProperty(name="Checkpoint", subtype='FILE_PATH', description="LAGC-Hand checkpoint file")
    focal_mm: FloatProperty(name="Focal length", default=0.0, min=0.0, max=1000.0, unit='CAMERA',
                            description="35 mm-equivalent focal length; 0 = guess")
    smoothing: FloatProperty(name="Smoothing", default=1.0, min=0.0, max=3.0,
                             description="Cleanup strength: 0 = raw, 1 = default")
    variant: EnumProperty(
        name="Motion", items=[('clean', "Cleaned", "Filtered motion"), ('raw', "Raw", "Unfiltered motion")],
        default='clean', update=_variant_changed, description="Which motion the hands play")
    low_confidence: FloatProperty(name="Low confidence", default=0.5, min=0.0, max=1.0,
                                  description="Keys of frames below this confidence are marked as Jitter")
    create_camera: BoolProperty(name="Camera from video", default=True,
                                description="Create a camera matching the video, with the video as background")


def job_options(settings: LagcHandSettings) -> dict:
    """The panel's settings as ``ReconstructOptions`` fields."""
    options = {"engine": settings.engine, "smoothing": float(settings.smoothing), "stride": int(settings.stride)}
    if settings.engine == 'lagc' and settings.checkpoint:
        options["checkpoint"] = bpy.path.abspath(settings.checkpoint)
    if settings.focal_mm > 0:
        options["focal_mm"] = float(settings.focal_mm)
    if settings.use_frame_range:
        options["frame_start"] = int(settings.frame_start)
        options["frame_end"] = int(settings.frame_end)
    return options


_register_classes, _unregister_classes = bpy.utils.register_classes_factory((LagcHandSettings,))


def register():
    _register_classes()
    bpy.types.Scene.lagc_hand = PointerProperty(type=LagcHandSettings)
    wm = bpy.types.WindowManager
    wm.lagc_hand_progress = FloatProperty(name="Progress", subtype='PERCENTAGE', min=0, max=100)
    wm.lagc_hand_status = StringProperty(name="Status")
    wm.lagc_hand_running = BoolProperty(name="Job running", default=False)


def unregister():
    wm = bpy.types.WindowManager
    del wm.lagc_hand_running, wm.lagc_hand_status, wm.lagc_hand_progress
    del bpy.types.Scene.lagc_hand
    _unregister_classes()
