"""Trajectory tokenizer: multi-shot camera paths <-> discrete tokens for the learned planner.

ShotVerse §3.2.1: every continuous parameter is normalised to a fixed range and cut into
``num_bins`` (256) uniform bins; the de-tokenizer returns the bin centre, so a value inside its
range comes back within half a bin (``(high - low) / num_bins / 2``), and a bin centre encodes
back to the same bin (the tokenizer is invertible on its own output).

What is encoded (one shared frame for all shots, as ShotVerse requires):

- poses relative to frame 0 of the first shot (:func:`backend.camera.se3.relative_to_first_shot`);
- translations divided by one sequence scale, the largest camera-centre distance from the origin
  over all keyframes (``max_norm``), so that every coordinate lies in [-1, 1]; the scale itself is
  carried as a token (log10 metres);
- every shot resampled to ``frames_per_shot`` keyframes (default 16) spanning the shot
  (:func:`backend.camera.resample.resample_shot`, slerp + lerp); the shot's duration is a token
  and decoding upsamples the keyframes back to ``round(duration * fps)`` frames;
- focal lengths as ``fx / W`` (and ``fy / H``); the principal point is taken at the image centre.

Token stream, the same for both layouts::

    BOS, <sequence slots>, <shot slots>, <frame slots> x K, SEP, <shot slots>, ..., EOS

Vocabulary: ids 0-3 are PAD, BOS, EOS, SEP; then every slot has its own ``num_bins`` ids, so
``id = 4 + slot * num_bins + bin`` with slots numbered in the order below (sequence, shot, frame).
Per-slot codebooks let the decoder be constrained to the one slot the grammar expects next
(:meth:`TrajectoryTokenizer.template`), so generated tokens always decode.

Layouts (ranges in brackets; "log" slots hold log10 of the quantity):

- ``"pose12"`` (default, ShotVerse's 12-D pose + focal): sequence ``log_scale`` [-2, 3]; shot
  ``log_duration`` (seconds) [-1, 2]; frame ``r00 r01 r02 r10 r11 r12 r20 r21 r22`` (rotation,
  row-major, [-1, 1]), ``tx ty tz`` [-1, 1], ``log_focal`` (``fx / W``) [-1, 1]: 13 tokens/frame.
  Square pixels: ``fy = fx``.
- ``"gendop"`` (GenDoP's 10 tokens per frame): ``qw qx qy qz`` (unit quaternion, scalar first,
  ``qw >= 0``) [-1, 1], ``tx ty tz`` [-1, 1], ``fx_w fy_h`` [0, 10], ``log_scale`` [-2, 2] repeated
  on every frame; shot ``log_duration`` as above. GenDoP's own code encodes ``log10(scale)`` but
  decodes with ``exp``; here both directions use base 10.

Decoding always yields proper rotations: 3x3 blocks go through the SVD projection
(:func:`backend.camera.pose12.orthonormalize_rotation`), quaternions are normalised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from backend.camera.pose12 import orthonormalize_rotation
from backend.camera.resample import resample_shot, times_for_count
from backend.camera.se3 import make_pose, normalize_scale, relative_to_first_shot
from backend.shots import ShotSequence

PAD_ID, BOS_ID, EOS_ID, SEP_ID = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<sep>")
NUM_SPECIAL = len(SPECIAL_TOKENS)
TOKEN_LAYOUTS = ("pose12", "gendop")
MIN_DECODED_FRAMES = 2


@dataclass(frozen=True)
class Slot:
    """One quantised parameter: its name and the range its bins cover."""

    name: str
    """e.g. ``r01``, ``tx``, ``log_scale``."""
    low: float
    """Lower edge of the first bin."""
    high: float
    """Upper edge of the last bin."""


def _slots(names: str, low: float, high: float) -> tuple[Slot, ...]:
    return tuple(Slot(name, low, high) for name in names.split())


_ROTATION9 = _slots("r00 r01 r02 r10 r11 r12 r20 r21 r22", -1.0, 1.0)
_TRANSLATION = _slots("tx ty tz", -1.0, 1.0)
_DURATION = Slot("log_duration", -1.0, 2.0)
# (sequence slots, shot slots, frame slots) of each layout.
_LAYOUT_SLOTS: dict[str, tuple[tuple[Slot, ...], tuple[Slot, ...], tuple[Slot, ...]]] = {
    "pose12": (
        (Slot("log_scale", -2.0, 3.0),),
        (_DURATION,),
        (*_ROTATION9, *_TRANSLATION, Slot("log_focal", -1.0, 1.0)),
    ),
    "gendop": (
        (),
        (_DURATION,),
        (*_slots("qw qx qy qz", -1.0, 1.0), *_TRANSLATION, *_slots("fx_w fy_h", 0.0, 10.0),
         Slot("log_scale", -2.0, 2.0)),
    ),
}


@dataclass
class ShotTrajectory:
    """One shot's keyframes in the sequence's normalised frame."""

    c2w: np.ndarray
    """(K, 4, 4) camera-to-world relative to the sequence origin, translation / scale."""
    focal: np.ndarray
    """(K, 2) ``[fx / W, fy / H]``."""
    duration: float
    """Length of the shot in seconds."""


@dataclass
class Trajectory:
    """A multi-shot camera path as the tokenizer sees it."""

    shots: list[ShotTrajectory]
    """Shots in order."""
    scale: float
    """Metres per normalised unit: world translation = ``scale * c2w[:, :3, 3]``."""


class TrajectoryTokenizer:
    """Uniform-bin tokenizer of multi-shot camera paths; see the module docstring for the layout.

    Args:
        num_bins: bins per slot (ShotVerse: 256).
        layout: ``"pose12"`` or ``"gendop"``.
        frames_per_shot: keyframes K every shot is resampled to.
    """

    def __init__(self, num_bins: int = 256, layout: str = "pose12", frames_per_shot: int = 16):
        if layout not in TOKEN_LAYOUTS:
            raise ValueError(f"layout must be one of {TOKEN_LAYOUTS}, got {layout!r}")
        if num_bins < 2:
            raise ValueError(f"num_bins must be at least 2, got {num_bins}")
        if frames_per_shot < 2:
            raise ValueError(f"frames_per_shot must be at least 2, got {frames_per_shot}")
        self.num_bins = num_bins
        self.layout = layout
        self.frames_per_shot = frames_per_shot
        self.sequence_slots, self.shot_slots, self.frame_slots = _LAYOUT_SLOTS[layout]
        self.slots = (*self.sequence_slots, *self.shot_slots, *self.frame_slots)
        self._index = {slot.name: i for i, slot in enumerate(self.slots)}
        # Per-slot ranges as arrays, indexed by slot number.
        self._low = np.array([slot.low for slot in self.slots])
        self._high = np.array([slot.high for slot in self.slots])

    # ----------------------------------------------------------------------------------------
    # Vocabulary and grammar

    @property
    def vocab_size(self) -> int:
        """Special tokens + ``num_bins`` ids per slot."""
        return NUM_SPECIAL + len(self.slots) * self.num_bins

    def slot_index(self, name: str) -> int:
        """Number of the slot called ``name`` (its ids start at ``4 + index * num_bins``)."""
        return self._index[name]

    def bin_width(self, slot: int | str) -> float:
        """Width of one bin of ``slot``; the round-trip error is at most half of it."""
        index = self._index[slot] if isinstance(slot, str) else slot
        return float(self._high[index] - self._low[index]) / self.num_bins

    def tokens_per_shot(self) -> int:
        """Shot slots + K frames of frame slots."""
        return len(self.shot_slots) + self.frames_per_shot * len(self.frame_slots)

    def sequence_length(self, num_shots: int) -> int:
        """Length of the token stream of ``num_shots`` shots, BOS and EOS included."""
        return (2 + len(self.sequence_slots) + num_shots * self.tokens_per_shot()
                + (num_shots - 1))

    def slot_sequence(self, num_shots: int) -> np.ndarray:
        """(T,) the slot expected at each position of the stream, or -1-id for a special token.

        A special token ``s`` is stored as ``-1 - s`` so that one integer array holds both.
        """
        if num_shots < 1:
            raise ValueError(f"num_shots must be positive, got {num_shots}")
        first_shot_slot = len(self.sequence_slots)
        first_frame_slot = first_shot_slot + len(self.shot_slots)
        shot = list(range(first_shot_slot, first_frame_slot))
        shot += list(range(first_frame_slot, len(self.slots))) * self.frames_per_shot
        out = [-1 - BOS_ID, *range(first_shot_slot)]
        for i in range(num_shots):
            if i:
                out.append(-1 - SEP_ID)
            out += shot
        out.append(-1 - EOS_ID)
        return np.array(out, dtype=np.int64)

    def template(self, num_shots: int) -> np.ndarray:
        """(T, 2) the allowed token ids ``[low, high)`` at each position of the stream."""
        slots = self.slot_sequence(num_shots)
        special = slots < 0
        low = np.where(special, -1 - slots, NUM_SPECIAL + slots * self.num_bins)
        high = np.where(special, low + 1, low + self.num_bins)
        return np.stack([low, high], axis=-1)

    def frame_positions(self, num_shots: int) -> np.ndarray:
        """(S, K, F) position in the stream of every frame slot of every keyframe of every shot."""
        first_frame_slot = len(self.sequence_slots) + len(self.shot_slots)
        positions = np.flatnonzero(self.slot_sequence(num_shots) >= first_frame_slot)
        return positions.reshape(num_shots, self.frames_per_shot, len(self.frame_slots))

    # ----------------------------------------------------------------------------------------
    # Quantisation

    def quantize(self, values: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Values (...) of the given slots (...) -> bins (...) in ``[0, num_bins)``, clipped."""
        slots = np.asarray(slots)
        low, high = self._low[slots], self._high[slots]
        position = (np.asarray(values, dtype=np.float64) - low) / (high - low) * self.num_bins
        return np.clip(np.floor(position), 0, self.num_bins - 1).astype(np.int64)

    def dequantize(self, bins: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Bins (...) of the given slots (...) -> bin centres (...)."""
        slots = np.asarray(slots)
        low, high = self._low[slots], self._high[slots]
        return low + (np.asarray(bins, dtype=np.float64) + 0.5) * (high - low) / self.num_bins

    def values_to_tokens(self, values: np.ndarray, slots: np.ndarray) -> np.ndarray:
        """Continuous values of the given slots -> token ids."""
        slots = np.asarray(slots)
        return NUM_SPECIAL + slots * self.num_bins + self.quantize(values, slots)

    def tokens_to_values(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Value token ids -> (values, slots); raises ValueError on a special token."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if np.any(tokens < NUM_SPECIAL) or np.any(tokens >= self.vocab_size):
            raise ValueError("tokens_to_values: special or out-of-range token id")
        slots, bins = np.divmod(tokens - NUM_SPECIAL, self.num_bins)
        return self.dequantize(bins, slots), slots

    # ----------------------------------------------------------------------------------------
    # Trajectories <-> per-slot values

    def _frame_values(self, shot: ShotTrajectory, scale: float) -> np.ndarray:
        """(K, F) frame-slot values of one shot."""
        rotation = shot.c2w[:, :3, :3]
        translation = shot.c2w[:, :3, 3]
        if self.layout == "pose12":
            log_focal = np.log10(np.maximum(shot.focal[:, :1], 1e-12))
            return np.concatenate([rotation.reshape(-1, 9), translation, log_focal], axis=-1)
        quat = Rotation.from_matrix(rotation).as_quat(scalar_first=True)
        quat *= np.where(quat[:, :1] < 0, -1.0, 1.0)  # q and -q are the same rotation
        log_scale = np.full((len(quat), 1), np.log10(scale))
        return np.concatenate([quat, translation, shot.focal, log_scale], axis=-1)

    def values(self, trajectory: Trajectory) -> np.ndarray:
        """(T,) the continuous value at every position of the stream, NaN at special tokens."""
        if not trajectory.shots:
            raise ValueError("trajectory.shots: a trajectory needs at least one shot")
        if not trajectory.scale > 0:
            raise ValueError(f"trajectory.scale must be positive, got {trajectory.scale}")
        values = []
        if self.sequence_slots:  # pose12: the log scale, once
            values.append(np.array([np.log10(trajectory.scale)]))
        for i, shot in enumerate(trajectory.shots):
            if shot.c2w.shape != (self.frames_per_shot, 4, 4) or shot.focal.shape != (
                    self.frames_per_shot, 2):
                raise ValueError(f"trajectory.shots[{i}]: expected {self.frames_per_shot} "
                                 f"keyframes, got c2w {shot.c2w.shape}, focal {shot.focal.shape}")
            values.append(np.array([np.log10(max(shot.duration, 1e-12))]))
            values.append(self._frame_values(shot, trajectory.scale).reshape(-1))
        slots = self.slot_sequence(len(trajectory.shots))
        out = np.full(len(slots), np.nan)
        out[slots >= 0] = np.concatenate(values)
        return out

    def encode(self, trajectory: Trajectory) -> np.ndarray:
        """Trajectory -> (T,) token ids: BOS, sequence slots, shots separated by SEP, EOS.

        Values outside a slot's range are clipped to its first or last bin.
        """
        values = self.values(trajectory)
        slots = self.slot_sequence(len(trajectory.shots))
        tokens = -1 - slots  # the special tokens where slots < 0
        is_value = slots >= 0
        tokens[is_value] = self.values_to_tokens(values[is_value], slots[is_value])
        return tokens

    def decode(self, tokens: np.ndarray, *, aspect: float = 16 / 9) -> Trajectory:
        """(T,) token ids -> Trajectory with proper rotations.

        The stream must follow :meth:`template` for its number of shots (counted from the SEP
        tokens); ``aspect`` (W / H) gives ``fy / H`` for the pose12 layout (square pixels).
        """
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.ndim != 1:
            raise ValueError(f"tokens must be 1-D, got shape {tokens.shape}")
        num_shots = int(np.sum(tokens == SEP_ID)) + 1
        template = self.template(num_shots)
        if len(tokens) != len(template):
            raise ValueError(f"tokens: {len(tokens)} tokens, but {num_shots} shot(s) take "
                             f"{len(template)}")
        bad = np.flatnonzero((tokens < template[:, 0]) | (tokens >= template[:, 1]))
        if len(bad):
            i = bad[0]
            raise ValueError(f"tokens[{i}]: {tokens[i]} is not in the expected range "
                             f"[{template[i, 0]}, {template[i, 1]})")
        slots = self.slot_sequence(num_shots)
        values, _ = self.tokens_to_values(tokens[slots >= 0])
        head = len(self.sequence_slots)
        per_shot = values[head:].reshape(num_shots, self.tokens_per_shot())
        num_shot_slots = len(self.shot_slots)
        frames = per_shot[:, num_shot_slots:].reshape(num_shots, self.frames_per_shot, -1)
        durations = 10.0 ** per_shot[:, 0]
        if self.layout == "pose12":
            scale = 10.0 ** values[0]
            rotation = orthonormalize_rotation(frames[..., :9].reshape(*frames.shape[:2], 3, 3))
            translation = frames[..., 9:12]
            fx_w = 10.0 ** frames[..., 12]
            focal = np.stack([fx_w, fx_w * aspect], axis=-1)
        else:
            scale = 10.0 ** float(np.median(frames[..., 9]))
            rotation = _quaternion_to_matrix(frames[..., :4])
            translation = frames[..., 4:7]
            focal = frames[..., 7:9]
        c2w = make_pose(rotation, translation)
        shots = [ShotTrajectory(c2w[i], focal[i], float(durations[i])) for i in range(num_shots)]
        return Trajectory(shots, float(scale))

    # ----------------------------------------------------------------------------------------
    # ShotSequence -> Trajectory

    def from_sequence(self, sequence: ShotSequence) -> Trajectory:
        """A ShotSequence's camera paths as the tokenizer encodes them (see module docstring)."""
        relative = relative_to_first_shot([shot.c2w for shot in sequence.shots])
        width, height = sequence.resolution
        keyframes = []
        for shot, c2w in zip(sequence.shots, relative, strict=True):
            positions = times_for_count(shot.num_frames, self.frames_per_shot)
            keyframes.append(resample_shot(c2w, shot.K, positions))
        all_poses = np.concatenate([c2w for c2w, _ in keyframes])
        _, scale = normalize_scale(all_poses, "max_norm")
        shots = []
        for shot, (c2w, K) in zip(sequence.shots, keyframes, strict=True):
            c2w = c2w.copy()
            c2w[:, :3, 3] /= scale
            focal = np.stack([K[:, 0] / width, K[:, 1] / height], axis=-1)
            shots.append(ShotTrajectory(c2w, focal, shot.num_frames / sequence.fps))
        return Trajectory(shots, scale)


def _quaternion_to_matrix(quat: np.ndarray) -> np.ndarray:
    """(..., 4) scalar-first, not necessarily unit -> (..., 3, 3); a zero quaternion -> identity."""
    flat = quat.reshape(-1, 4).copy()
    flat[np.linalg.norm(flat, axis=-1) < 1e-8] = [1.0, 0.0, 0.0, 0.0]
    matrices = Rotation.from_quat(flat, scalar_first=True).as_matrix()
    return matrices.reshape(*quat.shape[:-1], 3, 3)


def upsample_shot(shot: ShotTrajectory, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Keyframes -> ``num_frames`` per-frame poses (N, 4, 4) and focals (N, 2), slerp + lerp.

    The first and last keyframes land on the first and last frames; ``num_frames`` below
    ``MIN_DECODED_FRAMES`` is raised to it.
    """
    num_frames = max(int(num_frames), MIN_DECODED_FRAMES)
    keyframe_times = times_for_count(num_frames, len(shot.c2w))
    frames = np.arange(num_frames, dtype=np.float64)
    # resample_shot interpolates at positions given in *source* frames; here the keyframes are
    # the source, so express the target frames in keyframe units.
    positions = np.interp(frames, keyframe_times, np.arange(len(shot.c2w), dtype=np.float64))
    return resample_shot(shot.c2w, shot.focal, positions)
