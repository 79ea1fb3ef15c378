"""Add-on preferences: where the backend is and how to start it."""
from __future__ import annotations

import os
import tempfile

import bpy
from bpy.props import StringProperty

from .. import __package__ as base_package
from ..core.paths import DEFAULT_URL, token_file
from .compat import PATH_OPTIONS


class LagcHandPreferences(bpy.types.AddonPreferences):
    bl_idname = base_package

    backend_url: StringProperty(name="Backend URL", default=DEFAULT_URL,
                                description="Address of the local LAGC-Hand server (127.0.0.1 only)")
    token_file: StringProperty(name="Token file", subtype='FILE_PATH', default="",
                               options=PATH_OPTIONS,
                               description=f"File holding the backend's token; empty = {token_file()}")
    backend_env: StringProperty(name="Backend environment", subtype='FILE_PATH', default="",
                                options=PATH_OPTIONS,
                                description="The venv/conda folder the backend is installed in, or its lagc-hand "
                                            "program; empty = lagc-hand from the PATH")
    backend_command: StringProperty(name="Start command", default="lagc-hand serve",
                                    description="Command that starts a local backend (run by Start backend); "
                                                "a leading 'lagc-hand' is the backend environment's")
    result_dir: StringProperty(name="Results folder", subtype='DIR_PATH', default="",
                               options=PATH_OPTIONS,
                               description="Where reconstructed motion files go; empty = the add-on's user folder")

    def draw(self, context):
        layout = self.layout
        col = layout.column()
        col.prop(self, "backend_url")
        col.prop(self, "token_file")
        row = col.row(align=True)
        row.prop(self, "backend_env")
        row.operator("lagc_hand.check_backend_env", text="Check", icon='CHECKMARK')
        col.prop(self, "backend_command")
        col.prop(self, "result_dir")
        row = layout.row()
        row.operator("lagc_hand.start_backend", icon='PLAY')
        row.operator("lagc_hand.check_connection", icon='LINKED')


def get(context=None):
    """The preferences, or ``None`` when the add-on is not enabled (plain import)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(base_package)
    return addon.preferences if addon else None


def result_dir(context=None) -> str:
    prefs = get(context)
    if prefs and prefs.result_dir:
        return bpy.path.abspath(prefs.result_dir)
    try:
        return bpy.utils.extension_path_user(base_package, path="results", create=True)
    except (ValueError, AttributeError):  # not installed as an extension
        return os.path.join(tempfile.gettempdir(), "lagc-hand-results")


CLASSES = (LagcHandPreferences,)

register, unregister = bpy.utils.register_classes_factory(CLASSES)
