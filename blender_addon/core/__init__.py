"""Pure-numpy core shared by the Blender add-on and the backend.

Nothing in this sub-package imports ``bpy``, ``torch`` or anything outside the
standard library and numpy, so it runs inside Blender's bundled Python and in
the backend alike (the backend imports it as ``lagc_hand_blender.core``).
"""
