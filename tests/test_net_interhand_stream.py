"""InterHand2.6M at scale: the compact streaming index, IntagHand's frame
filters (joint_valid, black frames), DataLoader workers, and augmentation that
keeps the 2D/3D ground truth on the image.  Runs on a small dataset written in
the official layout (test_net_data's builder) plus extra frames added here."""
import json

import cv2
import numpy as np
import pytest
import torch

from lagc_hand.net.data.raster import project

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ih_root(tmp_path_factory, open_model_dir):
    """The test_net_data dataset (4 kept frames) plus: frame 5 interacting but
    rendered black (dropped by the brightness scan), frame 6 interacting with
    the left wrist marked invalid (dropped by joint_valid), frame 1's
    annotations given explicit all-valid ``joint_valid``."""
    from test_net_data import _write_fake_interhand

    root = tmp_path_factory.mktemp("ih")
    _write_fake_interhand(root, open_model_dir)
    ann_dir = root / "annotations" / "test"
    data_p = ann_dir / "InterHand2.6M_test_data.json"
    mano_p = ann_dir / "InterHand2.6M_test_MANO_NeuralAnnot.json"
    data, mano = json.loads(data_p.read_text()), json.loads(mano_p.read_text())
    for a in data["annotations"]:
        img = data["images"][a["image_id"]]
        if img["frame_idx"] == 1:
            a["joint_valid"] = [1] * 42
    iid = len(data["images"])
    for frame in ("5", "6"):
        mano["0"][frame] = mano["0"]["1"]
        fname = f"Capture0/ROM01_test/cam400262/image{int(frame):04d}.jpg"
        data["images"].append({"id": iid, "file_name": fname, "width": 334, "height": 512, "capture": 0,
                               "camera": "400262", "frame_idx": int(frame), "seq_name": "ROM01_test"})
        valid = [1] * 42
        if frame == "6":
            valid[41] = 0  # left wrist (InterHand order: left hand 21-41, wrist last)
        data["annotations"].append({"id": iid, "image_id": iid, "hand_type": "interacting", "hand_type_valid": 1,
                                    "joint_valid": valid})
        shade = 3 if frame == "5" else 120
        cv2.imwrite(str(root / "images" / "test" / fname), np.full((512, 334, 3), shade, np.uint8))
        iid += 1
    data_p.write_text(json.dumps(data))
    mano_p.write_text(json.dumps(mano))
    return root


def test_index_is_compact_and_filters_like_intaghand(ih_root, tmp_path):
    from lagc_hand.net.data.interhand import InterHandDataset, InterHandIndex, build_index

    ds = InterHandDataset(ih_root, "test", hand_model="open", index_cache=tmp_path / "idx.npz")
    names = [n.decode() for n in ds.index.names]
    # frames 1, 2 from both cameras; 3 (one hand), 4 (no left MANO), 5 (black), 6 (invalid wrist) dropped
    assert len(ds) == 4
    assert sorted({n.split("image")[1] for n in names}) == ["0001.jpg", "0002.jpg"]
    # without the scan, the black frame 5 is in; frame 6 never is
    raw = build_index(ih_root, "test")
    assert sorted({n.decode().split("image")[1] for n in raw.names}) == ["0001.jpg", "0002.jpg", "0005.jpg"]
    # flat arrays: per-frame cost is the path and three ints, MANO rows are per capture frame
    per_frame = sum(getattr(ds.index, k).nbytes for k in ("names", "image_id", "camera", "frame")) / len(ds)
    assert per_frame <= 128, per_frame
    assert ds.index.mano.shape == (2, 2, 61) and ds.index.mano.dtype == np.float32
    assert ds.index.nbytes < 4096
    # the cache file is the index: a second dataset reads it without the JSON
    assert (tmp_path / "idx.npz").is_file()
    (ih_root / "annotations" / "test" / "InterHand2.6M_test_data.json").rename(tmp_path / "moved.json")
    try:
        again = InterHandDataset(ih_root, "test", hand_model="open", index_cache=tmp_path / "idx.npz")
    finally:
        (tmp_path / "moved.json").rename(ih_root / "annotations" / "test" / "InterHand2.6M_test_data.json")
    assert [n for n in again.index.names] == [n for n in ds.index.names]
    assert isinstance(InterHandIndex.load(tmp_path / "idx.npz"), InterHandIndex)


def test_workers_give_the_same_samples_as_the_main_process(ih_root):
    from lagc_hand.net.config import AugmentConfig
    from lagc_hand.net.data.interhand import InterHandDataset
    from lagc_hand.net.data.synthetic import collate

    ds = InterHandDataset(ih_root, "test", hand_model="open", augment=AugmentConfig(), seed=5)
    ds.set_epoch(3)

    def run(workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=workers, collate_fn=collate)
        return list(loader)

    a, b = run(0), run(2)
    assert len(a) == len(b) == 2
    for ba, bb in zip(a, b):
        for k in ba:
            assert torch.equal(ba[k], bb[k]), k
    # another epoch draws other augmentations
    ds.set_epoch(4)
    assert not torch.equal(run(0)[0]["joints2d"], a[0]["joints2d"])


def _skin_contrast(s):
    """Median red of the crop under the projected vertices minus the mean red
    away from them: the rendered hands are reddish skin on a grey background."""
    img = s["image"].transpose(1, 2, 0)
    on = np.zeros((256, 256), bool)
    px = s["verts2d"].reshape(-1, 2)
    inside = (px >= 0).all(1) & (px < 255).all(1)
    px = px[inside].astype(int)
    on[px[:, 1], px[:, 0]] = True
    far = ~cv2.dilate(on.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    return float(np.median(img[on][:, 0]) - img[far][:, 0].mean()), inside.mean()


def test_augmentation_keeps_the_ground_truth_on_the_image(ih_root):
    """Scale, rotation, translation and colour jitter: the 3D targets still
    project onto the 2D targets through the crop intrinsics, the hands are
    drawn where the 2D targets are, the joints' 3D geometry is a rotation of
    the un-augmented one, and the 2D joints are the un-augmented full-image
    projections moved by the same camera roll and crop."""
    from lagc_hand.net.data.augment import AugmentConfig, Augmentation, camera_roll, compose_affine, jitter_box
    from lagc_hand.net.data.interhand import InterHandDataset
    from lagc_hand.net.data.sample import crop_affine, crop_box

    plain = InterHandDataset(ih_root, "test", hand_model="open")
    cfg = AugmentConfig(scale=0.25, rotation=90, translation=0.1, colour=0.2)
    aug = InterHandDataset(ih_root, "test", hand_model="open", augment=cfg, seed=1)
    for i in range(len(plain)):
        p, a = plain[i], aug[i]
        draw = Augmentation.draw(np.random.default_rng([1, 0, i]), cfg)
        assert abs(draw.angle) > 1e-3
        # 3D targets back in the camera project onto the 2D targets
        verts_cam, joints_cam = plain.hands_camera(i)
        k_full, _, _ = plain.camera(i)
        rz, roll = camera_roll(k_full, draw.angle)
        assert np.allclose(project(verts_cam @ rz.T, a["K"].astype(np.float64)), a["verts2d"], atol=0.05)
        # same crop maths, done independently: full-image projection -> roll -> jittered crop
        uv_full = project(joints_cam, k_full)
        centre, half = jitter_box(*crop_box(project((verts_cam @ rz.T).reshape(-1, 3), k_full)), draw)
        m = compose_affine(crop_affine(centre, half), roll)
        expect = uv_full @ m[:, :2].T + m[:, 2]
        assert np.allclose(expect, a["joints2d"], atol=0.05)
        # the training-frame joints are the plain ones rotated by the roll (same scale)
        assert np.allclose(a["joints3d"], p["joints3d"] @ rz.T.astype(np.float32), atol=1e-4)
        assert a["scale"] == pytest.approx(p["scale"], rel=1e-6)
        # the pixels follow: skin under the projected vertices in both crops
        cp, _ = _skin_contrast(p)
        ca, inside = _skin_contrast(a)
        assert inside > 0.9
        assert cp > 0.25 and ca > 0.15, (cp, ca)
        # heatmap peaks follow the augmented 2D joints
        hm = a["heatmaps"][9]
        if hm.max() > 0.5:
            y, x = np.unravel_index(np.argmax(hm), hm.shape)
            assert np.abs(np.array([x + 0.5, y + 0.5]) - a["joints2d"][0, 9] / 4).max() <= 0.8


def test_eval_prints_the_protocol_table_on_interhand(ih_root, tmp_path, capsys):
    """`lagc-hand eval` on the InterHand2.6M-layout folder (2 workers): the
    table's numbers are the IntagHand protocol recomputed here by hand (root =
    middle MCP, prediction rescaled by the GT / predicted wrist-to-middle-MCP
    length), left, right and mean."""
    import re
    from pathlib import Path

    from lagc_hand.cli import main
    from lagc_hand.net.checkpoint import checkpoint_payload, save_checkpoint
    from lagc_hand.net.config import load_train_config
    from lagc_hand.net.data.interhand import InterHandDataset
    from lagc_hand.net.training import build_model, seed_everything

    cfg = load_train_config(Path(__file__).resolve().parents[1] / "configs" / "tiny_overfit.json")
    ds = InterHandDataset(ih_root, "test", hand_model="open")
    seed_everything(0)
    model = build_model(cfg.net, ds.topology).eval()
    ck = save_checkpoint(tmp_path / "c.pt", checkpoint_payload(cfg, ds.topology, model))
    out = tmp_path / "m.json"
    rc = main(["eval", "--checkpoint", str(ck), "--data", str(ih_root), "--hand-model", "open", "--device", "cpu",
               "--workers", "2", "--batch-size", "3", "-o", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "InterHand2.6M test" in text and "4 frames" in text and "middle MCP" in text
    rows = {m.group(1): [float(x) for x in m.group(2).split()] for m in re.finditer(r"^(MPJPE|MPVPE) mm\s+(.*)$", text, re.M)}
    # by hand, per hand: root-relative, rescaled prediction vs root-relative GT
    errs = {"j": [], "v": []}
    for i in range(len(ds)):
        s = ds[i]
        with torch.no_grad():
            o = model(torch.from_numpy(s["image"])[None])
        for h in range(2):
            pj, pv = o["joints"][0, h].double().numpy(), o["vertices"][0, h].double().numpy()
            gj, gv = s["joints3d"][h] / s["scale"], s["verts3d"][h] / s["scale"]
            k = np.linalg.norm(gj[9] - gj[0]) / np.linalg.norm(pj[9] - pj[0])
            errs["j"].append((h, np.linalg.norm((pj - pj[9]) * k - (gj - gj[9]), axis=1).mean() * 1000))
            errs["v"].append((h, np.linalg.norm((pv - pj[9]) * k - (gv - gj[9]), axis=1).mean() * 1000))
    for row, key in (("MPJPE", "j"), ("MPVPE", "v")):
        left = np.mean([e for h, e in errs[key] if h == 0])
        right = np.mean([e for h, e in errs[key] if h == 1])
        assert rows[row] == pytest.approx([left, right, (left + right) / 2], abs=0.011)
    assert json.loads(out.read_text())["frames"] == 4


def test_train_command_streams_interhand_with_workers(ih_root, tmp_path, capsys):
    """`lagc-hand train` on an InterHand2.6M-layout folder (train split = a copy
    of the test split's annotations): 2 DataLoader workers, augmentation on,
    the frame indexes cached in out_dir, a checkpoint carrying its config."""
    import shutil
    from pathlib import Path

    from lagc_hand.cli import main
    from lagc_hand.net.checkpoint import read_checkpoint

    root = tmp_path / "ih"
    shutil.copytree(ih_root, root)
    (root / "annotations" / "train").mkdir()
    for f in (root / "annotations" / "test").iterdir():
        shutil.copy(f, root / "annotations" / "train" / f.name.replace("_test_", "_train_"))
    (root / "images" / "train").symlink_to(root / "images" / "test")
    tiny = json.loads((Path(__file__).resolve().parents[1] / "configs" / "tiny_overfit.json").read_text())
    out = tmp_path / "run"
    tiny.update(data=str(root), hand_model="open", epochs=2, batch_size=2, amp=False, out_dir=str(out))
    (tmp_path / "cfg.json").write_text(json.dumps(tiny))
    rc = main(["train", "--config", str(tmp_path / "cfg.json"), "--workers", "2", "--device", "cpu", "--no-progress"])
    assert rc == 0
    text = capsys.readouterr().out
    report = json.loads(text[text.index("{"):])
    assert report["checkpoint"] == str(out / "last.pt") and report["val"]["frames"] == 4
    ck = read_checkpoint(out / "last.pt")
    assert ck["epoch"] == 2 and ck["step"] == 4  # 4 kept frames, batch 2
    assert ck["train_config"]["workers"] == 2 and ck["train_config"]["augment"]["enabled"]
    assert (out / "interhand_train_index.npz").is_file() and (out / "interhand_test_index.npz").is_file()
    assert np.isfinite(ck["history"][-1]["total"]) and "submesh" in ck["history"][-1]
