"""The REMI event space (SPEC §1-2) and the vocabulary built from it.

Standard library only: this file is copied flat next to the remote-code files of a Hub
repository (the tokenizer and the grammar import it), so it must run where g2m_hf is not
installed.
"""

from __future__ import annotations

import builtins
import os
import pickle
from typing import TYPE_CHECKING, Any, BinaryIO, Iterable, Mapping, Sequence

from .errors import G2MError, VocabularyError

if TYPE_CHECKING:  # numpy is imported only when a pickle holds numpy scalars
    import numpy

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

METRIC_GRIDS = (3, 4)
"""The Beat steps of a sixteenth note and of an eighth-note triplet: an onset on a multiple of either is "on
the metric grid". In the music21 works of Bach, Beethoven and Mozart about 1 % of the onsets lie elsewhere
(grace notes, ornaments, 32nd notes; `controls.piece_texture`'s ``off_grid_share``)."""

SHORT_NOTE_TICKS = TICKS_PER_BEAT // 4
"""A sixteenth note (120 ticks): notes this long or shorter count as short (as the feature judge's
``dur_16th_or_less``)."""

MIDDLE_C = 60
"""MIDI pitch of middle C (C4): notes at or above it count as the upper register."""

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

INFILL_BAR_TOKEN, INFILL_START_TOKEN, INFILL_END_TOKEN = "Infill_Bar", "Infill_Start", "Infill_End"
"""Bar infilling (``g2m_hf/infill.py``): one ``Infill_Bar`` stands in for each bar of the span to rewrite,
``Infill_Start`` opens the span written after the rest of the piece, ``Infill_End`` closes it."""

INFILL_TOKENS: tuple[str, ...] = (INFILL_BAR_TOKEN, INFILL_START_TOKEN, INFILL_END_TOKEN)
"""Not in `complete_event_space`: a model learns them only when trained with infilling examples, and
they are appended after the existing ids (``G2MTokenizer.add_events``), so plain REMI ids, the converter
and converted original checkpoints are untouched."""

CONTROL_KINDS: tuple[str, ...] = ("Density", "Polyphony", "Register")
"""Texture controls (``g2m_hf/control_tokens.py``), in the order a controlled bar writes them, right after
its ``Time_Signature``: notes per quarter note, notes per onset, mean pitch (``g2m_hf/controls.py`` measures
them)."""

CONTROL_LEVELS: tuple[str, ...] = ("low", "mid", "high")
"""The levels of every texture control (``Density_low`` .. ``Register_high``)."""

BAR_CLASS_EDGES: dict[str, tuple[float, float]] = {
    "density": (3.5, 5.0),
    "polyphony": (2.0, 2.8),
    "register": (61.5, 65.5),
}
"""Upper edges of the ``low`` and ``mid`` levels of each bar class (a value equal to an edge falls in the
level above it). ``density``: notes per quarter note (so that a 3/4 and a 4/4 bar compare);
``polyphony``: notes per onset; ``register``: mean MIDI pitch. Rounded terciles of the bars of the
music21 Bach, Beethoven and Mozart works (each composer weighted equally; docs/texture.md)."""

STEERING_RANGES: dict[str, tuple[float, float]] = {
    "density": (2.0, 6.5),
    "polyphony": (1.2, 4.0),
    "register": (58.0, 69.0),
}
"""Where texture steering (``g2m_hf/texture_steering.py``) closes the open ends of the ``low`` and ``high``
levels of `BAR_CLASS_EDGES`: about the 10th and 90th percentiles of the training bars of the bundled model's
composers (register: Bach 57.5-65.2, Beethoven 56.2-71.3, Mozart 59.7-72.1; density: 2.0-10.0)."""

CONTROL_TOKENS: tuple[str, ...] = tuple(f"{kind}_{level}" for kind in CONTROL_KINDS for level in CONTROL_LEVELS)
"""Not in `complete_event_space` either: appended after the infill tokens (``G2MTokenizer.add_events``) by a
model trained with them, so a piece without control tokens is exactly the original REMI."""


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


def on_metric_grid(grid: Any) -> Any:
    """Whether each Beat step of ``grid`` (a NumPy array or a torch tensor; NaN is off) lies on `METRIC_GRIDS`:
    a bool array or tensor of the same shape."""
    on = grid % METRIC_GRIDS[0] == 0
    for step in METRIC_GRIDS[1:]:
        on = on | (grid % step == 0)
    return on


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


_NUMERIC_KINDS = "biufc"
"""numpy dtype kinds a pickle may hold scalars of: bool, signed and unsigned int, float, complex."""


class _NumericDtype:
    """What a pickled ``numpy.dtype`` becomes: its kind and size (``"i8"``) and byte order, nothing more.

    numpy's own ``dtype.__setstate__`` would apply whatever state the file gives (fields, flags
    such as "holds objects"); this stand-in keeps only the byte order, and `_numeric_scalar`
    builds a fresh dtype from the two.
    """

    def __init__(self, spec: object, align: object = False, copy: object = False) -> None:
        import numpy  # only pickles that mention numpy need it (this module is standard library only)

        if not isinstance(spec, str):
            raise pickle.UnpicklingError(f"numpy dtype from a {type(spec).__name__}, not a type code")
        dtype = numpy.dtype(spec)
        if dtype.kind not in _NUMERIC_KINDS:
            raise pickle.UnpicklingError(f"numpy dtype {dtype} is not numeric")
        self.spec, self.order = spec, "="

    def __setstate__(self, state: object) -> None:
        # numpy's state: (version, byte order, subarray, names, fields, elsize, alignment, flags)
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "=", "|"):
            self.order = state[1]

    def numpy_dtype(self) -> numpy.dtype:
        import numpy

        return numpy.dtype(self.spec).newbyteorder(self.order)


def _numeric_scalar(dtype: object, data: object = None) -> bool | int | float | complex:
    """numpy's scalar reconstruction (``multiarray.scalar(dtype, raw bytes)``), numeric dtypes only,
    returned as the equal Python number."""
    import numpy

    if not isinstance(dtype, _NumericDtype) or not isinstance(data, bytes):
        raise pickle.UnpicklingError("numpy scalar of something other than a numeric dtype and its bytes")
    clean = dtype.numpy_dtype()
    if len(data) != clean.itemsize:
        raise pickle.UnpicklingError(f"numpy {clean} scalar of {len(data)} bytes")
    return numpy.frombuffer(data, dtype=clean)[0].item()


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds plain data only: any other global is refused, so nothing can run.

    A pickle can name any importable callable (``os.system``...) and have it called while
    loading. The files read here (an original ``dictionary.pkl``, the original's published event
    files, which come from the internet) need none of that: lists, tuples, dicts, str, int,
    float, bool and None are pickle opcodes, and the builtin types are resolved by name. The one
    exception is numpy's scalar reconstruction for numeric dtypes (a converter that kept
    ``numpy.int64`` values writes them so); it is rebuilt as the equal Python number.
    """

    _BUILTINS = frozenset({"dict", "list", "tuple", "str", "int", "float", "bool"})
    _NUMPY_SCALAR_MODULES = frozenset({"numpy.core.multiarray", "numpy._core.multiarray"})  # numpy 1.x / 2.x

    def find_class(self, module: str, name: str) -> object:
        if module == "builtins" and name in self._BUILTINS:
            return getattr(builtins, name)
        if (module, name) == ("numpy", "dtype"):
            return _NumericDtype
        if module in self._NUMPY_SCALAR_MODULES and name == "scalar":
            return _numeric_scalar
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def load_restricted_pickle(
    handle: BinaryIO, source: str, what: str, error: type[G2MError] = VocabularyError
) -> object:
    """Unpickle ``handle`` with `RestrictedUnpickler`.

    Raises:
        error: ``"<source>: not a readable <what> (<reason>)"`` for a forbidden global, a corrupt
            or truncated pickle, or anything else that stops the load.
    """
    try:
        return RestrictedUnpickler(handle).load()
    except Exception as failure:  # any failure to unpickle means "not such a file"
        reason = " ".join(str(failure).split()) or type(failure).__name__  # one line
        raise error(f"{source}: not a readable {what} ({reason})") from None


def read_original_dictionary(path: str | os.PathLike) -> list[str]:
    """Read an original ``dictionary.pkl`` and return its events in id order, ``PAD_None`` last.

    The file is the original's pickled ``(event2word, word2event)`` pair. It holds no padding
    token: the original code gives ``PAD_None`` the id ``len(event2word)`` when it loads the file,
    and so does this reader. The file is read with `RestrictedUnpickler` (plain data only), so a
    hostile file cannot run code.

    Raises:
        FileNotFoundError: the file does not exist.
        VocabularyError: the file is not such a pair (forbidden global, corrupt pickle, wrong
            types, ids not contiguous, the two dicts disagree, ``PAD_None`` already present).
    """
    source = os.fspath(path)
    with open(source, "rb") as handle:
        content = load_restricted_pickle(handle, source, "dictionary pickle")
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
