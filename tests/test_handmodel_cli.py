"""``lagc-hand model check`` / ``render`` through the real command line entry point."""
from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest

from lagc_hand.cli import main
from lagc_hand.handmodel import load_hand_model_params


def test_check_open_model(capsys):
    assert main(["model", "check"]) == 0
    out = capsys.readouterr().out
    assert "lagc-open-hand-v1" in out and "closed manifold" in out and out.strip().endswith("ok")
    assert "18." in out or "19." in out  # wrist to middle fingertip, cm


def test_check_mano_dir(tmp_path, capsys):
    p = load_hand_model_params("open", "right")
    d = {k: np.asarray(v) for k, v in p.to_arrays().items() if k not in ("side", "model_id")}
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(pickle.dumps(d, protocol=2))
    assert main(["model", "check", "--mano-dir", str(tmp_path), "--side", "right"]) == 0
    assert "model id mano" in capsys.readouterr().out
    # the left file is missing: a clear error and exit code 2, no traceback
    assert main(["model", "check", "--mano-dir", str(tmp_path), "--side", "left"]) == 2
    err = capsys.readouterr().err
    assert "MANO_LEFT.pkl" in err and "Traceback" not in err


def test_check_refuses_a_malicious_file(tmp_path, capsys):
    (tmp_path / "MANO_RIGHT.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    assert main(["model", "check", "--mano-dir", str(tmp_path), "--side", "right"]) == 2
    assert "refusing to load" in capsys.readouterr().err


@pytest.mark.blender
def test_render_writes_rest_and_fist_pictures(tmp_path):
    assert main(["model", "render", "--out", str(tmp_path), "--size", "128", "--samples", "2"]) == 0
    masks = {}
    for name in ("open_hand_rest.png", "open_hand_fist.png"):
        img = cv2.imread(str(tmp_path / name))
        assert img is not None and img.shape == (128, 128, 3)
        img = cv2.medianBlur(img, 3)
        b, g, r = (img[..., k].astype(int) for k in range(3))
        masks[name] = (r > b + 25) & (r > 90)
        assert 0.08 < masks[name].mean() < 0.7, name
    # a fist is more compact than the open hand: its silhouette fills more of its bounding box
    def fill(m):
        ys, xs = np.nonzero(m)
        return m.sum() / ((ys.ptp() + 1) * (xs.ptp() + 1))

    def aspect(m):
        ys, xs = np.nonzero(m)
        return (ys.ptp() + 1) / (xs.ptp() + 1)

    rest, fist = masks["open_hand_rest.png"], masks["open_hand_fist.png"]
    assert fill(fist) > fill(rest) + 0.05
    assert aspect(rest) > aspect(fist) + 0.2  # the open hand is long, the fist squat
