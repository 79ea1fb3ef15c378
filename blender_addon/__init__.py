"""LAGC-Hand Blender extension: two-hand motion from video, as armatures and skinned meshes.

This module stays free of ``bpy`` at import time on purpose: the backend
imports the numpy-only ``core`` sub-package from here, outside Blender.
Blender calls :func:`register` / :func:`unregister`.
"""


def register():
    from . import blender

    blender.register()


def unregister():
    from . import blender

    blender.unregister()
