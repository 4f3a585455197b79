"""Shot prompts as items and clauses, and who does what in them (for :mod:`.grammar_parse`).

:func:`read_items` lemmatises a prompt and matches it against the lexicon, longest phrase first,
with scene subject names before the lexicon and numbers taking a unit ("3 seconds", "90
degrees", "2x"); :func:`split_clauses` cuts the items at punctuation, conjunctions and "then".
The rest are the heuristics that tell a camera's move from a subject's action: :func:`doer`
finds who does a movement word, :func:`is_object` tells an object of a preposition ("at the
door") from the doer of a verb ("the chef walks").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.planning import grammar_lexicon as lex
from backend.planning.grammar_spec import Move


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


DETERMINERS = _words(
    "the a an his her their its this that my our your some every each another these "
    "those"
)
PEOPLE = _words(
    "he she they it who someone somebody everyone everybody nobody people person man "
    "woman men women actor actress character figure crowd kid child boy girl guy him "
    "them"
)
PREPOSITIONS = _words(
    "at on of to from with over under into onto toward towards around across past "
    "along through behind beside near by for about above below between than upon"
)
PREPOSITIONAL_DIRECTIONS = frozenset({"in", "out", "up", "down", "around", "across"})
ROTATIONAL = ("pan", "tilt", "roll", "orbit", "whip")
TRANSLATIONAL = ("dolly", "truck", "pedestal", "crane", "dolly_zoom")


@dataclass
class Item:
    category: str
    value: object
    first: int
    """Index of the first token."""
    surface: str
    lemmas: tuple[str, ...] = ()
    used: bool = False
    shot_level: bool = False
    """A modifier that went to the whole shot (named if the shot has no move)."""


# --------------------------------------------------------------------------------------------
# 1. Items


def _match_subject(lemmas: list[tuple[str, ...]], i: int,
                   names: dict[str, list[tuple[str, ...]]]) -> tuple[str, int] | None:
    """Longest scene subject name starting at token ``i`` -> (subject, length)."""
    best = None
    for subject, variants in names.items():
        for words in variants:
            n = len(words)
            if all(i + k < len(lemmas) and words[k] in lemmas[i + k] for k in range(n)) and (
                    best is None or n > best[1]):
                best = (subject, n)
    return best


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_items(prompt: str, names: dict[str, list[tuple[str, ...]]]) -> list[Item]:
    tokens = lex.tokenize(prompt)

    def span(first: int, count: int) -> str:
        """The prompt's own text of ``count`` tokens from ``first`` ("close-up", not "close up")."""
        return prompt[tokens[first][1]:tokens[first + count - 1][2]]

    surfaces = [prompt[start:end] for _, start, end in tokens]
    words = [token for token, _, _ in tokens]
    lemmas = [lex.lemma(word) for word in words]
    candidates = [lex.lemma_candidates(word) for word in words]
    items: list[Item] = []
    i = 0
    while i < len(words):
        if lex.is_punctuation(words[i]):
            items.append(Item("clause", "punct" if words[i] not in ".!?" else "sentence", i,
                               surfaces[i]))
            i += 1
            continue
        value = _number(words[i])
        length = 1
        if value is None:
            for n in range(min(lex.MAX_PHRASE, len(words) - i), 0, -1):
                entry = lex.PHRASES.get(tuple(lemmas[i:i + n]))
                if entry is not None and entry[0] == "number":
                    value, length = float(entry[1]), n
                    break
        if value is not None and i + length < len(words) and (
                lemmas[i + length] in lex.UNITS or words[i + length] in lex.UNITS):
            unit = lex.UNITS.get(lemmas[i + length], lex.UNITS.get(words[i + length]))
            text = span(i, length + 1)
            items.append(Item("quantity", (value, unit), i, text))
            i += length + 1
            continue
        if words[i] in ("a", "an") and i + 1 < len(words) and lemmas[i + 1] in (
                "second", "sec"):
            items.append(Item("quantity", (1.0, "seconds"), i, span(i, 2)))
            i += 2
            continue
        subject = _match_subject(list(candidates), i, names)
        if subject is not None:
            name, n = subject
            items.append(Item("subject", name, i, span(i, n)))
            i += n
            continue
        for n in range(min(lex.MAX_PHRASE, len(words) - i), 0, -1):
            key = tuple(lemmas[i:i + n])
            entry = lex.PHRASES.get(key)
            if entry is not None:
                category, value = entry
                items.append(Item(category, value, i, span(i, n), key))
                i += n
                break
        else:
            category = "number" if _number(words[i]) is not None else "unknown"
            value = _number(words[i]) if category == "number" else lemmas[i]
            items.append(Item(category, value, i, surfaces[i], (lemmas[i],)))
            i += 1
    return items


# --------------------------------------------------------------------------------------------
# 2. Clauses and phases


@dataclass
class Clause:
    items: list[Item]
    phase: int
    sentence: int
    agent: str | None = None
    """Doer inherited from the previous clause of the sentence: camera, other or None."""
    agent_out: str | None = None
    """Doer at the clause's end, handed to the next clause."""
    moves: list[tuple[Item, Move]] = field(default_factory=list)


def split_clauses(items: list[Item]) -> list[Clause]:
    clauses = [Clause([], 0, 0)]
    phase = sentence = 0
    for item in items:
        if item.category == "phase":
            phase += 1
            item.used = True
            clauses.append(Clause([], phase, sentence))
        elif item.category == "clause":
            item.used = True
            if item.value == "sentence":
                sentence += 1
            clauses.append(Clause([], phase, sentence))
        else:
            clauses[-1].items.append(item)
    return [clause for clause in clauses if clause.items]


def is_object(items: list[Item], k: int) -> bool:
    """Is the noun phrase ending at ``items[k]`` the object of a preposition ("at the door")?"""
    j = k - 1
    while j >= 0 and (items[j].category == "unknown" or (
            items[j].lemmas and items[j].lemmas[0] in DETERMINERS)):
        j -= 1
    return j >= 0 and (items[j].category == "dir" or (
        bool(items[j].lemmas) and items[j].lemmas[0] in PREPOSITIONS))


def is_other_agent(items: list[Item], k: int) -> bool:
    """Is ``items[k]`` (an unknown word, maybe after adjectives) a noun after a determiner?"""
    j = k
    while j >= 0 and items[j].category == "unknown":
        j -= 1
    return (j >= 0 and j < k and bool(items[j].lemmas) and items[j].lemmas[0] in DETERMINERS
            and not is_object(items, k))


def find_doer(items: list[Item], index: int) -> str | None:
    """The agent nearest before ``items[index]`` in its clause: camera, other or None."""
    for k in range(index - 1, -1, -1):
        item = items[k]
        if item.category == "agent":
            return "camera"
        if item.category == "subject" and not is_object(items, k):
            return "other"
        if (item.category in ("neutral", "unknown") and item.lemmas and item.lemmas[0] in PEOPLE
                and not is_object(items, k)):
            return "other"
        if item.category == "unknown" and is_other_agent(items, k):
            return "other"
    return None


def inflected_after_noun(items: list[Item], k: int) -> bool:
    """A verb in the third person or past ("falls", "rose") after an unknown word: a sentence
    about something the lexicon does not know, not an order to the camera."""
    surface = items[k].surface.lower().split()[0]
    inflected = surface.endswith(("s", "ed")) or (lex.lemma(surface) != surface and (
        surface not in lex.KNOWN))
    return inflected and any(item.category == "unknown" and not item.surface.endswith("ly")
                             for item in items[:k])


def is_origin(items: list[Item], k: int) -> bool:
    """"from (the) left": where a move starts, not where it goes."""
    before = [item.lemmas[0] for item in items[max(0, k - 2):k] if item.lemmas]
    return bool(before) and (before[-1] == "from" or before[-2:] == ["from", "the"])


def leading_agent(items: list[Item]) -> str | None:
    """Who a clause with no movement word is about, from its opening words ("the chef, ...")."""
    for k, item in enumerate(items):
        if item.category == "agent":
            return "camera"
        if item.category == "subject" or (item.lemmas and item.lemmas[0] in PEOPLE):
            return "other"
        if item.category == "unknown":
            return "other" if is_other_agent(items, k) else None
        if not (item.lemmas and item.lemmas[0] in DETERMINERS):
            return None
    return None


def is_preposition(items: list[Item], k: int) -> bool:
    """Is the direction ``items[k]`` a preposition ("in the kitchen", "down the hall")?"""
    nxt = items[k + 1] if k + 1 < len(items) else None
    if nxt is None:
        return False
    return nxt.category == "subject" or bool(nxt.lemmas and nxt.lemmas[0] in DETERMINERS)


def is_position(items: list[Item], k: int) -> bool:
    """"on the left", "at the right", "from the left": where something is, not a move."""
    before = [item.lemmas[0] for item in items[max(0, k - 2):k] if item.lemmas]
    return len(before) == 2 and before[1] == "the" and before[0] in ("on", "at", "from", "in")


def subject_names(names: list[str]) -> dict[str, list[tuple[str, ...]]]:
    """Ways of naming each subject: its whole name and its last word ("HeroCar" -> "car")."""
    table: dict[str, list[tuple[str, ...]]] = {}
    for name in names:
        words = lex.name_words(name)
        variants = [words] if words else []
        if len(words) > 1:
            variants.append(words[-1:])
        table[name] = variants
    return table
