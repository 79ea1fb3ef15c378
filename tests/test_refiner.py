"""The two-hand graph refiner: its training (seeded, through the CLI), the
shipped weights against their noisy input on held-out synthetic pairs, the
refine stage's shapes and flags, and the pipeline gate.

Shapes (documented in lagc_hand.net.refiner.features / lagc_hand.refine.stage):
input per frame (T, 2, 21, 2) normalised 2D, (T, 2, 21, 3) root-relative 3D,
(T, 2, 21) confidence, (T, 2, 3) followed/bridged/missing flags; output
(T, 2, 21, 3) root-relative 3D, (T, 3) right-minus-left root, (T, 2, 21) confidence.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "assets" / "refiner" / "refiner.pt"
CLIP = ROOT / "assets" / "samples" / "interact_cross.mp4"


def _tiny_config(tmp_path: Path, seed: int) -> Path:
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "refiner.yaml").read_text())
    # Independent poses only (the scene pool costs a minute to build), small chunks.
    cfg.update(seed=seed, scene_share=0.0, chunk=24, chunk_reuse=2, batch_size=8, val_samples=12, log_every=1,
               net={"dim": 32, "levels": 2, "heads": 2})
    path = tmp_path / f"tiny_{seed}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _train(tmp_path: Path, seed: int, name: str) -> list[float]:
    from lagc_hand.cli import main

    out = tmp_path / name
    assert main(["train", "--config", str(_tiny_config(tmp_path, seed)), "--steps", "3", "--out-dir", str(out),
                 "--no-progress"]) == 0
    assert (out / "refiner.pt").is_file()
    return [json.loads(line)["total"] for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_training_is_seeded(tmp_path):
    threads = torch.get_num_threads()
    try:
        a = _train(tmp_path, 0, "a")
        b = _train(tmp_path, 0, "b")
        c = _train(tmp_path, 1, "c")
    finally:
        torch.set_num_threads(threads)
    assert len(a) == 3 and all(np.isfinite(a))
    assert a == b  # same seed -> the same losses, step for step
    assert a != c


def test_refiner_config_errors(tmp_path):
    from lagc_hand.errors import InputError
    from lagc_hand.net.refiner.training import RefinerTrainConfig

    with pytest.raises(InputError, match="unknown refiner config keys: stepz"):
        RefinerTrainConfig.from_dict({"mode": "refiner", "stepz": 3})
    with pytest.raises(InputError, match="unknown noise keys"):
        RefinerTrainConfig.from_dict({"noise": {"sigma": 1}})


@pytest.fixture(scope="module")
def shipped():
    if not WEIGHTS.is_file():
        pytest.skip(f"no shipped refiner weights at {WEIGHTS}")
    from lagc_hand.net.refiner.training import load_refiner

    return load_refiner(WEIGHTS)


def test_shipped_weights_beat_their_input(shipped):
    """Held-out synthetic pairs (a seed training never used), corrupted by the
    calibrated detector error model: the refiner must lower both the
    root-relative keypoint error and the relative-root error of its input."""
    from lagc_hand.net.refiner.training import RefinerTrainConfig, metrics
    from lagc_hand.synth.refiner_pairs import OnTheFlyData
    from lagc_hand.net.refiner.noise import corrupt

    model, ck = shipped
    assert WEIGHTS.stat().st_size <= 5 * 1024 * 1024
    cfg = RefinerTrainConfig.from_dict({**ck["config"], "scene_share": 0.0})
    data = OnTheFlyData(cfg, np.random.default_rng(987654), None)
    kp, vis, K = data.pairs(48)
    x = corrupt(np.random.default_rng(5), kp, vis, K, cfg.noise)
    m = metrics(model, x, kp)
    assert m["mpjpe_refined_mm"] < 0.85 * m["mpjpe_input_mm"], m
    assert m["mrrpe_refined_mm"] < 0.85 * m["mrrpe_input_mm"], m


def _tracking(T: int = 6):
    from lagc_hand.tracking import HandTrack, TrackingResult

    rng = np.random.default_rng(0)
    tracks = {}
    for k, s in enumerate(("left", "right")):
        present = np.ones(T, bool)
        present[k * 2] = False  # left absent in frame 0, right in frame 2
        kp3 = rng.normal(0, 0.03, (T, 21, 3)).astype(np.float32)
        kp2 = (rng.normal(0, 30, (T, 21, 2)) + [320 + 80 * (1 - 2 * k), 240]).astype(np.float32)
        kp3[~present] = 0
        kp2[~present] = 0
        followed = np.zeros(T, bool)
        followed[3] = True
        tracks[s] = HandTrack(s, present, kp2, kp3, np.where(present, 0.9, 0).astype(np.float32),
                              np.full(T, 0.5, np.float32), followed=followed)
    return TrackingResult(tracks)


def test_stage_shapes_and_flags(shipped):
    from lagc_hand.refine import apply_refinement, refine_tracking, refiner_input

    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    tr = _tracking()
    x = refiner_input(tr, K)
    assert x.keypoints2d.shape == (6, 2, 21, 2) and x.keypoints3d.shape == (6, 2, 21, 3)
    assert x.confidence.shape == (6, 2, 21) and x.flags.shape == (6, 2, 3)
    assert x.flags[0, 0, 2] and x.flags[2, 1, 2] and not x.flags[1].any()  # missing
    assert x.flags[3, :, 0].all()  # followed
    assert np.all(x.keypoints3d[0, 0] == 0) and np.all(x.confidence[0, 0] == 0)
    np.testing.assert_allclose(x.keypoints2d[1, 1, 0], (tr.tracks["right"].keypoints2d[1, 0] - [320, 240]) / 500.0,
                               rtol=1e-5)
    out = refine_tracking(tr, K)
    assert out.keypoints3d.shape == (6, 2, 21, 3) and out.rel_root.shape == (6, 3)
    assert out.confidence.shape == (6, 2, 21) and np.all((out.confidence > 0) & (out.confidence < 1))
    np.testing.assert_allclose(out.keypoints3d[:, :, 0], 0, atol=1e-6)  # root-relative
    new = apply_refinement(tr, out)
    for k, s in enumerate(("left", "right")):
        old_t, new_t = tr.tracks[s], new.tracks[s]
        np.testing.assert_array_equal(new_t.keypoints2d, old_t.keypoints2d)  # 2D alignment untouched
        both = x.flags[..., 2].sum(1) == 0  # frames 1, 3, 4, 5
        np.testing.assert_array_equal(new_t.keypoints3d[~both], old_t.keypoints3d[~both])  # one hand: untouched
        np.testing.assert_allclose(new_t.keypoints3d[both], out.keypoints3d[both, k])
    # "scale": the detector's articulation at the refined hand size.
    from lagc_hand.refine.stage import _size

    scaled = apply_refinement(tr, out, mode="scale")
    for k, s in enumerate(("left", "right")):
        own = tr.tracks[s].keypoints3d[both] - tr.tracks[s].keypoints3d[both, :1]
        got = scaled.tracks[s].keypoints3d[both]
        ratio = _size(got) / _size(own)
        np.testing.assert_allclose(got, own * ratio[:, None, None], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(_size(got), _size(out.keypoints3d[both, k]), rtol=1e-4)
    with pytest.raises(ValueError, match="refiner mode"):
        apply_refinement(tr, out, mode="pose")


def test_missing_weights_message(tmp_path):
    from lagc_hand.errors import InputError
    from lagc_hand.refine import refine_tracking

    with pytest.raises(InputError, match="refiner weights not found"):
        refine_tracking(_tracking(), np.eye(3), weights=tmp_path / "none.pt")


def test_pipeline_gate(shipped):
    """Off by default; ``refiner=True`` runs the stage and changes the 3D result."""
    from lagc_hand import pipeline
    from lagc_hand.api import ReconstructOptions

    if not CLIP.is_file():
        pytest.skip(f"{CLIP} missing")
    assert pipeline.REFINER_DEFAULT is False
    opts = ReconstructOptions(frame_end=6, device="cpu", detect_workers=1)
    off = pipeline.run_pipeline(CLIP, opts)
    on = pipeline.run_pipeline(CLIP, opts, refiner=True)
    assert "refine" not in off.summary["seconds"] and on.summary["seconds"]["refine"] > 0
    a, b = off.motion.hands["right"], on.motion.hands["right"]
    assert a.present.any()
    np.testing.assert_array_equal(a.present, b.present)
    assert not np.allclose(a.raw.keypoints3d[a.present], b.raw.keypoints3d[b.present])
