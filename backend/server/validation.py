"""Turning a job request into a :class:`GenerationRequest`, with errors that name the field."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from typing import Any

import imageio.v3 as iio
import numpy as np

from backend.generators import (
    GenerationOptions,
    GenerationRequest,
    GenerationRequestError,
    Generator,
    GeneratorRegistry,
)
from backend.server.errors import ApiError, sequence_field
from backend.server.schemas import JobRequest, PlanRequest
from backend.shots import ShotSequence, ShotSequenceError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_IMAGE_PIXELS = 8192 * 8192


def decode_png(data: bytes, field: str = "body.image") -> np.ndarray:
    """PNG bytes -> uint8 (H, W, 3) RGB (grey expanded, alpha dropped); ApiError naming
    ``field`` when it is not a PNG image."""
    if not data.startswith(PNG_SIGNATURE):
        raise ApiError(422, f"{field}: not a PNG image (the PNG signature is missing)", field)
    try:
        image = iio.imread(io.BytesIO(data), extension=".png")
    except Exception as error:  # imageio raises several types for corrupt files
        raise ApiError(422, f"{field}: the PNG cannot be decoded ({error})", field) from None
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4) or not image.size:
        raise ApiError(422, f"{field}: expected an RGB or RGBA image, got shape {image.shape}",
                       field)
    if image.shape[0] * image.shape[1] > MAX_IMAGE_PIXELS:
        raise ApiError(422, f"{field}: {image.shape[1]}x{image.shape[0]} is too large", field)
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def decode_image(text: str, field: str = "body.image") -> tuple[bytes, np.ndarray]:
    """Base64 PNG (optionally a ``data:image/png;base64,`` URL) -> (PNG bytes, RGB array)."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError(422, f"{field}: not valid base64 ({error})", field) from None
    return data, decode_png(data, field)


def parse_sequence(data: Any) -> ShotSequence:
    """Validate the ShotSequence JSON; ApiError whose field is the path inside the sequence."""
    try:
        return ShotSequence.from_dict(data)
    except ShotSequenceError as error:
        message = str(error)
        raise ApiError(422, f"sequence: {message}", sequence_field(message)) from None


def select_shots(sequence: ShotSequence, names: Sequence[str] | None) -> list[str]:
    """The requested shot names (all, in order, for None); ApiError naming an unknown one."""
    known = [shot.name for shot in sequence.shots]
    if names is None:
        return known
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name not in known:
            raise ApiError(422, f"body.shots[{i}]: no shot named {name!r} in the sequence; "
                                f"shots: {known}", f"body.shots[{i}]")
        if name in seen:
            raise ApiError(422, f"body.shots[{i}]: {name!r} is listed twice",
                           f"body.shots[{i}]")
        seen.add(name)
    return list(names)


def check_model(registry: GeneratorRegistry, name: str) -> Generator:
    """The generator for ``name``: 422 unknown, 503 weights missing, 501 not implemented yet."""
    if name not in registry:
        raise ApiError(422, f"body.model: unknown model {name!r}; known models: "
                            f"{registry.names()}", "body.model")
    generator = registry.get(name)
    ok, message = generator.available()
    if not ok:
        raise ApiError(503, message, "body.model")
    if not generator.implemented:
        raise ApiError(501, message, "body.model")
    return generator


def build_request(body: JobRequest, registry: GeneratorRegistry,
                  device: str) -> tuple[GenerationRequest, bytes | None]:
    """Validate a job request the way its generator will read it; returns the request and the
    image's PNG bytes (to store beside the job)."""
    generator = check_model(registry, body.model)
    sequence = parse_sequence(body.sequence)
    shots = select_shots(sequence, body.shots)
    image_png, image = decode_image(body.image) if body.image is not None else (None, None)
    request = GenerationRequest(sequence=sequence, shots=shots,
                                options=GenerationOptions(**body.options.model_dump()),
                                image=image, device=device)
    try:
        generator.check_request(request)
    except GenerationRequestError as error:
        raise ApiError(422, f"body.{error}", f"body.{error.field}") from None
    return request, image_png


def build_plan_request(body: PlanRequest) -> Any:
    """The planner's request from ``POST /plan``'s body; ApiError 422 naming the field."""
    from backend.planning.base import PlanRequest as PlannerRequest
    from backend.planning.base import PlanRequestError, SceneContext, ShotPrompt

    try:
        scene = SceneContext.from_dict(body.scene) if body.scene is not None else None
        image = decode_image(body.image)[1] if body.image is not None else None
        return PlannerRequest(prompt=body.prompt,
                              shots=[ShotPrompt(shot.prompt, shot.name) for shot in body.shots],
                              scene=scene, image=image, seed=body.seed)
    except PlanRequestError as error:
        field = str(error).split(":", 1)[0]
        raise ApiError(422, f"body.{error}", f"body.{field}") from None

