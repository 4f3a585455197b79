"""Plücker ray embeddings of camera trajectories, as camera-controlled video models consume them.

Every pixel of every frame gets the line of sight through its centre, written as six numbers:
the unit direction ``d`` (world frame) and the moment ``o x d``, where ``o`` is the camera centre.
The moment does not depend on which point of the line stands in for ``o``, so the pair describes
the ray itself, not one parametrisation of it.

Axes, pixel centres and the meaning of ``K = [fx, fy, cx, cy]`` are those of
:mod:`backend.camera.conventions` (OpenCV camera axes, pixel ``(i, j)`` centred at
``(i + 0.5, j + 0.5)``); poses in any other convention must be converted there first.

Models disagree on the channel order, so it is never defaulted:

* ``"oxd_d"``: ``[o x d, d]`` -- CameraCtrl, VideoX-Fun.
* ``"d_oxd"``: ``[d, o x d]`` -- Uni3C.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

PluckerOrder = Literal["oxd_d", "d_oxd"]
ORDERS: tuple[str, ...] = ("oxd_d", "d_oxd")


def _to_tensors(
    K: torch.Tensor | np.ndarray, c2w: torch.Tensor | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """Put K and c2w on one device in one working dtype; also return the output dtype.

    numpy inputs carry no device, so a tensor argument decides (K first); with none, float32
    on the CPU, the dtype the models take. Half-precision pixel coordinates lose the +0.5
    beyond ~1000 px, so the work happens in float32 at least and only the result is cast.
    """
    reference = next((x for x in (K, c2w) if isinstance(x, torch.Tensor)), None)
    if reference is None:
        device, out_dtype = torch.device("cpu"), torch.float32
    else:
        device = reference.device
        out_dtype = reference.dtype if reference.is_floating_point() else torch.float32
    work_dtype = torch.promote_types(out_dtype, torch.float32)
    return (
        torch.as_tensor(K, device=device).to(work_dtype),
        torch.as_tensor(c2w, device=device).to(work_dtype),
        out_dtype,
    )


def _check_inputs(
    K: torch.Tensor,
    c2w: torch.Tensor,
    height: int,
    width: int,
    order: str,
    k_size: Sequence[float] | None,
) -> None:
    """Raise ValueError naming the first bad argument."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if K.ndim < 2 or K.shape[-1] != 4:
        raise ValueError(f"K must have shape (..., N, 4) as [fx, fy, cx, cy], got {tuple(K.shape)}")
    if c2w.ndim < 3 or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"c2w must have shape (..., N, 4, 4), got {tuple(c2w.shape)}")
    if c2w.shape[:-2] != K.shape[:-1]:
        raise ValueError(
            f"c2w leading shape {tuple(c2w.shape[:-2])} must equal K's {tuple(K.shape[:-1])} "
            "(no broadcasting between them)"
        )
    for name, value in (("height", height), ("width", width)):
        # bool is an int subclass, but True as an image size is a caller's mistake.
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if k_size is not None and not _is_size(k_size):
        raise ValueError(f"k_size must be (k_width, k_height), both positive, got {k_size!r}")


def _is_size(size: Sequence[float]) -> bool:
    """True for a pair of positive real numbers."""
    real = (int, float, np.integer, np.floating)
    return (
        isinstance(size, tuple | list)
        and len(size) == 2
        and all(isinstance(s, real) and not isinstance(s, bool) and s > 0 for s in size)
    )


def plucker_embedding(
    K: torch.Tensor | np.ndarray,
    c2w: torch.Tensor | np.ndarray,
    height: int,
    width: int,
    *,
    order: PluckerOrder,
    k_size: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Per-pixel Plücker rays ``(o x d, d)`` of a batch of cameras.

    Args:
        K: (..., N, 4) intrinsics ``[fx, fy, cx, cy]`` in pixels at ``k_size`` (see
            :mod:`backend.camera.conventions`); fx and fy must be non-zero.
        c2w: (..., N, 4, 4) camera-to-world poses with OpenCV camera axes. Same leading shape
            as ``K``; nothing is broadcast between the two.
        height, width: resolution of the ray grid, usually the model's latent or pixel size.
        order: ``"oxd_d"`` for channels ``[o x d, d]`` (CameraCtrl, VideoX-Fun) or ``"d_oxd"``
            for ``[d, o x d]`` (Uni3C).
        k_size: ``(k_width, k_height)``, the resolution ``K`` is expressed at. When it differs
            from ``(width, height)``, fx and cx are scaled by ``width / k_width`` and fy and cy
            by ``height / k_height``, so that the rays cover the same field of view. ``None``
            means ``K`` is already at ``(width, height)``.

    Returns:
        (..., N, 6, height, width), on the device and in the dtype of ``K`` (of ``c2w`` when
        only it is a tensor; float32 on the CPU when both are numpy). ``d`` is a unit vector in
        world coordinates, ``o`` the camera centre (the translation of ``c2w``).
    """
    K, c2w, out_dtype = _to_tensors(K, c2w)
    _check_inputs(K, c2w, height, width, order, k_size)
    work_dtype = K.dtype

    fx, fy, cx, cy = K.unbind(-1)  # each (..., N)
    if k_size is not None:
        # Continuous image coordinates scale with the image (edges at 0 and W map to 0 and W'),
        # so focal lengths and principal point scale by the same factor per axis.
        sx, sy = width / float(k_size[0]), height / float(k_size[1])
        fx, cx, fy, cy = fx * sx, cx * sx, fy * sy, cy * sy

    u = torch.arange(width, device=K.device, dtype=work_dtype) + 0.5  # (W,)
    v = torch.arange(height, device=K.device, dtype=work_dtype) + 0.5  # (H,)
    x = (u - cx[..., None]) / fx[..., None]  # (..., N, W)
    y = (v - cy[..., None]) / fy[..., None]  # (..., N, H)
    grid = (*x.shape[:-1], height, width)
    d_cam = torch.stack(
        (
            x[..., None, :].expand(grid),
            y[..., :, None].expand(grid),
            torch.ones(grid, device=K.device, dtype=work_dtype),
        ),
        dim=-1,
    )  # (..., N, H, W, 3)

    rotation = c2w[..., :3, :3]  # (..., N, 3, 3)
    d = torch.einsum("...ij,...hwj->...hwi", rotation, d_cam)  # (..., N, H, W, 3)
    d = d / torch.linalg.vector_norm(d, dim=-1, keepdim=True)
    origin = c2w[..., None, None, :3, 3].expand_as(d)  # (..., N, H, W, 3)
    # An explicit dim: without one, torch.cross takes the first axis of size 3, which is the
    # batch or frame axis whenever there happen to be three of them.
    moment = torch.linalg.cross(origin, d, dim=-1)

    channels = (moment, d) if order == "oxd_d" else (d, moment)
    rays = torch.cat(channels, dim=-1)  # (..., N, H, W, 6)
    return rays.movedim(-1, -3).contiguous().to(out_dtype)  # (..., N, 6, H, W)
