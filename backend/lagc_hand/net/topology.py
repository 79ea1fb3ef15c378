"""The hand mesh facts the network needs, independent of where they came from
(the open hand model, official MANO files, or a procedural test mesh)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lagc_hand.errors import ModelFileError
from lagc_hand_blender.core.skeleton import MANO21_TO_PUBLIC


@dataclass
class MeshTopology:
    """faces:       (F, 3) int64, shared by both hands (the left mesh is the
                    mirrored right one: same vertex order, same edges).
    template:      (V, 3) float32, right-hand rest mesh, metres, model frame.
    j_regressor:   (2, 16, V) float32, left then right, MANO joint order.
    tip_ids:       (5,) int64 fingertip vertex ids (thumb, index, middle, ring, pinky).
    name:          where it came from (``"open"``, a MANO folder, ``"test"``)."""

    faces: np.ndarray
    template: np.ndarray
    j_regressor: np.ndarray
    tip_ids: np.ndarray
    name: str = "unknown"

    @property
    def num_vertices(self) -> int:
        return int(self.template.shape[0])

    def validate(self) -> "MeshTopology":
        v = self.num_vertices
        if self.template.ndim != 2 or self.template.shape[1] != 3:
            raise ModelFileError(f"template must be (V, 3), got {self.template.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.faces.max() >= v or self.faces.min() < 0:
            raise ModelFileError(f"faces must be (F, 3) indices into {v} vertices")
        if self.j_regressor.shape != (2, 16, v):
            raise ModelFileError(f"j_regressor must be (2, 16, {v}), got {self.j_regressor.shape}")
        if self.tip_ids.shape != (5,) or self.tip_ids.max() >= v:
            raise ModelFileError(f"tip_ids must be 5 vertex ids < {v}, got {self.tip_ids}")
        return self

    def to_dict(self) -> dict:
        return {
            "faces": self.faces.astype(np.int64),
            "template": self.template.astype(np.float32),
            "j_regressor": self.j_regressor.astype(np.float32),
            "tip_ids": self.tip_ids.astype(np.int64),
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MeshTopology":
        return cls(
            faces=np.asarray(d["faces"], dtype=np.int64),
            template=np.asarray(d["template"], dtype=np.float32),
            j_regressor=np.asarray(d["j_regressor"], dtype=np.float32),
            tip_ids=np.asarray(d["tip_ids"], dtype=np.int64),
            name=str(d.get("name", "unknown")),
        ).validate()


def joint_matrix(topology: MeshTopology) -> np.ndarray:
    """(2, 21, V) float32: public-order 21 keypoints as linear maps of the mesh
    (16 regressed joints + 5 tip vertices), left then right."""
    v = topology.num_vertices
    out = np.zeros((2, 21, v), dtype=np.float32)
    out[:, :16] = topology.j_regressor
    out[:, 16 + np.arange(5), topology.tip_ids] = 1.0
    return out[:, MANO21_TO_PUBLIC]


def topology_from_hand_model(model: str = "open") -> MeshTopology:
    """Topology of the project's hand model (``"open"`` or a MANO folder)."""
    from lagc_hand.handmodel import load_hand_model_params

    left = load_hand_model_params(model, "left")
    right = load_hand_model_params(model, "right")
    jr = [np.asarray(_dense(p.J_regressor), dtype=np.float32) for p in (left, right)]
    return MeshTopology(
        faces=np.asarray(right.f, dtype=np.int64),
        template=np.asarray(right.v_template, dtype=np.float32),
        j_regressor=np.stack(jr),
        tip_ids=np.asarray(right.tip_vertex_ids, dtype=np.int64),
        name=str(model),
    ).validate()


def _dense(m):
    return m.toarray() if hasattr(m, "toarray") else m
