"""LAGC-Hand Blender extension: two-hand motion from video, as armatures and skinned meshes.

This module stays free of ``bpy`` at import time on purpose: the backend
imports the numpy-only ``core`` sub-package from here, outside Blender.
Blender calls :func:`register` / :func:`unregister`.
"""


class glTF2ImportUserExtension:  # noqa: N801  (the name Blender's glTF importer looks for)
    """Hook of Blender's glTF importer (found on enabled add-ons by this name):
    a file written by LAGC-Hand carries its clip's frame rate, which the scene
    takes before the keys are created, so they land on whole frames."""

    def gather_import_gltf_before_hook(self, gltf):
        from .blender.export import apply_gltf_fps

        apply_gltf_fps(gltf)


def draw_import(context, layout):
    """Shown in the glTF import dialog: says what the hook above does."""
    layout.label(text="LAGC-Hand files set the scene's frame rate", icon='INFO')


def register():
    from . import blender

    blender.register()


def unregister():
    from . import blender

    blender.unregister()
