"""The REMI event space (SPEC §1-2) and the vocabulary built from it.

Standard library only: this file is copied flat next to the remote-code files of a Hub
repository (the tokenizer and the grammar import it), so it must run where g2m_hf is not
installed.
"""

from __future__ import annotations

import builtins
import os
import pickle
from typing import Iterable, Mapping, Sequence

from .errors import VocabularyError

# --- event grammar constants (SPEC §1) ---------------------------------------------------

TICKS_PER_BEAT = 480
"""Resolution every piece is rescaled to before conversion."""

TEMPO_CLASSES: tuple[int, ...] = (40, 80, 120, 160)
"""The four global tempo classes; the mean BPM snaps to the nearest (ties go lower)."""

TIME_SIGNATURES: tuple[str, ...] = ("2/4", "3/4", "4/4", "3/8", "6/8")
"""Signatures that a bar may carry; others are split or mapped (SPEC §1)."""

MAX_GRIDS = 48
"""Grid positions of the longest bar (4/4: 4 * 12); Beat values are 0..47."""

TICKS_PER_GRID = TICKS_PER_BEAT * 4 // MAX_GRIDS
"""Ticks per Beat step (40): 1/12 of a quarter note in every time signature."""

FULL_BAR_TICKS = 4 * TICKS_PER_BEAT
"""A 4/4 bar, the longest; a first bar shorter than this may be a pickup (SPEC §1)."""

PITCH_MIN, PITCH_MAX = 21, 108
"""Piano range; a note outside rejects the piece in the original converter."""

DURATION_STEP, DURATION_MAX = 20, 1920
"""`Note_Duration_20..1920` step 20 is in the original dictionary (SPEC §2)."""

ORIGINAL_COMPOSERS: tuple[str, ...] = ("Schumann", "Chopin", "Bach", "Beethoven", "Mozart")
"""Composer tokens the original dictionary always contains."""

NO_COMPOSER = "None"
"""Composer value of the general (pretraining) corpus."""

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, BAR_TOKEN = "PAD_None", "BOS_None", "EOS_None", "Bar_None"


def event(name: str, value: object) -> str:
    """Format one event the way the original does: ``Name_Value``."""
    return f"{name}_{value}"


def split_event(token: str) -> tuple[str, str]:
    """Split ``Name_Value`` into its name and value (the value is after the last ``_``).

    ``Note_Pitch_60`` -> ``("Note_Pitch", "60")``; ``Time_Signature_3/4`` -> ``("Time_Signature", "3/4")``.
    """
    name, _, value = token.rpartition("_")
    return name, value


# --- bar lengths and grid counts (SPEC §1): the one place this rule is written ----------------


def bar_ticks(numerator: int, denominator: int) -> int:
    """Length in ticks of a bar of ``numerator/denominator``: ``n * 480 * 4 / d`` (the decoder's rule)."""
    return numerator * TICKS_PER_BEAT * 4 // denominator


def bar_geometry(signature: str) -> tuple[int, int, int]:
    """``(ticks, grids, duration_unit)`` of a bar in one of the allowed signatures (SPEC §1).

    Every bar has 40 ticks per grid (4/4: 1920 ticks, 48 grids; 3/8: 720 ticks, 18 grids); note
    durations are quantised to 40 ticks in /4 bars and to 80 in /8 bars.
    """
    numerator, denominator = (int(part) for part in signature.split("/"))
    ticks = bar_ticks(numerator, denominator)
    return ticks, ticks // TICKS_PER_GRID, TICKS_PER_GRID if denominator == 4 else 2 * TICKS_PER_GRID


def complete_event_space(composers: Iterable[str] = ORIGINAL_COMPOSERS) -> set[str]:
    """Every event the converter can emit, plus the original dictionary's fixed ranges."""
    events = {BOS_TOKEN, EOS_TOKEN, BAR_TOKEN, event("Composer", NO_COMPOSER)}
    events.update(event("Composer", c) for c in composers)
    events.update(event("Tempo", t) for t in TEMPO_CLASSES)
    events.update(event("Time_Signature", s) for s in TIME_SIGNATURES)
    events.update(event("Beat", g) for g in range(MAX_GRIDS))
    events.update(event("Note_Pitch", p) for p in range(PITCH_MIN, PITCH_MAX + 1))
    events.update(event("Note_Duration", d) for d in range(DURATION_STEP, DURATION_MAX + 1, DURATION_STEP))
    return events


def build_vocabulary(events: Iterable[str]) -> list[str]:
    """The original dictionary rule: plain string sort of the events, then ``PAD_None`` last."""
    return sorted(set(events) - {PAD_TOKEN}) + [PAD_TOKEN]


def complete_vocabulary(composers: Iterable[str] = ORIGINAL_COMPOSERS) -> list[str]:
    """The deterministic default vocabulary (SPEC §2): index = token id."""
    return build_vocabulary(complete_event_space(composers))


# --- validating vocabularies and reading the original dictionary.pkl (SPEC §2) -----------


def check_vocabulary(events: Sequence[str], source: str) -> list[str]:
    """Return ``events`` as a list after checking it can be a vocabulary (index = token id).

    Every entry must be a non-empty string without whitespace (token strings are split on
    whitespace) and appear once. ``source`` names where the list came from, for the error.
    """
    events = list(events)
    for index, token in enumerate(events):
        if not isinstance(token, str) or not token or any(char.isspace() for char in token):
            raise VocabularyError(f"{source}: entry {index} ({token!r}) is not an event string without whitespace")
    if len(set(events)) != len(events):
        duplicates = sorted({token for token in events if events.count(token) > 1})
        raise VocabularyError(f"{source}: events listed more than once: {duplicates}")
    return events


def vocabulary_from_mapping(event_ids: Mapping[str, int], source: str) -> list[str]:
    """Turn an ``event -> id`` mapping into the id-ordered event list; ids must be exactly 0..n-1."""
    by_id: dict[int, str] = {}
    for token, index in event_ids.items():
        # bool is an int subclass; a True/False id is a malformed file, not id 1/0.
        if not isinstance(index, int) or isinstance(index, bool):
            raise VocabularyError(f"{source}: id of {token!r} is {index!r}, not an int")
        by_id[index] = token
    if sorted(by_id) != list(range(len(event_ids))):
        missing = sorted(set(range(len(event_ids))) - set(by_id))[:10]
        raise VocabularyError(
            f"{source}: ids are not contiguous 0..{len(event_ids) - 1} (missing e.g. {missing})"
        )
    return check_vocabulary([by_id[index] for index in range(len(by_id))], source)


class _DictionaryUnpickler(pickle.Unpickler):
    """An unpickler that builds plain containers only: any other global is refused.

    A pickle can name any importable callable (``os.system``...) and have it called while
    loading; a dictionary file needs none of that, so only the builtin types it may mention
    are resolved.
    """

    _ALLOWED = {("builtins", "dict"), ("builtins", "str"), ("builtins", "int")}

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in self._ALLOWED:
            return getattr(builtins, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def read_original_dictionary(path: str | os.PathLike) -> list[str]:
    """Read an original ``dictionary.pkl`` and return its events in id order, ``PAD_None`` last.

    The file is the original's pickled ``(event2word, word2event)`` pair. It holds no padding
    token: the original code gives ``PAD_None`` the id ``len(event2word)`` when it loads the file,
    and so does this reader. The file is read with an unpickler that resolves no globals but
    builtin ``dict``/``str``/``int``, so a hostile file cannot run code.

    Raises:
        FileNotFoundError: the file does not exist.
        VocabularyError: the file is not such a pair (forbidden global, corrupt pickle, wrong
            types, ids not contiguous, the two dicts disagree, ``PAD_None`` already present).
    """
    source = os.fspath(path)
    with open(source, "rb") as handle:
        try:
            content = _DictionaryUnpickler(handle).load()
        except Exception as error:  # any failure to unpickle means "not a dictionary file"
            raise VocabularyError(f"{source}: not a readable dictionary pickle ({error})") from None
    if not (
        isinstance(content, (tuple, list))
        and len(content) == 2
        and all(isinstance(part, dict) for part in content)
    ):
        raise VocabularyError(
            f"{source}: expected a pickled (event2word, word2event) pair of dicts, got {type(content).__name__}"
        )
    event2word, word2event = content
    if not all(isinstance(token, str) for token in event2word):
        raise VocabularyError(f"{source}: event2word has keys that are not strings")
    events = vocabulary_from_mapping(event2word, source)
    if word2event != dict(enumerate(events)):
        raise VocabularyError(f"{source}: word2event is not the inverse of event2word")
    if PAD_TOKEN in event2word:
        # The original appends PAD itself at load time; a file that already has it was not
        # written by the original code, and its PAD id would be ambiguous.
        raise VocabularyError(f"{source}: already contains {PAD_TOKEN}, which the original appends at load time")
    return events + [PAD_TOKEN]
