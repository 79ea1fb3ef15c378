"""Helpers for the network's tests and benchmarks: make sure the open hand
model exists (the committed asset, or a freshly generated copy in a temp
folder when the asset has not been built yet)."""
from __future__ import annotations

import os
from pathlib import Path


def ensure_open_model(tmp_dir: str | Path) -> Path:
    """Folder holding ``open_hand_{left,right}.npz``; sets
    ``$LAGC_HAND_ASSETS_DIR`` to a generated copy when the project's assets are missing."""
    from lagc_hand.handmodel.loading import ASSETS_DIR_ENV, open_model_path

    if open_model_path("right").is_file() and open_model_path("left").is_file():
        return open_model_path("right").parent
    from lagc_hand.handmodel.open_model import write_open_hand_assets

    out = Path(tmp_dir) / "open_model_assets"
    if not (out / "open_hand_right.npz").is_file():
        write_open_hand_assets(out)
    os.environ[ASSETS_DIR_ENV] = str(out)
    return out
