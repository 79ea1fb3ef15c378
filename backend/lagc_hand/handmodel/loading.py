"""Find and load hand models: the open model in ``assets/`` or official MANO files.

``model`` names where the model comes from:

* ``"open"`` -- our own open hand model, ``assets/open_hand_{side}.npz``;
* ``"mano"`` -- official MANO from the folder in ``$LAGC_HAND_MANO_DIR``;
* a folder -- holding ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (or ``.npz`` with the same keys);
* a file -- one ``.pkl`` or ``.npz`` in MANO's key layout (``side`` says which hand it is).

Official pickles are read without chumpy and without running pickle code
(:mod:`lagc_hand.handmodel.mano_pickle`).  Every problem -- missing file,
forbidden pickle reference, wrong shape -- raises
:class:`~lagc_hand.errors.ModelFileError` with a message for the user.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from lagc_hand.errors import ModelFileError
from lagc_hand.handmodel.mano_pickle import load_mano_pickle
from lagc_hand.handmodel.params import MANO_KEYS, NUM_POSE_FEATURES, HandModelParams
from lagc_hand_blender.core.skeleton import MANO_TIP_VERTEX_IDS

MANO_DIR_ENV = "LAGC_HAND_MANO_DIR"
ASSETS_DIR_ENV = "LAGC_HAND_ASSETS_DIR"
OPEN_MODEL_ID = "lagc-open-hand-v1"
#: Vertex count of official MANO meshes (its fingertip ids only make sense there).
MANO_NUM_VERTICES = 778

_REQUIRED = ("v_template", "f", "weights", "J_regressor", "kintree_table", "shapedirs")


def assets_dir() -> Path:
    """The project's ``assets/`` folder (``$LAGC_HAND_ASSETS_DIR`` overrides)."""
    env = os.environ.get(ASSETS_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "assets"


def open_model_path(side: str = "right") -> Path:
    return assets_dir() / f"open_hand_{_check_side(side)}.npz"


def _check_side(side: str) -> str:
    if side not in ("left", "right"):
        raise ModelFileError(f"hand side must be 'left' or 'right', not {side!r}")
    return side


def find_mano_file(folder: str | os.PathLike, side: str) -> Path:
    """``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` (or ``.npz``) in ``folder``."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelFileError(f"MANO folder {folder} does not exist or is not a folder")
    stem = f"MANO_{_check_side(side).upper()}"
    for ext in (".pkl", ".npz"):
        cand = folder / (stem + ext)
        if cand.is_file():
            return cand
    raise ModelFileError(
        f"no {stem}.pkl or {stem}.npz in {folder}; download MANO from https://mano.is.tue.mpg.de "
        "and point --mano-dir (or $LAGC_HAND_MANO_DIR) at the folder holding MANO_RIGHT.pkl and MANO_LEFT.pkl"
    )


def resolve_model_path(model: str | os.PathLike = "open", side: str = "right") -> Path:
    """Turn a ``model`` argument (see the module docstring) into one file path."""
    _check_side(side)
    text = os.fspath(model)
    if text == "open":
        path = open_model_path(side)
        if not path.is_file():
            raise ModelFileError(
                f"the open hand model {path} is missing; regenerate it with 'lagc-hand model build'"
            )
        return path
    if text == "mano":
        env = os.environ.get(MANO_DIR_ENV)
        if not env:
            raise ModelFileError(
                f"model 'mano' needs the folder with MANO_RIGHT.pkl/MANO_LEFT.pkl: set ${MANO_DIR_ENV} or pass the folder"
            )
        return find_mano_file(env, side)
    path = Path(text).expanduser()
    if path.is_dir():
        return find_mano_file(path, side)
    if path.is_file():
        return path
    raise ModelFileError(f"hand model {text!r}: no such file or folder (use 'open', 'mano', a folder or a file)")


def read_model_arrays(path: str | os.PathLike) -> dict[str, Any]:
    """Raw ``{key: value}`` of a ``.pkl`` or ``.npz`` model file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read hand model file {path}: {exc.strerror or exc}") from None
    if data[:2] == b"PK":  # zip = .npz
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except ValueError as exc:
            raise ModelFileError(f"{path}: {exc} (the .npz must hold plain arrays)") from None
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ModelFileError(f"{path} is not a readable .npz (truncated or corrupt: {exc})") from None
    if not data:
        raise ModelFileError(f"hand model file {path} is empty")
    return load_mano_pickle(data, source=str(path))


def params_from_arrays(arrays: dict[str, Any], side: str, source: str) -> HandModelParams:
    """Build and validate :class:`HandModelParams` from MANO-layout arrays."""
    missing = [k for k in _REQUIRED if k not in arrays]
    if missing:
        raise ModelFileError(f"hand model {source}: missing key(s) {', '.join(missing)}")
    arr: dict[str, np.ndarray] = {}
    for key in MANO_KEYS + ("tip_vertex_ids",):
        if key in arrays:
            try:
                arr[key] = np.asarray(arrays[key])
            except Exception as exc:  # noqa: BLE001 -- any conversion failure is a file problem
                raise ModelFileError(f"hand model {source}: key '{key}' is not an array ({exc})") from None
    v = arr["v_template"]
    nv = v.shape[0] if v.ndim == 2 else -1
    model_id = str(arrays["model_id"]) if "model_id" in arrays else "mano"
    if "posedirs" not in arr:
        arr["posedirs"] = np.zeros((max(nv, 0), 3, NUM_POSE_FEATURES), np.float32)
    elif arr["posedirs"].ndim == 2 and arr["posedirs"].shape == (nv * 3, NUM_POSE_FEATURES):
        arr["posedirs"] = arr["posedirs"].reshape(nv, 3, NUM_POSE_FEATURES)
    if "hands_components" not in arr:
        arr["hands_components"] = np.eye(45, dtype=np.float32)
    if "hands_mean" not in arr:
        arr["hands_mean"] = np.zeros(45, np.float32)
    if "tip_vertex_ids" not in arr:
        if nv != MANO_NUM_VERTICES:
            raise ModelFileError(
                f"hand model {source}: has {nv} vertices and no 'tip_vertex_ids'; "
                f"MANO's fingertip ids need the {MANO_NUM_VERTICES}-vertex MANO mesh"
            )
        arr["tip_vertex_ids"] = MANO_TIP_VERTEX_IDS.copy()
    file_side = str(arrays["side"]) if "side" in arrays else side
    if file_side != side:
        raise ModelFileError(f"hand model {source} is a {file_side} hand, but the {side} hand was asked for")
    if arr["f"].dtype.kind == "f" and np.all(arr["f"] == np.round(arr["f"])):
        arr["f"] = arr["f"].astype(np.int64)
    params = HandModelParams(side=side, model_id=model_id, extra={"source": source}, **arr)
    params.validate()
    return params.normalized()


def load_hand_model_params(model: str | os.PathLike = "open", side: str = "right") -> HandModelParams:
    """Load a hand model (see the module docstring for ``model``).

    Returns validated :class:`HandModelParams` with float32/int64 arrays.
    """
    path = resolve_model_path(model, side)
    return params_from_arrays(read_model_arrays(path), side=side, source=str(path))
