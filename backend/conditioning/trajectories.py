"""2D trajectories of a shot turned into blurred sparse flow maps, as Image Conductor conditions.

Image Conductor (Li et al., 2024) steers an image-to-video model with *flow maps*: point tracks
whose frame-to-frame displacements are written into an otherwise empty ``(F, 2, H, W)`` tensor and
blurred with a Gaussian (99 x 99, sigma 10 at 384 x 256) so that the sparse matrix does not make
training unstable. Camera motion and object motion share that representation and are told apart by
which LoRA reads them, so this module keeps them in two maps:

``object``
    The subjects' own 2D tracks (``Shot.subjects``: their projections through the shot camera, as
    the add-on exports them). They carry the subject's motion *and* the camera's, as the object
    LoRA's mixed training data does.
``camera``
    Static scene points projected through the shot camera, frame by frame. Nothing moves them but
    the camera, so their tracks are exact camera-motion tracks with no tracker in the loop. They
    come from the ShotSequence's ``scene_points`` (the add-on samples them on the surfaces of the
    visible non-subject meshes), or from the caller. Occlusion is not modelled: a point hidden
    behind other geometry still counts while it projects inside the frame.

Conventions (each one a decision; the reasons are in the functions' docstrings):

- Pixel coordinates are continuous, y down, pixel ``(i, j)`` covering ``[i, i + 1) x [j, j + 1)``
  (:mod:`backend.camera.conventions`); a track at ``(u, v)`` lands in pixel
  ``(floor(u), floor(v))``.
- Frame ``f >= 1`` of a flow map holds ``uv[f] - uv[f - 1]`` written at the track's pixel in frame
  ``f - 1`` (the forward flow of frame ``f - 1``, anchored where the point starts, as DragNUWA's
  and Image Conductor's released code do); frame 0 is zero. A step contributes only when the track
  is visible in both frames and its start pixel is inside the image. Tracks sharing a pixel are
  averaged, so the value stays a displacement (the references let the last one win).
- The blur is applied per frame and per channel with zero padding; see :func:`blur_flow`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.interpolate import PchipInterpolator

from backend.camera.resample import times_for_count
from backend.camera.se3 import inverse
from backend.shots import Shot, ShotSequence

REFERENCE_SIZE = (384, 256)
"""``(W, H)`` at which Image Conductor states its blur."""
REFERENCE_KERNEL_SIZE = 99
"""Side of the blur kernel at the reference size."""
REFERENCE_SIGMA = 10.0
"""Standard deviation of the blur, in pixels, at the reference size."""
MAX_SPARSE_TRACKS = 8
"""Upper limit of the sparse track count (the paper samples ``n`` in ``[1, 8]``)."""

TrackKind = Literal["object", "camera"]
Normalization = Literal["peak", "sum"]


@dataclass
class Track:
    """One 2D point track over the frames of a shot (source frames or model frames)."""

    uv: np.ndarray
    """(F, 2) continuous pixel coordinates, y down."""
    visible: np.ndarray
    """(F,) bool: the point is in front of the camera and inside the frame."""
    name: str = ""
    """Subject name, or ``point_<i>`` for a scene point."""
    kind: TrackKind = "object"
    """``object`` (a subject's track) or ``camera`` (a static scene point's track)."""

    def __post_init__(self) -> None:
        self.uv = np.asarray(self.uv, dtype=np.float64)
        self.visible = np.asarray(self.visible, dtype=bool)
        if self.uv.ndim != 2 or self.uv.shape[1] != 2:
            raise ValueError(f"Track {self.name!r}: uv must have shape (F, 2), got {self.uv.shape}")
        if self.visible.shape != (len(self.uv),):
            raise ValueError(f"Track {self.name!r}: visible must have shape ({len(self.uv)},), "
                             f"got {self.visible.shape}")

    @property
    def num_frames(self) -> int:
        return len(self.uv)

    def motion(self) -> float:
        """Path length in pixels over consecutive frames where the track is visible in both."""
        steps = np.linalg.norm(np.diff(self.uv, axis=0), axis=-1)
        both = self.visible[1:] & self.visible[:-1]
        return float(steps[both].sum())


# --------------------------------------------------------------------------------------------
# Tracks from a shot


def subject_tracks(shot: Shot) -> list[Track]:
    """The shot's subject tracks (``Shot.subjects``) as object tracks, at the source resolution."""
    return [Track(uv=subject.uv.copy(), visible=subject.visible.copy(), name=subject.name,
                  kind="object") for subject in shot.subjects]


def project_points(
    c2w: np.ndarray, K: np.ndarray, points_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project static world points through a moving camera.

    c2w: (N, 4, 4) OpenCV camera-to-world; K: (N, 4) ``[fx, fy, cx, cy]``; points_world: (M, 3)
    -> uv (N, M, 2) pixels, depth (N, M) along the camera's +z. Points at depth <= 0 get the
    finite placeholder uv of a point just in front of the camera; callers mask them by depth.
    """
    points = np.asarray(points_world, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points_world must have shape (M, 3), got {points.shape}")
    w2c = inverse(np.asarray(c2w, dtype=np.float64))
    # (N, 3, 3) @ (3, M) + (N, 3, 1) -> (N, 3, M) -> (N, M, 3)
    camera = np.swapaxes(w2c[:, :3, :3] @ points.T + w2c[:, :3, 3:], 1, 2)
    depth = camera[..., 2]
    z = np.maximum(depth, 1e-9)
    K = np.asarray(K, dtype=np.float64)
    u = K[:, None, 0] * camera[..., 0] / z + K[:, None, 2]
    v = K[:, None, 1] * camera[..., 1] / z + K[:, None, 3]
    return np.stack([u, v], axis=-1), depth


def scene_point_tracks(
    shot: Shot, points_world: np.ndarray, resolution: tuple[int, int]
) -> list[Track]:
    """Camera-motion tracks: static world points (M, 3) projected through the shot's camera.

    ``resolution`` is the sequence's ``(W, H)`` (the resolution ``shot.K`` is given at). A point is
    visible in a frame when it is in front of the camera and projects inside the image.
    """
    width, height = resolution
    uv, depth = project_points(shot.c2w, shot.K, points_world)
    inside = ((uv[..., 0] >= 0) & (uv[..., 0] < width) & (uv[..., 1] >= 0)
              & (uv[..., 1] < height))
    visible = (depth > 0) & inside
    return [Track(uv=uv[:, i], visible=visible[:, i], name=f"point_{i}", kind="camera")
            for i in range(uv.shape[1])]


# --------------------------------------------------------------------------------------------
# Resampling to the model's frames and resolution


def _visible_runs(visible: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` index pairs of the runs of True in ``visible`` (N,)."""
    padded = np.concatenate([[False], visible, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def resample_track(
    track: Track, times: np.ndarray, method: Literal["pchip", "linear"] = "pchip"
) -> Track:
    """Sample ``track`` at source-frame positions ``times`` (M,) (from ``times_for_count``).

    Visibility takes the all-visible rule: a time is visible when every source frame it lies
    between is (both neighbours, or the frame itself on an integer time), so nothing is
    interpolated across a frame where the point was hidden. Positions inside a visible run come
    from a PCHIP (or linear) fit of that run alone, so the off-screen or behind-camera values of
    hidden frames cannot bend it; PCHIP keeps the run's samples and adds no overshoot (a monotone
    run stays monotone). Hidden times get linear positions, never read by the flow maps.
    """
    if method not in ("pchip", "linear"):
        raise ValueError(f"method must be 'pchip' or 'linear', got {method!r}")
    times = np.asarray(times, dtype=np.float64)
    frames = np.arange(track.num_frames, dtype=np.float64)
    if times.size and (times.min() < -1e-9 or times.max() > frames[-1] + 1e-9):
        raise ValueError(f"times [{times.min()}, {times.max()}] leave the track's frames "
                         f"[0, {frames[-1]}]")
    times = np.clip(times, 0.0, frames[-1])
    uv = np.stack([np.interp(times, frames, track.uv[:, axis]) for axis in range(2)], axis=-1)
    visible = np.zeros(len(times), dtype=bool)
    for first, last in _visible_runs(track.visible):
        inside = (times >= first - 1e-9) & (times <= last + 1e-9)
        visible |= inside
        if method == "pchip" and last - first >= 1 and inside.any():
            fit = PchipInterpolator(frames[first:last + 1], track.uv[first:last + 1], axis=0)
            uv[inside] = fit(times[inside])
    return Track(uv=uv, visible=visible, name=track.name, kind=track.kind)


def resample_tracks(
    tracks: Sequence[Track],
    num_frames: int,
    *,
    source_size: tuple[int, int] | None = None,
    target_size: tuple[int, int] | None = None,
    method: Literal["pchip", "linear"] = "pchip",
) -> list[Track]:
    """Resample tracks spanning a shot to ``num_frames`` model frames and the model's resolution.

    The first and last model frames sit on the shot's first and last frames
    (:func:`backend.camera.resample.times_for_count`). With both sizes given (``(W, H)``), uv is
    scaled per axis by ``target / source``: exact for continuous coordinates with the origin at the
    image corner, and what resizing the video to the model's resolution does (no crop).
    """
    if (source_size is None) != (target_size is None):
        raise ValueError("source_size and target_size come together")
    out = []
    for track in tracks:
        resampled = resample_track(track, times_for_count(track.num_frames, num_frames), method)
        if source_size is not None:
            scale = np.array(target_size, dtype=np.float64) / np.array(source_size, np.float64)
            resampled.uv = resampled.uv * scale
        out.append(resampled)
    return out


# --------------------------------------------------------------------------------------------
# Sparse sampling


def sample_tracks(
    tracks: Sequence[Track],
    k: int | None = None,
    rng: np.random.Generator | None = None,
) -> list[Track]:
    """Image Conductor's sparse sampling: ``k`` tracks drawn by normalised motion intensity.

    ``k`` is drawn uniformly from ``1..8`` when None, and capped at the number of tracks. Tracks
    are drawn without replacement with probability proportional to :meth:`Track.motion`; a tiny
    floor (1e-6 of the largest motion) lets static tracks fill the count once the moving ones are
    taken, and all-static tracks are drawn uniformly. Returned in their input order.
    """
    rng = np.random.default_rng() if rng is None else rng
    if not tracks:
        return []
    if k is None:
        k = int(rng.integers(1, MAX_SPARSE_TRACKS + 1))
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, len(tracks))
    motion = np.array([track.motion() for track in tracks])
    weights = motion + 1e-6 * (motion.max() if motion.max() > 0 else 1.0)
    chosen = rng.choice(len(tracks), size=k, replace=False, p=weights / weights.sum())
    return [tracks[i] for i in sorted(chosen)]


# --------------------------------------------------------------------------------------------
# Flow maps and blur


def flow_maps(
    tracks: Sequence[Track],
    num_frames: int,
    height: int,
    width: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Sparse flow maps (F, 2, H, W) of tracks already at the model's frames and resolution.

    Channel 0 is dx, channel 1 dy, in pixels per frame. See the module docstring for where a step
    is written and how steps sharing a pixel combine.
    """
    maps = torch.zeros(num_frames, 2, height, width, device=device, dtype=dtype)
    rows, values = [], []
    for track in tracks:
        if track.num_frames != num_frames:
            raise ValueError(f"track {track.name!r} has {track.num_frames} frames, expected "
                             f"{num_frames}; resample it first")
        start = np.floor(track.uv[:-1]).astype(np.int64)  # (F - 1, 2) start pixels
        keep = (track.visible[1:] & track.visible[:-1] & (start[:, 0] >= 0)
                & (start[:, 0] < width) & (start[:, 1] >= 0) & (start[:, 1] < height))
        frame = np.flatnonzero(keep) + 1
        rows.append((frame * height + start[keep, 1]) * width + start[keep, 0])
        values.append(np.diff(track.uv, axis=0)[keep])
    if not rows or not sum(len(r) for r in rows):
        return maps
    index = torch.from_numpy(np.concatenate(rows)).to(maps.device)
    value = torch.from_numpy(np.concatenate(values)).to(maps.device, torch.float64)
    # Accumulate in float64 then average, so tracks sharing a pixel give their mean displacement.
    total = torch.zeros(num_frames * height * width, 2, device=maps.device, dtype=torch.float64)
    count = torch.zeros(num_frames * height * width, device=maps.device, dtype=torch.float64)
    total.index_add_(0, index, value)
    count.index_add_(0, index, torch.ones_like(index, dtype=torch.float64))
    mean = total / count.clamp(min=1.0)[:, None]
    # (F * H * W, 2) -> (F, H, W, 2) -> (F, 2, H, W)
    return mean.reshape(num_frames, height, width, 2).permute(0, 3, 1, 2).to(dtype).contiguous()


def blur_parameters(height: int, width: int) -> tuple[int, float]:
    """Kernel side and sigma for an image of ``height x width``: the paper's 99 / 10 at 384 x 256.

    Both scale with ``sqrt(W * H / (384 * 256))``, the ratio of the image's geometric-mean side to
    the reference's, so the blur covers the same fraction of the frame whatever the aspect; the
    kernel keeps the reference's half-width of 4.9 sigma and stays odd.
    """
    scale = math.sqrt(width * height / (REFERENCE_SIZE[0] * REFERENCE_SIZE[1]))
    half = max(1, round(REFERENCE_KERNEL_SIZE // 2 * scale))
    return 2 * half + 1, REFERENCE_SIGMA * scale


def _gaussian_1d(
    size: int, sigma: float, normalize: Normalization, device=None, dtype=torch.float32
) -> torch.Tensor:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd integer, got {size}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if normalize not in ("peak", "sum"):
        raise ValueError(f"normalize must be 'peak' or 'sum', got {normalize!r}")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)  # peak exp(0) = 1 at the centre
    if normalize == "sum":
        kernel = kernel / kernel.sum()
    return kernel.to(device=device, dtype=dtype)


def gaussian_kernel(
    size: int,
    sigma: float,
    normalize: Normalization = "peak",
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Isotropic Gaussian (size, size), centred on the middle pixel.

    ``peak``: the centre is 1, so a lone track keeps its exact displacement at its pixel and fades
    around it (DragNUWA's, MotionCtrl's and Tora's ``blur_kernel / blur_kernel[centre]``; the
    default). ``sum``: the weights sum to 1 (the ``bivariate_Gaussian`` that Image Conductor's
    released inference code uses as is), which scales a lone displacement by about
    ``1 / (2 pi sigma^2)``; use it only to feed that code's checkpoints.
    """
    g = _gaussian_1d(size, sigma, normalize, device, dtype)
    return torch.outer(g, g)


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n, n) matrix of a 1D convolution with the odd kernel g (zero padding): ``B[i, j] =
    g[j - i + half]`` where ``|j - i| <= half``."""
    half = len(g) // 2
    index = torch.arange(n, device=g.device)
    offset = index[None, :] - index[:, None]
    weights = g[(offset + half).clamp(0, len(g) - 1)]
    return torch.where(offset.abs() <= half, weights, torch.zeros((), dtype=g.dtype,
                                                                  device=g.device))


def blur_flow(
    maps: torch.Tensor,
    *,
    kernel_size: int | None = None,
    sigma: float | None = None,
    normalize: Normalization = "peak",
) -> torch.Tensor:
    """Blur flow maps (..., H, W) per frame and channel; defaults from :func:`blur_parameters`.

    The 2D Gaussian is separable, so it runs as two 1D convolutions, each a product with a banded
    matrix (``Bh @ maps @ Bw``): at Wan's 480 x 832 the kernel is 199 wide, where ``conv2d`` on
    the CPU is several times slower than a matrix product. Runs on the maps' device and dtype.
    Padding is zero: a track near the border loses the part of its blob outside the image
    (cv2.filter2D in the references reflects it back in, doubling values near edges).
    """
    *_, height, width = maps.shape
    default_size, default_sigma = blur_parameters(height, width)
    size = default_size if kernel_size is None else kernel_size
    sigma = default_sigma if sigma is None else sigma
    g = _gaussian_1d(size, sigma, normalize, maps.device, maps.dtype)
    # Bw and Bh are symmetric: (..., H, W) @ (W, W) blurs rows, (H, H) @ (..., H, W) columns.
    return _band(height, g) @ (maps @ _band(width, g))


# --------------------------------------------------------------------------------------------
# The condition of one shot


def trajectory_condition(
    sequence: ShotSequence,
    shot_name: str,
    num_frames: int,
    height: int,
    width: int,
    *,
    scene_points: np.ndarray | None = None,
    mode: Literal["sparse", "dense"] = "sparse",
    num_tracks: int | None = None,
    seed: int | None = None,
    blur: bool = True,
    normalize: Normalization = "peak",
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Blurred flow maps of one shot at the model's frames and resolution.

    Returns ``{"camera": (F, 2, H, W), "object": (F, 2, H, W)}``: static ``scene_points`` (M, 3;
    default: the sequence's own) projected through the shot camera, and the shot's subjects (see
    the module docstring).
    ``mode="dense"`` keeps every track (training's first stage); ``"sparse"`` draws 1–8 tracks per
    map (``num_tracks`` fixes the count) by motion intensity, from ``seed``. A map with no
    tracks is all zero.
    """
    if mode not in ("sparse", "dense"):
        raise ValueError(f"mode must be 'sparse' or 'dense', got {mode!r}")
    if num_frames < 1 or height < 1 or width < 1:
        raise ValueError(f"num_frames, height and width must be positive, got {num_frames}, "
                         f"{height}, {width}")
    shot = sequence.shot(shot_name)
    if scene_points is None:
        scene_points = sequence.scene_points
    groups = {
        "camera": [] if scene_points is None
        else scene_point_tracks(shot, scene_points, sequence.resolution),
        "object": subject_tracks(shot),
    }
    rng = np.random.default_rng(seed)
    out = {}
    for key, tracks in groups.items():
        tracks = resample_tracks(tracks, num_frames, source_size=tuple(sequence.resolution),
                                 target_size=(width, height))
        if mode == "sparse":
            tracks = sample_tracks(tracks, num_tracks, rng)
        maps = flow_maps(tracks, num_frames, height, width, device=device, dtype=dtype)
        out[key] = blur_flow(maps, normalize=normalize) if blur else maps
    return out
