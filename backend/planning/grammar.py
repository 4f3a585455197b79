"""The grammar planner: the embedded default, no weights, deterministic for a seed.

It reads each shot prompt into a shot spec (:mod:`.grammar_parse`, with the vocabulary of
:mod:`.grammar_lexicon`) and builds the camera in world space (:mod:`.grammar_camera`):

- Vocabulary, combined freely within a shot: static/locked-off, pan, tilt, roll, dutch angle,
  dolly/push in/pull out, truck, pedestal/boom, zoom, dolly zoom, orbit/arc (left/right, partial
  or full), crane up/down (a boom that tilts to keep the subject framed), tracking/follow (a
  constant offset to a subject's track from the scene context), whip pan, handheld; shot sizes
  from extreme wide to extreme close-up; eye-level, low, worm's-eye, high, overhead and dutch
  angles; speeds ("slow", "very fast"), amounts ("slightly", "90 degrees", "2 m", "2x", "full"),
  easing ("ease in", "smoothly"), durations ("3 seconds", "48 frames"); "then" for moves in
  sequence.
- One world frame for every shot: cameras are placed around the scene's subjects (positions and
  boxes from the scene context; with none, a 1.8 m subject stands at the origin of a Z-up
  world). With two or more subjects every camera stays on one side of the line of action
  between them (the 180-degree rule), so singles, reverse shots and over-the-shoulder shots keep
  screen direction; that side is the current camera's when the scene has one, whose view the
  first shot also starts from when its prompt asks for no framing of its own.
- A moving subject (one with a track) has a front where it goes: "from behind" trails it, and a
  follow shot with no side rides alongside it. A subject given as a bare point is taken to be
  a person-sized box standing there. Cameras never go below the subject's ground plus 10 cm.
- Time: frames at the scene's fps from ``scene.frame_start``, shots back to back; 4 s per shot
  unless the prompt says otherwise (or an explicit amount at the move's speed needs longer); a
  shot that is only a whip pan lasts the whip (0.6 s at normal speed). Moves run at constant
  speed unless eased; their amounts are rates (``RATES``) times speed words times duration.
- Each shot starts framed by its size (default: a full shot; over-the-shoulder and reverse
  shots: medium close-up) and angle (default: eye level); a dolly or zoom toward a second size
  ("start wide and push in to a close-up") and a pedestal toward an angle ("lower to knee
  height") are sized to end there.
- Warnings name the words not used (the rule is in :mod:`.grammar_parse`), shots with no
  camera instruction (they stay static) and moves that cannot be made (a follow with no track).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from backend.planning import grammar_camera as cam
from backend.planning.base import Planner, PlanRequest, PlanResult, SceneContext, SceneSubject
from backend.planning.grammar_parse import Move, ShotSpec, parse_shot
from backend.shots import ObjectTrack, Shot, ShotSequence

DEFAULT_DURATION_S = 4.0
"""Length of a shot whose prompt gives none."""
PHASE_DURATION_S = 2.5
"""Length of each phase of a multi-phase shot with no durations."""
DEFAULT_SUBJECT = SceneSubject("subject", np.zeros(3), np.array([-0.25, -0.25, 0.0]),
                               np.array([0.25, 0.25, 1.8]))
"""With no scene context: a person-sized subject standing at the origin."""

RATES = {"pan": np.deg2rad(15.0), "tilt": np.deg2rad(10.0), "roll": np.deg2rad(12.0),
         "orbit": np.deg2rad(22.5), "dolly": 0.1, "truck": 0.12, "pedestal": 0.08,
         "crane": 0.15, "dolly_zoom": 0.1, "zoom": np.log(2.0) / 4.0}
"""Amount per second at normal speed: radians for rotations, a fraction of the camera's
distance to the subject for translations, log focal factor for zooms."""
RELATIVE = ("dolly", "truck", "pedestal", "crane", "dolly_zoom")
"""Moves whose rate scales with the distance to the subject."""
WHIP = (np.deg2rad(90.0), 0.6)
"""A whip pan: angle (rad) and time (s) at normal speed."""
SIGNS = {"left": -1.0, "right": 1.0, "up": 1.0, "down": -1.0, "in": 1.0, "out": -1.0,
         "cw": 1.0, "ccw": -1.0, None: 1.0}
DIALOGUE_ANGLE = {None: np.deg2rad(35.0), "reverse": np.deg2rad(35.0), "ots": np.deg2rad(20.0)}
"""Angle between a single's camera and the line from its subject to the partner."""


@dataclass
class _Framed:
    """A shot's subject, framing and start camera."""

    subject: SceneSubject
    size: str
    angle: str
    start: cam.CameraState
    extent: float
    K_tail: tuple[float, float, float] | None = None
    """(fy / fx, cx, cy) when the shot starts from the scene camera's lens."""


def _with_size(subject: SceneSubject) -> SceneSubject:
    """A subject given as a bare point (no box) is taken to be a person standing there."""
    if np.all(subject.bbox_max - subject.bbox_min < 0.01):
        return replace(subject, bbox_min=subject.position + DEFAULT_SUBJECT.bbox_min,
                       bbox_max=subject.position + DEFAULT_SUBJECT.bbox_max)
    return subject


def _horizontal(vector: np.ndarray) -> np.ndarray:
    flat = np.array([vector[0], vector[1], 0.0])
    norm = np.linalg.norm(flat)
    return flat / norm if norm > 1e-9 else np.array([1.0, 0.0, 0.0])


def _cross_z(a: np.ndarray, b: np.ndarray) -> float:
    return float(a[0] * b[1] - a[1] * b[0])


class GrammarPlanner(Planner):
    """Rule-based planner over a cinematographer's (and everyone's) vocabulary."""

    name = "grammar"

    def plan(self, request: PlanRequest) -> PlanResult:
        """Plan every shot of ``request`` in one world frame; see the module docstring."""
        return _Plan(request).run()


class _Plan:
    """One planning run: the scene, the layout of its cameras, the shots."""

    def __init__(self, request: PlanRequest) -> None:
        self.request = request
        self.scene = request.scene or SceneContext()
        self.subjects = [_with_size(s) for s in self.scene.subjects] or [DEFAULT_SUBJECT]
        self.by_name = {subject.name: subject for subject in self.subjects}
        self.width, self.height = self.scene.resolution
        self.fps = float(self.scene.fps)
        names = list(self.by_name)
        self.global_spec = parse_shot(request.prompt, names)
        self.main = self.by_name[self.global_spec.subjects[0]] if (
            self.global_spec.subjects) else self.subjects[0]
        self.side = self._line_side()
        self.base_azimuth = self._base_azimuth()
        self.warnings: list[str] = []

    # Layout ------------------------------------------------------------------------------

    def _line_side(self) -> float:
        """Which side of the line of action (first subject -> second) the cameras keep."""
        if len(self.subjects) < 2:
            return 1.0
        a, b = self.subjects[0].position, self.subjects[1].position
        if self.scene.camera_c2w is not None:
            side = _cross_z(b - a, self.scene.camera_c2w[:3, 3] - a)
        else:
            side = _cross_z(b - a, np.array([0.0, -1.0, 0.0]))
        return 1.0 if side >= 0 else -1.0

    def _base_azimuth(self) -> float:
        """Direction from the main subject to the camera for shots of a lone subject."""
        if self.scene.camera_c2w is not None:
            offset = self.scene.camera_c2w[:3, 3] - self.main.position
            if np.hypot(offset[0], offset[1]) > 1e-6:
                return float(np.arctan2(offset[1], offset[0]))
        return -np.pi / 2  # in front of a subject facing -Y, as Blender's front view

    def _subject_box(self, subject: SceneSubject, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """The subject's world box at ``frame`` (moved along its track, if any)."""
        shift = self._track_position(subject, frame) - subject.position
        return subject.bbox_min + shift, subject.bbox_max + shift

    def _track_position(self, subject: SceneSubject, frame: int) -> np.ndarray:
        if subject.track is None or len(subject.track) == 0:
            return subject.position
        index = int(np.clip(frame - self.scene.frame_start, 0, len(subject.track) - 1))
        return subject.track[index]

    def _heading(self, subject: SceneSubject, frame: int) -> float | None:
        """Direction a tracked subject travels in over the next second, if it moves."""
        if subject.track is None or len(subject.track) < 2:
            return None
        ahead = self._track_position(subject, frame + round(self.fps))
        step = ahead - self._track_position(subject, frame)
        if np.hypot(step[0], step[1]) < 0.05:
            return None
        return float(np.arctan2(step[1], step[0]))

    def _partner(self, subject: SceneSubject, spec: ShotSpec,
                 previous: SceneSubject | None) -> SceneSubject | None:
        if len(self.subjects) < 2:
            return None
        for name in spec.subjects:
            if name != subject.name:
                return self.by_name[name]
        if previous is not None and previous.name != subject.name:
            return previous
        others = [s for s in self.subjects if s.name != subject.name]
        return min(others, key=lambda s: float(np.linalg.norm(s.position - subject.position)))

    def _dialogue_azimuth(self, subject: SceneSubject, partner: SceneSubject,
                          angle: float) -> float:
        """Azimuth of a single on ``subject`` toward ``partner``, on the line's kept side."""
        order = {s.name: i for i, s in enumerate(self.subjects)}
        a, b = sorted((subject, partner), key=lambda s: order[s.name])
        line = b.position - a.position
        toward = _horizontal(partner.position - subject.position)
        base = float(np.arctan2(toward[1], toward[0]))
        for candidate in (base + angle, base - angle):
            direction = np.array([np.cos(candidate), np.sin(candidate), 0.0])
            if _cross_z(line, direction) * self.side > 0:
                return candidate
        return base + angle

    def _shot_subject(self, spec: ShotSpec, previous: SceneSubject | None) -> SceneSubject:
        targets = [move.target for move in spec.moves if move.target]
        named = [name for name in spec.subjects if name != spec.foreground]
        if targets:
            return self.by_name[targets[0]]
        if named:
            return self.by_name[named[0]]
        if spec.foreground is not None:
            partner = self._partner(self.by_name[spec.foreground], spec, None)
            return partner or self.main
        if spec.coverage == "reverse" and previous is not None:
            return self._partner(previous, spec, None) or previous
        return self.main

    def _frame(self, index: int, spec: ShotSpec, frame: int,
               previous: SceneSubject | None) -> _Framed:
        """Choose the subject, size, angle and start camera of a shot."""
        angle = spec.angle or "eye"
        dutch = np.deg2rad(cam.DUTCH_ROLL_DEG) * (1.0 if spec.dutch == "cw" else -1.0) if (
            spec.dutch) else 0.0
        if spec.dutch and any(move.kind == "roll" for move in spec.moves):
            dutch = 0.0  # "roll into a dutch angle": the roll makes the dutch
        aspect = self.width / self.height
        if (index == 0 and self.scene.camera_c2w is not None and not spec.sizes
                and not spec.angle and not spec.side and not spec.coverage and not spec.subjects
                and not spec.dutch):
            return self._from_scene_camera(aspect)
        subject = self._shot_subject(spec, previous)
        size = spec.sizes[0] if spec.sizes else (
            "medium_close" if spec.coverage in ("reverse", "ots") else "full")
        box_min, box_max = self._subject_box(subject, frame)
        partner = None if spec.coverage == "two" and len(spec.subjects) < 2 and len(
            self.subjects) < 2 else self._partner(subject, spec, previous)
        distance = None
        if spec.coverage == "two" and partner is not None:
            other_min, other_max = self._subject_box(partner, frame)
            box_min, box_max = np.minimum(box_min, other_min), np.maximum(box_max, other_max)
            line = _horizontal(partner.position - subject.position)
            normal = np.array([-line[1], line[0], 0.0])
            if _cross_z(self.subjects[1].position - self.subjects[0].position,
                        normal) * self.side < 0:
                normal = -normal  # the kept side of the line of action
            azimuth = float(np.arctan2(normal[1], normal[0]))
        elif partner is not None:
            angle_off = DIALOGUE_ANGLE.get(spec.coverage, DIALOGUE_ANGLE[None])
            azimuth = self._dialogue_azimuth(subject, partner, angle_off)
            if spec.coverage == "ots" or spec.foreground is not None:
                gap = np.linalg.norm((partner.position - subject.position)[:2])
                extent = cam.framing_extent(box_min, box_max, aspect)
                distance = max(cam.size_distance(size, extent, self.width, self.height)[0],
                               gap + 0.8)
        else:
            azimuth = self.base_azimuth
        heading = self._heading(subject, frame)
        follows = any(move.kind == "track" for move in spec.moves)
        if heading is not None and (spec.side or follows):
            # A moving subject's front is where it goes; a follow shot rides alongside.
            alongside = [heading + np.pi / 2, heading - np.pi / 2]
            near = min(alongside, key=lambda a: abs(np.angle(np.exp(1j * (a - azimuth)))))
            azimuth = {"behind": heading + np.pi, "front": heading}.get(spec.side or "", near)
        else:
            azimuth += {"behind": np.pi, "side": np.pi / 2 * self.side}.get(spec.side or "", 0.0)
        start = cam.frame_subject(box_min, box_max, size, angle, azimuth, self.width,
                                  self.height, dutch=dutch, distance=distance)
        return _Framed(subject, size, angle, start,
                       cam.framing_extent(box_min, box_max, aspect))

    def _from_scene_camera(self, aspect: float) -> _Framed:
        """Start from the scene's current camera, about the subject nearest its view axis."""
        c2w = self.scene.camera_c2w
        eye, forward = c2w[:3, 3].copy(), c2w[:3, 2]
        yaw, pitch, roll = cam.angles_from_rotation(c2w[:3, :3])

        def off_axis(subject: SceneSubject) -> float:
            offset = subject.position - eye
            return float(np.arccos(np.clip(offset @ forward / max(np.linalg.norm(offset), 1e-9),
                                            -1.0, 1.0)))

        subject = min(self.subjects, key=off_axis)
        centre = (subject.bbox_min + subject.bbox_max) / 2
        depth = float((centre - eye) @ forward)
        target = eye + forward * (depth if depth > 0.3 else 3.0)
        K = self.scene.camera_K
        if K is not None:
            fx, tail = float(K[0]), (float(K[1] / K[0]), float(K[2]), float(K[3]))
        else:
            fx, tail = 35.0 / cam.SENSOR_WIDTH_MM * self.width, None
        ground = min(float(subject.bbox_min[2]), float(eye[2]) - cam.MIN_HEIGHT_M)
        start = cam.CameraState(eye, yaw, pitch, roll, fx, target, ground)
        extent = cam.framing_extent(subject.bbox_min, subject.bbox_max, aspect)
        return _Framed(subject, "current", "current", start, extent, tail)

    # Timing and amounts ------------------------------------------------------------------

    def _speed(self, move: Move, spec: ShotSpec) -> float:
        return move.speed or spec.speed or self.global_spec.speed or 1.0

    def _natural_duration(self, move: Move, spec: ShotSpec, distance: float) -> float | None:
        """Seconds an explicitly sized move takes at its speed."""
        if move.amount is None or move.kind not in RATES:
            return None
        amount = self._explicit(move)
        rate = RATES[move.kind] * (distance if move.kind in RELATIVE else 1.0)
        return float(np.clip(abs(amount) / (rate * self._speed(move, spec)), 1.5, 12.0))

    @staticmethod
    def _explicit(move: Move) -> float:
        if move.kind in ("pan", "tilt", "roll", "orbit", "whip"):
            return np.deg2rad(move.amount)
        if move.kind == "zoom":
            return float(np.log(max(move.amount, 1.01)))
        return float(move.amount)

    def _phase_durations(self, spec: ShotSpec, distance: float) -> list[float]:
        natural = []
        for phase in spec.phases:
            if phase.duration_s is not None:
                natural.append(phase.duration_s)
                continue
            times = [self._natural_duration(move, spec, distance) for move in phase.moves]
            times = [t for t in times if t is not None]
            if phase.moves and all(move.kind == "whip" for move in phase.moves):
                # A whip on its own is a short shot: the whole of it is the whip.
                times = [WHIP[1] / self._speed(move, spec) for move in phase.moves]
            natural.append(max(times) if times else None)
        given = [t for t in natural if t is not None]
        if len(spec.phases) == 1:
            fill = DEFAULT_DURATION_S
        else:
            fill = float(np.mean(given)) if given else PHASE_DURATION_S
        durations = [t if t is not None else fill for t in natural]
        if spec.duration_frames is not None:
            total = spec.duration_frames / self.fps
            durations = [total * t / sum(durations) for t in durations]
        return durations

    def _move_plan(self, move: Move, spec: ShotSpec, framed: _Framed, seconds: float,
                   first_resize: bool) -> cam.MovePlan:
        start = framed.start
        distance = float(np.linalg.norm(start.target - start.eye))
        speed = self._speed(move, spec)
        easing = move.easing or spec.easing or self.global_spec.easing or "linear"
        sign = SIGNS[move.direction]
        if move.kind == "whip":
            angle = np.deg2rad(move.amount) if move.amount else WHIP[0] * move.scale
            length = min(1.0, WHIP[1] / speed / max(seconds, 1e-6))
            axis = "tilt" if move.direction in ("up", "down") else "pan"
            return cam.MovePlan("whip", sign, angle, "in_out",
                                (0.5 - length / 2, 0.5 + length / 2), axis)
        if move.amount is not None:
            amount = self._explicit(move)
        else:
            rate = RATES[move.kind] * (distance if move.kind in RELATIVE else 1.0)
            amount = rate * seconds * speed * move.scale
        if first_resize and move.amount is None and framed.size in cam.SIZE_TABLE:
            amount, sign = self._resize(move, spec, framed, distance, amount, sign)
        if spec.end_angle and move.kind in ("pedestal", "crane") and move.amount is None:
            elevation = np.deg2rad(cam.ANGLE_ELEVATION_DEG[spec.end_angle])
            height = max(start.target[2] + distance * np.sin(elevation),
                         start.ground + cam.MIN_HEIGHT_M)
            change = height - start.eye[2]
            amount, sign = abs(change), (1.0 if change > 0 else -1.0)
        depth = float((start.target - start.eye) @ cam.camera_rotations(
            np.array([start.yaw]), np.array([start.pitch]), np.array([start.roll]))[0][:, 2])
        if move.kind == "dolly" and sign > 0:
            amount = min(amount, 0.8 * max(depth, 0.0))
        elif move.kind == "dolly_zoom" and sign > 0:
            amount = min(amount, 0.7 * max(depth, 0.0))
        elif move.kind in ("pedestal", "crane") and sign < 0:
            amount = min(amount, max(start.eye[2] - start.ground - cam.MIN_HEIGHT_M, 0.0))
        elif move.kind == "zoom":
            amount = min(amount, np.log(10.0))
        return cam.MovePlan(move.kind, sign, float(amount), easing)

    def _resize(self, move: Move, spec: ShotSpec, framed: _Framed, distance: float,
                amount: float, sign: float) -> tuple[float, float]:
        """"Start wide and push in to a close-up": size the move to reach the last size."""
        end = spec.sizes[-1]
        if move.kind == "dolly":
            end_distance = framed.start.fx * framed.extent / (
                cam.SIZE_TABLE[end][0] * self.height)
            change, toward = distance - end_distance, 1.0
        elif move.kind == "zoom":
            ratio = cam.SIZE_TABLE[end][0] / cam.SIZE_TABLE[framed.size][0]
            change, toward = float(np.log(ratio)), 1.0
        else:
            return amount, sign
        if change * toward * sign <= 0:
            # The sizes do not describe this move ("wide establishing shot, push in" names two
            # wide sizes, not a move out to the second): the stated direction wins.
            return amount, sign
        return abs(change), sign

    # Shots -------------------------------------------------------------------------------

    def _shot(self, index: int, spec: ShotSpec, name: str, frame: int,
              previous: SceneSubject | None) -> tuple[Shot, _Framed, dict]:
        framed = self._frame(index, spec, frame, previous)
        distance = float(np.linalg.norm(framed.start.target - framed.start.eye))
        durations = self._phase_durations(spec, distance)
        if spec.duration_frames is not None:
            n = max(spec.duration_frames, 2)
        else:
            n = max(round(sum(durations) * self.fps), 2)
        bounds = np.round(np.cumsum([0.0, *durations]) / sum(durations) * (n - 1)).astype(int)
        phases, resized = [], len(spec.sizes) < 2
        track = None
        for k, phase in enumerate(spec.phases):
            plan = cam.PhasePlan(int(bounds[k]), int(bounds[k + 1]))
            for move in phase.moves:
                if move.kind == "track":
                    track = self._follow(name, framed.subject, frame, n)
                    if track is not None:
                        plan.moves.append(cam.MovePlan("track", 1.0, 1.0))
                    continue
                plan.moves.append(self._move_plan(move, spec, framed, durations[k],
                                                  not resized and move.kind in ("dolly", "zoom")))
                resized = resized or move.kind in ("dolly", "zoom")
            phases.append(plan)
        c2w, fx = cam.build_path(framed.start, phases, n, track)
        if spec.handheld or self.global_spec.handheld:
            rng = np.random.default_rng([self.request.seed, index])
            c2w = cam.handheld_noise(c2w, rng, self.fps)
        ratio, cx, cy = framed.K_tail or (1.0, self.width / 2, self.height / 2)
        K = np.stack([fx, fx * ratio, np.full(n, cx), np.full(n, cy)], axis=1)
        shot = Shot(name=name, camera=f"Cam_{name}", frame_start=frame,
                    frame_end=frame + n - 1, c2w=c2w, K=K,
                    prompt=self.request.shots[index].prompt)
        resolved = {"subject": framed.subject.name, "size": framed.size, "angle": framed.angle,
                    "frames": n, "phase_seconds": [round(t, 3) for t in durations]}
        return shot, framed, resolved

    def _follow(self, name: str, subject: SceneSubject, frame: int, n: int) -> np.ndarray | None:
        if subject.track is None or len(subject.track) < 2:
            self.warnings.append(f'{name}: "follow" needs a track for {subject.name!r} in the '
                                 "scene context; the camera does not follow")
            return None
        index = np.clip(np.arange(frame, frame + n) - self.scene.frame_start, 0,
                        len(subject.track) - 1)
        return subject.track[index]

    def _objects(self, first: int, last: int) -> list[ObjectTrack]:
        frames = np.arange(first, last + 1)
        objects = []
        for subject in self.subjects:
            if subject.track is not None and len(subject.track):
                index = np.clip(frames - self.scene.frame_start, 0, len(subject.track) - 1)
                positions = subject.track[index]
            else:
                positions = np.repeat(subject.position[None], len(frames), axis=0)
            objects.append(ObjectTrack(subject.name, first, last, positions,
                                       bbox_min=subject.bbox_min - subject.position,
                                       bbox_max=subject.bbox_max - subject.position))
        return objects

    def run(self) -> PlanResult:
        frame = self.scene.frame_start
        shots, specs, previous = [], [], None
        taken: set[str] = set()
        for index, shot_prompt in enumerate(self.request.shots):
            name = shot_prompt.name or f"shot_{(index + 1) * 10:03d}"
            while name in taken:
                name += "_1"
            taken.add(name)
            spec = parse_shot(shot_prompt.prompt, list(self.by_name))
            shot, framed, resolved = self._shot(index, spec, name, frame, previous)
            if spec.unused:
                words = ", ".join(f'"{word}"' for word in spec.unused)
                self.warnings.append(f"{name}: did not use {words}")
            if not spec.has_instruction:
                self.warnings.append(f"{name}: no camera instruction; the shot is static")
            shots.append(shot)
            specs.append({"shot": name, **spec.to_dict(), "resolved": resolved})
            previous = framed.subject
            frame = shot.frame_end + 1
        sequence = ShotSequence(
            fps=self.fps, resolution=(self.width, self.height), shots=shots,
            prompt=self.request.prompt, objects=self._objects(shots[0].frame_start, frame - 1),
            metadata={"planner": {"name": "grammar", "seed": self.request.seed,
                                  "warnings": list(self.warnings), "specs": specs}})
        return PlanResult(sequence.validate(), list(self.warnings))
