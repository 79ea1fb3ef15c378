"""Paper-scale training machinery on tiny data: sub-mesh losses on every graph
level, mixed precision, exact resume (optimiser, scheduler, RNG), checkpoints
that carry their config, and DDP over two CPU processes (gloo)."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


def _tiny_cfg(tmp_path, **over):
    from lagc_hand.net.config import load_train_config

    cfg = load_train_config(ROOT / "configs" / "tiny_overfit.json")
    cfg.synthetic_train, cfg.synthetic_val, cfg.batch_size, cfg.epochs = 2, 1, 1, 2
    cfg.net.encoder.dropout = 0.1  # RNG-dependent training: resume must restore the generators
    cfg.out_dir = str(tmp_path)
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


@pytest.fixture(scope="module")
def tiny_data(open_model_dir):
    from lagc_hand.net.data.synthetic import SyntheticTwoHands

    train = SyntheticTwoHands(2, 0, "open")
    return train, SyntheticTwoHands(1, 99, "open", train.topology)


def test_level_pooling_gives_each_levels_cluster_centroids(tiny_data):
    from lagc_hand.net.coarsen import build_hierarchy, level_pooling

    topo = tiny_data[0].topology
    h = build_hierarchy(topo.faces, topo.template, None, 3)
    pools = level_pooling(h)
    assert [p.shape for p in pools] == [(n, topo.num_vertices) for n in h.sizes]
    for p, pos, nodes in zip(pools, h.positions, h.nodes):
        assert np.allclose(p.sum(1), 1, atol=1e-5)
        real = nodes >= 0
        assert np.allclose(p[real] @ topo.template, pos[real], atol=1e-5)


def test_submesh_outputs_and_loss(tiny_data, tmp_path):
    """Training mode gives coordinates on every graph level (the untrained,
    template-anchored heads start at each level's template centroids), the
    loss has the sub-mesh term, eval mode (and so ONNX/engine) does not run them."""
    from lagc_hand.net.anchor import template_anchor
    from lagc_hand.net.coarsen import level_pooling
    from lagc_hand.net.data.synthetic import collate
    from lagc_hand.net.losses import LAGCLoss
    from lagc_hand.net.training import build_model, seed_everything

    cfg = _tiny_cfg(tmp_path)
    seed_everything(0)
    model = build_model(cfg.net, tiny_data[0].topology).train()
    batch = collate([tiny_data[0][0]])
    out = model(batch["image"])
    levels = out["coarse_levels"]
    assert [tuple(c.shape[2:]) for c in levels] == [(n, 3) for n in model.hierarchy.sizes]
    assert torch.equal(levels[-1], out["coarse"])
    rot = out["coarse"].new_tensor(np.eye(3))
    for t, c in enumerate(levels[:-1]):
        anchor = torch.from_numpy(template_anchor(model.topology, model.hierarchy.positions[t]))
        # zero-initialised heads: the level is the template posed like the finest level (R = I, t = 0 at init)
        assert torch.allclose(c[0], anchor @ rot.T, atol=1e-4)
    loss = LAGCLoss(model.topology.faces, 256, level_pooling=level_pooling(model.hierarchy))
    total, terms = loss(out, batch)
    assert terms["submesh"] > 0 and np.isfinite(terms["submesh"])
    total.backward()
    assert model.head.submesh_heads[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert "coarse_levels" not in model(batch["image"])


def test_resume_repeats_the_uninterrupted_run(tiny_data, tmp_path):
    """2 epochs in one go == 1 epoch, stop, resume for the second (dropout on,
    so the RNG state matters); the checkpoint alone carries the run's config."""
    from lagc_hand.net.checkpoint import read_checkpoint
    from lagc_hand.net.config import train_config_from_dict
    from lagc_hand.net.training import train

    quiet = dict(progress=False, log=lambda s: None, device="cpu")
    full = train(_tiny_cfg(tmp_path / "a"), datasets=tiny_data, **quiet)
    first = train(_tiny_cfg(tmp_path / "b", epochs=1), datasets=tiny_data, **quiet)
    ck1 = read_checkpoint(first["checkpoint"])
    assert ck1["rng"] is not None and ck1["epoch"] == 1
    cfg = train_config_from_dict(ck1["train_config"])
    cfg.epochs = 2
    assert cfg.net == _tiny_cfg(tmp_path).net and cfg.submesh_weight == 100.0
    resumed = train(cfg, resume=first["checkpoint"], datasets=tiny_data, **quiet)
    a, b = read_checkpoint(full["checkpoint"]), read_checkpoint(resumed["checkpoint"])
    assert b["epoch"] == 2 and b["step"] == a["step"] == 4
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert a["history"] == b["history"]
    assert "submesh" in a["history"][-1]
    # without the RNG restore the second epoch differs (dropout draws): the test can fail
    no_rng = copy.deepcopy(ck1)
    no_rng["rng"] = None
    torch.save(no_rng, tmp_path / "no_rng.pt")
    other = train(cfg, resume=tmp_path / "no_rng.pt", datasets=tiny_data, **quiet)
    c = read_checkpoint(other["checkpoint"])
    assert any(not torch.equal(v, c["model"][k]) for k, v in a["model"].items())


def test_mixed_precision_settings_and_a_bf16_cpu_step(tiny_data, tmp_path):
    from lagc_hand.errors import InputError
    from lagc_hand.net.training import amp_settings, train

    cpu = torch.device("cpu")
    assert not amp_settings(True, cpu).enabled  # auto: fp32 on CPU
    s = amp_settings("bf16", cpu)
    assert s.enabled and s.dtype == torch.bfloat16 and not s.scaler
    assert not amp_settings("off", cpu).enabled
    with pytest.raises(InputError, match="CUDA"):
        amp_settings("fp16", cpu)
    with pytest.raises(InputError, match="amp must be"):
        amp_settings("fp8", cpu)
    r = train(_tiny_cfg(tmp_path, amp="bf16", epochs=1, max_steps=1), datasets=tiny_data, progress=False,
              log=lambda s: None, device="cpu")
    assert np.isfinite(r["history"][0]["total"]) and r["history"][0]["submesh"] > 0


def _ddp_worker(rank, world, port, out_dir, data_seed):
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from lagc_hand.net.data.synthetic import SyntheticTwoHands
    from lagc_hand.net.training import train

    train_set = SyntheticTwoHands(4, data_seed, "open")
    cfg = _tiny_cfg(Path(out_dir), epochs=1)
    seen = []
    r = train(cfg, datasets=(train_set, SyntheticTwoHands(1, 99, "open", train_set.topology)), progress=False,
              log=seen.append, device="cpu")
    # the parameters every rank ended with
    torch.save({"rank": r["rank"], "world": r["world_size"], "log": seen, "val": r["val"],
                "model": r["model"].state_dict()}, Path(out_dir) / f"rank{rank}.pt")


def test_ddp_two_cpu_processes(tmp_path, open_model_dir):
    """torchrun's environment in two spawned processes (gloo): each rank does
    2 of the 4 samples' steps, gradients are averaged (rank 0's checkpoint
    equals what rank 1 holds), only rank 0 writes and evaluates."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path), 0), nprocs=2, join=True)
    from lagc_hand.net.checkpoint import read_checkpoint

    r0, r1 = torch.load(tmp_path / "rank0.pt", weights_only=False), torch.load(tmp_path / "rank1.pt", weights_only=False)
    assert (r0["world"], r1["world"]) == (2, 2)
    ck = read_checkpoint(tmp_path / "last.pt")
    assert ck["world_size"] == 2 and ck["step"] == 2  # 4 samples / (2 ranks x batch 1)
    assert r0["val"] and not r1["val"]
    assert r1["log"] == []
    # the ranks saw different samples but hold the same weights (averaged
    # gradients), the ones rank 0 saved, and they moved from the initial ones
    from lagc_hand.net.data.synthetic import SyntheticTwoHands
    from lagc_hand.net.training import build_model, seed_everything

    seed_everything(0)
    init = build_model(_tiny_cfg(tmp_path).net, SyntheticTwoHands(1, 0, "open").topology).state_dict()
    moved = 0
    for k, v in ck["model"].items():
        if "running_" in k or "num_batches" in k:
            continue  # BatchNorm statistics are per rank (DDP broadcasts rank 0's before each forward)
        assert torch.equal(r0["model"][k], v) and torch.equal(r1["model"][k], v), k
        moved += int(not torch.equal(v, init[k]))
    assert moved > 10
