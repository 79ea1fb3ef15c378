"""Plain values shared by the add-on tests (no bpy import here: conftest.py must
set the environment before bpy is first imported).  Not in conftest.py because
``from conftest import`` is ambiguous with tests/conftest.py in a whole-suite run."""
from __future__ import annotations

import importlib
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ext_module(ext, name: str):
    """A sub-module of the installed extension, e.g. ``ext_module(ext, "blender.scene")``."""
    return importlib.import_module(f"{ext.__name__}.{name}")
