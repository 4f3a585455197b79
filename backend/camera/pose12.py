"""12-number pose vectors: camera-to-world poses flattened the ways models and datasets store them.

A pose ``c2w`` (..., 4, 4) has rotation ``R = c2w[..., :3, :3]`` and translation (the camera
centre) ``t = c2w[..., :3, 3]``; axes follow :mod:`backend.camera.conventions`. Three flat
layouts of those twelve numbers are in use, and they disagree, so each is named:

* ``layout="rt"``: ``[R row-major (9) | t (3)]``.
* ``layout="tr"``: ``[t (3) | R row-major (9)]``.
* :func:`c2w_3x4_flat`: the top 3x4 block row-major, ``[R0, t0, R1, t1, R2, t2]`` with ``Ri`` the
  i-th row of R -- what ShotVerse's camera encoder takes as "flattened 3x4 extrinsics".

Nothing here changes the convention of the pose; vectors are read back exactly as written.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Vec12Layout = Literal["rt", "tr"]
LAYOUTS: tuple[str, ...] = ("rt", "tr")


def _as_float_array(x: np.ndarray, name: str, tail: tuple[int, ...]) -> np.ndarray:
    """Return x as a floating array whose trailing shape is ``tail``, else raise naming it.

    Floating inputs keep their dtype (float32 datasets stay float32); others become float64.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.ndim < len(tail) or x.shape[x.ndim - len(tail) :] != tail:
        shape = ", ".join(["..."] + [str(n) for n in tail])
        raise ValueError(f"{name} must have shape ({shape}), got {x.shape}")
    return x


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def pose_to_vec12(c2w: np.ndarray, *, layout: Vec12Layout) -> np.ndarray:
    """Flatten camera-to-world poses into 12-vectors.

    c2w: (..., 4, 4) -> (..., 12) in the named ``layout`` ("rt" or "tr", see the module
    docstring). The bottom row of ``c2w`` is not read.
    """
    _check_layout(layout)
    c2w = _as_float_array(c2w, "c2w", (4, 4))
    rotation = c2w[..., :3, :3].reshape(*c2w.shape[:-2], 9)  # (..., 9), row-major
    translation = c2w[..., :3, 3]  # (..., 3)
    parts = (rotation, translation) if layout == "rt" else (translation, rotation)
    return np.concatenate(parts, axis=-1)


def vec12_to_pose(vec: np.ndarray, *, layout: Vec12Layout) -> np.ndarray:
    """Rebuild camera-to-world poses from 12-vectors; the inverse of :func:`pose_to_vec12`.

    vec: (..., 12) in the named ``layout`` -> (..., 4, 4) with bottom row ``[0, 0, 0, 1]``.
    The rotation block is copied as stored: a vector that was quantised or predicted may not hold
    an exact rotation, and repairing it is the caller's choice (:func:`orthonormalize_rotation`).
    """
    _check_layout(layout)
    vec = _as_float_array(vec, "vec", (12,))
    if layout == "rt":
        rotation, translation = vec[..., :9], vec[..., 9:]
    else:
        translation, rotation = vec[..., :3], vec[..., 3:]
    c2w = np.zeros((*vec.shape[:-1], 4, 4), dtype=vec.dtype)
    c2w[..., :3, :3] = rotation.reshape(*vec.shape[:-1], 3, 3)
    c2w[..., :3, 3] = translation
    c2w[..., 3, 3] = 1.0
    return c2w


def c2w_3x4_flat(c2w: np.ndarray) -> np.ndarray:
    """The top 3x4 block of camera-to-world poses, flattened row-major.

    c2w: (..., 4, 4) -> (..., 12) ordered ``[R0, t0, R1, t1, R2, t2]`` (``Ri`` the i-th row of R),
    which is neither the "rt" nor the "tr" layout.
    """
    c2w = _as_float_array(c2w, "c2w", (4, 4))
    return c2w[..., :3, :].reshape(*c2w.shape[:-2], 12)


def orthonormalize_rotation(R: np.ndarray) -> np.ndarray:
    """The nearest rotation (Frobenius norm, det +1) to each 3x3 matrix.

    R: (..., 3, 3) -> (..., 3, 3). With ``R = U S Vt`` (SVD) the answer is ``U D Vt`` with
    ``D = diag(1, 1, det(U Vt))``: flipping the axis of the smallest singular value turns a
    reflection into the closest proper rotation instead of returning a mirror.
    """
    R = _as_float_array(R, "R", (3, 3))
    U, _, Vt = np.linalg.svd(R)
    det = np.linalg.det(U @ Vt)  # (...,), +1 or -1
    D = np.ones((*R.shape[:-2], 3), dtype=R.dtype)
    D[..., 2] = np.sign(det)
    return (U * D[..., None, :]) @ Vt
