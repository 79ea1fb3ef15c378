"""Training/network config files: shipped configs load, mistakes are clear errors."""
from pathlib import Path

import pytest

from lagc_hand.errors import InputError
from lagc_hand.net.config import load_train_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["tiny_overfit.json", "lagc_xxs_synthetic.yaml", "lagc_xxs_interhand.yaml"])
def test_shipped_configs_load(name):
    cfg = load_train_config(ROOT / "configs" / name)
    assert cfg.net.encoder.attention in ("separable", "mhsa")
    assert len(cfg.net.encoder.channels) == 6


def test_paper_schedule_in_the_interhand_config():
    cfg = load_train_config(ROOT / "configs" / "lagc_xxs_interhand.yaml")
    assert (cfg.lr, cfg.lr_decay_epoch, cfg.epochs, cfg.batch_size) == (1e-4, 50, 100, 64)
    assert cfg.net.encoder.channels == (16, 16, 24, 64, 80, 128) and cfg.net.encoder.exp_channels == 512


def test_config_mistakes_are_clear(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("net:\n  encoder: {atention: mhsa}\n")
    with pytest.raises(InputError, match="unknown key.*atention"):
        load_train_config(p)
    p.write_text("net:\n  encoder: {attention: quadratic}\n")
    with pytest.raises(InputError, match="encoder.attention"):
        load_train_config(p)
    p.write_text("net: [unclosed\n")
    with pytest.raises(InputError, match="cannot parse"):
        load_train_config(p)
    with pytest.raises(InputError, match="not found"):
        load_train_config(tmp_path / "missing.yaml")
    q = tmp_path / "c.toml"
    q.write_text("x=1")
    with pytest.raises(InputError, match=".yaml, .yml or .json"):
        load_train_config(q)
