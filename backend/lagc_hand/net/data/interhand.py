"""InterHand2.6M loader with IntagHand-style preprocessing.

Expected layout under the folder the user gives (the official v1.0 5 fps
release, annotation subset H+M; ``{split}`` is ``train``, ``val`` or ``test``)::

    ROOT/
      images/{split}/Capture*/{sequence}/cam*/image*.jpg
      annotations/{split}/InterHand2.6M_{split}_data.json          (COCO-style images + annotations)
      annotations/{split}/InterHand2.6M_{split}_camera.json        (per capture: campos, camrot, focal, princpt)
      annotations/{split}/InterHand2.6M_{split}_joint_3d.json      (per capture, frame: world_coord, mm)
      annotations/{split}/InterHand2.6M_{split}_MANO_NeuralAnnot.json  (per capture, frame: left/right pose, shape, trans)

Frames kept (IntagHand's ``cut_inter_img``): ``hand_type == "interacting"``
with ``hand_type_valid``, both hands' MANO NeuralAnnot parameters present, and
image mean >= 10 (drops black frames).  Ground truth: the hand model posed by
the NeuralAnnot parameters (metres, world) moved into the camera
(``R (X - campos)``); the crop is the square box around both hands' projected
vertices with half side ``max(w, h) / 2 / 0.8``, warped to 256x256.

The meshes need the official MANO files (``hand_model`` = the folder with
``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``): NeuralAnnot parameters are MANO
parameters (pose relative to MANO's mean hand, i.e. ``flat_hand_mean=False``).
Any MANO-layout model loads, so the tests run on the open model.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from lagc_hand.errors import InputError

from ..topology import MeshTopology, joint_matrix, topology_from_hand_model
from .raster import project
from .sample import IMG_SIZE, build_sample, crop_affine, crop_box, crop_intrinsics

ANNOTATION_KINDS = ("data", "camera", "joint_3d", "MANO_NeuralAnnot")


def annotation_path(root: Path, split: str, kind: str) -> Path:
    return root / "annotations" / split / f"InterHand2.6M_{split}_{kind}.json"


def _load_json(path: Path):
    if not path.is_file():
        raise InputError(
            f"InterHand2.6M: missing {path}; expected the layout ROOT/annotations/{{split}}/InterHand2.6M_{{split}}_{{data,camera,joint_3d,MANO_NeuralAnnot}}.json "
            "and ROOT/images/{split}/Capture*/... (see lagc_hand/net/data/interhand.py)"
        )
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(f"InterHand2.6M: cannot read {path}: {exc}") from None


class InterHandDataset:
    """Map-style dataset of interacting-hand frames -> sample dicts
    (:mod:`lagc_hand.net.data.sample`).  ``hand_model``: MANO folder (or any
    MANO-layout model); ``limit``: keep only the first N frames."""

    def __init__(self, root: str | Path, split: str = "test", hand_model: str = "mano", topology: MeshTopology | None = None,
                 limit: int | None = None, check_brightness: bool = True):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise InputError(f"InterHand2.6M folder {self.root} does not exist")
        if split not in ("train", "val", "test"):
            raise InputError(f"split must be train, val or test, not {split!r}")
        self.split = split
        ann = {k: _load_json(annotation_path(self.root, split, k)) for k in ANNOTATION_KINDS}
        self.cameras = ann["camera"]
        self.mano = ann["MANO_NeuralAnnot"]
        self.check_brightness = check_brightness
        images = {img["id"]: img for img in ann["data"].get("images", [])}
        self.items = []
        for a in ann["data"].get("annotations", []):
            if a.get("hand_type") != "interacting" or not a.get("hand_type_valid", 0):
                continue
            img = images.get(a["image_id"])
            if img is None:
                continue
            cap, frame = str(img["capture"]), str(img["frame_idx"])
            params = self.mano.get(cap, {}).get(frame)
            if not params or not params.get("left") or not params.get("right"):
                continue
            self.items.append(img)
            if limit is not None and len(self.items) >= limit:
                break
        if not self.items:
            raise InputError(f"InterHand2.6M {split}: no interacting-hand frames with MANO parameters under {self.root}")
        from lagc_hand.handmodel import load_hand_model_params
        from lagc_hand.handmodel.layer import HandModel

        self.params = {s: load_hand_model_params(hand_model, s) for s in ("left", "right")}
        self.layers = {s: HandModel(p).eval() for s, p in self.params.items()}
        self.topology = topology or topology_from_hand_model(hand_model)
        self.jmap = joint_matrix(self.topology).astype(np.float64)

    def __len__(self) -> int:
        return len(self.items)

    @torch.no_grad()
    def _mesh_world(self, side: str, p: dict) -> np.ndarray:
        """NeuralAnnot MANO params -> (V, 3) world vertices, metres."""
        layer = self.layers[side]
        pose = np.asarray(p["pose"], dtype=np.float32).reshape(48)
        hand_pose = pose[3:] + self.params[side].hands_mean  # NeuralAnnot is relative to the mean hand
        nb = self.params[side].num_betas
        betas = np.zeros(nb, dtype=np.float32)
        shape = np.asarray(p["shape"], dtype=np.float32).reshape(-1)[:nb]
        betas[: len(shape)] = shape
        out = layer(
            torch.from_numpy(pose[:3]).reshape(1, 3),
            torch.from_numpy(hand_pose.astype(np.float32)).reshape(1, 45),
            torch.from_numpy(betas).reshape(1, -1),
            torch.as_tensor(np.asarray(p["trans"], dtype=np.float32)).reshape(1, 3),
        )
        return out.vertices[0].double().numpy()

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        import cv2

        img = self.items[index]
        cap, frame, cam = str(img["capture"]), str(img["frame_idx"]), str(img["camera"])
        path = self.root / "images" / self.split / img["file_name"]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"InterHand2.6M: cannot read image {path}")
        if self.check_brightness and bgr.mean() < 10:
            raise InputError(f"InterHand2.6M: image {path} is black (mean < 10); the protocol drops such frames")
        try:
            c = self.cameras[cap]
            campos = np.asarray(c["campos"][cam], dtype=np.float64) / 1000.0
            camrot = np.asarray(c["camrot"][cam], dtype=np.float64)
            focal = np.asarray(c["focal"][cam], dtype=np.float64)
            princpt = np.asarray(c["princpt"][cam], dtype=np.float64)
        except KeyError as exc:
            raise InputError(f"InterHand2.6M: camera {cam} of capture {cap} missing in the camera file ({exc})") from None
        k_full = np.array([[focal[0], 0, princpt[0]], [0, focal[1], princpt[1]], [0, 0, 1.0]])
        params = self.mano[cap][frame]
        verts = np.stack([(camrot @ (self._mesh_world(s, params[s]) - campos).T).T for s in ("left", "right")])
        joints = np.einsum("hjv,hvc->hjc", self.jmap, verts)
        centre, half = crop_box(project(verts.reshape(-1, 3), k_full))
        aff = crop_affine(centre, half)
        crop = cv2.warpAffine(bgr, aff, (IMG_SIZE, IMG_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return build_sample(crop[:, :, ::-1].copy(), crop_intrinsics(k_full, aff), verts, joints, self.topology.faces)
