"""LAGC-Hand backend: video -> observations -> tracks -> fitted hands -> cleaned motion.

Stages (one sub-package each): ``video`` (decode), ``engines`` (per-frame hand
observations), ``tracking`` (left/right identities), ``placement`` (roots in
the camera frame), ``fitting`` (hand-model pose and shape), ``cleanup``
(temporal filtering), then the HandMotion file (``lagc_hand_blender.core.handmotion``).
"""


def __getattr__(name: str):
    # ``__version__`` is read on first use, not at import (PEP 562).
    if name == "__version__":
        return project_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def project_version() -> str:
    """The project's version: ``[project] version`` of pyproject.toml, the one place
    it is written (build.py writes it into the add-on's manifest).  From a source
    checkout that file is read; an installed wheel has it in its metadata."""
    import tomllib
    from importlib import metadata
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    if pyproject.is_file():
        with open(pyproject, "rb") as f:
            project = tomllib.load(f).get("project", {})
        if project.get("name") == "lagc-hand" and project.get("version"):
            return str(project["version"])
    try:
        return metadata.version("lagc-hand")
    except metadata.PackageNotFoundError:
        return "0+unknown"
