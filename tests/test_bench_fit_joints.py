"""bench/fit_joints.py: the per-joint Procrustes error and one real run on a realdev still."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import fit_joints as fj  # noqa: E402
from bench import real as br  # noqa: E402


def test_procrustes_joint_error_ignores_a_similarity_and_sees_a_moved_joint():
    rng = np.random.default_rng(0)
    lab = rng.normal(size=(21, 3)) * 40.0
    angle = 0.7
    R = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    pred = 1.3 * lab @ R.T + [5.0, -2.0, 100.0]
    np.testing.assert_allclose(fj._procrustes_joint_err(pred, lab), 0.0, atol=1e-9)
    pred[7] += [0.0, 0.0, 30.0]
    err = fj._procrustes_joint_err(pred, lab)
    assert np.argmax(err) == 7 and err[7] > 15.0


@pytest.mark.skipif(br.find_realdev() is None, reason="shared/realdev (real footage) not found; set LAGC_REALDEV")
def test_real_run_on_one_still_is_cached(tmp_path, capsys):
    assert fj.main(["--only", "75", "--cache", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "75.pkl").exists()
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()[:7] in ("out-det", "out-lab", "det-lab")}
    assert set(rows) == {"out-det", "out-lab", "det-lab"}
    assert len(rows["out-det"].split()) == 1 + 21 + 1  # name, 21 joints, mean
    assert "ratio out/det" in out
    # the second run takes the cached detection and gives the same numbers
    assert fj.main(["--only", "75", "--cache", str(tmp_path)]) == 0
    assert capsys.readouterr().out == out
