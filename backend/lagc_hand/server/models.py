"""Request and response models: the server's OpenAPI description is generated
from these, so they are the machine-readable form of ``docs/http-api.md``."""
from __future__ import annotations

import dataclasses
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lagc_hand.options import ReconstructOptions

JobState = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
Stage = Literal["queued", "decode", "detect", "track", "place", "fit", "cleanup", "write", "done"]


class OptionsModel(BaseModel):
    """The fields of :class:`lagc_hand.api.ReconstructOptions`, validated.

    Unknown fields are refused (a typo must not silently fall back to a default).
    """

    model_config = ConfigDict(extra="forbid")

    engine: Literal["mediapipe", "mediapipe-raw", "lagc"] = "mediapipe"
    checkpoint: Optional[str] = Field(None, max_length=4096, description="LAGC-Hand checkpoint path (engine=lagc); must lie under an allowed dir")
    focal_mm: Optional[float] = Field(None, gt=1.0, le=2000.0, description="35 mm-equivalent focal length, mm")
    fov_deg: Optional[float] = Field(None, gt=1.0, lt=179.0, description="horizontal field of view, degrees")
    frame_start: int = Field(0, ge=0, le=10_000_000)
    frame_end: Optional[int] = Field(None, ge=1, le=10_000_000, description="exclusive; null = to the end")
    stride: int = Field(1, ge=1, le=1000)
    smoothing: float = Field(1.0, ge=0.0, le=10.0)
    hand_model: str = Field("open", min_length=1, max_length=4096, description='"open" or a folder with MANO files (under an allowed dir)')
    device: Literal["auto", "cpu", "cuda"] = "auto"
    detect_workers: int = Field(0, ge=0, le=64, description="chunks detected in parallel; 0 = one per CPU core")

    @model_validator(mode="after")
    def _range(self) -> "OptionsModel":
        if self.frame_end is not None and self.frame_end <= self.frame_start:
            raise ValueError(f"frame_end ({self.frame_end}) must be greater than frame_start ({self.frame_start})")
        if "\x00" in self.hand_model or (self.checkpoint and "\x00" in self.checkpoint):
            raise ValueError("paths must not contain NUL characters")
        return self

    def to_options(self) -> ReconstructOptions:
        return ReconstructOptions(**self.model_dump())


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

    engine: Literal["mediapipe", "mediapipe-raw", "lagc"] = "mediapipe"
    checkpoint: Optional[str] = Field(None, max_length=4096)
    fps: float = Field(30.0, gt=0.0, le=1000.0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
