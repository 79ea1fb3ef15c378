"""The ``lagc-hand`` command line.

Each subcommand lives in ``lagc_hand.commands.<name>`` and provides
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only
when their subcommand runs, so ``lagc-hand --help`` is instant.
"""
from __future__ import annotations

import argparse
import importlib
import sys

#: name -> (module, one-line help)
COMMANDS = {
    "reconstruct": ("reconstruct", "video -> HandMotion file (both hands, fitted, cleaned)"),
    "batch": ("batch", "many videos -> .blend / .fbx / .glb / .bvh / .npz, headless, resumable"),
    "cleanup": ("cleanup", "filter a HandMotion file: smooth, despike, fill gaps, swap, reduce"),
    "serve": ("serve", "run the local inference server the Blender add-on talks to"),
    "model": ("model", "hand model tools: build the open model, check MANO files, render"),
    "train": ("train", "train the LAGC-Hand network"),
    "eval": ("eval", "evaluate a LAGC-Hand checkpoint (InterHand2.6M / IntagHand protocol)"),
    "export": ("export_onnx", "export a LAGC-Hand checkpoint to ONNX"),
}

DESCRIPTION = """\
LAGC-Hand turns ordinary video of hands into animated 3D hands for Blender.

Typical use:
  lagc-hand reconstruct clip.mp4 -o clip_motion.npz   # video -> motion file
  lagc-hand serve                                     # backend for the Blender add-on
  lagc-hand batch videos/ --out results/ --format blend,fbx

Run 'lagc-hand COMMAND --help' for the options of one command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lagc-hand", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--verbose", action="store_true",
                        help="show the native MediaPipe/TFLite/absl log lines (hidden by default); "
                             "may stand anywhere on the command line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
    return parser


def _load(module: str):
    try:
        return importlib.import_module(f"lagc_hand.commands.{module}")
    except ModuleNotFoundError as exc:
        if exc.name != f"lagc_hand.commands.{module}":
            raise
        print(f"lagc-hand: the '{module}' command is not part of this build", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --verbose is global: take it from anywhere, before the subcommand parses the rest.
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    parser = build_parser()
    # Resolve the subcommand first, then let its module add its own options.
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module = _load(COMMANDS[name][0])
        sub = argparse.ArgumentParser(
            prog=f"lagc-hand {name}",
            description=(getattr(module, "__doc__", None) or COMMANDS[name][1]).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        args = sub.parse_args(argv[1:])
        from lagc_hand import quiet
        from lagc_hand.errors import LagcHandError

        # Before any engine loads MediaPipe.  Not for the server process itself: its
        # job processes must not depend on a pipe the server owns (they outlive a
        # killed server for a moment), so each worker filters its own fd 2.
        quiet.set_verbose(verbose)
        quiet.install(verbose or name == "serve")

        try:
            return int(module.run(args) or 0)
        except LagcHandError as exc:
            print(f"lagc-hand {name}: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print(f"lagc-hand {name}: interrupted", file=sys.stderr)
            return 130
    args = parser.parse_args(argv)
    if args.version:
        from lagc_hand import __version__

        print(f"lagc-hand {__version__}")
        return 0
    parser.print_help()
    return 0 if not argv else 2


if __name__ == "__main__":
    sys.exit(main())
