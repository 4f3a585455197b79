"""Request and response bodies of the HTTP API (the contract with ``blender_addon/client.py``).

The ShotSequence itself travels as plain JSON and is validated by :mod:`backend.shots`, whose
errors name the field (``shots[0].c2w``); pydantic checks everything around it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "interrupted"})
"""A job in one of these states never changes again."""
HttpFormat = Literal["shots", "realestate10k", "nerfstudio", "transforms"]
"""Camera-path formats offered over HTTP (text files; ``npz`` only from the command line)."""


class Strict(BaseModel):
    """Request bodies refuse unknown fields, so a misspelt key is named instead of ignored."""

    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every error: a message naming the problem, and the field it concerns."""

    error: str = Field(description="What is wrong, naming the field; never a traceback.")
    field: str | None = Field(default=None, description="Path like `body.model` or "
                                                        "`shots[0].c2w`, or null.")


class ModelInfo(BaseModel):
    name: str = Field(description="Model name for `POST /jobs`.")
    kind: str = Field(description="`smoke-test`, `camera-dit` or `trajectory-controlnet`.")
    available: bool = Field(description="Whether a job for it can run now.")
    message: str = Field(description="What it is, or what is missing and where to put it.")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str
    device: str = Field(description="Device of the first worker: `cpu` or `cuda:N`.")
    models: list[ModelInfo]


class PlanShot(Strict):
    prompt: str
    name: str | None = None


class PlanRequest(Strict):
    prompt: str = Field(description="The global prompt.")
    shots: list[PlanShot] = Field(min_length=1)
    scene: dict[str, Any] | None = None
    image: str | None = Field(default=None, description="Base64 PNG of the viewport.")
    planner: Literal["grammar", "learned"] = "grammar"
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Same request + seed, same plan.")


class JobOptions(Strict):
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    num_inference_steps: int | None = Field(default=None, ge=1, le=1000,
                                            description="null = the model's default")
    width: int | None = Field(default=None, ge=16, le=4096, description="null = model default")
    height: int | None = Field(default=None, ge=16, le=4096, description="null = model default")
    num_frames: int | None = Field(default=None, ge=1, le=2001,
                                   description="Frames per shot; null = the model's default")


class JobRequest(Strict):
    model: str = Field(description="A model name from `GET /health`.")
    sequence: dict[str, Any] = Field(description="ShotSequence JSON, version 1.")
    shots: list[str] | None = Field(default=None, min_length=1,
                                    description="Shot names to render; null = all, in order.")
    image: str | None = Field(default=None, description="Base64 PNG, the first-frame condition.")
    options: JobOptions = Field(default_factory=JobOptions)


class Job(BaseModel):
    id: str
    model: str
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    stage: str
    error: str | None
    created_at: float = Field(description="Unix time.")
    updated_at: float = Field(description="Unix time.")
    shots: list[str]
    video: str | None = Field(description="`/jobs/{id}/video` once the video exists, else null.")


class JobList(BaseModel):
    jobs: list[Job] = Field(description="Newest first.")


class ConvertInput(Strict):
    format: HttpFormat
    content: str = Field(description="The file's text.")
    name: str = Field(default="shot", min_length=1, max_length=200,
                      description="Shot name for single-camera formats (their file name).")


class ConvertRequest(Strict):
    input: ConvertInput
    to: HttpFormat
    width: int | None = Field(default=None, gt=0, description="For inputs without a resolution.")
    height: int | None = Field(default=None, gt=0)
    fps: float | None = Field(default=None, gt=0, description="For inputs without a frame rate.")


class ConvertedFile(BaseModel):
    shot: str | None = Field(description="The shot in this file; null when it holds them all "
                                         "(a ShotSequence).")
    name: str = Field(description="Suggested file name.")
    content: str


class ConvertResponse(BaseModel):
    files: list[ConvertedFile]


class UnloadResponse(BaseModel):
    unloaded: list[str] = Field(description="Models that had weights loaded.")
    device: str
