"""One animation-data code path for Blender 4.2, 4.4/4.5 and 5.0.

* <= 4.3: F-Curves live on the Action (``action.fcurves.new(path, index=, action_group=)``).
* 4.4 / 4.5: slotted actions; the legacy API still exists but only for the first
  slot, so we always go through slot -> layer -> keyframe strip -> channelbag.
* 5.0: ``Action.fcurves`` is gone; ``channelbag.fcurves.new(path, *, index=0,
  group_name='')`` takes the group by name.
"""
from __future__ import annotations

import bpy

#: Blender has slotted actions (4.4+).  4.3 had them behind an experimental flag
#: only, so feature detection alone is not enough.
SLOTTED = bpy.app.version >= (4, 4, 0) and hasattr(bpy.types, "ActionSlot")
#: ``ActionChannelbagFCurves.new`` accepts ``group_name`` (5.0+).
FCURVE_GROUP_NAME_ARG = bpy.app.version >= (5, 0, 0)

_KEY_RNA = bpy.types.Keyframe.bl_rna.properties

#: ``options=`` of string properties holding paths: Blender's "//" (relative to the
#: .blend) is resolved with bpy.path.abspath() wherever they are read, so say it is
#: supported (5.0 warns on "//" otherwise); 4.2 knows no such option and refuses it.
PATH_OPTIONS = ({'PATH_SUPPORTS_BLEND_RELATIVE'}
                if "is_path_supports_blend_relative" in bpy.types.Property.bl_rna.properties else set())


def interpolation_value(name: str) -> int:
    """Integer of a Keyframe ``interpolation`` enum item, for ``foreach_set``."""
    return _KEY_RNA["interpolation"].enum_items[name].value


def keyframe_type_value(name: str) -> int:
    """Integer of a Keyframe ``type`` enum item ('KEYFRAME', 'BREAKDOWN', 'JITTER', ...)."""
    return _KEY_RNA["type"].enum_items[name].value


class ChannelWriter:
    """Creates F-Curves of one action for one data-block, on any supported Blender.

    ``ChannelWriter(obj, action)`` assigns ``action`` to ``obj`` (and a slot on 4.4+);
    :meth:`new` returns an empty F-Curve for ``(data_path, index)`` in group ``group``.
    """

    def __init__(self, id_data: bpy.types.ID, action: bpy.types.Action):
        self.action = action
        ad = id_data.animation_data_create()
        ad.action = action
        self._groups: dict[str, object] = {}
        if not SLOTTED:
            self._bag = None
            return
        slot = action.slots[0] if len(action.slots) else action.slots.new(id_data.id_type, id_data.name)
        ad.action_slot = slot
        layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
        strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type='KEYFRAME')
        self._bag = strip.channelbag(slot, ensure=True)

    def new(self, data_path: str, index: int = 0, group: str = "") -> bpy.types.FCurve:
        if self._bag is None:
            return self.action.fcurves.new(data_path, index=index, action_group=group)
        if FCURVE_GROUP_NAME_ARG:
            return self._bag.fcurves.new(data_path, index=index, group_name=group)
        fc = self._bag.fcurves.new(data_path, index=index)
        if group:
            grp = self._groups.get(group)
            if grp is None:
                grp = self._bag.groups.new(group)
                self._groups[group] = grp
            fc.group = grp
        return fc


def action_fcurves(action: bpy.types.Action) -> list:
    """All F-Curves of an action (every slot), on any supported Blender."""
    if not SLOTTED:
        return list(action.fcurves)
    out = []
    for layer in action.layers:
        for strip in layer.strips:
            for bag in strip.channelbags:
                out.extend(bag.fcurves)
    return out


def find_fcurve(action: bpy.types.Action, data_path: str, index: int = 0):
    for fc in action_fcurves(action):
        if fc.data_path == data_path and fc.array_index == index:
            return fc
    return None


def assign_action(id_data: bpy.types.ID, action: bpy.types.Action) -> None:
    """Make ``action`` the active action of ``id_data`` (its first slot on 4.4+)."""
    ad = id_data.animation_data_create()
    ad.action = action
    if SLOTTED and len(action.slots) and ad.action_slot != action.slots[0]:
        ad.action_slot = action.slots[0]
