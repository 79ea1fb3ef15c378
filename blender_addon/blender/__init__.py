"""Everything that needs ``bpy``: scene writer, operators, panel, preferences.

Sub-modules are imported inside :func:`register` so that importing the scene
writer alone (headless scripts, the batch command) registers no UI.
"""

_MODULES = ("props", "preferences", "operators", "panel", "cleanup_ops", "retarget", "cleanup_panel")


def _modules():
    import importlib

    return [importlib.import_module(f".{name}", __name__) for name in _MODULES]


def register():
    for mod in _modules():
        mod.register()


def unregister():
    for mod in reversed(_modules()):
        mod.unregister()
