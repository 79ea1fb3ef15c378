"""The options of one reconstruction, the same on the CLI, the server, batch and
the add-on: :class:`ReconstructOptions`, built from the one declaration in
:mod:`lagc_hand_blender.core.options_spec`, and the command-line arguments
derived from it (:func:`add_option_arguments`, :func:`options_from_args`).
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Iterable, Optional

from lagc_hand.errors import InputError
from lagc_hand.video import FrameRange
from lagc_hand_blender.core.options_spec import (CAMERA_OPTIONS, ENGINE_NAMES, OPTIONS, SPECS, OptionError,
                                                 check_options)

__all__ = ["ReconstructOptions", "add_option_arguments", "options_from_args", "PATH_OPTIONS", "ENGINE_NAMES"]

#: Options naming files or folders the backend reads (the server checks them against its allowed folders).
PATH_OPTIONS: tuple[str, ...] = tuple(s.name for s in OPTIONS if s.kind == "path")
_TYPES = {"choice": str, "str": str, "path": str, "int": int, "float": float, "floats": tuple}


class _OptionsMethods:
    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (``intrinsics`` as a list)."""
        d = dataclasses.asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    def validate(self) -> "ReconstructOptions":
        """Check every value against its declaration and the camera rules; values
        are put in their canonical types.  Raises :class:`InputError`."""
        try:
            values = check_options(dataclasses.asdict(self))
        except OptionError as exc:
            raise InputError(str(exc)) from None
        for name, value in values.items():
            setattr(self, name, value)
        return self


def _docstring() -> str:
    lines = ["Options of one reconstruction (the same on the CLI, the server, batch and the add-on).", "",
             "Declared in lagc_hand_blender.core.options_spec; per field:", ""]
    for s in OPTIONS:
        bounds = f" [{s.minimum:g}, {s.maximum:g}]" if s.minimum is not None else ""
        lines.append(f"{s.name} ({s.kind}{bounds}, default {s.default!r}): {s.help}.")
    return "\n".join(lines)


ReconstructOptions = dataclasses.make_dataclass(
    "ReconstructOptions",
    [(s.name, Optional[_TYPES[s.kind]] if s.optional else _TYPES[s.kind], dataclasses.field(default=s.default))
     for s in OPTIONS],
    bases=(_OptionsMethods,),
    namespace={"__doc__": _docstring()},
)
ReconstructOptions.__module__ = __name__  # pickled by the batch and server workers


# --------------------------------------------------------------------------- command line


def add_option_arguments(p: argparse.ArgumentParser, exclude: Iterable[str] = ()) -> None:
    """Add one flag per option (plus ``--frames A:B`` for the frame range); the
    camera options are mutually exclusive on the command line."""
    exclude = set(exclude)
    camera = p.add_mutually_exclusive_group()
    for s in OPTIONS:
        if s.cli is None or s.name in exclude:
            continue
        target = camera if s.name in CAMERA_OPTIONS else p
        kw: dict[str, Any] = {"dest": s.name, "default": s.default, "help": _cli_help(s)}
        if s.metavar:
            kw["metavar"] = s.metavar
        if s.kind == "choice":
            kw["choices"] = s.choices
        elif s.kind in ("int", "float"):
            kw["type"] = int if s.kind == "int" else float
        target.add_argument(s.cli, **kw)
    if "frame_start" not in exclude:
        p.add_argument("--frames", metavar="A:B", help="frame range A:B (source frame numbers, B exclusive)")


def _cli_help(s) -> str:
    bounds = f"; {s.minimum:g} to {s.maximum:g}" if s.minimum is not None and s.kind != "floats" else ""
    default = f" (default {s.default})" if s.default is not None and s.kind != "path" else ""
    return f"{s.help}{bounds}{default}"


def options_from_args(args: argparse.Namespace, **overrides: Any) -> ReconstructOptions:
    """The validated options of parsed arguments (``overrides`` win); raises :class:`InputError`."""
    values = {s.name: getattr(args, s.name) for s in OPTIONS if hasattr(args, s.name)}
    if getattr(args, "frames", None):
        fr = FrameRange.parse(args.frames)
        values["frame_start"], values["frame_end"] = fr.start, fr.end
    values.update(overrides)
    return ReconstructOptions(**values).validate()


def _check_fields() -> None:
    names = [f.name for f in dataclasses.fields(ReconstructOptions)]
    if names != list(SPECS):  # pragma: no cover - the dataclass is built from the spec
        raise ImportError(f"ReconstructOptions fields {names} differ from the option declaration")


_check_fields()
