"""Every reconstruction option, declared once: name, type, default, bounds,
choices, help text and command-line flag.

Standard library only: the Blender add-on builds its panel properties from this
table (``blender/props.py``) and the backend derives from it the
``ReconstructOptions`` dataclass (``lagc_hand/options.py``), the argument
parsers of ``lagc-hand reconstruct`` and ``lagc-hand batch``, and the server's
request model (``lagc_hand/server/models.py``).  A bound changed here changes
everywhere; nothing else states one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

#: The hand engines: (name, label, description).  ``mediapipe`` is the default.
ENGINES: tuple[tuple[str, str, str], ...] = (
    ("mediapipe", "MediaPipe (CPU)",
     "MediaPipe's hand landmarker plus the project's second-hand recovery for touching hands"),
    ("mediapipe-raw", "MediaPipe, plain", "Plain MediaPipe without second-hand recovery, for comparison"),
    ("lagc", "LAGC-Hand network", "The LAGC-Hand network; needs a trained checkpoint"),
)
ENGINE_NAMES: tuple[str, ...] = tuple(e[0] for e in ENGINES)
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: Longest path or name an option may hold (characters).
MAX_PATH_CHARS = 4096
#: Options that each describe the whole camera; see :func:`check_camera`.
CAMERA_OPTIONS = ("focal_mm", "fov_deg", "intrinsics", "calibration")


class OptionError(ValueError):
    """An option value outside its declaration (the message names the option)."""


@dataclass(frozen=True)
class OptionSpec:
    """One option.

    kind:      ``"choice"`` (one of ``choices``), ``"str"``, ``"path"`` (a file or
               folder the backend reads), ``"int"``, ``"float"`` or ``"floats"``
               (``length`` numbers).
    default:   value when not given; ``None`` only where ``optional``.
    minimum / maximum: inclusive bounds of numbers (of each number for ``floats``).
    cli:       command-line flag, or ``None`` when the option has none of its own
               (``frame_start`` / ``frame_end`` come from ``--frames A:B``).
    label:     short name for the add-on's panel.
    """

    name: str
    kind: str
    default: Any
    help: str
    label: str
    optional: bool = False
    choices: tuple[str, ...] = ()
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    length: int = 0
    cli: Optional[str] = None
    metavar: Optional[str] = None


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec("engine", "choice", "mediapipe", label="Engine", choices=ENGINE_NAMES, cli="--engine",
               help="hand engine: mediapipe (default; with second-hand recovery), mediapipe-raw "
                    "(plain MediaPipe, for comparison) or lagc (the LAGC-Hand network, needs a checkpoint)"),
    OptionSpec("checkpoint", "path", None, optional=True, label="Checkpoint", cli="--checkpoint",
               help="LAGC-Hand checkpoint file, for engine lagc"),
    OptionSpec("focal_mm", "float", None, optional=True, minimum=1.0, maximum=2000.0, label="Focal length",
               cli="--focal-mm", metavar="MM",
               help="35 mm-equivalent focal length of the camera (36 mm sensor width), mm; "
                    "wins over the field of view"),
    OptionSpec("fov_deg", "float", None, optional=True, minimum=1.0, maximum=170.0, label="Field of view",
               cli="--fov", metavar="DEG",
               help="horizontal field of view of the camera, degrees (default 60 when no camera is given)"),
    OptionSpec("intrinsics", "floats", None, optional=True, length=4, minimum=-1e6, maximum=1e6,
               label="Intrinsics", cli="--intrinsics", metavar="FX,FY,CX,CY",
               help="camera intrinsics fx,fy,cx,cy in pixels of the video, principal point measured from "
                    "the top-left corner of the image (so W/2,H/2 is the centre); not with another camera option"),
    OptionSpec("calibration", "path", None, optional=True, label="Calibration file", cli="--calibration",
               metavar="FILE",
               help="camera calibration: OpenCV YAML/XML (camera_matrix, optional distortion_coefficients, "
                    "as written by OpenCV's calibration) or JSON {\"K\": 3x3, \"distortion\": [...]}; the "
                    "detected keypoints are undistorted with it; not with another camera option"),
    OptionSpec("frame_start", "int", 0, minimum=0, maximum=10_000_000, label="First",
               help="first source frame (inclusive, 0-based)"),
    OptionSpec("frame_end", "int", None, optional=True, minimum=1, maximum=10_000_000, label="End",
               help="source frame after the last one (exclusive); none = to the end"),
    OptionSpec("stride", "int", 1, minimum=1, maximum=1000, label="Every nth frame", cli="--stride", metavar="N",
               help="keep every N-th frame"),
    OptionSpec("smoothing", "float", 1.0, minimum=0.0, maximum=10.0, label="Smoothing", cli="--smoothing",
               help="cleanup strength: 0 = raw (cleaned equals raw), 1 = default"),
    OptionSpec("hand_model", "path", "open", label="Hand model", cli="--hand-model",
               help="'open' (the embedded open hand model) or a folder with MANO_RIGHT.pkl / MANO_LEFT.pkl "
                    "(or .npz)"),
    OptionSpec("device", "choice", "auto", choices=DEVICES, label="Device", cli="--device",
               help="where the torch stages (fitting, the lagc engine) run: auto, cpu or cuda"),
    OptionSpec("detect_workers", "int", 0, minimum=0, maximum=64, label="Detect workers", cli="--detect-workers",
               metavar="N",
               help="video chunks detected at once, each by its own engine in its own thread "
                    "(0 = one per CPU core, 1 = one chunk after the other); the chunks come from the "
                    "video alone, so the result does not depend on this number"),
)

SPECS: dict[str, OptionSpec] = {s.name: s for s in OPTIONS}
DEFAULTS: dict[str, Any] = {s.name: s.default for s in OPTIONS}


def check_value(name: str, value: Any) -> Any:
    """``value`` of option ``name`` in its canonical type (floats tuple, int, ...);
    raises :class:`OptionError` naming the option and its bounds."""
    spec = SPECS[name]
    if value is None:
        if spec.optional:
            return None
        raise OptionError(f"{name} must be given")
    if spec.kind == "choice":
        if value not in spec.choices:
            raise OptionError(f"{name} must be one of {', '.join(spec.choices)}, not {value!r}")
        return value
    if spec.kind in ("str", "path"):
        if not isinstance(value, str) or not value:
            raise OptionError(f"{name} must be a non-empty string")
        if len(value) > MAX_PATH_CHARS or "\x00" in value:
            raise OptionError(f"{name} must be at most {MAX_PATH_CHARS} characters without NUL")
        return value
    if spec.kind == "floats":
        if isinstance(value, str):
            value = _parse_floats(name, value)
        try:
            numbers = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise OptionError(f"{name} must be {spec.length} numbers, got {value!r}") from None
        if len(numbers) != spec.length:
            raise OptionError(f"{name} must be {spec.length} numbers ({spec.metavar}), got {len(numbers)}")
        for v in numbers:
            _check_bounds(spec, v)
        return numbers
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{name} must be a number, got {value!r}")
    if spec.kind == "int":
        if float(value) != int(value):
            raise OptionError(f"{name} must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    _check_bounds(spec, value)
    return value


def _check_bounds(spec: OptionSpec, v: float) -> None:
    if not math.isfinite(v):
        raise OptionError(f"{spec.name} must be finite, got {v}")
    if (spec.minimum is not None and v < spec.minimum) or (spec.maximum is not None and v > spec.maximum):
        raise OptionError(f"{spec.name} must be between {spec.minimum:g} and {spec.maximum:g}, got {v:g}")


def _parse_floats(name: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise OptionError(f"{name}: {text!r} is not a comma-separated list of numbers") from None


def check_camera(values: dict[str, Any]) -> None:
    """The camera options' precedence and conflicts.

    ``intrinsics`` and ``calibration`` each give the whole camera, so each
    excludes every other camera option; ``focal_mm`` and ``fov_deg`` together are
    allowed, and the focal length wins (as it always has).
    """
    given = [n for n in CAMERA_OPTIONS if values.get(n) is not None]
    full = [n for n in given if n in ("intrinsics", "calibration")]
    if full and len(given) > 1:
        raise OptionError(f"{full[0]} gives the whole camera and cannot be combined with "
                          f"{', '.join(n for n in given if n != full[0])}")
    K = values.get("intrinsics")
    if K is not None and not (K[0] > 0 and K[1] > 0):
        raise OptionError(f"intrinsics: the focal lengths fx, fy must be positive, got {K[0]:g}, {K[1]:g}")


def check_options(values: dict[str, Any]) -> dict[str, Any]:
    """All options checked: each value against its declaration, then the rules
    between them.  Returns the canonical values; unknown names are an error."""
    unknown = sorted(set(values) - set(SPECS))
    if unknown:
        raise OptionError(f"unknown option(s): {', '.join(unknown)}")
    out = {name: check_value(name, values.get(name, SPECS[name].default)) for name in SPECS}
    if out["frame_end"] is not None and out["frame_end"] <= out["frame_start"]:
        raise OptionError(f"frame_end ({out['frame_end']}) must be greater than frame_start ({out['frame_start']})")
    check_camera(out)
    return out
