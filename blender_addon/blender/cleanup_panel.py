"""The "Cleanup" and "Retarget" sub-panels of the LAGC-Hand sidebar tab.

The frame range comes from the scene's preview range when it is on (what
animators already use to mark a span), else the scene range.
"""
from __future__ import annotations

import bpy

from . import cleanup_ops, retarget


def _range(context) -> tuple[int, int]:
    s = context.scene
    if s.use_preview_range:
        return s.frame_preview_start, s.frame_preview_end
    return s.frame_start, s.frame_end


class _SubPanel:
    """A closed-by-default panel in the sidebar's LAGC-Hand tab."""

    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "LAGC-Hand"
    bl_options = {'DEFAULT_CLOSED'}


class VIEW3D_PT_lagc_hand_cleanup(_SubPanel, bpy.types.Panel):
    bl_label = "Cleanup"

    def draw(self, context):
        layout = self.layout
        ob = context.active_object
        if not cleanup_ops.LAGCHAND_OT_smooth.poll(context):
            layout.label(text="Select a LAGC hand armature", icon='INFO')
            return
        s, e = _range(context)
        layout.label(text=f"{ob.name}: frames {s}-{e}" + (" (preview range)" if context.scene.use_preview_range else ""))
        col = layout.column(align=True)
        for cls, icon in ((cleanup_ops.LAGCHAND_OT_smooth, 'MOD_SMOOTH'),
                          (cleanup_ops.LAGCHAND_OT_despike, 'IPO_ELASTIC'),
                          (cleanup_ops.LAGCHAND_OT_fill_gaps, 'IPO_BEZIER'),
                          (cleanup_ops.LAGCHAND_OT_swap_hands, 'ARROW_LEFTRIGHT'),
                          (cleanup_ops.LAGCHAND_OT_reset_raw, 'LOOP_BACK'),
                          (cleanup_ops.LAGCHAND_OT_reduce_keys, 'KEYFRAME')):
            op = col.operator(cls.bl_idname, icon=icon)
            op.frame_start, op.frame_end = s, e
        layout.operator(cleanup_ops.LAGCHAND_OT_refit_shape.bl_idname, icon='FULLSCREEN_ENTER')


class VIEW3D_PT_lagc_hand_retarget(_SubPanel, bpy.types.Panel):
    bl_label = "Retarget"

    def draw(self, context):
        layout = self.layout
        layout.label(text="Select the LAGC hand, then the target rig (active)")
        op = layout.operator(retarget.LAGCHAND_OT_retarget.bl_idname, icon='ARMATURE_DATA')
        s, e = _range(context)
        op.frame_start, op.frame_end = s, e


CLASSES = (VIEW3D_PT_lagc_hand_cleanup, VIEW3D_PT_lagc_hand_retarget)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
