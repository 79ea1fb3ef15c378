"""InterHand2.6M loader with IntagHand-style preprocessing, streaming from disk.

Expected layout under the folder the user gives (the official v1.0 5 fps
release, annotation subset H+M; ``{split}`` is ``train``, ``val`` or ``test``)::

    ROOT/
      images/{split}/Capture*/{sequence}/cam*/image*.jpg
      annotations/{split}/InterHand2.6M_{split}_data.json          (COCO-style images + annotations)
      annotations/{split}/InterHand2.6M_{split}_camera.json        (per capture: campos, camrot, focal, princpt)
      annotations/{split}/InterHand2.6M_{split}_joint_3d.json      (per capture, frame: world_coord, mm; not read:
                                                                    the ground truth is the NeuralAnnot mesh)
      annotations/{split}/InterHand2.6M_{split}_MANO_NeuralAnnot.json  (per capture, frame: left/right pose, shape, trans)

Frames kept (IntagHand's ``cut_inter_img``): ``hand_type == "interacting"``
with ``hand_type_valid``; when the annotation has ``joint_valid`` (42 flags,
InterHand order: right hand 0-20, left 21-41, wrist last, middle MCP at 11),
both hands' wrist and middle MCP valid (the protocol's root and scale joints);
both hands' MANO NeuralAnnot parameters present; image mean >= 10 (black
frames), checked once by :func:`scan_brightness` when the index is built.

Memory: the JSON files are parsed once into an :class:`InterHandIndex` of
numpy arrays (about 100 bytes per frame plus 488 per annotated capture frame,
~40 MB for the 366k training frames, against ~90 GB for decoded crops) that
can be saved to / loaded from one ``.npz``; images are read, cropped and
turned into samples per item, so a ``torch.utils.data.DataLoader`` with
worker processes streams them.

Ground truth: the hand model posed by the NeuralAnnot parameters (metres,
world) moved into the camera (``R (X - campos)``); the crop is the square box
around both hands' projected vertices with half side ``max(w, h) / 2 / 0.8``,
warped to 256x256; in training, :mod:`.augment` jitters it.

The meshes need the official MANO files (``hand_model`` = the folder with
``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``): NeuralAnnot parameters are MANO
parameters (pose relative to MANO's mean hand, i.e. ``flat_hand_mean=False``).
Any MANO-layout model loads, so the tests run on the open model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from lagc_hand.errors import InputError

from ..topology import MeshTopology, joint_matrix, topology_from_hand_model
from .augment import AugmentConfig, Augmentation, camera_roll, colour_jitter, compose_affine, jitter_box
from .raster import project
from .sample import IMG_SIZE, build_sample, crop_affine, crop_box, crop_intrinsics

ANNOTATION_KINDS = ("data", "camera", "MANO_NeuralAnnot")
#: InterHand2.6M joint indices (right 0-20, left 21-41) that must be valid: wrist, middle MCP.
REQUIRED_JOINTS = (20, 11, 41, 32)
BLACK_MEAN = 10.0
#: NeuralAnnot parameters per hand: pose 48 (axis-angle, MANO mean-relative), shape 10, trans 3 (metres)
MANO_WIDTH = 61


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


@dataclass
class InterHandIndex:
    """The kept frames of one split as flat arrays (N frames, C cameras, F capture frames).

    names (N,) bytes: image path under ``images/{split}/``; image_id (N,) int64;
    camera (N,) int32 row of the camera arrays; frame (N,) int32 row of ``mano``;
    focal (C, 2), princpt (C, 2) pixels; campos (C, 3) metres; camrot (C, 3, 3) world -> camera;
    mano (F, 2, 61) float32 left, right: pose 48, shape 10, trans 3."""

    names: np.ndarray
    image_id: np.ndarray
    camera: np.ndarray
    frame: np.ndarray
    focal: np.ndarray
    princpt: np.ndarray
    campos: np.ndarray
    camrot: np.ndarray
    mano: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    @property
    def nbytes(self) -> int:
        return int(sum(getattr(self, f.name).nbytes for f in fields(self)))

    def subset(self, keep: np.ndarray) -> "InterHandIndex":
        keep = np.asarray(keep)
        per = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("names", "image_id", "camera", "frame"):
            per[k] = per[k][keep]
        # drop the MANO rows no kept frame uses
        rows, per["frame"] = np.unique(per["frame"], return_inverse=True)
        per["frame"] = per["frame"].astype(np.int32)
        per["mano"] = per["mano"][rows]
        return InterHandIndex(**per)

    def save(self, path: str | Path) -> Path:
        import os

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **{f.name: getattr(self, f.name) for f in fields(self)})
        os.replace(tmp, path)
        return path

    @staticmethod
    def load(path: str | Path) -> "InterHandIndex":
        try:
            with np.load(path) as z:
                return InterHandIndex(**{f.name: z[f.name] for f in fields(InterHandIndex)})
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"InterHand2.6M index {path} cannot be read ({exc}); delete it to rebuild") from None


def _mano_row(p: dict) -> np.ndarray:
    row = np.zeros(MANO_WIDTH, dtype=np.float32)
    row[:48] = np.asarray(p["pose"], dtype=np.float32).reshape(48)
    shape = np.asarray(p["shape"], dtype=np.float32).reshape(-1)[:10]
    row[48 : 48 + len(shape)] = shape
    row[58:61] = np.asarray(p["trans"], dtype=np.float32).reshape(3)
    return row


def _valid_annotation(a: dict) -> bool:
    if a.get("hand_type") != "interacting" or not a.get("hand_type_valid", 0):
        return False
    jv = a.get("joint_valid")
    if jv is None:
        return True
    jv = np.asarray(jv, dtype=np.float64).reshape(-1)
    return len(jv) >= 42 and bool(np.all(jv[list(REQUIRED_JOINTS)] > 0))


def build_index(root: str | Path, split: str, limit: int | None = None) -> InterHandIndex:
    """Parse the split's annotation JSON into an :class:`InterHandIndex` of the
    frames kept by the rules in the module docstring (except brightness)."""
    root = Path(root)
    ann = {k: _load_json(annotation_path(root, split, k)) for k in ANNOTATION_KINDS}
    cams, mano = ann["camera"], ann["MANO_NeuralAnnot"]
    images = {img["id"]: img for img in ann["data"].get("images", [])}
    cam_rows: dict[tuple[str, str], int] = {}
    frame_rows: dict[tuple[str, str], int] = {}
    cam_arrays: list[tuple] = []
    mano_rows: list[np.ndarray] = []
    names, ids, cam_of, frame_of = [], [], [], []
    for a in ann["data"].get("annotations", []):
        if not _valid_annotation(a):
            continue
        img = images.get(a["image_id"])
        if img is None:
            continue
        cap, frame, cam = str(img["capture"]), str(img["frame_idx"]), str(img["camera"])
        params = mano.get(cap, {}).get(frame)
        if not params or not params.get("left") or not params.get("right"):
            continue
        if (cap, cam) not in cam_rows:
            try:
                c = cams[cap]
                cam_arrays.append((c["focal"][cam], c["princpt"][cam], np.asarray(c["campos"][cam]) / 1000.0, c["camrot"][cam]))
            except KeyError as exc:
                raise InputError(f"InterHand2.6M: camera {cam} of capture {cap} missing in the camera file ({exc})") from None
            cam_rows[(cap, cam)] = len(cam_arrays) - 1
        if (cap, frame) not in frame_rows:
            mano_rows.append(np.stack([_mano_row(params["left"]), _mano_row(params["right"])]))
            frame_rows[(cap, frame)] = len(mano_rows) - 1
        names.append(img["file_name"])
        ids.append(img["id"])
        cam_of.append(cam_rows[(cap, cam)])
        frame_of.append(frame_rows[(cap, frame)])
        if limit is not None and len(names) >= limit:
            break
    if not names:
        raise InputError(f"InterHand2.6M {split}: no interacting-hand frames with MANO parameters under {root}")
    return InterHandIndex(
        names=np.array(names, dtype="S"), image_id=np.array(ids, dtype=np.int64),
        camera=np.array(cam_of, dtype=np.int32), frame=np.array(frame_of, dtype=np.int32),
        focal=np.array([c[0] for c in cam_arrays], dtype=np.float64).reshape(-1, 2),
        princpt=np.array([c[1] for c in cam_arrays], dtype=np.float64).reshape(-1, 2),
        campos=np.array([c[2] for c in cam_arrays], dtype=np.float64).reshape(-1, 3),
        camrot=np.array([c[3] for c in cam_arrays], dtype=np.float64).reshape(-1, 3, 3),
        mano=np.stack(mano_rows).astype(np.float32),
    )


class _Brightness(torch.utils.data.Dataset):
    def __init__(self, folder: Path, names: np.ndarray):
        self.folder, self.names = folder, names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> float:
        import cv2

        # 1/4-size decode: the mean is what matters, and it is ~10x cheaper
        img = cv2.imread(str(self.folder / self.names[i].decode()), cv2.IMREAD_REDUCED_COLOR_4)
        return float("nan") if img is None else float(img.mean())


def _as_list(batch: list) -> list:
    return batch


def scan_brightness(root: str | Path, split: str, index: InterHandIndex, workers: int = 0) -> np.ndarray:
    """(N,) mean pixel value of every indexed image (NaN: unreadable), read
    with ``workers`` processes."""
    ds = _Brightness(Path(root) / "images" / split, index.names)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers, collate_fn=_as_list)
    return np.array([m for batch in loader for m in batch], dtype=np.float64)


def load_index(root: str | Path, split: str, cache: str | Path | None = None, limit: int | None = None,
               check_brightness: bool = True, workers: int = 0) -> InterHandIndex:
    """The split's index: read from ``cache`` when that file exists, else built
    (JSON parse + brightness scan) and saved there."""
    if cache is not None and Path(cache).is_file():
        return InterHandIndex.load(cache)
    index = build_index(root, split, limit)
    if check_brightness:
        means = scan_brightness(root, split, index, workers)
        keep = np.isfinite(means) & (means >= BLACK_MEAN)
        if not keep.any():
            raise InputError(f"InterHand2.6M {split}: every kept frame is black or unreadable under {root}/images/{split}")
        index = index.subset(keep)
    if cache is not None:
        index.save(cache)
    return index


class InterHandDataset(torch.utils.data.Dataset):
    """Map-style dataset of interacting-hand frames -> sample dicts
    (:mod:`lagc_hand.net.data.sample`), safe to use with DataLoader workers.

    ``hand_model``: MANO folder (or any MANO-layout model); ``limit``: keep
    only the first N frames; ``index_cache``: ``.npz`` file for the index
    (:func:`load_index`); ``augment``: random crop/colour augmentation
    (training), drawn per ``(seed, epoch, item)`` so that the samples do not
    depend on the number of workers; :meth:`set_epoch` before each epoch."""

    def __init__(self, root: str | Path, split: str = "test", hand_model: str = "mano", topology: MeshTopology | None = None,
                 limit: int | None = None, check_brightness: bool = True, index_cache: str | Path | None = None,
                 augment: AugmentConfig | None = None, seed: int = 0, workers: int = 0):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise InputError(f"InterHand2.6M folder {self.root} does not exist")
        if split not in ("train", "val", "test"):
            raise InputError(f"split must be train, val or test, not {split!r}")
        self.split = split
        self.index = load_index(self.root, split, index_cache, limit, check_brightness, workers)
        self.augment = augment if augment is not None and augment.enabled else None
        self.seed, self.epoch = int(seed), 0
        from lagc_hand.handmodel import load_hand_model_params
        from lagc_hand.handmodel.layer import HandModel

        self.params = {s: load_hand_model_params(hand_model, s) for s in ("left", "right")}
        self.layers = {s: HandModel(p).eval() for s, p in self.params.items()}
        self.topology = topology or topology_from_hand_model(hand_model)
        self.jmap = joint_matrix(self.topology).astype(np.float64)

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @torch.no_grad()
    def _mesh_world(self, side: str, row: np.ndarray) -> np.ndarray:
        """NeuralAnnot row (61,) -> (V, 3) world vertices, metres."""
        layer, params = self.layers[side], self.params[side]
        pose = row[:48]
        hand_pose = pose[3:] + params.hands_mean  # NeuralAnnot is relative to the mean hand
        nb = params.num_betas
        betas = np.zeros(nb, dtype=np.float32)
        betas[: min(nb, 10)] = row[48 : 48 + min(nb, 10)]
        out = layer(
            torch.from_numpy(np.ascontiguousarray(pose[:3])).reshape(1, 3),
            torch.from_numpy(hand_pose.astype(np.float32)).reshape(1, 45),
            torch.from_numpy(betas).reshape(1, -1),
            torch.from_numpy(np.ascontiguousarray(row[58:61])).reshape(1, 3),
        )
        return out.vertices[0].double().numpy()

    def camera(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(K (3, 3), camrot (3, 3), campos (3,) metres) of item ``index``."""
        c = int(self.index.camera[index])
        f, p = self.index.focal[c], self.index.princpt[c]
        k = np.array([[f[0], 0, p[0]], [0, f[1], p[1]], [0, 0, 1.0]])
        return k, self.index.camrot[c], self.index.campos[c]

    def hands_camera(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth of item ``index`` in its camera: verts (2, V, 3), joints (2, 21, 3), metres, left first."""
        _, camrot, campos = self.camera(index)
        row = self.index.mano[int(self.index.frame[index])]
        verts = np.stack([(camrot @ (self._mesh_world(s, row[h]) - campos).T).T for h, s in enumerate(("left", "right"))])
        return verts, np.einsum("hjv,hvc->hjc", self.jmap, verts)

    def read_image(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 BGR of item ``index``."""
        import cv2

        path = self.root / "images" / self.split / self.index.names[index].decode()
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"InterHand2.6M: cannot read image {path}")
        return bgr

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        import cv2

        if not 0 <= index < len(self):
            raise IndexError(index)
        bgr = self.read_image(index)
        k_full, _, _ = self.camera(index)
        verts, joints = self.hands_camera(index)
        aug = Augmentation()
        if self.augment is not None:
            aug = Augmentation.draw(np.random.default_rng([self.seed, self.epoch, index]), self.augment)
        rz, roll = camera_roll(k_full, aug.angle)
        verts, joints = verts @ rz.T, joints @ rz.T
        centre, half = jitter_box(*crop_box(project(verts.reshape(-1, 3), k_full)), aug)
        aff = crop_affine(centre, half)
        crop = cv2.warpAffine(bgr, compose_affine(aff, roll), (IMG_SIZE, IMG_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        rgb = colour_jitter(np.ascontiguousarray(crop[:, :, ::-1]), aug)
        return build_sample(rgb, crop_intrinsics(k_full, aff), verts, joints, self.topology.faces)
