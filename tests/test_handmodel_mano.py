"""Loading MANO-format files: chumpy pickles without chumpy, refusals, clear errors.

No official MANO file exists here (licence), so the tests build MANO-layout
files from the open model, in the formats the official files use.
"""
from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from lagc_hand.errors import ModelFileError
from lagc_hand.handmodel import load_hand_model_params
from lagc_hand.handmodel.loading import MANO_DIR_ENV
from lagc_hand.handmodel.mano_pickle import load_mano_pickle


@pytest.fixture(scope="module")
def open_right():
    return load_hand_model_params("open", "right")


def _fake_chumpy():
    """A stand-in ``chumpy`` package whose ``Ch`` pickles like the real one
    (class ``chumpy.ch.Ch``, state dict with the array under ``'x'``)."""
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x)
            self._dirty_vars = set()
            self.dterms = ("x",)

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    return chumpy, ch, Ch


def mano_like_dict(params, use_chumpy: bool):
    """The official file's layout: weights/shapedirs/v_template as chumpy
    arrays, J_regressor as scipy csc, posedirs (V, 3, 135), plus J."""
    d = {
        "v_template": params.v_template.astype(np.float64),
        "f": params.f.astype(np.uint32),
        "weights": params.weights.astype(np.float64),
        "J_regressor": scipy.sparse.csc_matrix(params.J_regressor.astype(np.float64)),
        "kintree_table": np.vstack([[4294967295] + list(params.kintree_table[0, 1:]), np.arange(16)]).astype(np.int64),
        "shapedirs": params.shapedirs.astype(np.float64),
        "posedirs": params.posedirs.astype(np.float64),
        "hands_components": params.hands_components.astype(np.float64),
        "hands_mean": params.hands_mean.astype(np.float64),
        "hands_coeffs": np.zeros((10, 45)),
        "J": params.rest_joints(),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "tip_vertex_ids": params.tip_vertex_ids,
    }
    if use_chumpy:
        chumpy, ch, Ch = _fake_chumpy()
        sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, ch
        try:
            for k in ("weights", "shapedirs", "v_template"):
                d[k] = Ch(d[k])
            return pickle.dumps(d, protocol=2)
        finally:
            del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    return pickle.dumps(d, protocol=2)


def test_chumpy_pickle_loads_without_chumpy(tmp_path, open_right):
    data = mano_like_dict(open_right, use_chumpy=True)
    assert b"chumpy.ch" in data and "chumpy" not in sys.modules
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(data)
    p = load_hand_model_params(tmp_path, "right")
    assert "chumpy" not in sys.modules  # never imported
    np.testing.assert_allclose(p.v_template, open_right.v_template, atol=1e-7)
    np.testing.assert_allclose(p.shapedirs, open_right.shapedirs, atol=1e-7)
    np.testing.assert_allclose(p.weights, open_right.weights, atol=1e-7)
    np.testing.assert_allclose(p.J_regressor, open_right.J_regressor, atol=1e-7)
    np.testing.assert_array_equal(p.f, open_right.f)
    assert p.parents[0] == -1 and p.model_id == "mano"
    np.testing.assert_allclose(p.rest_joints(), open_right.rest_joints(), atol=1e-6)


def test_protocol0_pickle_and_env_var(tmp_path, monkeypatch, open_right):
    """Protocol 0/1 pickles go through copyreg._reconstructor; the env var finds the folder."""
    chumpy, ch, Ch = _fake_chumpy()
    d = {k: v for k, v in pickle.loads(mano_like_dict(open_right, use_chumpy=False)).items()}
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, ch
    try:
        d["shapedirs"] = Ch(d["shapedirs"])
        data = pickle.dumps(d, protocol=0)
    finally:
        del sys.modules["chumpy"], sys.modules["chumpy.ch"]
    assert b"copy_reg" in data or b"copyreg" in data
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(data)
    monkeypatch.setenv(MANO_DIR_ENV, str(tmp_path))
    p = load_hand_model_params("mano", "right")
    np.testing.assert_allclose(p.shapedirs, open_right.shapedirs, atol=1e-7)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


def test_malicious_pickle_is_refused(tmp_path):
    data = pickle.dumps({"v_template": _Evil()}, protocol=2)
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=r"refusing to load: the file references (posix|os)\.system"):
        load_hand_model_params(path, "right")


@pytest.mark.parametrize("name", ["builtins.eval", "subprocess.Popen", "numpy.load"])
def test_other_globals_are_refused(name):
    module, attr = name.rsplit(".", 1)
    data = f"c{module}\n{attr}\n(S'1'\ntR.".encode()
    with pytest.raises(ModelFileError, match="refusing to load"):
        load_mano_pickle(data)


def test_truncated_pickle_gives_clear_error(tmp_path, open_right):
    data = mano_like_dict(open_right, use_chumpy=True)
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_hand_model_params(tmp_path, "right")
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="empty"):
        load_hand_model_params(tmp_path, "right")


def test_truncated_npz_gives_clear_error(tmp_path):
    from lagc_hand.handmodel.loading import open_model_path

    data = open_model_path("right").read_bytes()
    path = tmp_path / "MANO_RIGHT.npz"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelFileError, match="MANO_RIGHT.npz"):
        load_hand_model_params(tmp_path, "right")


def test_bad_shapes_and_missing_keys_are_named(tmp_path, open_right):
    base = pickle.loads(mano_like_dict(open_right, use_chumpy=False))
    cases = {
        "weights": (lambda d: d.__setitem__("weights", d["weights"][:, :15]), "'weights' has shape"),
        "J_regressor": (lambda d: d.__setitem__("J_regressor", np.zeros((16, 5))), "'J_regressor' has shape"),
        "f": (lambda d: d.__setitem__("f", d["f"] + 10**6), "'f' holds vertex ids"),
        "kintree": (lambda d: d.__setitem__("kintree_table", np.zeros((2, 16), np.int64)), "not MANO's 16-joint tree"),
        "missing": (lambda d: d.pop("shapedirs"), "missing key.*shapedirs"),
        "nan": (lambda d: d["v_template"].__setitem__((0, 0), np.nan), "'v_template' contains NaN"),
        "weights_sum": (lambda d: d["weights"].__setitem__((3, 0), 5.0), "rows must sum to 1"),
    }
    for name, (mutate, message) in cases.items():
        d = {k: (v.copy() if hasattr(v, "copy") else v) for k, v in base.items()}
        mutate(d)
        path = tmp_path / f"{name}_RIGHT.pkl"
        path.write_bytes(pickle.dumps(d, protocol=2))
        with pytest.raises(ModelFileError, match=message):
            load_hand_model_params(path, "right")


def test_missing_files_and_folders(tmp_path, monkeypatch):
    with pytest.raises(ModelFileError, match="no MANO_LEFT.pkl or MANO_LEFT.npz"):
        load_hand_model_params(tmp_path, "left")
    with pytest.raises(ModelFileError, match="no such file or folder"):
        load_hand_model_params(tmp_path / "nope", "right")
    monkeypatch.delenv(MANO_DIR_ENV, raising=False)
    with pytest.raises(ModelFileError, match=MANO_DIR_ENV):
        load_hand_model_params("mano", "right")
    with pytest.raises(ModelFileError, match="'left' or 'right'"):
        load_hand_model_params("open", "middle")


def test_mano_sized_file_gets_mano_tip_ids(tmp_path):
    """A 778-vertex file without tip ids gets the manopth fingertip vertices."""
    rng = np.random.default_rng(0)
    v = rng.normal(size=(778, 3)) * 0.05
    w = np.zeros((778, 16))
    w[:, 0] = 1
    d = {
        "v_template": v, "f": np.array([[0, 1, 2], [0, 2, 3], [0, 3, 1], [1, 3, 2]], np.uint32),
        "weights": w, "J_regressor": scipy.sparse.csc_matrix(np.full((16, 778), 1 / 778)),
        "kintree_table": np.vstack([[4294967295, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14], np.arange(16)]),
        "shapedirs": np.zeros((778, 3, 10)), "posedirs": np.zeros((778, 3, 135)),
        "hands_components": np.eye(45), "hands_mean": np.zeros(45),
    }
    (tmp_path / "MANO_LEFT.pkl").write_bytes(pickle.dumps(d, protocol=2))
    p = load_hand_model_params(tmp_path, "left")
    np.testing.assert_array_equal(p.tip_vertex_ids, [745, 317, 444, 556, 673])
    assert p.side == "left"
