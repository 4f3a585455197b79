"""The grammar planner's vocabulary: a tokeniser, a lexicon-guided lemmatiser and the lexicon.

Every phrase of the lexicon is written in base forms and looked up by lemma, so inflections and
spellings share one entry: "creeps", "crept" and "creeping" all reach ``creep``; "close-up",
"close up" and "closeup" all reach the size ``close``.

The lemmatiser (:func:`lemma`) is rule based and guided by the lexicon: it tries the word, then
irregular forms, then the candidates that suffix rules give (``-s``, ``-es``, ``-ies``, ``-ed``,
``-ing``, ``-ly``, ``-er``/``-est``, with and without a final ``e`` and undoubled consonants) and
keeps the first that the lexicon knows. A word the lexicon does not know keeps its own spelling.
No model and no download: the planner stays deterministic and fast (see BENCHMARKS.md).

Entries are ``(category, value)`` pairs; :data:`PHRASES` maps a tuple of lemmas to one entry.
Categories:

``move``       ``(family, default direction, strong)``: a camera movement. Families resolve with a
               direction (:data:`RESOLVE`): ``translate`` + "left" is a truck, ``rotate`` + "up" a
               tilt. Strong words (pan, dolly, zoom...) are camera moves whoever the sentence is
               about; weak ones (move, rise, look, follow...) only when the camera does them.
``dir``        a direction: left, right, up, down, in, out, cw, ccw, around, across.
``speed``      a speed factor (1 = normal); ``intensify`` strengthens the next speed word.
``scale``      an amount factor ("slightly" 0.5, "dramatic" 1.8); ``turns`` a fixed angle ("full").
``ease``       easing: linear, in, out, in_out.
``size``       shot size; ``angle`` camera angle; ``side`` where the camera sees the subject from;
               ``level`` no tilt ("keeping the camera level": a crane that does not tilt).
``coverage``   dialogue coverage: reverse shot, over the shoulder, two shot.
``factor``     a zoom factor in words ("twice"); numbers with units (:data:`UNITS`) are read
               by the parser.
``phase``      starts a new phase of the shot ("then"); ``clause`` separates clauses ("and").
``agent``      a camera word as the doer ("the camera", "we").
``jargon``     camera vocabulary the planner does not support: always named in the warnings.
``neutral``    words with no camera meaning (articles, prepositions, auxiliaries...).
"""

from __future__ import annotations

import re
from functools import lru_cache

Entry = tuple[str, object]

IMPLIED_SPEED = {"creep": 0.5, "inch": 0.5, "crawl": 0.35, "drift": 0.6, "float": 0.7,
                 "edge": 0.6, "coast": 0.7, "rush": 2.0, "charge": 2.0, "swoop": 1.5,
                 "dive": 1.5, "punch in": 3.0, "crash zoom": 3.0, "snap zoom": 3.0,
                 "sweep": 1.2, "glance": 1.5, "peek": 1.5}
"""Movement words that carry a speed of their own ("creep" is slow, "punch in" fast)."""

SIZES = ("extreme_wide", "wide", "full", "medium", "medium_close", "close", "extreme_close")
"""Shot sizes, widest first."""
ANGLES = ("eye", "low", "worm", "high", "overhead", "dutch")
"""Camera angles."""

# --------------------------------------------------------------------------------------------
# Moves: phrase -> (family, default direction or None, strong)

_MOVES: dict[str, tuple[str, str | None, bool]] = {}


def _moves(family: str, direction: str | None, strong: bool, phrases: str) -> None:
    for phrase in phrases.split(","):
        _MOVES[phrase.strip()] = (family, direction, strong)


_moves("static", None, True, "static, locked off, lock off, lockoff, locked down, stationary, "
       "fixed camera, tripod shot, static shot, static camera, no camera movement")
_moves("static", None, False, "locked, motionless, fixed, tripod, still, hold still, "
       "no movement, no motion, not move, never move, without move, stay put, stand still, "
       "immobile, hold, hold steady, keep still, steady, stable")
_moves("pan", None, True, "pan, pan shot, panoramic, yaw")
_moves("tilt", None, True, "tilt, tilt shot")
_moves("roll", None, True, "barrel roll, cant")
_moves("roll", None, False, "roll")
_moves("dolly", "in", True, "dolly, dolly shot, dolly in, track in, truck in, push in shot")
_moves("dolly", "in", False, "push, push in, press in, close in, move in")
_moves("dolly", "out", True, "dolly out, dolly back, track out, track back, truck out")
_moves("dolly", "out", False, "pull, pull out, pull back, back up, draw back, pull away")
_moves("truck", None, True, "truck, crab, strafe")
_moves("truck", None, False, "sidestep, side step")
_moves("pedestal", "up", True, "pedestal, ped, boom, jib up")
_moves("pedestal", "down", True, "ped down")
_moves("pedestal", "down", False, "lower")
_moves("crane", "up", True, "crane, crane shot, jib, jib shot")
_moves("zoom", "in", True, "zoom, zoom lens, punch in, crash zoom, snap zoom")
_moves("zoom", "in", False, "tighten, magnify, enlarge")
_moves("zoom", "out", False, "widen, unzoom")
_moves("dolly_zoom", "in", True, "dolly zoom, vertigo, vertigo effect, vertigo shot, zolly, "
       "contra zoom, trombone shot, hitchcock zoom, jaws shot, push pull, push zoom")
_moves("orbit", None, True, "orbit, arc, arc shot, orbit shot, circumnavigate, 360 shot")
_moves("orbit", None, False, "circle, circle around, revolve, revolve around, go around, "
       "move around, walk around, travel around, fly around, swing around, circle round, "
       "go round, loop around")
_moves("track", None, True, "tracking shot, follow shot, follow cam, chase cam, chase shot")
_moves("whip", None, True, "whip, whip pan, swish pan, flash pan, snap pan, whip tilt, swish, "
       "whip around")
_moves("handheld", None, True, "handheld, hand held, handheld camera, shaky cam, shakycam, "
       "camera shake, documentary style, verite")
_moves("handheld", None, False, "shaky, shake, jittery, unsteady, run and gun")
# Weak verbs: camera moves only when the camera (or an imperative) does them.
_moves("translate", None, False, "move, go, travel, drift, glide, slide, fly, float, head, come, "
       "step, walk, journey, cruise, coast, inch, edge, shift, nudge, wander, sway, scoot, "
       "dive, swoop, get, bring, take")
_moves("translate", "in", False, "fly over, flyover, fly through, flythrough, "
       "creep, crawl, approach, advance, close, near, push forward, "
       "move forward, press forward, charge, rush, zero in, home in, move toward")
_moves("translate", "out", False, "retreat, recede, withdraw, back, back away, back off, "
       "pull away, reverse away, step back, move away, draw away")
_moves("pedestal", "up", False, "rise, raise, lift, ascend, climb, soar, levitate, hoist")
_moves("pedestal", "down", False, "descend, drop, sink, fall, dip, lower down, plunge, duck")
_moves("rotate", None, False, "look, turn, glance, swing, swivel, rotate, spin, sweep, point, "
       "aim, peek, peer, gaze, veer, twist, angle, tip, scan, survey")
_moves("tilt", "down", False, "nod")
_moves("track", None, False, "track, tracking, follow, chase, tail, trail, shadow, accompany, "
       "keep pace, "
       "keep up, keep up with, stay with, move with, walk with, travel with, run with, "
       "ride with, go with, stick with, pursue")

# --------------------------------------------------------------------------------------------
# Everything else: phrase -> (category, value)

_OTHER: dict[str, Entry] = {}


def _add(category: str, value: object, phrases: str) -> None:
    for phrase in phrases.split(","):
        _OTHER[phrase.strip()] = (category, value)


_add("dir", "left", "left, leftward, leftwards, to the left, camera left, screen left")
_add("dir", "right", "right, rightward, rightwards, to the right, camera right, screen right")
_add("dir", "up", "up, upward, upwards, skyward, skywards, higher, straight up, "
     "toward the sky, towards the sky, to the sky, at the sky, toward the ceiling, "
     "towards the ceiling, to the ceiling, at the ceiling, heavenward")
_add("dir", "down", "down, downward, downwards, floorward, groundward, straight down, "
     "toward the ground, towards the ground, to the ground, at the ground, toward the floor, "
     "towards the floor, to the floor, at the floor, at his foot, at her foot, to his foot, "
     "to her foot, earthward")
_add("dir", "in", "in, closer, closer and closer, nearer, forward, forwards, toward, towards, "
     "into, ahead, inward, inwards, close to, onward, tighter, in close")
_add("dir", "out", "out, away, backward, backwards, further, farther, outward, outwards, "
     "further away, farther away, back out, wider")
_add("dir", "cw", "clockwise")
_add("dir", "ccw", "counterclockwise, counter clockwise, anticlockwise, anti clockwise")
_add("dir", "around", "around, round, about, all around")
_add("dir", "across", "across, sideways, sidewards, laterally, past, along")

_add("speed", 0.5, "slow, slowly, leisurely, unhurried, lazily, lazy, languid")
_add("speed", 0.35, "glacial, glacially, imperceptibly, barely, at a crawl, snail pace")
_add("speed", 0.65, "gentle, gently, gradual, gradually, calm, calmly, soft, softly, steadily")
_add("speed", 1.0, "normal speed, moderate, moderately, medium speed, steady pace")
_add("speed", 2.0, "fast, quick, quickly, rapid, rapidly, swift, swiftly, brisk, briskly, speedy, "
     "hurried, hastily, energetic, dynamic, aggressive, aggressively")
_add("speed", 2.5, "sudden, suddenly, abrupt, abruptly, snappy, jerk")
_add("intensify", 1.5, "very, really, super, extremely, incredibly, ultra, so, too, extra")

_add("scale", 0.5, "slight, slightly, a bit, a little, a little bit, a touch, subtle, subtly, "
     "small, tiny, minor, gentle drift, little")
_add("scale", 1.8, "dramatic, dramatically, big, large, huge, long, wide sweep, "
     "grand, epic, far")
_add("turns", 360.0, "full, complete, whole, entire, 360, all the way around, full circle, "
     "a full circle, one full, full turn")
_add("turns", 180.0, "half, semicircle, half circle, 180, halfway around, half way around")
_add("turns", 90.0, "quarter, quarter turn, 90")
_add("turns", 270.0, "three quarter, three quarters")

_add("ease", "in", "ease in, accelerate, speed up, pick up speed, gather speed, build up speed, "
     "gain speed, start slow, start slowly")
_add("ease", "out", "ease out, decelerate, slow down, slow to a stop, come to a stop, "
     "come to rest, settle, settle in, slow to a halt, coast to a stop, end slow, end slowly")
_add("ease", "in_out", "ease in and out, ease in out, ease in ease out, eased, easing, "
     "ease, smooth, smoothly, fluid, fluidly, graceful, gracefully, silky")
_add("ease", "linear", "linear, linearly, constant speed, steady speed, constant rate, "
     "mechanical, mechanically, even speed, at a constant speed")

_add("size", "extreme_wide", "extreme wide, extreme wide shot, extreme long shot, "
     "extremely wide, very wide, very wide shot, ews, xws, els, xls, establishing, "
     "establishing shot, ultra wide, panorama, vista, super wide")
_add("size", "wide", "wide, wide shot, long shot, ws, ls, wide angle, wide view, "
     "long view, master shot, master, wide frame")
_add("size", "full", "full shot, full body, full length, medium wide, medium wide shot, "
     "medium long shot, medium long, mws, mls, fs, head to toe, cowboy shot, "
     "american shot, knee shot, full figure")
_add("size", "medium", "medium, medium shot, mid shot, midshot, waist shot, waist up, "
     "from the waist up, ms, mid, half body, mid range, medium frame")
_add("size", "medium_close", "medium close, medium close up, medium closeup, mcu, chest up, "
     "from the chest up, bust shot, head and shoulder, shoulder up, chest shot")
_add("size", "close", "close up, closeup, close shot, cu, tight shot, tight, tight on, "
     "close on, close framing, portrait shot, headshot, head shot, face shot")
_add("size", "extreme_close", "extreme close up, extreme closeup, extreme close, ecu, xcu, "
     "macro, macro shot, detail shot, insert shot, insert, very close, very close up, "
     "super close, super close up, extremely close, extremely close up, big close up, bcu")

_add("angle", "eye", "eye level, eye line, eyeline, neutral angle, straight on, head on, "
     "level angle, at eye level, eye height")
_add("angle", "low", "low angle, low, from below, low shot, hero angle, "
     "low camera, from a low angle, knee level, knee height, hip level, ground level")
_add("angle", "worm", "worm eye, worm eye view, worms eye, worms eye view, "
     "from the ground, from directly below, extreme low angle, extreme low, ground shot")
_add("angle", "high", "high angle, high, from above, high shot, high camera, "
     "from a high angle, elevated, elevated view")
_add("angle", "overhead", "overhead, overhead shot, bird eye, bird eye view, birds eye, "
     "birds eye view, top down, top shot, top view, god eye, gods eye, directly above, "
     "from directly above, plan view, aerial, aerial view, aerial shot")
_add("angle", "dutch", "dutch, dutch angle, dutch tilt, canted, canted angle, canted frame, "
     "oblique, oblique angle, tilt horizon, tilt frame, off kilter, askew, slanted, "
     "slanted horizon, crooked, crooked horizon")

_add("level", True, "keep the camera level, keep it level, keep level, stay level, "
     "camera level, level camera, without tilt, no tilt, not tilt, level, horizontal")

_add("side", "behind", "from behind, from the back, behind the back, rear view, back view, "
     "from the rear")
_add("side", "side", "profile, in profile, side view, from the side, side on, side angle, "
     "profile shot")
_add("side", "front", "from the front, front view, frontal, facing the camera, front on")

_add("coverage", "reverse", "reverse, reverse shot, reverse angle, countershot, "
     "counter shot, shot reverse shot, the other way, opposite angle")
_add("coverage", "ots", "over the shoulder, over shoulder, ots, over his shoulder, "
     "over her shoulder, over their shoulder")
_add("coverage", "two", "two shot, 2 shot, both, both of them, the two, the pair, together, "
     "the couple")

_add("factor", 2.0, "twice, double, two fold, 2 fold")
_add("factor", 3.0, "triple, three fold, 3 fold")

_add("phase", "then", "then, and then, next, afterward, afterwards, after that, finally, "
     "before, later, eventually, subsequently, once done, before that, at last")
_add("clause", "and", "and, while, as, whilst, meanwhile, but, yet, until, till, so, when, "
     "during, plus")

_add("agent", "camera", "camera, cam, we, i, lens, view, viewer, viewpoint, perspective, "
     "frame, framing, shot, rig, drone, steadicam, gimbal, slider, operator, cameraman, "
     "camera operator, cinematographer, dolly track, our view, the audience, pov camera")

_add("jargon", "", "rack focus, pull focus, focus pull, rack, defocus, refocus, blur, bokeh, "
     "depth of field, shallow focus, deep focus, tilt shift, fisheye, fish eye, "
     "split diopter, diopter, snorricam, iris, iris in, iris out, fade, fade in, fade out, "
     "dissolve, wipe, match cut, jump cut, smash cut, slow motion, slow mo, slowmo, timelapse, "
     "time lapse, hyperlapse, freeze frame, wobble, wobbly, jiggle, jitter, bounce, bouncy, "
     "spiral, corkscrew, zigzag, zig zag, figure eight, loop, flip, tumble, somersault, "
     "bullet time, pov, point of view, first person, lens flare, anamorphic, split screen, "
     "strobe, stutter, warp, morph, shaky zoom, snap focus, focus, refocusing, vignette, "
     "long take, oner, one take, spin out")

_NEUTRAL = (
    "a, an, the, this, that, these, those, its, it, his, her, hers, their, them, they, he, she, "
    "him, me, my, us, our, you, your, of, on, at, by, for, from, with, without, to, onto, over, "
    "under, above, below, beneath, behind, beside, between, through, throughout, via, is, are, "
    "was, were, be, been, being, am, has, have, had, do, does, did, will, would, shall, should, "
    "can, could, may, might, must, not, no, or, there, here, where, which, who, whom, whose, "
    "what, some, any, all, each, every, just, only, also, again, more, most, less, even, almost, "
    "nearly, if, than, like, such, own, same, other, another, now, first, last, scene, moment, "
    "start, begin, end, finish, show, see, reveal, capture, film, shoot, keep, stay, remain, "
    "continue, centre, center, centred, centered, upon, its, itself, let, make, use, way, "
    "slight angle, position, place, set, put, please, toward it, in on, on to, then on, subject, "
    "entire scene, whole scene, gradual reveal, from here, onwards, way up, way down, same time, "
    "at the same time, simultaneously, throughout the shot, during the shot, picture, image, "
    "composition, content, cut, cut to, transition, one, part, side, direction, speed, pace, "
    "motion, movement, move slowly, camera work, camerawork, level, around it, time, clip, "
    "video, sequence, in frame, in the frame, on screen, "
    "into view, out of view, into frame, out of frame, view of, its face, face, reveal that, "
    "hand, hands, eye, eyes, person, man, woman, actor, character, people, figure, object")
for _phrase in _NEUTRAL.split(","):
    _OTHER.setdefault(_phrase.strip(), ("neutral", None))

UNITS = {
    "second": "seconds", "seconds": "seconds", "sec": "seconds", "secs": "seconds",
    "s": "seconds", "frame": "frames", "frames": "frames", "f": "frames", "fr": "frames",
    "degree": "degrees", "degrees": "degrees", "deg": "degrees", "°": "degrees",
    "metre": "metres", "metres": "metres", "meter": "metres", "meters": "metres", "m": "metres",
    "foot": "feet", "feet": "feet", "ft": "feet", "centimetre": "cm", "centimetres": "cm",
    "centimeter": "cm", "centimeters": "cm", "cm": "cm", "x": "times", "times": "times",
}
"""Units that may follow a number (matched on the lemma, only right after a number)."""
for _word in UNITS:
    _OTHER.setdefault(_word, ("neutral", None))

NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
    "thirty": 30, "forty": 40, "forty five": 45, "fifty": 50, "sixty": 60, "ninety": 90,
    "hundred": 100, "a couple of": 2, "couple of": 2, "a few": 3, "several": 4,
}

RESOLVE: dict[tuple[str, str], tuple[str, str]] = {
    ("translate", "in"): ("dolly", "in"), ("translate", "out"): ("dolly", "out"),
    ("translate", "left"): ("truck", "left"), ("translate", "right"): ("truck", "right"),
    ("translate", "up"): ("pedestal", "up"), ("translate", "down"): ("pedestal", "down"),
    ("translate", "around"): ("orbit", "right"), ("translate", "across"): ("truck", "right"),
    ("rotate", "left"): ("pan", "left"), ("rotate", "right"): ("pan", "right"),
    ("rotate", "up"): ("tilt", "up"), ("rotate", "down"): ("tilt", "down"),
    ("rotate", "cw"): ("roll", "cw"), ("rotate", "ccw"): ("roll", "ccw"),
    ("rotate", "across"): ("pan", "right"), ("rotate", "around"): ("pan", "around"),
    ("pan", "left"): ("pan", "left"), ("pan", "right"): ("pan", "right"),
    ("pan", "up"): ("tilt", "up"), ("pan", "down"): ("tilt", "down"),
    ("pan", "across"): ("pan", "right"), ("pan", "around"): ("pan", "around"),
    ("tilt", "up"): ("tilt", "up"), ("tilt", "down"): ("tilt", "down"),
    ("tilt", "left"): ("roll", "ccw"), ("tilt", "right"): ("roll", "cw"),
    ("tilt", "cw"): ("roll", "cw"), ("tilt", "ccw"): ("roll", "ccw"),
    ("roll", "cw"): ("roll", "cw"), ("roll", "ccw"): ("roll", "ccw"),
    ("roll", "right"): ("roll", "cw"), ("roll", "left"): ("roll", "ccw"),
    ("dolly", "in"): ("dolly", "in"), ("dolly", "out"): ("dolly", "out"),
    ("dolly", "left"): ("truck", "left"), ("dolly", "right"): ("truck", "right"),
    ("dolly", "up"): ("pedestal", "up"), ("dolly", "down"): ("pedestal", "down"),
    ("dolly", "around"): ("orbit", "right"), ("dolly", "across"): ("truck", "right"),
    ("truck", "left"): ("truck", "left"), ("truck", "right"): ("truck", "right"),
    ("truck", "in"): ("dolly", "in"), ("truck", "out"): ("dolly", "out"),
    ("truck", "across"): ("truck", "right"),
    ("pedestal", "up"): ("pedestal", "up"), ("pedestal", "down"): ("pedestal", "down"),
    ("crane", "up"): ("crane", "up"), ("crane", "down"): ("crane", "down"),
    ("zoom", "in"): ("zoom", "in"), ("zoom", "out"): ("zoom", "out"),
    ("dolly_zoom", "in"): ("dolly_zoom", "in"), ("dolly_zoom", "out"): ("dolly_zoom", "out"),
    ("orbit", "left"): ("orbit", "left"), ("orbit", "right"): ("orbit", "right"),
    ("orbit", "cw"): ("orbit", "left"), ("orbit", "ccw"): ("orbit", "right"),
    ("orbit", "around"): ("orbit", "right"),
    ("track", "left"): ("truck", "left"), ("track", "right"): ("truck", "right"),
    ("track", "in"): ("dolly", "in"), ("track", "out"): ("dolly", "out"),
    ("track", "around"): ("orbit", "right"),
    ("whip", "left"): ("whip", "left"), ("whip", "right"): ("whip", "right"),
    ("whip", "up"): ("whip", "up"), ("whip", "down"): ("whip", "down"),
    ("whip", "across"): ("whip", "right"), ("whip", "around"): ("whip", "right"),
}
"""(family, direction) -> (kind, direction): what a movement word means with that direction.
Orbit "left" is the camera travelling to its own left (clockwise seen from above)."""

DEFAULT_DIRECTION = {"pan": "right", "tilt": "up", "roll": "cw", "orbit": "right",
                     "whip": "right", "zoom": "in", "dolly": "in", "dolly_zoom": "in",
                     "crane": "up", "pedestal": "up"}
"""Directions of strong moves given without one ("a slow pan")."""

# --------------------------------------------------------------------------------------------
# Lookup tables


def _split(phrase: str) -> tuple[str, ...]:
    return tuple(phrase.replace("-", " ").split())


PHRASES: dict[tuple[str, ...], Entry] = {}
for _phrase, _entry in _OTHER.items():
    PHRASES[_split(_phrase)] = _entry
for _phrase, _move in _MOVES.items():
    PHRASES[_split(_phrase)] = ("move", _move)
for _phrase, _value in NUMBER_WORDS.items():
    PHRASES.setdefault(_split(_phrase), ("number", float(_value)))

KNOWN: frozenset[str] = frozenset(word for key in PHRASES for word in key)
"""Every word of the lexicon, in base form."""
MAX_PHRASE = max(len(key) for key in PHRASES)

_IRREGULAR = {
    "crept": "creep", "went": "go", "gone": "go", "goes": "go", "rose": "rise", "risen": "rise",
    "flew": "fly", "flown": "fly", "flies": "fly", "swung": "swing", "spun": "spin",
    "came": "come", "fell": "fall", "fallen": "fall", "sank": "sink", "sunk": "sink",
    "drew": "draw", "drawn": "draw", "took": "take", "taken": "take", "held": "hold",
    "kept": "keep", "saw": "see", "seen": "see", "ran": "run", "stood": "stand", "led": "lead",
    "dove": "dive", "brought": "bring", "got": "get", "gotten": "get", "shook": "shake",
    "shaken": "shake", "swept": "sweep", "wheeled": "wheel", "doesn": "does", "didn": "did",
    "isn": "is", "won": "will", "don": "do", "closest": "close", "nearest": "near",
    "further": "further", "farther": "farther", "worms": "worms", "birds": "birds", "gods": "gods",
    "s": "s", "ms": "ms", "cu": "cu", "ls": "ls", "ws": "ws", "fs": "fs", "els": "els",
    "ews": "ews", "xls": "xls", "xws": "xws", "mws": "mws", "mls": "mls", "ots": "ots",
    "mcu": "mcu", "ecu": "ecu", "xcu": "xcu", "bcu": "bcu", "lens": "lens", "pans": "pan",
    "its": "its", "this": "this", "his": "his", "hers": "hers", "always": "always",
    "glasses": "glasses", "across": "across", "towards": "towards", "forwards": "forwards",
    "backwards": "backwards", "upwards": "upwards", "downwards": "downwards",
    "leftwards": "leftwards", "rightwards": "rightwards", "sideways": "sideways",
    "less": "less", "process": "process", "canted": "canted", "ted": "ted",
}


def _undouble(stem: str) -> str | None:
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        return stem[:-1]
    return None


def _candidates(word: str) -> list[str]:
    """Base forms ``word`` may be an inflection of, most likely first."""
    out = [word]
    if word in _IRREGULAR:
        return [_IRREGULAR[word], word]

    def stem_forms(stem: str) -> list[str]:
        forms = [stem, stem + "e"]
        undoubled = _undouble(stem)
        if undoubled:
            forms.insert(1, undoubled)
        return forms

    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("ied") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("ing") and len(word) > 4:
        out.extend(stem_forms(word[:-3]))
    if word.endswith("ed") and len(word) > 3:
        out.append(word[:-1])
        out.extend(stem_forms(word[:-2]))
    if word.endswith("es") and len(word) > 3:
        out.extend([word[:-1], word[:-2]])
    elif word.endswith("s") and not word.endswith("ss") and len(word) > 2:
        out.append(word[:-1])
    if word.endswith("ily") and len(word) > 4:
        out.append(word[:-3] + "y")
    if word.endswith("ally") and len(word) > 5:
        out.append(word[:-4])
    if word.endswith("ly") and len(word) > 3:
        out.extend([word[:-2], word[:-1] + "e"])
    if word.endswith("est") and len(word) > 4:
        out.extend(stem_forms(word[:-3]))
    if word.endswith("er") and len(word) > 3:
        out.extend(stem_forms(word[:-2]))
    return out


@lru_cache(maxsize=4096)
def lemma(word: str) -> str:
    """The lexicon's base form of ``word`` (lower case), or ``word`` itself when unknown."""
    for candidate in _candidates(word):
        if candidate in KNOWN:
            return candidate
    return word


@lru_cache(maxsize=4096)
def lemma_candidates(word: str) -> tuple[str, ...]:
    """Every base form ``word`` may be an inflection of (for matching subject names)."""
    return tuple(dict.fromkeys(_candidates(word)))


_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+|[.,;:!?()]|°")
_CLAUSE_PUNCTUATION = frozenset(".,;:!?()")


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Split a prompt into ``(token, start, end)``: words, numbers and clause punctuation.

    Hyphens, slashes and apostrophes separate words ("close-up" -> "close", "up"; "bird's" ->
    "bird", "s"); "n't" becomes "not"; "3s" and "2x" split into number and unit.
    """
    lowered = text.lower().replace("’", "'").replace("n't", " not").replace("'s", "")
    return [(match.group(), match.start(), match.end()) for match in _TOKEN.finditer(lowered)]


def is_punctuation(token: str) -> bool:
    return token in _CLAUSE_PUNCTUATION


def name_words(name: str) -> tuple[str, ...]:
    """The words of an object name: "HeroCar.001" -> ("hero", "car")."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    words = [lemma(word) for word in re.findall(r"[a-z]+", spaced.lower())]
    return tuple(word for word in words if len(word) > 1)
