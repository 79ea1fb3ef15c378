"""Headless batch inside a studio's own Blender:

    blender -b --python scripts/blender_batch.py -- VIDEO_OR_DIR... --out DIR [--format blend,fbx,glb,bvh,npz]
    blender -b --python scripts/blender_batch.py -- VIDEO... --out DIR --server http://127.0.0.1:8765 [--token-file F]

Everything after ``--`` belongs to this script.  Two ways to reconstruct:

* in-process (default): Blender's Python imports the backend (``lagc_hand``)
  directly -- install it into a Python that Blender can import, or point
  ``PYTHONPATH`` at a venv's site-packages built for the same Python version;
* ``--server URL``: the backend runs outside Blender (``lagc-hand serve``); the
  script uploads each video, waits for the job and fetches the HandMotion over
  HTTP with the add-on's own client (standard library only), so Blender needs
  nothing but the add-on.

Either way the scene files, the QA report and the manifest are written by the
same per-video function as ``lagc-hand batch`` (one video after another: this
Blender process is the worker).  With only the add-on importable (server mode
without the backend) the QA report is skipped and said so.

The add-on package is found as installed (``lagc_hand_blender``, or the
extension package), or loaded from this checkout's ``blender_addon/`` folder.
Exit status: 0 all done, 1 some video failed, 2 bad arguments.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def script_argv(argv: list[str]) -> list[str]:
    """The arguments after ``--`` (Blender's own options come before it)."""
    return argv[argv.index("--") + 1:] if "--" in argv else []


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="blender -b --python scripts/blender_batch.py --",
                                description="LAGC-Hand batch inside Blender")
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_DIR")
    p.add_argument("--out", required=True)
    p.add_argument("--format", default="blend,fbx,glb,bvh,npz")
    p.add_argument("--engine", default="mediapipe")
    p.add_argument("--smoothing", type=float, default=1.0)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--server", default=None, metavar="URL", help="reconstruct through a running lagc-hand serve")
    p.add_argument("--token-file", default=None, help="the server's token file (default: the add-on's default)")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for one server job")
    p.add_argument("--max-influences", type=int, default=0, metavar="N",
                   help="skin weights kept per vertex in blend/fbx/glb (4 for game engines; 0 = all)")
    p.add_argument("--force", action="store_true")
    return p


def ensure_addon_importable() -> None:
    """Make ``lagc_hand_blender`` importable, from this checkout if not installed."""
    try:
        import lagc_hand_blender  # noqa: F401
        return
    except ImportError:
        pass
    init = os.path.join(REPO, "blender_addon", "__init__.py")
    spec = importlib.util.spec_from_file_location("lagc_hand_blender", init,
                                                  submodule_search_locations=[os.path.dirname(init)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["lagc_hand_blender"] = module
    spec.loader.exec_module(module)
    backend = os.path.join(REPO, "backend")
    if os.path.isdir(backend) and backend not in sys.path:
        sys.path.append(backend)


def fetch_from_server(video: str, out_npz: str, server: str, token_file: str | None, options: dict,
                      timeout: float) -> str:
    """Reconstruct ``video`` on a running server; write the HandMotion to ``out_npz``."""
    from lagc_hand_blender.client import Client

    client = Client(server, token_file)
    job = client.submit(video, options)
    t0 = time.time()
    while True:
        info = client.job(job["id"])
        state = info.get("state")
        if state == "done":
            break
        if state in ("failed", "cancelled", "interrupted"):
            raise RuntimeError(f"the server job for {video} ended '{state}': {info.get('error') or ''}")
        if time.time() - t0 > timeout:
            client.cancel(job["id"])
            raise RuntimeError(f"the server job for {video} took longer than {timeout:.0f} s; cancelled")
        time.sleep(0.5)
    data = client.result(job["id"])
    os.makedirs(os.path.dirname(out_npz), exist_ok=True)
    tmp = out_npz + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, out_npz)
    return out_npz


def main(argv: list[str] | None = None) -> int:
    args_list = script_argv(sys.argv if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:
        return int(exc.code or 2)
    ensure_addon_importable()
    try:
        import lagc_hand  # noqa: F401
        have_backend = True
    except ImportError:
        have_backend = False
    if not have_backend and not args.server:
        print("blender_batch: the backend (lagc_hand) is not importable in this Blender's Python; "
              "install it there, or run 'lagc-hand serve' and pass --server URL", file=sys.stderr)
        return 2
    if have_backend:
        from lagc_hand.batch import make_tasks, parse_formats, process_video
        from lagc_hand.errors import LagcHandError

        try:
            formats = parse_formats(args.format)
            options = {"engine": args.engine, "smoothing": args.smoothing, "stride": args.stride}
            tasks = make_tasks(args.inputs, args.out, formats, options, force=args.force,
                               max_influences=args.max_influences)
        except LagcHandError as exc:
            print(f"blender_batch: error: {exc}", file=sys.stderr)
            return 2
        failed = 0
        for i, task in enumerate(tasks, 1):
            if args.server and not task.source.lower().endswith(".npz"):
                npz = os.path.join(task.out_dir, f"{task.name}.server.npz")
                try:
                    task.source = fetch_from_server(task.source, npz, args.server, args.token_file, options,
                                                    args.timeout)
                except Exception as exc:  # noqa: BLE001 - report and go on with the next video
                    print(f"[{i}/{len(tasks)}] {task.name}: FAILED - {exc}", flush=True)
                    failed += 1
                    continue
            res = process_video(task, lambda m, n=task.name: print(f"    {n}: {m.get('stage')}", flush=True))
            line = res.error.strip().splitlines()[0] if res.status == "failed" else ", ".join(res.outputs)
            print(f"[{i}/{len(tasks)}] {task.name}: {res.status} {line}", flush=True)
            failed += res.status == "failed"
        return 1 if failed else 0
    # Server mode with only the add-on: scene files, no QA report (needs the backend's plotting code).
    from lagc_hand_blender.blender.export import FORMATS, write_scene_files

    formats = [f.strip() for f in args.format.split(",") if f.strip() in FORMATS]
    failed = 0
    for i, video in enumerate(args.inputs, 1):
        name = os.path.splitext(os.path.basename(video.rstrip("/")))[0]
        out = os.path.join(args.out, name)
        try:
            npz = fetch_from_server(video, os.path.join(out, f"{name}.npz"), args.server, args.token_file,
                                    {"engine": args.engine, "smoothing": args.smoothing, "stride": args.stride},
                                    args.timeout)
            written = write_scene_files(npz, out, formats, video_path=video, name=name,
                                        max_influences=args.max_influences)
            print(f"[{i}/{len(args.inputs)}] {name}: done {', '.join(written)} (no QA report: backend not installed)")
        except Exception as exc:  # noqa: BLE001
            print(f"[{i}/{len(args.inputs)}] {name}: FAILED - {exc}", flush=True)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    code = main()
    # Inside Blender, sys.exit from a --python script ends Blender with that status.
    sys.exit(code)
