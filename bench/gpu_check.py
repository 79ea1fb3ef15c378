"""GPU check (issue 14.3): one prepared run of at most 8 minutes on a lent GPU machine.

    python3 bench/gpu_check.py                 # on the device machine; results in $OUT
    .venv/bin/python bench/gpu_check.py --smoke  # here, on CPU, in under a minute

Parts, each recorded as ``ok``, ``skipped`` (with the exact reason) or ``failed``
(with the error), so one missing package or error never loses the others:

1. ``net``: LAGC-Hand network (graph head, separable attention) latency at
   batch 1 and throughput at batch 64, fp32 and bf16 (autocast);
2. ``train``: training throughput of the same network on synthetic two-hand
   samples (made once on the CPU, then reused): bf16 autocast, then fp32, three
   minutes together (``--train-seconds``);
3. ``fit``: the hand fit (:func:`lagc_hand.fitting.fit_hand`) of 4,096
   hand-frames on CUDA against the CPU, with both results' mean error;
4. ``server``: one server job with ``lagc-hand serve --device cuda`` on a
   rendered clip with the MediaPipe engine (``--server-engine lagc``: the
   network engine with an untrained checkpoint, timing only); skipped, with
   the missing packages named, when the server's packages or MediaPipe are
   absent (every engine needs MediaPipe: the lagc engine takes its hand box
   from it).

On the device machine (one call, carry ``.whl`` made by ``bench/gpu_wheels.sh``
for the server's packages; without them the server part is skipped and says why)::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 timeout 470 python3 bench/gpu_check.py

Writes ``gpu_check.json`` and ``gpu_check.md`` to ``$OUT`` (or ``--out``) and
prints both.  Without CUDA the same parts run on the CPU (``--smoke`` shrinks
them).  No network access and no downloads are needed.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Wall-clock budget of the whole run (s): the device call allows 8 minutes.
BUDGET_S = 450.0


def _paths() -> None:
    """Make ``lagc_hand`` and ``lagc_hand_blender`` importable from this checkout
    (the device machine has no installed package and no ``.pyshim``)."""
    sys.path.insert(0, str(ROOT / "backend"))
    if importlib.util.find_spec("lagc_hand_blender") is None:
        shim = Path(tempfile.mkdtemp(prefix="lagc-shim-"))
        (shim / "lagc_hand_blender").symlink_to(ROOT / "blender_addon")
        sys.path.insert(0, str(shim))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)


class Run:
    """Results and the time budget."""

    def __init__(self, smoke: bool, budget: float):
        self.t0 = time.perf_counter()
        self.smoke, self.budget = smoke, budget
        self.parts: dict[str, dict] = {}

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)

    def part(self, name: str, fn, need_s: float) -> None:
        t = time.perf_counter()
        if self.left() < need_s:
            self.parts[name] = {"status": "skipped", "reason": f"time budget: {self.left():.0f} s left, needs ~{need_s:.0f} s"}
        else:
            try:
                self.parts[name] = {"status": "ok", **fn(self)}
            except SkipPart as exc:
                self.parts[name] = {"status": "skipped", "reason": str(exc)}
            except Exception as exc:  # one part's failure must not lose the others
                self.parts[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                    "trace": traceback.format_exc(limit=6)}
        self.parts[name]["seconds"] = round(time.perf_counter() - t, 1)
        print(f"[gpu_check] {name}: {json.dumps(self.parts[name])[:600]}", flush=True)


class SkipPart(Exception):
    pass


def _device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def _network():
    from lagc_hand.net.config import NetConfig
    from lagc_hand.net.topology import topology_from_hand_model
    from lagc_hand.net.training import build_model

    topo = topology_from_hand_model("open")
    return build_model(NetConfig(head="graph"), topo), topo


def _timed(fn, dev, reps: int, warm: int) -> list[float]:
    for _ in range(warm):
        fn()
    _sync(dev)
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(dev)
        out.append(time.perf_counter() - t)
    return out


def part_net(run: Run) -> dict:
    import torch

    dev = _device()
    model, _ = _network()
    model = model.to(dev).eval()
    big = 4 if run.smoke else 64
    res = {"device": str(dev), "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 3), "batch": big}
    for dtype_name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        def fwd(x):
            with torch.no_grad(), torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                return model(x)

        x1 = torch.rand(1, 3, 256, 256, device=dev)
        xb = torch.rand(big, 3, 256, 256, device=dev)
        lat = _timed(lambda: fwd(x1), dev, 3 if run.smoke else 100, 1 if run.smoke else 20)
        thr = _timed(lambda: fwd(xb), dev, 2 if run.smoke else 20, 1 if run.smoke else 5)
        lat.sort()
        res[dtype_name] = {"latency_b1_ms_median": round(1000 * lat[len(lat) // 2], 3),
                           "latency_b1_ms_min": round(1000 * lat[0], 3),
                           "throughput_img_s": round(big / min(thr), 1)}
    return res


def part_train(run: Run, seconds: float) -> dict:
    import numpy as np
    import torch

    from lagc_hand.net.data.synthetic import SyntheticTwoHands
    from lagc_hand.net.losses import LAGCLoss
    from lagc_hand.net.training import CompactCache, batches

    dev = _device()
    model, topo = _network()
    model = model.to(dev).train()
    n_samples, bs = (8, 4) if run.smoke else (64, 32)
    t = time.perf_counter()
    data = CompactCache(SyntheticTwoHands(n_samples, seed=0, topology=topo))
    make_s = time.perf_counter() - t
    loss_fn = LAGCLoss(topo.faces, 256).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    rng = np.random.default_rng(0)
    pool = [{k: v.to(dev) for k, v in b.items()} for b in batches(data, bs, True, rng)]
    res = {"device": str(dev), "batch": bs, "samples_made_on_cpu": n_samples, "making_s": round(make_s, 1)}
    for name, share, dtype in (("bf16", 0.8, torch.bfloat16), ("fp32", 0.2, None)):
        steps, seen, losses = 0, 0, []
        end = time.perf_counter() + seconds * share
        t = time.perf_counter()
        while time.perf_counter() < end or steps < 2:
            batch = pool[steps % len(pool)]
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                pred = model(batch["image"])
            total, _ = loss_fn(pred, batch, use_edge=True)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            steps += 1
            seen += batch["image"].shape[0]
            if steps == 1 or steps % 50 == 0:
                losses.append(round(float(total.detach()), 4))
        _sync(dev)
        el = time.perf_counter() - t
        losses.append(round(float(total.detach()), 4))
        res[name] = {"steps": steps, "seconds": round(el, 1), "samples_per_s": round(seen / el, 1),
                     "loss_first_last": [losses[0], losses[-1]]}
    return res


def part_fit(run: Run) -> dict:
    import numpy as np
    import torch

    from lagc_hand.fitting import FitConfig, fit_hand
    from lagc_hand.fitting.targets import random_pose_targets
    from lagc_hand.handmodel import HandModel, load_hand_model_params

    frames = 64 if run.smoke else 4096
    params = load_hand_model_params("open", "right")
    target = random_pose_targets(HandModel(params), frames, seed=0)
    res = {"frames": frames, "cpu_threads": torch.get_num_threads()}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for d in devices:
        model = HandModel(params).to(d)
        if d == "cuda":  # one small warm-up fit: CUDA context and kernels load once
            fit_hand(model, target[:8], config=FitConfig(device=d))
            _sync(torch.device(d))
        t = time.perf_counter()
        fit = fit_hand(model, target, config=FitConfig(device=d))
        _sync(torch.device(d))
        el = time.perf_counter() - t
        res[d] = {"seconds": round(el, 2), "frames_per_s": round(frames / el, 1),
                  "mean_error_mm": round(float(np.mean(fit.error)) * 1000, 3)}
    if "cuda" in res:
        res["cuda_speedup"] = round(res["cpu"]["seconds"] / res["cuda"]["seconds"], 2)
    else:
        res["cuda"] = "no CUDA device: CPU only"
    return res


def part_server(run: Run, engine: str = "mediapipe") -> dict:
    import torch

    missing = [m for m in ("fastapi", "uvicorn", "python_multipart", "pydantic", "httpx") if importlib.util.find_spec(m) is None]
    if missing:
        raise SkipPart("the server cannot start here: missing Python packages " + ", ".join(missing) +
                       " (carry them as wheels, see /work/.library/device/README.md)")
    import httpx

    from lagc_hand.server.launcher import ServerProcess

    device = "cuda" if torch.cuda.is_available() else "cpu"
    clip = ROOT / "assets" / "samples" / "interact_cross.mp4"
    tmp = Path(tempfile.mkdtemp(prefix="lagc-gpu-server-"))
    opts = {"device": device, "frame_end": 4 if run.smoke else 36}
    engine_note = "mediapipe"
    if engine == "lagc":
        from lagc_hand.net.config import TrainConfig
        from lagc_hand.net.training import checkpoint_payload, save_checkpoint

        model, topo = _network()
        ck = save_checkpoint(tmp / "untrained.pt", checkpoint_payload(TrainConfig(), topo, model))
        opts.update(engine="lagc", checkpoint=str(ck))
        engine_note = "lagc, untrained checkpoint: timing only"
    srv = ServerProcess(tmp / "server", "--allow-dir", str(clip.parent), "--allow-dir", str(tmp), "--device", device,
                        "--log-level", "warning")
    t = time.perf_counter()
    srv.start(timeout=120)
    started = f"the server itself started with --device {device} and answered /health in {time.perf_counter() - t:.1f} s"
    if importlib.util.find_spec("mediapipe") is None:
        srv.stop()
        # The lagc engine finds its hand box with MediaPipe too (engines/lagc.py).
        raise SkipPart("no job: mediapipe is not installed here, and every engine needs it (the 'mediapipe' "
                       "engine, and the 'lagc' engine takes its hand box from it; mediapipe 0.10.21 needs numpy<2, "
                       f"this Python has numpy {__import__('numpy').__version__}); {started}")
    try:
        with srv.client() as c:
            t = time.perf_counter()
            job = c.post("/api/v1/jobs/from-path", json={"path": str(clip), "options": opts}).json()
            if "id" not in job:
                raise RuntimeError(f"job refused: {job}")
            while True:
                job = c.get(f"/api/v1/jobs/{job['id']}").json()
                if job.get("state") in ("done", "failed", "cancelled"):
                    break
                if time.perf_counter() - t > max(60.0, run.left() - 20):
                    raise RuntimeError(f"job still {job.get('state')} after {time.perf_counter() - t:.0f} s")
                time.sleep(0.25)
            el = time.perf_counter() - t
            summary = {}
            if job["state"] == "done":
                from lagc_hand_blender.core import handmotion

                summary = handmotion.loads(c.get(f"/api/v1/jobs/{job['id']}/result").content).meta.get("summary", {})
    except httpx.HTTPError as exc:
        raise RuntimeError(f"server request failed: {exc}\n{srv.log()[-2000:]}") from None
    finally:
        srv.stop()
    return {"server_device": device, "engine": engine_note, "state": job["state"], "error": job.get("error"),
            "job_seconds": round(el, 2), "frames": summary.get("frames"), "stage_seconds": summary.get("seconds")}


def environment() -> dict:
    import torch

    env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "host": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.cuda.is_available(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    for m in ("mediapipe", "fastapi", "uvicorn", "cv2", "scipy"):
        env[f"has_{m}"] = importlib.util.find_spec(m) is not None
    return env


def markdown(env: dict, parts: dict) -> str:
    lines = [f"GPU check, {env['date']}, {env.get('gpu', 'no GPU')} ({env['host']}), torch {env['torch']}, "
             f"Python {env['python']}, {env['cpu_count']} CPUs", "",
             "| part | status | result |", "|---|---|---|"]
    n = parts.get("net", {})
    if n.get("status") == "ok":
        for k in ("fp32", "bf16"):
            r = n[k]
            lines.append(f"| network {k} ({n['device']}) | ok | latency b=1 {r['latency_b1_ms_median']} ms (min "
                         f"{r['latency_b1_ms_min']}), throughput b={n['batch']} {r['throughput_img_s']} img/s |")
    t = parts.get("train", {})
    if t.get("status") == "ok":
        for k in ("bf16", "fp32"):
            r = t[k]
            lines.append(f"| training {k} ({t['device']}, batch {t['batch']}) | ok | {r['samples_per_s']} samples/s "
                         f"over {r['seconds']} s ({r['steps']} steps; loss {r['loss_first_last'][0]} -> "
                         f"{r['loss_first_last'][1]}) |")
    f = parts.get("fit", {})
    if f.get("status") == "ok":
        for d in ("cpu", "cuda"):
            r = f[d]
            if isinstance(r, dict):
                lines.append(f"| fit {f['frames']} hand-frames, {d} | ok | {r['seconds']} s ({r['frames_per_s']} "
                             f"frames/s), mean error {r['mean_error_mm']} mm |")
        if "cuda_speedup" in f:
            lines.append(f"| fit CUDA vs CPU | ok | {f['cuda_speedup']}x |")
    s = parts.get("server", {})
    if s.get("status") == "ok":
        lines.append(f"| server job, --device {s['server_device']} | {s['state']} | engine {s['engine']}; "
                     f"{s['job_seconds']} s for {s['frames']} frames; stages {s['stage_seconds']} |")
    for name, p in parts.items():
        if p.get("status") != "ok":
            lines.append(f"| {name} | {p['status']} | {p.get('reason') or p.get('error')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CPU, < 1 minute)")
    ap.add_argument("--out", help="output folder (default $OUT, else out/gpu_check)")
    ap.add_argument("--train-seconds", type=float, default=None, help="training throughput time (default 180; smoke 3)")
    ap.add_argument("--budget", type=float, default=None, help=f"whole-run budget in s (default {BUDGET_S:.0f}; smoke 50)")
    ap.add_argument("--parts", nargs="*", default=["net", "train", "fit", "server"])
    ap.add_argument("--server-engine", choices=("mediapipe", "lagc"), default="mediapipe",
                    help="engine of the server job (lagc: an untrained checkpoint, timing only)")
    args = ap.parse_args(argv)
    _paths()
    out = Path(args.out or os.environ.get("OUT") or ROOT / "out" / "gpu_check")
    out.mkdir(parents=True, exist_ok=True)
    run = Run(args.smoke, args.budget or (50.0 if args.smoke else BUDGET_S))
    train_s = args.train_seconds if args.train_seconds is not None else (3.0 if args.smoke else 180.0)
    env = environment()
    print(f"[gpu_check] {json.dumps(env)}", flush=True)
    plan = {"net": (part_net, 10 if args.smoke else 40),
            "train": (lambda r: part_train(r, train_s), train_s + (5 if args.smoke else 30)),
            "fit": (part_fit, 5 if args.smoke else 60),
            "server": (lambda r: part_server(r, args.server_engine), 10 if args.smoke else 45)}
    for name in args.parts:
        fn, need = plan[name]
        run.part(name, fn, need)
    env["total_seconds"] = round(time.perf_counter() - run.t0, 1)
    md = markdown(env, run.parts)
    (out / "gpu_check.json").write_text(json.dumps({"environment": env, "parts": run.parts}, indent=2))
    (out / "gpu_check.md").write_text(md + "\n")
    print(md)
    print(f"[gpu_check] wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'} in {env['total_seconds']} s")
    return 0 if all(p["status"] != "failed" for p in run.parts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
