"""Training data: the synthetic two-hand generator and the InterHand2.6M
loader (on a small dataset folder this test writes in the official layout)."""
import json

import cv2
import numpy as np
import pytest
import torch

from lagc_hand.errors import InputError
from lagc_hand.net.data.raster import project, rasterize, shade
from lagc_hand.net.data.sample import BONE_LENGTH, HEATMAP_SIZE


@pytest.fixture(scope="module")
def open_model(open_model_dir):
    return open_model_dir


@pytest.fixture(scope="module")
def synth(open_model):
    from lagc_hand.net.data.synthetic import SyntheticTwoHands

    return SyntheticTwoHands(6, seed=3)


def _check_sample(s, v):
    assert s["image"].shape == (3, 256, 256) and s["image"].dtype == np.float32
    assert 0 <= s["image"].min() and s["image"].max() <= 1
    assert s["verts3d"].shape == (2, v, 3) and s["joints3d"].shape == (2, 21, 3)
    assert s["verts2d"].shape == (2, v, 2) and s["joints2d"].shape == (2, 21, 2)
    assert s["heatmaps"].shape == (42, HEATMAP_SIZE, HEATMAP_SIZE) and s["masks"].shape == (2, 64, 64)
    # training frame: left middle MCP at the origin, mean wrist->middle-MCP = 9.5 cm
    assert np.allclose(s["joints3d"][0, 9], 0, atol=1e-6)
    bones = np.linalg.norm(s["joints3d"][:, 9] - s["joints3d"][:, 0], axis=-1)
    assert bones.mean() == pytest.approx(BONE_LENGTH, rel=1e-4)
    # the 3D targets, back in metres and in the camera, project onto the 2D targets
    root_cam = s["joints3d"][0, 9]  # origin of the training frame
    verts_cam = s["verts3d"] / s["scale"]
    uv = project(verts_cam - verts_cam[0:1, :1] * 0 + _cam_root(s), s["K"].astype(np.float64))
    assert np.allclose(uv, s["verts2d"], atol=0.05)
    # IntagHand crop: the projected vertices fill 80% of the crop side, centred
    lo, hi = s["verts2d"].reshape(-1, 2).min(0), s["verts2d"].reshape(-1, 2).max(0)
    assert max(hi - lo) == pytest.approx(0.8 * 256, rel=1e-3)
    assert np.allclose((lo + hi) / 2, 128, atol=0.5)
    # heatmap peaks sit at the 2D joints (64 px maps)
    for h in range(2):
        for j in (0, 9, 20):
            hm = s["heatmaps"][21 * h + j]
            if hm.max() < 0.5:
                continue  # joint outside the crop
            y, x = np.unravel_index(np.argmax(hm), hm.shape)
            assert np.abs(np.array([x + 0.5, y + 0.5]) - s["joints2d"][h, j] / 4).max() <= 0.8
    return root_cam


def _cam_root(s):
    """Camera-frame position of the training frame's origin, recovered from the
    2D targets: solve for t in K (X/scale + t) ~ uv (least squares, linear)."""
    k = s["K"].astype(np.float64)
    x = (s["verts3d"] / s["scale"]).reshape(-1, 3).astype(np.float64)
    uv = s["verts2d"].reshape(-1, 2).astype(np.float64)
    # (u - cx) z = fx x  with z = X_z + tz etc.: linear in t
    a_rows, b_rows = [], []
    for d, (f, c) in enumerate(((k[0, 0], k[0, 2]), (k[1, 1], k[1, 2]))):
        r = uv[:, d] - c
        a = np.zeros((len(x), 3))
        a[:, d] = f
        a[:, 2] = -r
        a_rows.append(a)
        b_rows.append(r * x[:, 2] - f * x[:, d])
    t, *_ = np.linalg.lstsq(np.concatenate(a_rows), np.concatenate(b_rows), rcond=None)
    return t


def test_synthetic_samples_are_consistent(synth):
    v = synth.topology.num_vertices
    for i in range(3):
        s = synth[i]
        _check_sample(s, v)
        # hands are drawn where the masks say, over a different background
        img = s["image"]
        small = cv2.resize(img.transpose(1, 2, 0), (64, 64), interpolation=cv2.INTER_AREA)
        hand = s["masks"].max(0) > 0
        assert 0.02 < hand.mean() < 0.9
        # visible-silhouette masks: where a hand's vertices project, its mask (or the other hand's) is on
        px = np.clip((s["verts2d"] / 4).astype(int), 0, 63)
        for h in range(2):
            on = s["masks"].max(0)[px[h, :, 1], px[h, :, 0]]
            assert on.mean() > 0.85
        assert small.shape == (64, 64, 3)


def test_synthetic_is_deterministic_and_varied(synth):
    a, b, c = synth[1], synth[1], synth[2]
    for k in a:
        assert np.array_equal(a[k], b[k])
    assert not np.allclose(a["verts3d"], c["verts3d"])
    assert np.abs(a["image"] - c["image"]).mean() > 0.02
    with pytest.raises(IndexError):
        synth[6]


# --- InterHand2.6M -----------------------------------------------------------------

def _rot(rx, ry, rz):
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("xyz", [rx, ry, rz]).as_matrix()


def _write_fake_interhand(root, open_model):
    """A tiny dataset in the official layout: capture 0, two cameras, frames:
    1 and 2 interacting with MANO for both hands (kept), 3 right-hand only,
    4 interacting with only the right hand's MANO (both dropped)."""
    from lagc_hand.handmodel import load_hand_model_params
    from lagc_hand.handmodel.layer import HandModel

    rng = np.random.default_rng(0)
    split = "test"
    ann = root / "annotations" / split
    ann.mkdir(parents=True)
    campos = {"400262": [0.0, 0.0, -900.0], "400263": [30.0, 20.0, -880.0]}
    camrot = {"400262": np.eye(3).tolist(), "400263": _rot(0.05, 0.06, 0.02).tolist()}
    cameras = {"0": {"campos": campos, "camrot": camrot, "focal": {"400262": [600.0, 600.0], "400263": [550.0, 575.0]},
                     "princpt": {"400262": [167.0, 256.0], "400263": [170.0, 250.0]}}}
    params = {s: load_hand_model_params("open", s) for s in ("left", "right")}
    layers = {s: HandModel(p).eval() for s, p in params.items()}
    mano = {"0": {}}
    frames = {}
    for frame in ("1", "2", "4"):
        mano["0"][frame] = {}
        for side, x in (("left", -0.04), ("right", 0.04)):
            pose = np.concatenate([rng.normal(0, 0.3, 3), rng.normal(0, 0.15, 45) - params[side].hands_mean])
            mano["0"][frame][side] = {"pose": pose.tolist(), "shape": rng.normal(0, 0.5, 10).tolist(),
                                     "trans": [x, rng.normal(0, 0.01), rng.normal(0, 0.01)]}
    mano["0"]["4"]["left"] = None
    images, annots = [], []
    iid = 0
    for frame, hand_type in (("1", "interacting"), ("2", "interacting"), ("3", "right"), ("4", "interacting")):
        for cam in ("400262", "400263"):
            fname = f"Capture0/ROM01_test/cam{cam}/image{int(frame):04d}.jpg"
            images.append({"id": iid, "file_name": fname, "width": 334, "height": 512, "capture": 0, "camera": cam,
                           "frame_idx": int(frame), "seq_name": "ROM01_test"})
            annots.append({"id": iid, "image_id": iid, "hand_type": hand_type, "hand_type_valid": 1})
            # render the hands that the MANO params describe, seen from this camera
            meshes = []
            if frame in mano["0"] and mano["0"][frame]["left"]:
                for side in ("left", "right"):
                    p = mano["0"][frame][side]
                    pose = np.asarray(p["pose"], np.float32)
                    with torch.no_grad():
                        out = layers[side](torch.from_numpy(pose[:3])[None], torch.from_numpy(pose[3:] + params[side].hands_mean)[None],
                                           torch.tensor(p["shape"], dtype=torch.float32)[None], torch.tensor(p["trans"])[None])
                    world_mm = out.vertices[0].double().numpy() * 1000
                    cam_m = (np.asarray(camrot[cam]) @ (world_mm - np.asarray(campos[cam])).T).T / 1000
                    meshes.append((cam_m, params[side].f))
            k = np.array([[cameras["0"]["focal"][cam][0], 0, cameras["0"]["princpt"][cam][0]],
                          [0, cameras["0"]["focal"][cam][1], cameras["0"]["princpt"][cam][1]], [0, 0, 1]])
            bg = np.full((512, 334, 3), 0.2)
            img = bg
            if meshes:
                r = rasterize(meshes, k, 512, 334)
                img = shade(r, meshes, [np.full((len(m[0]), 3), [0.9, 0.6, 0.4]) for m in meshes], np.array([0, 0, 1.0]), 0.5, bg)
            path = root / "images" / split / fname
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), (img[:, :, ::-1] * 255).astype(np.uint8))
            iid += 1
    files = {"data": {"images": images, "annotations": annots}, "camera": cameras, "MANO_NeuralAnnot": mano,
             "joint_3d": {"0": {}}}
    for kind, data in files.items():
        (ann / f"InterHand2.6M_{split}_{kind}.json").write_text(json.dumps(data))


def test_interhand_loader_on_a_dataset_in_the_official_layout(tmp_path, open_model):
    from lagc_hand.net.data.interhand import InterHandDataset

    root = tmp_path / "ih"
    _write_fake_interhand(root, open_model)
    ds = InterHandDataset(root, "test", hand_model="open")
    assert len(ds) == 4  # frames 1 and 2 from two cameras; 3 (one hand) and 4 (no left MANO) dropped
    for i in range(len(ds)):
        s = ds[i]
        _check_sample(s, ds.topology.num_vertices)
        # the crop shows the rendered hands exactly where the ground truth projects
        img = s["image"].transpose(1, 2, 0)
        on_hand = np.zeros((256, 256), bool)
        px = np.clip(s["verts2d"].reshape(-1, 2).astype(int), 0, 255)
        on_hand[px[:, 1], px[:, 0]] = True
        skin = np.median(img[on_hand], axis=0)
        background = img[~cv2.dilate(on_hand.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)].mean(0)
        assert skin[0] > background[0] + 0.25  # reddish skin vs the grey (0.2) background


def test_interhand_missing_files_are_clear_errors(tmp_path, open_model):
    from lagc_hand.net.data.interhand import InterHandDataset

    with pytest.raises(InputError, match="does not exist"):
        InterHandDataset(tmp_path / "nope")
    root = tmp_path / "ih"
    _write_fake_interhand(root, open_model)
    (root / "annotations" / "test" / "InterHand2.6M_test_camera.json").unlink()
    with pytest.raises(InputError, match="InterHand2.6M_test_camera.json"):
        InterHandDataset(root, "test", hand_model="open")
    with pytest.raises(InputError, match="split"):
        InterHandDataset(root, "dev", hand_model="open")
