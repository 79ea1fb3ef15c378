"""Package discovery only (metadata lives in pyproject.toml).

Two import packages come from two folders: ``lagc_hand`` (``backend/lagc_hand``)
and ``lagc_hand_blender`` (``blender_addon/``, so the backend can use the
add-on's numpy-only ``core`` without a second copy of it).
"""
from setuptools import find_packages, setup

packages = find_packages("backend", include=["lagc_hand", "lagc_hand.*"])
packages += ["lagc_hand_blender"] + [
    "lagc_hand_blender." + p for p in find_packages("blender_addon", exclude=["tests", "tests.*"])
]
setup(packages=packages)
