"""LAGC-Hand network cost: fvcore FLOPs / params per module for both encoder
attention variants and both heads, then latency (batch 1) and throughput
(batch 64) on this CPU, and on CUDA when available.

    python bench/net_speed.py [--hand-model open|MANO_DIR|procedural] [--quick] [--write]

fvcore counts one fused multiply-add as ONE flop, i.e. the numbers are
multiply-accumulates (MACs), the convention of the MobileViT / IntagHand /
LAGC-Hand papers.  --write appends a section to bench/RESULTS.md.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))


def _topology(name: str):
    if name == "procedural":
        from lagc_hand.net.procedural import procedural_topology

        return procedural_topology(3)
    from lagc_hand.net.topology import topology_from_hand_model

    return topology_from_hand_model(name)


def _time(model, batch: int, device, reps: int, warm: int = 2) -> float:
    """Seconds per forward pass: the fastest of ``reps`` timed passes after
    ``warm`` untimed ones.  The minimum, not the mean, because on a shared
    machine other processes only ever add time (the first pass of a process
    also pays oneDNN's kernel selection, hence the warm-up)."""
    import torch

    x = torch.rand(batch, 3, 256, 256, device=device)
    best = float("inf")
    with torch.no_grad():
        for _ in range(warm):
            model(x)
        for _ in range(reps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            model(x)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    import torch

    from lagc_hand.net.config import NetConfig
    from lagc_hand.net.flops import count_flops
    from lagc_hand.net.training import build_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hand-model", default="open")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, batch 16 instead of 64 for throughput")
    ap.add_argument("--write", action="store_true", help="append the tables to bench/RESULTS.md")
    args = ap.parse_args(argv)
    topo = _topology(args.hand_model)
    lines = [f"mesh: {topo.name}, {topo.num_vertices} vertices; fvcore flops = multiply-adds (one FMA = one flop)", "",
             "| variant | graph nodes | params (M) | GFLOPs total | encoder | compact | head | other |", "|---|---|---|---|---|---|---|---|"]
    models = {}
    for head in ("graph", "hamba"):
        for att in ("separable", "mhsa"):
            cfg = NetConfig(head=head)
            cfg.encoder.attention = att
            m = build_model(cfg, topo).eval()
            r = count_flops(m)
            models[(head, att)] = m
            g = lambda k: f"{r[k] / 1e9:.3f}"  # noqa: E731
            lines.append(f"| {head} head, {att} attention | {'/'.join(map(str, m.hierarchy.sizes))} | {r['params'] / 1e6:.2f} | "
                         f"{g('total')} | {g('encoder')} | {g('compact')} | {g('head')} | {g('other')} |")
    lines += ["", "| device | variant | latency b=1 (ms) | throughput (img/s) | batch |", "|---|---|---|---|---|"]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    tb = 16 if args.quick else 64
    for dev in devices:
        for key in (("graph", "separable"), ("graph", "mhsa"), ("hamba", "separable")):
            m = models[key].to(dev)
            reps = 3 if (args.quick or dev.type == "cpu") else 20
            lat = _time(m, 1, dev, 10 if dev.type == "cpu" else 100)
            thr = tb / _time(m, tb, dev, max(1, reps // 2) if args.quick else reps, warm=1)
            name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
            lines.append(f"| {name} | {key[0]}/{key[1]} | {lat * 1000:.1f} | {thr:.1f} | {tb} |")
            m.to("cpu")
    import os

    lines += ["", f"load average (1, 5, 15 min) after the timings: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              "times are the fastest of repeated passes"]
    text = "\n".join(lines)
    print(text)
    if args.write:
        head = f"\n## LAGC-Hand network cost ({datetime.date.today()}, {platform.node()}, {platform.processor() or platform.machine()})\n\n"
        with open(ROOT / "bench" / "RESULTS.md", "a") as fh:
            fh.write(head + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
