"""Read official MANO pickles without chumpy and without running pickle code.

``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` are Python-2 pickles (latin-1 strings)
whose arrays are partly ``chumpy.ch.Ch`` objects and whose ``J_regressor`` is a
``scipy.sparse.csc_matrix``.  chumpy does not import on current numpy/Python,
and a pickle may name any callable, so we use an allow-list
:class:`pickle.Unpickler`:

* numpy array/dtype/scalar reconstruction and a few inert builtins are allowed;
* every ``chumpy.*`` class becomes :class:`ChumpyStandIn`, an inert object that
  only stores its pickled state (chumpy ``Ch`` keeps its value in ``'x'``);
* ``scipy.sparse`` csc/csr/coo matrices become :class:`SparseStandIn`, which
  keeps ``data/indices/indptr/shape`` and densifies with numpy;
* anything else (``os.system``, ``builtins.eval``, ...) is refused with
  :class:`~lagc_hand.errors.ModelFileError` before it is ever looked up.
"""
from __future__ import annotations

import copyreg
import io
import pickle
from typing import Any

import numpy as np

from lagc_hand.errors import ModelFileError


class ChumpyStandIn:
    """Inert replacement for any chumpy class; holds the pickled state."""

    chumpy_class = "chumpy.?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # called by copyreg._reconstructor
        self.__dict__["_state"] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__["_state"] = dict(state) if isinstance(state, dict) else {"_raw": state}

    def to_numpy(self) -> np.ndarray:
        state = self.__dict__.get("_state", {})
        for key in ("x", "_x", "a"):
            if key in state:
                return to_numpy(state[key])
        raise ModelFileError(
            f"cannot read a {self.chumpy_class} expression without chumpy "
            f"(its state has keys {sorted(map(str, state))}); re-save the file as plain arrays"
        )


class SparseStandIn:
    """Inert replacement for ``scipy.sparse`` csc/csr/coo matrices."""

    fmt = "csc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_state"] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__["_state"] = dict(state) if isinstance(state, dict) else {}

    def to_numpy(self) -> np.ndarray:
        s = self.__dict__.get("_state", {})
        shape = s.get("_shape", s.get("shape"))
        try:
            shape = tuple(int(n) for n in shape)
            data = np.asarray(s["data"], dtype=np.float64)
            if self.fmt == "coo":
                row = np.asarray(s["row"], dtype=np.int64)
                col = np.asarray(s["col"], dtype=np.int64)
            else:
                indices = np.asarray(s["indices"], dtype=np.int64)
                indptr = np.asarray(s["indptr"], dtype=np.int64)
                major = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))
                row, col = (indices, major) if self.fmt == "csc" else (major, indices)
            dense = np.zeros(shape, dtype=np.float64)
            np.add.at(dense, (row, col), data)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"a sparse {self.fmt} matrix in the file is malformed ({exc})") from None
        return dense


def _sparse_class(fmt: str) -> type:
    return type(f"Sparse_{fmt}", (SparseStandIn,), {"fmt": fmt})


def _chumpy_class(qualname: str) -> type:
    return type(f"Chumpy_{qualname.replace('.', '_')}", (ChumpyStandIn,), {"chumpy_class": qualname})


def _codecs_encode(text: str, encoding: str = "latin1") -> bytes:
    """Python 3's protocol-2 pickles spell bytes as ``_codecs.encode(str, 'latin1')``."""
    if encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise ModelFileError(f"refusing to load: unexpected text encoding {encoding!r}")
    return str(text).encode(encoding)


_ALLOWED = {
    ("_codecs", "encode"): _codecs_encode,
    ("numpy.core.multiarray", "_reconstruct"): np.core.multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): np.core.multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): np.core.multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): np.core.multiarray.scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("__builtin__", "object"): object,
    ("builtins", "object"): object,
    ("__builtin__", "set"): set,
    ("builtins", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "slice"): slice,
    ("builtins", "slice"): slice,
    ("__builtin__", "complex"): complex,
    ("builtins", "complex"): complex,
}

_SPARSE_MODULES = ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr",
                   "scipy.sparse.coo", "scipy.sparse._coo", "scipy.sparse")
_SPARSE_NAMES = {"csc_matrix": "csc", "csr_matrix": "csr", "coo_matrix": "coo",
                 "csc_array": "csc", "csr_array": "csr", "coo_array": "coo"}


class RestrictedUnpickler(pickle.Unpickler):
    """Allow-list unpickler for MANO files (see the module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _ALLOWED:
            return _ALLOWED[key]
        if module == "chumpy" or module.startswith("chumpy."):
            return _chumpy_class(f"{module}.{name}")
        if module in _SPARSE_MODULES and name in _SPARSE_NAMES:
            return _sparse_class(_SPARSE_NAMES[name])
        raise ModelFileError(f"refusing to load: the file references {module}.{name}")


def to_numpy(value: Any) -> Any:
    """Stand-ins and nested containers -> numpy arrays (others unchanged)."""
    if isinstance(value, (ChumpyStandIn, SparseStandIn)):
        return value.to_numpy()
    if isinstance(value, np.ndarray) and value.dtype == object:
        return np.asarray([to_numpy(v) for v in value.ravel()]).reshape(value.shape)
    return value


def load_mano_pickle(data: bytes, source: str = "<bytes>") -> dict[str, Any]:
    """Unpickle a MANO-format file's bytes into ``{key: numpy array or value}``.

    Raises :class:`ModelFileError` for truncated/corrupt data, forbidden
    references, or a top level that is not a dict.
    """
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except ModelFileError as exc:
        raise ModelFileError(f"{source}: {exc}") from None
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, UnicodeDecodeError, OverflowError) as exc:
        raise ModelFileError(
            f"{source} is not a readable MANO pickle (truncated or corrupt: {type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(obj, dict):
        raise ModelFileError(f"{source}: expected a dict of arrays, found a {type(obj).__name__}")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        key = key.decode("latin1") if isinstance(key, bytes) else str(key)
        out[key] = to_numpy(value)
    return out
