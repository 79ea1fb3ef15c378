"""The "LAGC-Hand" tab of the 3D viewport's sidebar."""
from __future__ import annotations

import bpy

from . import operators
from .props import draw_camera_options


class VIEW3D_PT_lagc_hand(bpy.types.Panel):
    bl_label = "LAGC-Hand"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "LAGC-Hand"

    def draw(self, context):
        layout = self.layout
        s = context.scene.lagc_hand
        wm = context.window_manager

        box = layout.box()
        box.label(text="Source", icon='FILE_MOVIE')
        box.prop(s, "source_type", expand=True)
        box.prop(s, "video_path" if s.source_type == 'FILE' else "clip", text="")
        row = box.row(align=True)
        row.prop(s, "use_frame_range")
        sub = row.row(align=True)
        sub.active = s.use_frame_range
        sub.prop(s, "frame_start")
        sub.prop(s, "frame_end")
        box.prop(s, "stride")

        box = layout.box()
        box.label(text="Reconstruction", icon='HAND')
        box.prop(s, "engine")
        if s.engine == 'lagc':
            box.prop(s, "checkpoint")
        draw_camera_options(box, s)
        box.prop(s, "smoothing")

        box = layout.box()
        box.label(text="Output", icon='ARMATURE_DATA')
        box.prop(s, "create_camera")
        box.prop(s, "low_confidence")
        box.prop(s, "limit_influences")
        box.row().prop(s, "variant", expand=True)

        col = layout.column()
        if wm.lagc_hand_running:
            col.progress(factor=wm.lagc_hand_progress / 100.0, text=wm.lagc_hand_status or "Working")
            col.operator(operators.LAGCHAND_OT_cancel_job.bl_idname, icon='CANCEL')
        else:
            col.operator(operators.LAGCHAND_OT_reconstruct.bl_idname, icon='PLAY')
            if wm.lagc_hand_status:
                col.label(text=wm.lagc_hand_status)
        col.operator(operators.LAGCHAND_OT_import_motion.bl_idname, icon='IMPORT')


CLASSES = (VIEW3D_PT_lagc_hand,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
