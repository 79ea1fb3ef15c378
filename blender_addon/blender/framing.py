"""Make imported hands visible in the user's scene: keep other objects out of
the reconstruct camera's view, and light the hands.

Blender's default scene puts a 2 m cube at the origin, exactly where the
camera and the hands are created; it hides them and the video background.
What the add-on does (documented in blender_addon/README.md): objects of the
scene that are not part of the import and lie between the camera and the far
side of the hands are hidden in the viewport and in renders, and named in
the import report, so the user knows and can unhide them in the Outliner.
Objects behind the hands and out of view are left alone.
"""
from __future__ import annotations

import numpy as np

import bpy

from ..core.frustum import box_may_be_visible, frustum_planes
from ..core.handmotion import HandMotion, SIDES

#: Object types that render as surfaces and can cover the hands.
SURFACE_TYPES = {'MESH', 'CURVE', 'SURFACE', 'META', 'FONT', 'VOLUME', 'POINTCLOUD', 'CURVES', 'GREASEPENCIL',
                 'GPENCIL'}
#: Past the farthest hand: room for fingers in front of the wrist and behind it.
DEPTH_MARGIN_M = 0.3


def hands_far_depth(motion: HandMotion) -> float:
    """Distance (metres, along the optical axis) just beyond the farthest wrist."""
    depths = [np.asarray(motion.hands[s].clean.root)[np.asarray(motion.hands[s].present, bool), 2] for s in SIDES]
    depths = np.concatenate([d for d in depths if d.size] or [np.array([1.0])])
    return float(np.max(depths)) + DEPTH_MARGIN_M


def objects_in_view(scene, camera_obj, far: float, skip: set) -> list:
    """Surface objects of ``scene`` (not in ``skip``) that may be seen by
    ``camera_obj`` up to ``far`` metres."""
    cam = camera_obj.data
    frame = np.array([list(v) for v in cam.view_frame(scene=scene)])
    planes = frustum_planes(frame, cam.clip_start, far)
    to_cam = np.array(camera_obj.matrix_world.inverted())
    found = []
    for ob in scene.objects:
        if ob in skip or ob.type not in SURFACE_TYPES or ob.hide_render:
            continue
        box = np.array([list(c) for c in ob.bound_box])  # local corners
        m = to_cam @ np.array(ob.matrix_world)
        corners = box @ m[:3, :3].T + m[:3, 3]
        if box_may_be_visible(corners, planes):
            found.append(ob)
    return found


def clear_camera_view(scene, camera_obj, far: float, own_objects) -> list[str]:
    """Hide (viewport and render) the objects :func:`objects_in_view` finds;
    returns their names."""
    skip = set(own_objects)
    hidden = []
    view_layer = bpy.context.view_layer
    for ob in objects_in_view(scene, camera_obj, far, skip):
        ob.hide_render = True
        if ob.name in view_layer.objects:
            ob.hide_set(True)
        hidden.append(ob.name)
    return hidden


def add_key_light(name: str, camera_obj, collection, created: list):
    """A sun shining along the camera's view (slightly from above), so the hands
    are lit in EEVEE and Cycles whatever lights the scene has."""
    data = bpy.data.lights.new(name, 'SUN')
    created.append(data)
    data.energy = 3.0
    data.angle = 0.2  # soft-ish shadows
    obj = bpy.data.objects.new(name, data)
    created.append(obj)
    collection.objects.link(obj)
    obj.parent = camera_obj
    obj.rotation_euler = (0.35, -0.2, 0.0)  # radians; camera -Z is the view direction
    return obj
