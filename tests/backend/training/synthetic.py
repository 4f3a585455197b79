"""Synthetic multi-shot sequences for planner tests: simple dolly, pan, truck and pedestal moves
with prompts that name them, built with the camera core (no Blender)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from backend.camera.se3 import make_pose
from backend.shots import Shot, ShotSequence, save

RESOLUTION = (1280, 720)
FPS = 24.0


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) OpenCV camera-to-world at ``eye`` looking at ``target``, world +Z up."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return make_pose(np.stack([right, np.cross(forward, right), forward], axis=-1), eye)


def move(name: str, start: np.ndarray, count: int, amount: float) -> np.ndarray:
    """(count, 4, 4) poses of a camera move from ``start``; ``amount`` metres or radians."""
    t = np.linspace(0.0, 1.0, count)[:, None]
    rotation, centre = start[:3, :3], start[:3, 3]
    if name in ("dolly in", "dolly out", "truck left", "truck right", "pedestal up"):
        axis = {"dolly in": rotation[:, 2], "dolly out": -rotation[:, 2],
                "truck right": rotation[:, 0], "truck left": -rotation[:, 0],
                "pedestal up": np.array([0.0, 0.0, 1.0])}[name]
        return make_pose(np.repeat(rotation[None], count, 0), centre + amount * t * axis)
    sign = 1.0 if name == "pan left" else -1.0  # about world +Z: positive turns left
    turn = Rotation.from_rotvec(sign * amount * t * np.array([0.0, 0.0, 1.0])).as_matrix()
    return make_pose(turn @ rotation, np.repeat(centre[None], count, 0))


MOVES = ("dolly in", "dolly out", "truck left", "truck right", "pedestal up", "pan left",
         "pan right")


def synthetic_sequence(seed: int, num_shots: int | None = None) -> ShotSequence:
    """One sequence of 1-2 shots (or ``num_shots``) of 10-20 frames around a subject."""
    rng = np.random.default_rng(seed)
    num_shots = num_shots or int(rng.integers(1, 3))
    shots, frame = [], 1
    for i in range(num_shots):
        name = MOVES[int(rng.integers(len(MOVES)))]
        angle = rng.uniform(0, 2 * np.pi)
        eye = np.array([4 * np.cos(angle), 4 * np.sin(angle), rng.uniform(0.8, 2.0)])
        count = int(rng.integers(10, 21))
        amount = rng.uniform(0.3, 0.6) if name.startswith("pan") else rng.uniform(0.5, 1.5)
        c2w = move(name, look_at(eye, np.array([0.0, 0.0, 1.0])), count, amount)
        K = np.tile([1000.0, 1000.0, RESOLUTION[0] / 2, RESOLUTION[1] / 2], (count, 1))
        shots.append(Shot(name=f"shot_{10 * (i + 1):03d}", camera="Camera", frame_start=frame,
                          frame_end=frame + count - 1, c2w=c2w, K=K,
                          prompt=f"the camera does a slow {name}"))
        frame += count
    prompt = "a figure stands in an empty room"
    return ShotSequence(FPS, RESOLUTION, shots, prompt=prompt).validate()


def write_dataset(folder: Path, count: int = 4, seed: int = 0, image: bool = True) -> Path:
    """``count`` sequences as JSON in ``folder``; the first gets a PNG viewport image."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        path = save(synthetic_sequence(seed + i), folder / f"seq_{i:03d}.json")
        if image and i == 0:
            pixels = np.random.default_rng(seed).integers(0, 256, (40, 60, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path.with_suffix(".png"))
    return folder
