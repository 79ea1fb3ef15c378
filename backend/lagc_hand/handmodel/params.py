"""The hand-model parameters: MANO's key layout, held as numpy arrays.

One dataclass serves the open hand model (``assets/open_hand_*.npz``) and
official MANO files, so the torch layer (:mod:`lagc_hand.handmodel.layer`),
the fitter and the Blender scene writer need not know which one they got.

Frame: the model frame of MANO.  For the open right hand the wrist joint is
at the origin, the fingers point along ``-x``, the thumb along ``+z`` and the
back of the hand faces ``+y`` (the palm faces ``-y``); the left hand is the
mirror image (``x -> -x``).  Units are metres.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from lagc_hand.errors import ModelFileError
from lagc_hand_blender.core.skeleton import MANO_PARENTS, NUM_JOINTS

#: Keys of a MANO-format file that the layer needs (``tip_vertex_ids`` etc. are ours).
MANO_KEYS = (
    "v_template",
    "f",
    "weights",
    "J_regressor",
    "kintree_table",
    "shapedirs",
    "posedirs",
    "hands_components",
    "hands_mean",
)

#: Number of pose-corrective features: 15 non-root joints x 9 entries of (R - I).
NUM_POSE_FEATURES = (NUM_JOINTS - 1) * 9


@dataclass
class HandModelParams:
    """A MANO-style hand model, numpy only.

    Shapes (``V`` vertices, ``F`` faces, ``B`` shape coefficients):

    * ``v_template`` ``(V, 3)`` float32, metres, model frame, rest pose (flat hand).
    * ``f`` ``(F, 3)`` int64 vertex ids, counter-clockwise seen from outside
      (outward normals by the right-hand rule).
    * ``weights`` ``(V, 16)`` float32 skinning weights, MANO joint order, rows sum to 1.
    * ``J_regressor`` ``(16, V)`` float32 dense; ``joints = J_regressor @ vertices``.
    * ``kintree_table`` ``(2, 16)`` int64; row 0 = parents (root = -1), row 1 = joint ids.
    * ``shapedirs`` ``(V, 3, B)`` float32, metres per unit of ``beta``.
    * ``posedirs`` ``(V, 3, 135)`` float32 -- MANO's own file layout (not
      ``(V*3, 135)``): offset ``[v, d] = sum_k posedirs[v, d, k] * feat[k]``
      with ``feat = (R_j - I)`` of joints 1..15 flattened row-major.
      All zeros means "no pose correctives" (the open model has none).
    * ``hands_components`` ``(45, 45)`` float32, rows = PCA pose directions
      (axis-angle of joints 1..15, radians), orthonormal.
    * ``hands_mean`` ``(45,)`` float32, the mean ("relaxed") hand pose, radians.
    * ``tip_vertex_ids`` ``(5,)`` int64, fingertip vertices: thumb, index,
      middle, ring, pinky.
    * ``side``: ``"right"`` or ``"left"``; ``model_id``: e.g.
      ``"lagc-open-hand-v1"`` or ``"mano"``.
    """

    v_template: np.ndarray
    f: np.ndarray
    weights: np.ndarray
    J_regressor: np.ndarray
    kintree_table: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    hands_components: np.ndarray
    hands_mean: np.ndarray
    tip_vertex_ids: np.ndarray
    side: str = "right"
    model_id: str = "lagc-open-hand-v1"
    extra: dict = field(default_factory=dict)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def parents(self) -> np.ndarray:
        """``(16,)`` int64 parent of each joint, ``-1`` for the wrist."""
        p = np.asarray(self.kintree_table[0], dtype=np.int64).copy()
        p[0] = -1
        return p

    @property
    def has_pose_correctives(self) -> bool:
        return bool(np.any(self.posedirs != 0))

    def rest_joints(self, betas: np.ndarray | None = None) -> np.ndarray:
        """``(16, 3)`` joint positions of the rest pose for shape ``betas (B',)``."""
        v = self.v_template.astype(np.float64)
        if betas is not None:
            b = np.asarray(betas, dtype=np.float64).reshape(-1)
            v = v + self.shapedirs[:, :, : b.size].astype(np.float64) @ b
        return self.J_regressor.astype(np.float64) @ v

    def validate(self) -> "HandModelParams":
        """Check every key's type and shape; raise :class:`ModelFileError`
        naming the first bad key.  Returns ``self`` for chaining."""
        src = self.extra.get("source", self.model_id)

        def bad(key: str, what: str) -> ModelFileError:
            return ModelFileError(f"hand model {src!s}: key '{key}' {what}")

        for key in MANO_KEYS + ("tip_vertex_ids",):
            arr = getattr(self, key)
            if not isinstance(arr, np.ndarray):
                raise bad(key, f"is a {type(arr).__name__}, expected a numpy array")
            if arr.dtype.kind not in "fiu":
                raise bad(key, f"has dtype {arr.dtype}, expected numbers")
            if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
                raise bad(key, "contains NaN or infinite values")
        v = self.v_template
        if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] < 4:
            raise bad("v_template", f"has shape {v.shape}, expected (V, 3)")
        nv = v.shape[0]
        expect = {
            "f": (None, 3),
            "weights": (nv, NUM_JOINTS),
            "J_regressor": (NUM_JOINTS, nv),
            "kintree_table": (2, NUM_JOINTS),
            "shapedirs": (nv, 3, None),
            "posedirs": (nv, 3, NUM_POSE_FEATURES),
            "hands_components": (45, 45),
            "hands_mean": (45,),
            "tip_vertex_ids": (5,),
        }
        for key, shape in expect.items():
            arr = getattr(self, key)
            ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
            if not ok:
                want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
                raise bad(key, f"has shape {arr.shape}, expected {want} for {nv} vertices")
        if self.f.shape[0] < 4:
            raise bad("f", "has fewer than 4 faces")
        if self.f.dtype.kind not in "iu" or self.f.min() < 0 or self.f.max() >= nv:
            raise bad("f", f"holds vertex ids outside 0..{nv - 1}")
        tips = self.tip_vertex_ids
        if tips.dtype.kind not in "iu" or tips.min() < 0 or tips.max() >= nv:
            raise bad("tip_vertex_ids", f"holds vertex ids outside 0..{nv - 1}")
        sums = self.weights.sum(axis=1)
        if np.any(np.abs(sums - 1.0) > 1e-3):
            worst = int(np.argmax(np.abs(sums - 1.0)))
            raise bad("weights", f"rows must sum to 1 (vertex {worst} sums to {sums[worst]:.4f})")
        parents = self.parents
        if not np.array_equal(parents[1:], MANO_PARENTS[1:]):
            raise bad("kintree_table", f"parents {parents.tolist()} are not MANO's 16-joint tree")
        if self.shapedirs.shape[2] < 1:
            raise bad("shapedirs", "has no shape directions")
        if self.side not in ("left", "right"):
            raise bad("side", f"is {self.side!r}, expected 'left' or 'right'")
        return self

    def normalized(self) -> "HandModelParams":
        """Copy with canonical dtypes (float32 arrays, int64 ids, root parent -1)."""
        kt = np.asarray(self.kintree_table, dtype=np.int64).copy()
        kt[0, 0] = -1
        f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
        return replace(
            self,
            v_template=f32(self.v_template),
            f=np.ascontiguousarray(self.f, dtype=np.int64),
            weights=f32(self.weights),
            J_regressor=f32(self.J_regressor),
            kintree_table=kt,
            shapedirs=f32(self.shapedirs),
            posedirs=f32(self.posedirs),
            hands_components=f32(self.hands_components),
            hands_mean=f32(self.hands_mean),
            tip_vertex_ids=np.ascontiguousarray(self.tip_vertex_ids, dtype=np.int64),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays as a dict in MANO's key names (plus ``tip_vertex_ids``,
        ``side``, ``model_id`` as 0-d string arrays), ready for ``np.savez``.
        ``.npz`` files written from this load in ``smplx.MANO`` too."""
        out = {k: getattr(self, k) for k in MANO_KEYS + ("tip_vertex_ids",)}
        out["side"] = np.array(self.side)
        out["model_id"] = np.array(self.model_id)
        return out
