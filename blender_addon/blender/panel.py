"""The "LAGC-Hand" tab of the 3D viewport's sidebar."""
from __future__ import annotations

import bpy

from ..jobs import RESUBMITTABLE
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
            _draw_last_job_actions(col, wm)
        col.operator(operators.LAGCHAND_OT_import_motion.bl_idname, icon='IMPORT')


def _draw_last_job_actions(layout, wm) -> None:
    """Resubmit an interrupted/failed/cancelled job; re-attach to one the add-on lost
    touch with (the backend stayed away longer than the retries)."""
    job, state = wm.lagc_hand_last_job, wm.lagc_hand_last_job_state
    if not job:
        return
    row = layout.row(align=True)
    if state in RESUBMITTABLE:
        row.operator(operators.LAGCHAND_OT_resubmit_job.bl_idname, icon='FILE_REFRESH').job_id = job
    elif state in ("queued", "running"):
        op = row.operator(operators.LAGCHAND_OT_attach_job.bl_idname, text="Re-attach", icon='LINKED')
        op.job_id, op.source = job, wm.lagc_hand_last_video


class VIEW3D_PT_lagc_hand_jobs(bpy.types.Panel):
    """The backend's recent jobs: import a result, re-attach or resubmit."""

    bl_label = "Recent jobs"
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "LAGC-Hand"
    bl_parent_id = "VIEW3D_PT_lagc_hand"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        wm = context.window_manager
        layout = self.layout
        layout.operator(operators.LAGCHAND_OT_refresh_jobs.bl_idname, icon='FILE_REFRESH')
        for item in wm.lagc_hand_jobs:
            row = layout.row(align=True)
            row.label(text=f"{item.source or item.job_id[:8]}  ({item.state})")
            if item.state == "done":
                op = row.operator(operators.LAGCHAND_OT_attach_job.bl_idname, text="", icon='IMPORT')
                op.job_id, op.source = item.job_id, item.source
            elif item.state in ("queued", "running"):
                op = row.operator(operators.LAGCHAND_OT_attach_job.bl_idname, text="", icon='LINKED')
                op.job_id, op.source = item.job_id, item.source
            elif item.state in RESUBMITTABLE:
                row.operator(operators.LAGCHAND_OT_resubmit_job.bl_idname, text="",
                             icon='FILE_REFRESH').job_id = item.job_id


CLASSES = (VIEW3D_PT_lagc_hand, VIEW3D_PT_lagc_hand_jobs)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
