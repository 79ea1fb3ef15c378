"""The version is written in one place, pyproject.toml; the backend, the CLI and the
add-on's manifest (written by build.py) follow it."""
from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # build.py


def _version() -> str:
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def test_backend_cli_and_manifest_follow_pyproject():
    import build
    import lagc_hand

    version = _version()
    assert lagc_hand.__version__ == version
    out = subprocess.run([sys.executable, "-m", "lagc_hand.cli", "--version"], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == f"lagc-hand {version}", out.stderr
    assert tomllib.loads(build.manifest_text())["version"] == version


def test_no_second_copy_of_the_version(tmp_path):
    """No source or manifest file but pyproject.toml writes the version down, and a
    manifest that does is refused with a clear message."""
    import build

    version = re.escape(_version())
    tracked = subprocess.run(["git", "ls-files", "*.py", "*.toml", "*.cfg"], cwd=REPO, capture_output=True,
                             text=True).stdout.split()
    assert tracked, "not a git checkout"
    pattern = re.compile(rf"""version\s*[=:]\s*["']{version}["']""")
    hits = [f for f in tracked if f != "pyproject.toml" and (REPO / f).is_file()
            and pattern.search((REPO / f).read_text(errors="replace"))]
    assert hits == []
    bad = tmp_path / "addon_manifest.toml"
    bad.write_text('version = "9.9.9"\n' + (REPO / "addon_manifest.toml").read_text())
    with pytest.raises(build.BuildError, match="version is written once"):
        build.read_manifest(bad)
