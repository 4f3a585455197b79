"""Shot prompts -> shot specs: what the grammar planner understood, and what it did not.

:func:`parse_shot` reads one shot prompt into a :class:`ShotSpec`: the shot size, angle, side and
dialogue coverage, the subject it is about (by name, from the scene context), the duration, and
the camera moves in phases (moves within a phase run together; "then" starts the next phase).

How a prompt is read
    1. Tokens are lemmatised and matched against the lexicon (:mod:`.grammar_lexicon`), longest
       phrase first; scene subject names are matched before the lexicon; numbers take a unit
       ("3 seconds", "48 frames", "90 degrees", "2 m", "2x").
    2. Clauses are cut at punctuation and conjunctions ("and", "while", "as"); phases at "then",
       "next", "finally", "before".
    3. Each movement word gets a doer: the nearest agent before it in its clause ("the camera",
       "we" -> the camera; a scene subject, a pronoun or "the <noun>" -> someone else; a verb in
       the third person or past after an unknown word, "rain falls" -> someone else), or the
       previous clause's doer in the same sentence, or none (an imperative: the camera). Strong
       camera words (pan, dolly, zoom...) are camera moves whoever the doer is, unless they are
       used as nouns ("on a dolly", "to the frying pan", "the truck": no direction of their own
       and after a determiner or preposition) or take an object ("she tilts her head"); weak
       verbs (move, rise, look, follow) only when the camera does them and not as adjectives
       ("the falling petals"): "the chef walks left" describes the content, "the camera drifts
       left" is a truck left.
    4. Directions attach to the move before them in the clause (else the one just after; "from
       the left" is where a move starts); a clause with directions but no move repeats the
       previous move, on another axis if need be ("pan left, then right", "rise up and
       forward"). Speeds, amounts and easing attach to the moves of their clause, else to the
       whole shot.

The warning rule (what is "not used")
    - Camera jargon the planner does not support ("rack focus", "wobble", "slow motion") is
      always named.
    - In a clause the camera does (explicit camera agent or an imperative), an unknown word in
      the verb's place is named ("the camera zigzags"; "wiggle" in "wiggle left", an unknown
      word just before a side no move took), and so is a movement word that says too little to
      act on when nothing else in its clause does ("the camera moves", "truck" with no side).
    - Camera modifiers left with nothing to modify are named: a side (left, right, clockwise...)
      in a camera clause that no move takes, and a speed, amount (degrees, metres, "2x") or
      easing in a shot with no move at all ("slowly" alone). Prepositional directions ("in the
      kitchen"), positions ("on the left") and durations ("hold for 3 seconds") are not.
    - Everything else carries no camera meaning and is not named: articles and prepositions,
      subject names, scene nouns, and whatever scene subjects do ("the chef walks left").
"""

from __future__ import annotations

from backend.planning import grammar_lexicon as lex
from backend.planning.grammar_clauses import (
    DETERMINERS,
    PREPOSITIONAL_DIRECTIONS,
    ROTATIONAL,
    TRANSLATIONAL,
    Clause,
    Item,
    find_doer,
    inflected_after_noun,
    is_object,
    is_origin,
    is_position,
    is_preposition,
    leading_agent,
    read_items,
    split_clauses,
    subject_names,
)
from backend.planning.grammar_spec import Move, Phase, ShotSpec, merge_moves

__all__ = ["Move", "Phase", "ShotSpec", "parse_shot"]


# --------------------------------------------------------------------------------------------
# Reading a prompt


def _resolve(family: str, direction: str | None) -> tuple[str, str | None] | None:
    """(kind, direction) of a family with a direction; None when they do not go together."""
    if family in ("static", "handheld"):
        return family, None
    if direction is None:
        if family in ("translate", "rotate", "truck"):
            return None
        if family == "track":
            return "track", None
        return family, lex.DEFAULT_DIRECTION.get(family)
    return lex.RESOLVE.get((family, direction))


class _Reader:
    """Reads one prompt; collects the spec and the words it did not use."""

    def __init__(self, names: dict[str, list[tuple[str, ...]]]) -> None:
        self.names = names
        self.spec = ShotSpec()
        self.last_family: str | None = None
        self.shot_scale = 1.0
        self.maybe_nouns: set[int] = set()
        """Moves that may be rig nouns ("the camera is on a dolly"): dropped beside others."""
        self.phase_of: dict[int, Phase] = {}

    def read(self, prompt: str) -> ShotSpec:
        items = read_items(prompt, self.names)
        clauses = split_clauses(items)
        previous: Clause | None = None
        for clause in clauses:
            if previous is not None and previous.sentence == clause.sentence:
                clause.agent = previous.agent_out
            self._moves(clause)
            previous = clause
        self._phases(clauses)
        for clause in clauses:
            self._modifiers(clause)
        self._framing(items)
        self._finish(items, clauses)
        return self.spec

    # Moves and their directions ---------------------------------------------------------

    def _moves(self, clause: Clause) -> None:
        items = clause.items
        camera_moves = []
        doers = []
        for k, item in enumerate(items):
            if item.category != "move":
                continue
            family, _default, strong = item.value
            if self._not_a_verb(items, k, strong):
                item.used = True  # "the falling petals", "to the frying pan", "on a dolly"
                continue
            doer = find_doer(items, k) or clause.agent
            if doer is None and not strong and inflected_after_noun(items, k):
                doer = "other"  # "rain falls", "smoke rose": an unnamed subject does it
            doers.append(doer)
            if doer == "other" and not (strong and not self._has_object(items, k)):
                item.used = True  # what a subject does: "the chef walks left"
                self._consume_modifiers(items, k)
                continue
            if (strong and self._next_direction(items, k) is None and k > 0
                    and items[k - 1].lemmas[:1] in (("a",), ("the",), ("an",))
                    and family in ("dolly", "crane")):
                self.maybe_nouns.add(id(item))  # "the camera is on a dolly and moves left"
            camera_moves.append((k, item))
        clause.agent_out = doers[-1] if doers else (leading_agent(items) or clause.agent)
        if clause.agent_out == "other" and not camera_moves:
            for item in items:
                if item.category in ("dir", "speed", "scale", "intensify", "ease"):
                    item.used = True
            return
        for k, item in camera_moves:
            family, default, _strong = item.value
            self._attach(clause, items, k, item, family, default)
        if not camera_moves:
            self._ellipsis(clause)
            self._implicit_orbit(clause)

    def _not_a_verb(self, items: list[Item], k: int, strong: bool) -> bool:
        """A movement word used as a noun or adjective: right after a determiner ("the falling
        petals"), or, with no direction of its own, as the object of a preposition ("tilt down
        to the frying pan", "on a dolly") or "the truck"."""
        if self._next_direction(items, k) is not None:
            return False
        before = items[k - 1].lemmas[:1] if k > 0 else ()
        if not strong and items[k].value[0] not in ("static", "handheld"):  # "a steady shot"
            return bool(before) and before[0] in DETERMINERS and not (
                k + 1 < len(items) and items[k + 1].category in ("dir", "subject"))
        family = items[k].value[0]
        return is_object(items, k) or (family == "truck" and bool(before)
                                        and before[0] in DETERMINERS)

    def _implicit_orbit(self, clause: Clause) -> None:
        """"a slow 360 around the fountain": an orbit with no verb."""
        around = [item for item in clause.items
                  if item.category == "dir" and item.value == "around" and not item.used]
        if around and not clause.moves and any(
                item.category in ("turns", "speed") for item in clause.items):
            k = clause.items.index(around[0])
            around[0].used = True
            clause.moves.append((around[0], Move(
                "orbit", "right", words=[around[0].surface],
                target=self._target_after(clause.items, k))))

    @staticmethod
    def _has_object(items: list[Item], k: int) -> bool:
        """"she tilts her head": a strong word with an object is the subject's action."""
        nxt = items[k + 1] if k + 1 < len(items) else None
        return bool(nxt is not None and nxt.lemmas and nxt.lemmas[0] in DETERMINERS)

    def _next_direction(self, items: list[Item], k: int) -> int | None:
        for j in range(k + 1, len(items)):
            if items[j].category == "move":
                break
            if items[j].category == "dir" and not items[j].used:
                if is_origin(items, j) and any(other.category == "dir"
                                                 for other in items[j + 1:]):
                    items[j].used = True  # "pan from left to right": where it starts
                    continue
                return j
        if k > 0 and items[k - 1].category == "dir" and not items[k - 1].used:
            return k - 1
        return None

    def _consume_modifiers(self, items: list[Item], k: int) -> None:
        for j in range(k + 1, len(items)):
            if items[j].category == "move":
                break
            if items[j].category in ("dir", "speed", "scale", "intensify"):
                items[j].used = True

    def _attach(self, clause: Clause, items: list[Item], k: int, item: Item, family: str,
                default: str | None) -> None:
        words = [item.surface]
        j = self._next_direction(items, k)
        directions: list[Item] = []
        if j is not None and items[j].value == "across":
            # "sweep across the room to the right": the side named later says more.
            for later in items[j + 1:]:
                if later.category == "move":
                    break
                if later.category == "dir" and later.value in ("left", "right"):
                    items[j].used = True
                    j = items.index(later)
                    break
        if j is not None:
            directions.append(items[j])
            # Further directions right after the first ("up and left" is cut at "and").
            for extra in items[j + 1:]:
                if extra.category != "dir" or extra.used:
                    break
                if extra.value in PREPOSITIONAL_DIRECTIONS and is_preposition(
                        items, items.index(extra)):
                    break
                directions.append(extra)
        direction = directions[0].value if directions else default
        if family == "translate" and direction in ("up", "down") and is_preposition(
                items, items.index(directions[0])):
            direction = "in"  # "walk down the hall" goes along it, not down
        if family == "rotate" and direction == "around" and self._target_after(items, k):
            family = "orbit"
        resolved = _resolve(family, direction)
        if resolved is None and directions:
            resolved = _resolve(family, default)
            directions = []
        if resolved is None:
            item.used = self._vague_is_fine(items, k, clause)
            if not item.used:
                self.spec.unused.append(item.surface)
            return
        item.used = True
        for d in directions[:1]:
            d.used = True
            words.append(d.surface)
        self.last_family = family
        kind, direction = resolved
        self._new_move(clause, kind, direction, item, words, items, k)
        for d in directions[1:]:
            extra = _resolve(family, d.value)
            if extra is not None and extra[0] == kind:
                d.used = True  # "arc left around them": one orbit, to the left
            elif extra is not None:
                d.used = True
                self._new_move(clause, extra[0], extra[1], item, [d.surface], items, k)

    def _new_move(self, clause: Clause, kind: str, direction: str | None, item: Item,
                  words: list[str], items: list[Item], k: int) -> Move:
        if kind == "static":
            self.spec.static = True
            move = Move("static", None, words=words)
        elif kind == "handheld":
            self.spec.handheld = True
            move = Move("handheld", None, words=words)
        else:
            speed = lex.IMPLIED_SPEED.get(" ".join(item.lemmas))
            move = Move(kind, direction, speed=speed, words=words,
                        target=self._target_after(items, k))
            if kind == "pan" and direction == "around":
                move.direction, move.amount = "right", 180.0
            if " ".join(item.lemmas) in ("punch in", "crash zoom", "snap zoom"):
                move.amount = 2.5
        clause.moves.append((item, move))
        return move

    def _target_after(self, items: list[Item], k: int) -> str | None:
        for item in items[k + 1:]:
            if item.category == "subject":
                return str(item.value)
            if item.category == "move":
                return None
        return None

    def _vague_is_fine(self, items: list[Item], k: int, clause: Clause) -> bool:
        """A weak verb with no direction: fine next to other instructions; named when the
        camera does nothing else ("the camera moves", "move." as an order)."""
        # Next to other instructions, or naming what to look at ("looking at Bob"), it is fine.
        others = any(item.category in ("move", "size", "angle", "coverage", "side", "subject")
                     for j, item in enumerate(items) if j != k)
        if others:
            return True
        if find_doer(items, k) == "camera":
            return False
        first = all(item.category in ("speed", "intensify", "scale", "neutral")
                    and not (item.lemmas and item.lemmas[0] in DETERMINERS)
                    for item in items[:k])
        return not (first and clause.agent != "other")

    def _ellipsis(self, clause: Clause) -> None:
        """Directions with no move repeat the previous move: "pan left, then right"."""
        for k, item in enumerate(clause.items):
            if item.category != "dir" or item.used or self.last_family is None:
                continue
            if is_position(clause.items, k) or (item.value in PREPOSITIONAL_DIRECTIONS
                                                 and k > 0):
                continue
            resolved = _resolve(self.last_family, str(item.value))
            if resolved is None:
                # "rise up and forward": the same kind of motion, along another axis.
                family = ("rotate" if self.last_family in ("pan", "tilt", "roll", "rotate", "whip")
                          else "translate")
                resolved = _resolve(family, str(item.value))
            if resolved is not None:
                item.used = True
                clause.moves.append((item, Move(resolved[0], resolved[1], words=[item.surface])))

    # Phases, merging ---------------------------------------------------------------------

    def _phases(self, clauses: list[Clause]) -> None:
        count = max((clause.phase for clause in clauses), default=0) + 1
        phases = [Phase() for _ in range(count)]
        real = [move for clause in clauses for item, move in clause.moves
                if id(item) not in self.maybe_nouns and move.kind not in ("static", "handheld")]
        for clause in clauses:
            for item, move in clause.moves:
                if id(item) in self.maybe_nouns and real:
                    continue
                if move.kind == "static":
                    phases[clause.phase].hold = True
                elif move.kind != "handheld":
                    phases[clause.phase].moves.append(move)
        for phase in phases:
            phase.moves = merge_moves(phase.moves)
            if phase.moves:
                phase.hold = False
        self.spec.phases = phases
        self.phase_of = {id(clause): phases[clause.phase] for clause in clauses}

    # Modifiers ---------------------------------------------------------------------------

    def _modifiers(self, clause: Clause) -> None:
        phase = self.phase_of[id(clause)]
        moves = [move for _, move in clause.moves if move.kind not in ("static", "handheld")]
        intensity = 1.0
        for item in clause.items:
            if item.used:
                continue
            category = item.category
            if category == "intensify":
                intensity = float(item.value)
                item.used = True
                continue
            if category == "speed":
                factor = float(item.value) ** intensity
                item.used = True
                for move in moves:
                    move.speed = factor if move.speed is None else move.speed * factor
                if not moves:
                    self.spec.speed = factor
                    item.shot_level = True
            elif category == "scale":
                item.used = True
                for move in moves:
                    move.scale *= float(item.value)
                if not moves:
                    self.shot_scale *= float(item.value)
                    item.shot_level = True
            elif category == "ease":
                item.used = True
                for move in moves:
                    move.easing = str(item.value)
                if not moves:
                    self.spec.easing = str(item.value)
                    item.shot_level = True
            elif category in ("turns", "factor", "number") or (
                    category == "quantity" and item.value[1] != "seconds"
                    and item.value[1] != "frames"):
                self._amount(item, moves)
            elif category == "quantity":
                item.used = True
                value, unit = item.value
                if unit == "frames":
                    self.spec.duration_frames = round(value)
                    phase.duration_s = None
                else:
                    phase.duration_s = value
            intensity = 1.0

    def _amount(self, item: Item, moves: list[Move]) -> None:
        if item.category == "quantity":
            value, unit = item.value
        elif item.category == "turns":
            value, unit = float(item.value), "degrees"
        elif item.category == "factor":
            value, unit = float(item.value), "times"
        else:
            value, unit = float(item.value), None
        pool = moves or self.spec.moves
        kinds = {"degrees": ROTATIONAL, "times": ("zoom", "dolly_zoom"), None: ROTATIONAL,
                 "metres": TRANSLATIONAL, "feet": TRANSLATIONAL, "cm": TRANSLATIONAL}[unit]
        factor = {"feet": 0.3048, "cm": 0.01}.get(unit, 1.0)
        for move in pool:
            if unit == "times" and move.kind == "orbit":
                move.amount = 360.0 * value  # "circles the chef twice"
                item.used = True
                return
            if move.kind in kinds or (unit is None and move.kind == "zoom" and value < 10):
                move.amount = value * factor
                item.used = True
                return
        if item.category == "number":
            item.used = True  # a count in the content ("two chefs")
        elif item.category in ("turns", "factor") and not self.spec.moves:
            item.used = False

    # Framing -----------------------------------------------------------------------------

    def _framing(self, items: list[Item]) -> None:
        spec = self.spec
        for k, item in enumerate(items):
            if item.category == "size":
                spec.sizes.append(str(item.value))
                item.used = True
            elif item.category == "angle":
                item.used = True
                before = items[k - 1].lemmas[:1] if k > 0 else ()
                if k > 1 and before in (("a",), ("the",)):
                    before = items[k - 2].lemmas[:1]
                if item.value != "dutch" and before in (("to",), ("into",), ("until",)) and any(
                        move.kind in ("pedestal", "crane") for move in spec.moves):
                    spec.end_angle = str(item.value)  # "lower the camera to knee height"
                elif item.value == "dutch":
                    spec.dutch = "cw"
                    nxt = self._next_dir_value(items, k)
                    if nxt in ("left", "ccw"):
                        spec.dutch = "ccw"
                else:
                    spec.angle = str(item.value)
            elif item.category == "side":
                spec.side = str(item.value)
                item.used = True
            elif item.category == "level":
                item.used = True
                for move in spec.moves:
                    if move.kind == "crane":
                        move.kind = "pedestal"  # a crane that keeps the camera level
            elif item.category == "coverage":
                spec.coverage = str(item.value)
                item.used = True
                if item.value == "ots" and k + 1 < len(items):
                    after = items[k + 1:k + 3]
                    for other in after:
                        if other.category == "subject":
                            spec.foreground = str(other.value)
                            break
            elif item.category == "subject":
                item.used = True
                if item.value not in spec.subjects:
                    spec.subjects.append(str(item.value))
                if (k >= 1 and items[k - 1].lemmas[:1] == ("over",) and k + 1 < len(items)
                        and items[k + 1].lemmas[:1] == ("shoulder",)):
                    spec.coverage, spec.foreground = "ots", str(item.value)
                    items[k + 1].used = True

    def _next_dir_value(self, items: list[Item], k: int) -> str | None:
        if k + 1 < len(items) and items[k + 1].category == "dir":
            items[k + 1].used = True
            return str(items[k + 1].value)
        return None

    # What was not used ----------------------------------------------------------------------

    def _finish(self, items: list[Item], clauses: list[Clause]) -> None:
        spec = self.spec
        if not spec.moves and spec.easing in ("in", "out") and not spec.static:
            # "ease in on the chef": the cinematographer's slow push.
            spec.phases[0].moves.append(Move("dolly", spec.easing, easing="in_out", speed=0.6,
                                             words=["ease " + spec.easing]))
            spec.easing = None
        for move in spec.moves:
            move.scale *= self.shot_scale
        spec.phases = [phase for phase in spec.phases
                       if phase.moves or phase.hold or phase.duration_s] or [Phase()]
        moving = bool(spec.moves)
        spec.static = spec.static and not moving
        agents = {id(item): clause.agent_out for clause in clauses for item in clause.items}
        for k, item in enumerate(items):
            if item.shot_level and not moving:
                spec.unused.append(item.surface)
            if item.used:
                continue
            category = item.category
            modifier = category in ("speed", "scale", "ease", "turns", "factor", "quantity")
            if category == "jargon" or (modifier and not moving):
                spec.unused.append(item.surface)
            elif category == "dir" and agents.get(id(item)) != "other":
                if item.value in ("left", "right", "cw", "ccw") and not is_position(items, k):
                    verb = items[k - 1] if k > 0 and items[k - 1].category == "unknown" and not (
                        k > 1 and items[k - 2].lemmas[:1] and items[k - 2].lemmas[0] in DETERMINERS
                    ) else None
                    if verb is not None and not verb.used:
                        spec.unused.append(verb.surface)
                        verb.used = True
                    spec.unused.append(item.surface)
            elif category == "unknown" and k > 0 and items[k - 1].category == "agent" and (
                    agents.get(id(item)) != "other") and not item.surface.endswith("ly"):
                # The verb of "the camera zigzags": a camera action the planner does not know.
                spec.unused.append(item.surface)
        spec.unused = list(dict.fromkeys(spec.unused))


def parse_shot(prompt: str, subjects: list[str] | None = None) -> ShotSpec:
    """Read one shot prompt; ``subjects`` are the scene's subject names (matched by words)."""
    return _Reader(subject_names(subjects or [])).read(prompt)
