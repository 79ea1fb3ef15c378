"""Build the Blender extension: ``python build.py`` -> ``dist/lagc_hand-<version>.zip``.

Steps: copy ``blender_addon/`` into a staging folder (without caches), write
``blender_manifest.toml`` there from ``addon_manifest.toml`` (Blender only
accepts that file name) with the ``version`` of pyproject.toml (the one place
the version is written), then build and validate the zip with Blender's own
extension tool, ``bl_pkg/cli/blender_ext.py``, which ships inside the ``bpy``
wheel (a plain-Python script; no Blender binary needed).  The zip is written
under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SOURCE = ROOT / "blender_addon"
MANIFEST = ROOT / "addon_manifest.toml"
PYPROJECT = ROOT / "pyproject.toml"
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "*.zip", "tests")


class BuildError(RuntimeError):
    """The extension could not be built; the message says why."""


def _load_toml(path: Path, what: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise BuildError(f"{path}: missing; it is the source of {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"{path}: not valid TOML ({exc})") from None


def project_version(path: Path = PYPROJECT) -> str:
    """``[project] version`` of pyproject.toml: the version of the backend and the add-on."""
    version = _load_toml(path, "the version").get("project", {}).get("version")
    if not isinstance(version, str) or not version:
        raise BuildError(f"{path}: [project] version is missing or empty")
    return version


def read_manifest(path: Path = MANIFEST, pyproject: Path = PYPROJECT) -> dict:
    """The extension manifest as Blender gets it: ``addon_manifest.toml`` plus the version."""
    data = _load_toml(path, "blender_manifest.toml")
    if "version" in data:
        raise BuildError(f"{path}: remove the 'version' field; the version is written once, in {pyproject.name}")
    if not isinstance(data.get("id"), str) or not data["id"]:
        raise BuildError(f"{path}: the 'id' field is missing or empty")
    data["version"] = project_version(pyproject)
    return data


def manifest_text(path: Path = MANIFEST, pyproject: Path = PYPROJECT) -> str:
    """``addon_manifest.toml``'s text with ``version = "..."`` after its ``id`` line."""
    version = read_manifest(path, pyproject)["version"]
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.split("=")[0].strip() == "id")
    lines.insert(at + 1, f'version = "{version}"\n')
    return "".join(lines)


def find_blender_ext() -> Path:
    """Blender's extension tool: $LAGC_BLENDER_EXT, else inside an installed ``bpy``."""
    env = os.environ.get("LAGC_BLENDER_EXT")
    if env:
        if not os.path.isfile(env):
            raise BuildError(f"LAGC_BLENDER_EXT={env} does not exist")
        return Path(env)
    roots = []
    try:
        import importlib.util

        spec = importlib.util.find_spec("bpy")
        if spec and spec.submodule_search_locations:
            roots += list(spec.submodule_search_locations)
    except (ImportError, ValueError):
        pass
    roots += glob.glob(str(ROOT / ".venv*" / "lib" / "python3*" / "site-packages" / "bpy"))
    for root in roots:
        hits = sorted(glob.glob(os.path.join(root, "*", "scripts", "addons_core", "bl_pkg", "cli", "blender_ext.py")))
        if hits:
            return Path(hits[-1])
    raise BuildError("Blender's extension tool (bl_pkg/cli/blender_ext.py) was not found: install the "
                     "'bpy' package (pip install bpy) or set LAGC_BLENDER_EXT to the script's path")


def _run_tool(tool: Path, args: list[str]) -> str:
    proc = subprocess.run([sys.executable, str(tool), *args], capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise BuildError(f"blender_ext.py {args[0]} failed:\n{out}")
    return out


def stage(staging: Path) -> Path:
    """Copy the package and write its manifest; returns the package folder."""
    pkg = staging / "lagc_hand"
    shutil.copytree(SOURCE, pkg, ignore=IGNORE)
    (pkg / "blender_manifest.toml").write_text(manifest_text(), encoding="utf-8")
    return pkg


def build(out_dir: Path | str = ROOT / "dist", verbose: bool = False) -> Path:
    """Build and validate the extension zip; returns its path."""
    manifest = read_manifest()
    tool = find_blender_ext()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    with tempfile.TemporaryDirectory(prefix=".lagc-build-", dir=out_dir) as tmp:
        pkg = stage(Path(tmp))
        _run_tool(tool, ["validate", str(pkg)])
        part = Path(tmp) / final.name
        log = _run_tool(tool, ["build", "--source-dir", str(pkg), "--output-filepath", str(part)])
        if verbose:
            print(log)
        _run_tool(tool, ["validate", str(part)])
        os.replace(part, final)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output folder (default: dist/)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the extension tool's log")
    args = parser.parse_args(argv)
    try:
        path = build(args.out, args.verbose)
    except BuildError as exc:
        print(f"build.py: error: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
