"""Fixtures of the Blender add-on tests (real ``bpy`` module).

The add-on is installed the way a user installs it: ``build.py`` builds the
extension zip, ``bpy.ops.extensions.package_install_files`` installs and
enables it in an isolated user folder (``BLENDER_USER_RESOURCES``, set before
``bpy`` is first imported).  Each test starts from an empty home file, which
keeps preferences and so the enabled add-on (``read_factory_settings`` would
disable it).
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile

import pytest

from addon_paths import REPO, ext_module  # noqa: E402,F401

_USER_DIR = tempfile.mkdtemp(prefix="lagc-blender-user-")
os.environ.setdefault("BLENDER_USER_RESOURCES", _USER_DIR)

import bpy  # noqa: E402  (after the environment is set)

if REPO not in sys.path:
    sys.path.insert(0, REPO)

EXT_REPO = "user_default"


@pytest.fixture(scope="session")
def ext():
    """The installed, enabled extension's top module (``bl_ext.user_default.lagc_hand``)."""
    import addon_utils
    import build

    zip_path = build.build(os.path.join(_USER_DIR, "dist"))
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    result = bpy.ops.extensions.package_install_files(filepath=str(zip_path), repo=EXT_REPO,
                                                      enable_on_install=True)
    assert result == {'FINISHED'}
    name = f"bl_ext.{EXT_REPO}.lagc_hand"
    assert name in bpy.context.preferences.addons, "the extension did not enable"
    module = importlib.import_module(name)
    yield module
    addon_utils.disable(name, default_set=True)
    shutil.rmtree(os.path.join(bpy.utils.user_resource('EXTENSIONS'), EXT_REPO, "lagc_hand"), ignore_errors=True)


@pytest.fixture
def clean(ext):
    """An empty scene; returns the extension module."""
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    return ext


# bpy 4.2 (module build) segfaults during interpreter shutdown after any glTF
# export, even of a lone cube: an upstream bug, outside our code.  There, leave
# with pytest's own exit status once everything is reported, skipping the
# interpreter teardown, so the exit code says what the tests said.
_EXIT_STATUS = [0]


def pytest_sessionfinish(session, exitstatus):
    _EXIT_STATUS[0] = int(exitstatus)


def pytest_unconfigure(config):
    shutil.rmtree(_USER_DIR, ignore_errors=True)
    if bpy.app.version < (4, 3, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[0])
