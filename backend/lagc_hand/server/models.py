"""Request and response models: the server's OpenAPI description is generated
from these, so they are the machine-readable form of ``docs/http-api.md``."""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from lagc_hand.options import ReconstructOptions
from lagc_hand_blender.core.options_spec import (DEVICES, ENGINE_NAMES, MAX_PATH_CHARS, OPTIONS, OptionError,
                                                 OptionSpec, check_options)

JobState = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
Stage = Literal["queued", "decode", "detect", "track", "place", "fit", "cleanup", "write", "done"]


def _option_field(spec: OptionSpec) -> tuple[Any, Any]:
    """(annotation, Field) of one declared option; the bounds are the declaration's."""
    kind = spec.kind
    if kind == "choice":
        ann: Any = Literal[spec.choices]
    elif kind == "floats":
        ann = list[float]
    else:
        ann = {"int": int, "float": float}.get(kind, str)
    kw: dict[str, Any] = {"description": spec.help}
    if kind in ("int", "float"):
        kw.update(ge=spec.minimum, le=spec.maximum)
    elif kind == "floats":
        kw.update(min_length=spec.length, max_length=spec.length)
    elif kind in ("str", "path"):
        kw.update(min_length=1, max_length=MAX_PATH_CHARS)
    return (Optional[ann] if spec.optional else ann), Field(spec.default, **kw)


class _OptionsBase(BaseModel):
    """The fields of :class:`lagc_hand.options.ReconstructOptions`, validated.

    Unknown fields are refused (a typo must not silently fall back to a default).
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _rules(self):
        # The per-field bounds above, again, plus the rules between fields (frame range, camera).
        try:
            check_options(self.model_dump())
        except OptionError as exc:
            raise ValueError(str(exc)) from None
        return self

    def to_options(self) -> ReconstructOptions:
        return ReconstructOptions(**self.model_dump()).validate()


#: Built from the one declaration of the options (``core/options_spec.py``).
OptionsModel = create_model("OptionsModel", __base__=_OptionsBase,
                            **{s.name: _option_field(s) for s in OPTIONS})

# Fail at import, not at run time, if the pipeline's options and ours drift apart.
_MISSING = {f.name for f in dataclasses.fields(ReconstructOptions)} ^ set(OptionsModel.model_fields)
if _MISSING:  # pragma: no cover - caught by tests/test_server_units.py
    raise ImportError(f"OptionsModel and ReconstructOptions disagree on fields: {sorted(_MISSING)}")


class ErrorDetail(BaseModel):
    code: str = Field(..., description="machine-readable code, e.g. not_found, too_large, invalid_video")
    message: str = Field(..., description="what went wrong, written for the user")


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    engines: list[str]


class Job(BaseModel):
    id: str
    state: JobState
    stage: Stage
    frames_done: int = Field(..., ge=0)
    frames_total: int = Field(..., ge=0)
    fps: float = Field(..., ge=0, description="detect-stage throughput, frames/s")
    eta_s: Optional[float] = Field(None, description="seconds left (detect stage estimate); null when unknown")
    error: Optional[ErrorDetail] = None
    created: str = Field(..., description="ISO-8601, UTC")
    updated: str = Field(..., description="ISO-8601, UTC")
    source: str = Field(..., description="file name of the video (upload name or path)")
    options: dict[str, Any]
    summary: Optional[dict[str, Any]] = None
    resubmit_of: Optional[str] = Field(None, description="id of the job this one was resubmitted from")


class JobList(BaseModel):
    jobs: list[Job]


class FromPathRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., min_length=1, max_length=4096, description="absolute path under an allowed dir")
    options: OptionsModel = Field(default_factory=OptionsModel)


class Observation(BaseModel):
    keypoints2d: list[list[float]] = Field(..., description="(21, 2) pixels, public keypoint order")
    keypoints3d: list[list[float]] = Field(..., description="(21, 3) metres, hand-relative, camera axes")
    handedness: float = Field(..., description="probability this is a RIGHT hand (un-mirrored image)")
    score: float
    box: Optional[list[float]] = Field(None, description="x0, y0, x1, y1 pixels")


class FrameResult(BaseModel):
    index: int
    width: int
    height: int
    hands: list[Observation]


class FramesResponse(BaseModel):
    engine: str
    frames: list[FrameResult]


class FramesOptions(BaseModel):
    """Options of ``POST /api/v1/infer/frames``: the images are consecutive frames
    of one sequence at ``fps`` (engines may track between them)."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal[ENGINE_NAMES] = "mediapipe"
    checkpoint: Optional[str] = Field(None, max_length=MAX_PATH_CHARS)
    fps: float = Field(30.0, gt=0.0, le=1000.0)
    device: Literal[DEVICES] = "auto"
