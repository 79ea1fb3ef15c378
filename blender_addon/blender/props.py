"""Scene settings of the panel and the window manager's job progress.

The reconstruction options' properties are built from the one declaration of
the options (``core/options_spec.py``): names, bounds, defaults, engine choices
and descriptions come from there.
"""
from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, FloatVectorProperty,
                       IntProperty, PointerProperty, StringProperty)

from ..core.options_spec import ENGINES, SPECS
from . import scene as scene_writer
from .compat import PATH_OPTIONS
from .hand import SCENE_FRAME_OFFSET

#: How the panel describes the camera; each but GUESS sends one camera option.
CAMERA_CHOICES = (
    ('GUESS', "Guess", "No camera information: a 60 degree horizontal field of view"),
    ('FOCAL', "Focal length", SPECS["focal_mm"].help),
    ('FOV', "Field of view", SPECS["fov_deg"].help),
    ('INTRINSICS', "Intrinsics", SPECS["intrinsics"].help),
    ('CALIBRATION', "Calibration file", SPECS["calibration"].help),
)
_CAMERA_OPTION = {'FOCAL': "focal_mm", 'FOV': "fov_deg", 'INTRINSICS': "intrinsics", 'CALIBRATION': "calibration"}


def _desc(name: str) -> str:
    text = SPECS[name].help
    return text[:1].upper() + text[1:]


def _bounds(name: str) -> dict:
    s = SPECS[name]
    return {"min": s.minimum, "max": s.maximum}


def _variant_changed(self, context):
    scene_writer.switch_variant(self.variant, context.scene)


class LagcHandSettings(bpy.types.PropertyGroup):
    source_type: EnumProperty(
        name="Source", items=[('FILE', "Video file", "A video file on disk"),
                              ('CLIP', "Movie Clip", "A Movie Clip already loaded in Blender")],
        default='FILE')
    video_path: StringProperty(name="Video", subtype='FILE_PATH', options=PATH_OPTIONS,
                                description="Video with the hands to reconstruct")
    clip: PointerProperty(name="Clip", type=bpy.types.MovieClip, description="Movie Clip to reconstruct")
    use_frame_range: BoolProperty(name="Frame range", default=False,
                                  description="Reconstruct only part of the video")
    # Blender's convention, not the API's: see api_frame_range().
    frame_start: IntProperty(name="First", default=1, min=1, max=SPECS["frame_start"].maximum + 1,
                             description="First frame to reconstruct, numbered like the scene's frames "
                                         "(the video's first frame is scene frame 1)")
    frame_end: IntProperty(name="Last", default=100, min=1, max=SPECS["frame_end"].maximum,
                           description="Last frame to reconstruct (included), numbered like the scene's frames")
    stride: IntProperty(name=SPECS["stride"].label, default=SPECS["stride"].default, description=_desc("stride"),
                        **_bounds("stride"))
    engine: EnumProperty(name=SPECS["engine"].label, items=[(n, label, d) for n, label, d in ENGINES],
                         default=SPECS["engine"].default, description="Hand engine")
    checkpoint: StringProperty(name=SPECS["checkpoint"].label, subtype='FILE_PATH', options=PATH_OPTIONS,
                                description=_desc("checkpoint"))
    camera: EnumProperty(name="Camera", items=CAMERA_CHOICES, default='GUESS',
                         description="What is known about the camera that filmed the video")
    focal_mm: FloatProperty(name=SPECS["focal_mm"].label, default=26.0, unit='CAMERA',
                            description=_desc("focal_mm"), **_bounds("focal_mm"))
    fov_deg: FloatProperty(name=SPECS["fov_deg"].label, default=60.0, description=_desc("fov_deg"),
                           **_bounds("fov_deg"))
    intrinsics: FloatVectorProperty(name=SPECS["intrinsics"].label, size=SPECS["intrinsics"].length,
                                    default=(1000.0, 1000.0, 960.0, 540.0), description=_desc("intrinsics"),
                                    **_bounds("intrinsics"))
    calibration: StringProperty(name=SPECS["calibration"].label, subtype='FILE_PATH', options=PATH_OPTIONS,
                                description=_desc("calibration"))
    smoothing: FloatProperty(name=SPECS["smoothing"].label, default=SPECS["smoothing"].default, soft_max=3.0,
                             description=_desc("smoothing"), **_bounds("smoothing"))
    variant: EnumProperty(
        name="Motion", items=[('clean', "Cleaned", "Filtered motion"), ('raw', "Raw", "Unfiltered motion")],
        default='clean', update=_variant_changed, description="Which motion the hands play")
    low_confidence: FloatProperty(name="Low confidence", default=0.5, min=0.0, max=1.0,
                                  description="Keys of frames below this confidence are marked as Jitter")
    limit_influences: BoolProperty(name="4 bone influences", default=False,
                                   description="Keep each vertex's 4 largest skin weights (renormalised), "
                                               "as glTF, FBX game pipelines and game engines expect")
    create_camera: BoolProperty(name="Camera from video", default=True,
                                description="Create a camera matching the video, with the video as background")


def api_frame_range(first: int, last: int) -> tuple[int, int]:
    """The panel's frame range -> the API's ``(frame_start, frame_end)``.

    The panel uses Blender's convention: scene frames, 1-based, ``last``
    included, and the scene writer puts video frame ``i`` (0-based) on scene
    frame ``i + SCENE_FRAME_OFFSET`` (= ``i + 1``).  The API (``core/options_spec.py``)
    counts source frames from 0 with an exclusive end.  So First 10, Last 40
    becomes ``frame_start=9, frame_end=40``: video frames 9..39, keyed on scene
    frames 10..40.  This is the one place the two conventions meet.
    Raises ``ValueError`` for an empty range or a first frame below 1.
    """
    if first < SCENE_FRAME_OFFSET:
        raise ValueError(f"the first frame must be {SCENE_FRAME_OFFSET} or more, got {first}")
    if last < first:
        raise ValueError(f"the frame range {first}..{last} is empty: Last must not be before First")
    return first - SCENE_FRAME_OFFSET, last - SCENE_FRAME_OFFSET + 1


def job_options(settings: LagcHandSettings) -> dict:
    """The panel's settings as ``ReconstructOptions`` fields (``ValueError`` for a bad frame range)."""
    options = {"engine": settings.engine, "smoothing": float(settings.smoothing), "stride": int(settings.stride)}
    if settings.engine == 'lagc' and settings.checkpoint:
        options["checkpoint"] = bpy.path.abspath(settings.checkpoint)
    name = _CAMERA_OPTION.get(settings.camera)
    if name == "intrinsics":
        options[name] = [float(v) for v in settings.intrinsics]
    elif name == "calibration":
        if settings.calibration:
            options[name] = bpy.path.abspath(settings.calibration)
    elif name is not None:
        options[name] = float(getattr(settings, name))
    if settings.use_frame_range:
        options["frame_start"], options["frame_end"] = api_frame_range(int(settings.frame_start),
                                                                       int(settings.frame_end))
    return options


def draw_camera_options(layout, settings: LagcHandSettings) -> None:
    """The camera choice and the one field it needs."""
    layout.prop(settings, "camera")
    name = _CAMERA_OPTION.get(settings.camera)
    if name is not None:
        layout.prop(settings, name)


class LagcHandJobItem(bpy.types.PropertyGroup):
    """One row of the panel's Recent jobs (GET /jobs)."""

    job_id: StringProperty(name="Job")
    source: StringProperty(name="Source")
    state: StringProperty(name="State")
    created: StringProperty(name="Created")


_register_classes, _unregister_classes = bpy.utils.register_classes_factory((LagcHandSettings, LagcHandJobItem))


def register():
    _register_classes()
    bpy.types.Scene.lagc_hand = PointerProperty(type=LagcHandSettings)
    wm = bpy.types.WindowManager
    wm.lagc_hand_progress = FloatProperty(name="Progress", subtype='PERCENTAGE', min=0, max=100)
    wm.lagc_hand_status = StringProperty(name="Status")
    wm.lagc_hand_running = BoolProperty(name="Job running", default=False)
    wm.lagc_hand_jobs = CollectionProperty(type=LagcHandJobItem)
    wm.lagc_hand_last_job = StringProperty(name="Last job")
    wm.lagc_hand_last_job_state = StringProperty(name="Last job state")
    wm.lagc_hand_last_video = StringProperty(name="Last video", subtype='FILE_PATH', options=PATH_OPTIONS)


def unregister():
    wm = bpy.types.WindowManager
    del wm.lagc_hand_last_video, wm.lagc_hand_last_job_state, wm.lagc_hand_last_job, wm.lagc_hand_jobs
    del wm.lagc_hand_running, wm.lagc_hand_status, wm.lagc_hand_progress
    del bpy.types.Scene.lagc_hand
    _unregister_classes()
