"""The `lagc` engine crops as training does and scores hands without the
heatmaps: real MediaPipe on the project's two-hand sample clip chooses the
first crop, the next frame's crop is IntagHand's box around the previous
frame's projected vertices, and scores come from geometry and detections."""
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, open_model_dir):
    from lagc_hand.net.checkpoint import checkpoint_payload, save_checkpoint
    from lagc_hand.net.config import load_train_config
    from lagc_hand.net.topology import topology_from_hand_model
    from lagc_hand.net.training import build_model, seed_everything

    cfg = load_train_config(ROOT / "configs" / "tiny_overfit.json")
    topo = topology_from_hand_model("open")
    seed_everything(0)
    model = build_model(cfg.net, topo).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "c.pt", checkpoint_payload(cfg, topo, model))


def _frames(n):
    import cv2

    clip = ROOT / "assets" / "samples" / "two_hands.mp4"
    if not clip.is_file():
        pytest.skip("sample clip not built")
    cap = cv2.VideoCapture(str(clip))
    frames = [cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB) for _ in range(n)]
    cap.release()
    return frames


def test_first_crop_from_detections_then_the_training_box(checkpoint):
    from lagc_hand.engines.lagc import DETECTION_SLACK, LagcEngine
    from lagc_hand.engines.hands_tracker import HandsTracker
    from lagc_hand.net.data.sample import crop_box

    f0, f1 = _frames(2)
    with HandsTracker(max_hands=2) as mp:
        dets = [o for o in mp.process(f0, 0.0) if o.box is not None]
    assert len(dets) == 2
    with LagcEngine(checkpoint=str(checkpoint), device="cpu", min_score=0.0) as eng:
        hands0 = eng.process(f0, 0.0)
        assert len(hands0) == 2 and not hands0[0].extra["tracked"]
        assert max(h.score for h in hands0) > 0.1  # the checks below compare real numbers, not zeros
        b = np.stack([d.box for d in dets])
        centre, half = eng.crop_for_box(np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]))
        assert np.allclose(hands0[0].extra["crop_centre"], centre, atol=1e-3) and hands0[0].extra["crop_half"] == pytest.approx(half)
        raw = eng.run_crop(f0, centre, half)
        to_full, origin = 2 * half / 256, centre - half
        # scores recomputed: in-crop vertex fraction x best detection support
        for h, obs in enumerate(hands0):
            v2 = raw["vertices2d"][h]
            inside = np.mean(((v2 >= 0) & (v2 <= 256)).all(1))
            kp = raw["joints2d"][h] * to_full + origin
            sup = []
            for d in dets:
                pad = DETECTION_SLACK * (d.box[2:] - d.box[:2])
                frac = np.mean(((kp >= d.box[:2] - pad) & (kp <= d.box[2:] + pad)).all(1))
                sup.append(frac if (d.handedness > 0.5) == (h == 1) else frac / 2)
            assert obs.score == pytest.approx(inside * max(sup), abs=1e-6)
        # the heatmaps play no part in the scores
        flat = dict(raw, heatmaps=np.zeros_like(raw["heatmaps"]))
        assert np.allclose(eng.hand_scores(flat, centre, half, dets), [h.score for h in hands0])
        # next frame: IntagHand's box around frame 0's projected vertices, no margin
        verts_full = np.concatenate([raw["vertices2d"][h] * to_full + origin for h in range(2)])
        c1, half1 = crop_box(verts_full)
        hands1 = eng.process(f1, 1 / 30)
        assert len(hands1) == 2 and hands1[0].extra["tracked"]
        assert np.allclose(hands1[0].extra["crop_centre"], c1, atol=1e-3) and hands1[0].extra["crop_half"] == pytest.approx(half1)
        raw1 = eng.run_crop(f1, c1, half1)
        for h, obs in enumerate(hands1):
            v2 = raw1["vertices2d"][h]
            assert obs.score == pytest.approx(np.mean(((v2 >= 0) & (v2 <= 256)).all(1)) * hands0[h].score, abs=1e-6)
        eng.reset()
        assert not eng.process(f1, 2 / 30)[0].extra["tracked"]
