"""Writing generated frames as MP4 (H.264, yuv420p) with the ffmpeg that imageio-ffmpeg ships."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np


def pad_to_even(frames: np.ndarray) -> np.ndarray:
    """frames: (F, H, W, 3) -> (F, H', W', 3) with H', W' even (yuv420p halves both axes).

    An odd row or column is filled by repeating the last one rather than scaling the image.
    """
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def write_mp4(frames: np.ndarray, fps: float, path: str | Path, crf: int = 18) -> Path:
    """Write uint8 ``frames`` (F, H, W, 3) to ``path`` as H.264 / yuv420p; returns the path.

    The file is written beside ``path`` and renamed into place, so a reader never sees half a
    video.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or not len(frames):
        raise ValueError(f"frames: expected uint8 (F, H, W, 3) with F > 0, got {frames.dtype} "
                         f"{frames.shape}")
    frames = pad_to_even(frames)
    path = Path(path)
    partial = path.with_name(path.name + ".part.mp4")
    height, width = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(partial), (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24",
        pix_fmt_out="yuv420p", macro_block_size=1, quality=None, ffmpeg_log_level="error",
        output_params=["-crf", str(crf), "-movflags", "+faststart"],
    )
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()
    partial.replace(path)
    return path
