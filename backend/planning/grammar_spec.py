"""The grammar planner's shot spec: what one shot prompt asks of the camera.

Written by :mod:`.grammar_parse`, read by :mod:`.grammar`; ``ShotSpec.to_dict`` goes into
``sequence.metadata["planner"]["specs"]``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Move:
    """One camera move of a phase."""

    kind: str
    """static, pan, tilt, roll, dolly, truck, pedestal, crane, zoom, dolly_zoom, orbit, track,
    whip."""
    direction: str | None = None
    """left/right (pan, truck, orbit, whip), up/down, in/out (dolly, zoom, dolly_zoom), cw/ccw
    (roll), around (pan half a turn)."""
    amount: float | None = None
    """Explicit amount: degrees (rotations), metres (translations), factor (zoom)."""
    scale: float = 1.0
    """Amount factor from words ("slightly" 0.5)."""
    speed: float | None = None
    """Speed factor; None = the shot's."""
    easing: str | None = None
    """linear, in, out, in_out; None = the shot's."""
    target: str | None = None
    """Scene subject the move is about ("around the fountain")."""
    words: list[str] = field(default_factory=list)
    """The prompt words that made the move."""


@dataclass
class Phase:
    """Moves that run together; phases run one after the other."""

    moves: list[Move] = field(default_factory=list)
    duration_s: float | None = None
    """Explicit duration of this phase, seconds."""
    hold: bool = False
    """An explicit hold ("hold for 2 seconds, then pan left")."""


@dataclass
class ShotSpec:
    """What one shot prompt asks of the camera."""

    phases: list[Phase] = field(default_factory=list)
    sizes: list[str] = field(default_factory=list)
    """Shot sizes in prompt order: the first frames the start, a second the end of a move."""
    angle: str | None = None
    end_angle: str | None = None
    """An angle a pedestal or crane ends at ("rise to a high angle")."""
    dutch: str | None = None
    """Roll of a dutch angle: cw or ccw."""
    side: str | None = None
    """behind, side or front."""
    coverage: str | None = None
    """reverse, ots (over the shoulder) or two (two shot)."""
    subjects: list[str] = field(default_factory=list)
    """Scene subjects named, in order."""
    foreground: str | None = None
    """Over-the-shoulder: the subject whose shoulder is in the foreground."""
    duration_frames: int | None = None
    """Explicit shot duration in frames."""
    speed: float | None = None
    easing: str | None = None
    handheld: bool = False
    static: bool = False
    unused: list[str] = field(default_factory=list)
    """Prompt words that look like camera instructions but were not used."""
    notes: list[str] = field(default_factory=list)
    """Other things the user should know."""

    @property
    def moves(self) -> list[Move]:
        return [move for phase in self.phases for move in phase.moves]

    @property
    def has_instruction(self) -> bool:
        return bool(self.moves or self.static or self.handheld or self.sizes or self.angle
                    or self.end_angle or self.dutch or self.side or self.coverage
                    or any(phase.hold for phase in self.phases))

    def to_dict(self) -> dict:
        """JSON-ready form for ``metadata["planner"]["specs"]``."""
        data = asdict(self)
        data.pop("unused")
        data.pop("notes")
        return data


def merge_moves(moves: list[Move]) -> list[Move]:
    """One move per kind and direction; a dolly with an opposite zoom is a dolly zoom."""
    merged: dict[tuple[str, str | None], Move] = {}
    for move in moves:
        key = (move.kind, move.direction)
        if key in merged:
            kept = merged[key]
            kept.words += move.words
            kept.speed = kept.speed if move.speed is None else move.speed
            kept.amount = kept.amount if move.amount is None else move.amount
            kept.easing = kept.easing or move.easing
            kept.target = kept.target or move.target
            kept.scale *= move.scale
        else:
            merged[key] = move
    for (kind, direction), move in list(merged.items()):
        crane = merged.get(("crane", direction))
        if kind == "pedestal" and crane is not None:
            crane.words += move.words  # "crane shot rising": one crane
            del merged[(kind, direction)]
    dolly = next((m for m in merged.values() if m.kind == "dolly"), None)
    zoom = next((m for m in merged.values() if m.kind == "zoom"), None)
    both = next((m for m in merged.values() if m.kind == "dolly_zoom"), None)
    if both is not None:
        # "vertigo, pulling back" / "dolly zoom, zooming in": the part named sets the direction.
        for part in (dolly, zoom):
            if part is not None:
                del merged[(part.kind, part.direction)]
                both.words += part.words
        if dolly is not None:
            both.direction = dolly.direction
        elif zoom is not None:
            both.direction = "out" if zoom.direction == "in" else "in"
    elif dolly and zoom and {dolly.direction, zoom.direction} == {"in", "out"}:
        del merged[("dolly", dolly.direction)], merged[("zoom", zoom.direction)]
        dolly.kind, dolly.words = "dolly_zoom", dolly.words + zoom.words
        merged[("dolly_zoom", dolly.direction)] = dolly
    return list(merged.values())
