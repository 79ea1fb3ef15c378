"""Run the add-on's bpy tests under the other Blender versions we support.

``make test`` (or ``make bpy-venvs``) creates ``.venv-bpy45`` (bpy 4.5 LTS,
slotted actions) and ``.venv-bpy42`` (bpy 4.2 LTS, legacy ``action.fcurves``);
this module runs ``test_blender_addon.py``, ``test_blender_jobs.py``,
``test_exports.py`` and ``test_framing.py`` in each that exists, in a
subprocess (one Blender per process).  The package is exposed to those venvs as ``lagc_hand_blender`` through a symlink on
``PYTHONPATH``: they hold nothing but bpy, numpy and pytest.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VENVS = {"4.5": ".venv-bpy45", "4.2": ".venv-bpy42"}


@pytest.mark.slow
@pytest.mark.parametrize("version", sorted(VENVS))
def test_addon_under_other_blender(version, tmp_path):
    python = os.path.join(REPO, VENVS[version], "bin", "python")
    if not os.path.exists(python):
        pytest.skip(f"{VENVS[version]} does not exist (make bpy-venvs creates it)")
    os.symlink(os.path.join(REPO, "blender_addon"), tmp_path / "lagc_hand_blender")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), PYTHONDONTWRITEBYTECODE="1")
    probe = subprocess.run([python, "-c", "import bpy; print(bpy.app.version_string)"], capture_output=True,
                           text=True, env=env, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1].startswith(version), probe.stdout
    proc = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--confcutdir={HERE}", "-o", "addopts=",
         *(os.path.join(HERE, name) for name in ("test_blender_addon.py", "test_blender_jobs.py",
                                                 "test_exports.py", "test_framing.py"))],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"bpy {version}:\n{tail}"
    assert " passed" in proc.stdout and " failed" not in proc.stdout, tail
