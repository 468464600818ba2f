"""MIDI <-> REMI events (SPEC §1): the original converter's output, quirks included, fast.

``midi_to_events`` gives, for any MIDI file, exactly the events of the original
``midi2events_score.midi_to_sequence`` (as ``Name_Value`` strings), at a small fraction of
its cost. The original merges the messages of every track, pairs notes by
(channel, pitch) in that merged order and fills each bar by scanning every note. Here:

1. *Reading* (`midi_reader`): the file's messages as arrays, decoded with a regular expression
   and numpy, exactly as mido reads them.
2. *Converting.* Notes, bars and grid positions are computed with numpy from the message
   arrays, with the original's float arithmetic and tie rules (see ``_convert``).

``events_to_midi`` follows the original decoder (``events2score.convert_sequence_to_midi``)
and returns a ``pretty_midi.PrettyMIDI``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pretty_midi

from .errors import InvalidArgumentError, RemiError
from .midi_reader import MidiInput, MidiLimits, MidiMessages, read_midi_input, read_midi_messages
from .vocab import (
    BAR_TOKEN,
    BOS_TOKEN,
    DURATION_MAX,
    EOS_TOKEN,
    FULL_BAR_TICKS,
    MAX_GRIDS,
    NO_COMPOSER,
    PAD_TOKEN,
    PITCH_MAX,
    PITCH_MIN,
    TEMPO_CLASSES,
    TICKS_PER_BEAT,
    TICKS_PER_GRID,
    TIME_SIGNATURES,
    bar_geometry,
    bar_ticks,
    complete_event_space,
    event,
    split_event,
)

__all__ = ["DecodedPiece", "decode_events", "events_to_midi", "midi_to_events"]

DEFAULT_TEMPO = 500000
"""Microseconds per beat before the first set_tempo (MIDI default, 120 BPM)."""

VELOCITY, PROGRAM = 64, 0
"""What the original decoder writes for every note."""

# --- signatures (SPEC §1) -----------------------------------------------------------------

_ALLOWED = {tuple(map(int, s.split("/"))) for s in TIME_SIGNATURES}
_SPLITS = {(5, 4): ((2, 4), (3, 4)), (6, 4): ((3, 4), (3, 4)), (12, 8): ((6, 8), (6, 8))}
_PICKUP_MAP = {(5, 4): (3, 4), (6, 4): (3, 4), (12, 8): (6, 8)}


def _bar_size(num: int, den: int) -> tuple[int, int]:
    """(ticks, grids) of a bar as the original converter measures it: /8 bars count eighths, every
    other denominator quarters (sic: a 2/2 bar is 960 ticks). The same as `bar_geometry` for the
    allowed signatures."""
    ticks = bar_ticks(num, 8 if den == 8 else 4)
    return ticks, ticks // TICKS_PER_GRID


def _effective(num: int, den: int) -> tuple[tuple[int, int], ...]:
    """The bar signatures a signature is written as: allowed stays, 5/4 6/4 12/8 split, else 4/4."""
    if (num, den) in _ALLOWED:
        return ((num, den),)
    return _SPLITS.get((num, den), ((4, 4),))


# --- converting: messages -> events --------------------------------------------------------


def _global_tempo(tempos: list[tuple[float, int]], max_tick: float) -> int:
    """Time-weighted mean BPM over [0, max_tick], snapped to the nearest class (ties lower).

    Kept as the original's sequential float sums so that results match to the last bit.
    """
    tempo, last, weighted, total = DEFAULT_TEMPO, 0, 0.0, 0.0
    for tick, value in tempos:
        span = tick - last
        weighted += 60000000 / tempo * span
        total += span
        tempo, last = value, tick
    if max_tick > last:
        span = max_tick - last
        weighted += 60000000 / tempo * span
        total += span
    mean = weighted / total if total > 0 else 120
    return min(TEMPO_CLASSES, key=lambda t: abs(t - mean))


def _pair_notes(tick: np.ndarray, key: np.ndarray, is_on: np.ndarray):
    """The original's note pairing, vectorised.

    In merged order (stable by tick), a note_on opens (channel, pitch), replacing an open one,
    and a note end closes it. So a note end makes a note exactly when the previous message
    of its key is a note_on, which gives the start. Returns (start, end, key) per note.
    """
    order = np.lexsort((tick, key))  # by key, then tick, then file order (lexsort is stable)
    k, on, t = key[order], is_on[order], tick[order]
    closes = np.flatnonzero(on[:-1] & ~on[1:] & (k[1:] == k[:-1])) + 1
    return t[closes - 1], t[closes], k[closes]


class _BarList:
    """The original's bars: a start tick and a kind per bar, kinds in a small table.

    A kind fixes the signature written, the grid count, the duration unit, and the grid
    mapping ``grid = int(local / span * scale) + offset`` (span is the measure, or for a
    pickup its actual length, which also caps durations).
    """

    def __init__(self) -> None:
        self.end = 0
        self._starts: list[int] = []  # bars added one by one, not yet in a block
        self._kinds: list[int] = []
        self._blocks: list[tuple[np.ndarray, np.ndarray]] = []
        self._index: dict[tuple[int, int, int, int], int] = {}
        self._table: list[tuple[int, int, int, int, int, int]] = []

    def kind(self, num: int, den: int, span: int | None = None, offset: int = 0) -> int:
        signature = f"{num}/{den}"
        measure, grids, unit = bar_geometry(signature)
        key = (num, den, measure if span is None else span, offset)
        if key not in self._index:
            self._index[key] = len(self._table)
            self._table.append((TIME_SIGNATURES.index(signature), grids, unit, key[2], grids - offset, offset))
        return self._index[key]

    def add(self, start: int, end: int, kind: int) -> None:
        self._starts.append(start)
        self._kinds.append(kind)
        self.end = end

    def add_block(self, starts: np.ndarray, kinds: np.ndarray, end: int) -> None:
        self._flush()
        self._blocks.append((starts, kinds))
        self.end = end

    def _flush(self) -> None:
        if self._starts:
            self._blocks.append((np.array(self._starts, np.int64), np.array(self._kinds, np.int64)))
            self._starts, self._kinds = [], []

    def columns(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(starts, kinds, per-kind columns: signature, grids, unit, span, scale, offset)."""
        self._flush()
        if len(self._blocks) == 1:
            starts, kinds = self._blocks[0]
        elif self._blocks:
            starts, kinds = (np.concatenate(c) for c in zip(*self._blocks))
        else:
            starts = kinds = np.zeros(0, np.int64)
        table = np.array(self._table, np.int64).reshape(-1, 6)
        names = ("signature", "grids", "unit", "span", "scale", "offset")
        return starts, kinds, {name: table[:, i] for i, name in enumerate(names)}


MAX_BARS = 10_000_000
"""Refuse pieces longer than this many bars (a stray event hours after the music)."""


def _build_bars(signatures: list[tuple[float, int, int]], max_tick: float, label: str) -> _BarList:
    """The original's bar loop (SPEC §1), including its signature index advance.

    A signature is taken only at the start of a loop round and only when the current tick has
    reached it, one per round; a round writes one bar, or two for a split signature. Rounds
    that reuse the current signature form a periodic stretch, generated at once.
    """
    bars = _BarList()
    cur, idx = 0, 0
    sig = (0, 4, 4)
    while cur < max_tick:
        if idx < len(signatures) and cur >= signatures[idx][0]:
            sig = signatures[idx]
            idx += 1
        elif cur == 0:  # the last round made a bar of length 0 and this one would too
            raise RemiError(f"{label}: time signature {sig[1]}/{sig[2]} at tick 0 makes a bar of length 0 "
                            "(the original converter never terminates on this file)")
        else:
            limit = signatures[idx][0] if idx < len(signatures) else math.inf
            cur = _periodic_stretch(bars, cur, sig[1], sig[2], limit, max_tick, label)
            continue
        num, den = sig[1], sig[2]
        orig_ticks, orig_grids = _bar_size(num, den)
        for part in _effective(num, den):
            length, kind = _bar_size(*part)[0], None
            if cur == 0 and orig_ticks < FULL_BAR_TICKS:
                nxt = signatures[idx][1:] if idx < len(signatures) else (4, 4)
                full_next = _bar_size(*nxt)[0] if nxt[1] in (4, 8) else FULL_BAR_TICKS  # (sic: not num * 480)
                if orig_ticks < full_next:  # pickup: the next signature's bar, padded on the left
                    shown = nxt if nxt in _ALLOWED else _PICKUP_MAP.get(nxt, (4, 4))
                    length = orig_ticks
                    kind = bars.kind(*shown, span=orig_ticks, offset=_bar_size(*shown)[1] - orig_grids)
            bars.add(cur, cur + length, bars.kind(*part) if kind is None else kind)
            cur += length
            if cur >= max_tick:
                break
    return bars


def _rounds_to_reach(cur: int, step: int, target: float) -> int:
    """Smallest k >= 1 with cur + k * step >= target (exact int/float comparisons)."""
    k = max(1, math.ceil((target - cur) / step))
    while k > 1 and cur + (k - 1) * step >= target:
        k -= 1
    while cur + k * step < target:
        k += 1
    return k


def _periodic_stretch(bars: _BarList, cur: int, num: int, den: int, limit: float, max_tick: float,
                      label: str) -> int:
    """Loop rounds reusing signature num/den from tick ``cur`` > 0 (so no pickup), until a round
    would start at or after ``limit`` (where the loop takes the next signature) or a bar ends
    at or after ``max_tick``. Returns the tick after the last bar."""
    parts = _effective(num, den)
    lengths = [_bar_size(*p)[0] for p in parts]
    period = sum(lengths)
    n_rounds = _rounds_to_reach(cur, period, max_tick)
    count = len(parts) * n_rounds
    if len(parts) == 2 and cur + (n_rounds - 1) * period + lengths[0] >= max_tick:
        count -= 1  # the piece ends inside the last round
    if limit < max_tick:
        count = min(count, len(parts) * _rounds_to_reach(cur, period, limit))
    if count > MAX_BARS:
        raise RemiError(f"{label}: the piece would have more than {MAX_BARS} bars")
    j = np.arange(count)
    if len(parts) == 1:
        starts = cur + lengths[0] * j
        kinds = np.full(count, bars.kind(*parts[0]))
    else:
        starts = cur + period * (j >> 1) + lengths[0] * (j & 1)
        kinds = np.where(j & 1, bars.kind(*parts[1]), bars.kind(*parts[0]))
    bars.add_block(starts, kinds, int(starts[-1]) + lengths[(count - 1) % len(parts)])
    return bars.end


@dataclass
class _Vocabulary:
    """Token strings by code, so that events are made by one array lookup."""

    table: np.ndarray  # object array of str
    tempo: int
    signature: int
    beat: int
    pitch: int
    duration: int


def _make_vocabulary() -> _Vocabulary:
    tokens = [BAR_TOKEN, EOS_TOKEN, BOS_TOKEN]
    tempo = len(tokens)
    tokens += [event("Tempo", t) for t in TEMPO_CLASSES]
    signature = len(tokens)
    tokens += [event("Time_Signature", s) for s in TIME_SIGNATURES]
    # a pickup bar padded by fewer grids than it holds gives negative beats (e.g. 7/8 before 5/4)
    beat = len(tokens) + MAX_GRIDS
    tokens += [event("Beat", g) for g in range(-MAX_GRIDS, MAX_GRIDS)]
    pitch = len(tokens)
    tokens += [event("Note_Pitch", p) for p in range(128)]
    duration = len(tokens)
    tokens += [event("Note_Duration", d) for d in range(DURATION_MAX + 1)]
    table = np.empty(len(tokens), object)
    table[:] = tokens
    return _Vocabulary(table, tempo, signature, beat, pitch, duration)


_VOCAB = _make_vocabulary()
_BAR, _EOS, _BOS = 0, 1, 2
_HEAD = 3
"""Composer, Tempo, BOS come first."""

OutOfRange = Literal["error", "drop", "octave"]


def _convert(messages: MidiMessages, composer: str, out_of_range: OutOfRange, skip_drums: bool,
             label: str) -> list[str]:
    """The original converter on message arrays (SPEC §1).

    Exactness rests on doing the original's float operations in the original's order: ticks
    are ``tick * (480 / tpq)`` floats, grids ``int(local / span * scale)``, durations
    Python-style ``round`` (half to even, as ``np.rint``), and every sort reproduces the
    original's stable sorts.
    """
    tpq = messages.ticks_per_beat
    if tpq == 0:
        raise RemiError(f"{label} is a corrupt MIDI file (0 ticks per beat)")
    factor = TICKS_PER_BEAT / tpq if tpq != TICKS_PER_BEAT else 1.0
    # every tick becomes the float `tick * factor`, as in the original (no rounding)
    max_tick = 0 if messages.tick_range is None else max(t * factor for t in messages.tick_range)
    tempos = sorted(((t * factor, v) for t, v in messages.tempos), key=lambda x: x[0])
    signatures = sorted(((t * factor, n, d) for t, n, d in messages.signatures), key=lambda x: x[0])
    if not signatures or signatures[0][0] != 0:
        signatures.insert(0, (0, 4, 4))
    try:
        tempo = _global_tempo(tempos, max_tick)
    except ZeroDivisionError:
        raise RemiError(f"{label} has a set_tempo of 0 microseconds per beat") from None

    ticks, keys, ons = messages.note_tick * factor, messages.note_key, messages.note_on
    if skip_drums:
        keep = keys >> 7 != 9
        ticks, keys, ons = ticks[keep], keys[keep], ons[keep]
    start, end, key = _pair_notes(ticks, keys, ons)
    pitch = key & 0x7F
    if out_of_range == "drop":
        keep = (pitch >= PITCH_MIN) & (pitch <= PITCH_MAX)
        start, end, pitch = start[keep], end[keep], pitch[keep]
    elif out_of_range == "octave":
        pitch = pitch + 12 * (-(np.minimum(pitch - PITCH_MIN, 0) // 12) - (np.maximum(pitch - PITCH_MAX, 0) + 11) // 12)

    bars = _build_bars(signatures, max_tick, label)
    bar_start, bar_kind, kind = bars.columns()
    # a note belongs to the last bar starting at or before it; bars are back to back
    inside = (start >= 0) & (start < bars.end)
    if not inside.all():
        start, end, pitch = start[inside], end[inside], pitch[inside]
    bar = np.searchsorted(bar_start, start, side="right") - 1
    k = bar_kind[bar]
    local = start - bar_start[bar]
    grid = np.minimum((local / kind["span"][k] * kind["scale"][k]).astype(np.int64) + kind["offset"][k],
                      kind["grids"][k] - 1)
    unit = kind["unit"][k]
    duration = np.minimum(np.maximum(np.rint((end - start) / unit).astype(np.int64) * unit, unit), kind["span"][k])

    # emission order: bar, grid, pitch descending; equal pitches by (start, end), which is the
    # original's order (a stable sort by start of notes listed as they close)
    order = np.lexsort((end, start, -pitch, grid, bar))
    bar, grid, pitch, duration = bar[order], grid[order], pitch[order], duration[order]
    if out_of_range == "error":
        bad = np.flatnonzero((pitch < PITCH_MIN) | (pitch > PITCH_MAX))
        if bad.size:
            i = int(bad[0])
            raise RemiError(
                f"{label}: note pitch {int(pitch[i])} at bar {int(bar[i]) + 1}, grid {int(grid[i])} "
                f"(tick {float(start[order][i]) / factor:g} of the file) is outside {PITCH_MIN}..{PITCH_MAX}; "
                "the original converter rejects such a piece (out_of_range='drop' or 'octave' keeps it)"
            )
    return _emit(composer, tempo, len(bar_start), kind["signature"][bar_kind], bar, grid, pitch, duration)


def _emit(composer: str, tempo: int, n_bars: int, signature: np.ndarray, bar: np.ndarray, grid: np.ndarray,
          pitch: np.ndarray, duration: np.ndarray) -> list[str]:
    """Lay out ``Bar Time_Signature {Beat {Pitch Duration}+}*`` per bar with one array scatter.

    Notes come sorted in emission order; a Beat precedes each note that starts a new
    (bar, grid) group.
    """
    n = len(bar)
    new_group = np.ones(n, bool)
    new_group[1:] = (bar[1:] != bar[:-1]) | (grid[1:] != grid[:-1])
    groups = np.cumsum(new_group)  # Beats up to and including each note's
    # tokens before a note: Bar and Time_Signature of its bar and all bars before, the Beats
    # so far, two per earlier note
    at = _HEAD + 2 * (bar + 1) + groups + 2 * np.arange(n)
    first = np.searchsorted(bar, np.arange(n_bars))  # first note of each bar (n if none after)
    bar_at = _HEAD + 2 * np.arange(n_bars) + np.concatenate(([0], groups))[first] + 2 * first

    codes = np.empty(_HEAD + 2 * n_bars + (int(groups[-1]) if n else 0) + 2 * n + 1, np.int64)
    codes[:_HEAD] = _BOS, _VOCAB.tempo + TEMPO_CLASSES.index(tempo), _BOS  # the composer is put in below
    codes[bar_at] = _BAR
    codes[bar_at + 1] = _VOCAB.signature + signature
    codes[at[new_group] - 1] = _VOCAB.beat + grid[new_group]
    codes[at] = _VOCAB.pitch + pitch
    codes[at + 1] = _VOCAB.duration + duration
    codes[-1] = _EOS
    events = _VOCAB.table[codes].tolist()
    events[0] = event("Composer", composer)
    return events


def midi_to_events(
    midi: MidiInput,
    composer: str = NO_COMPOSER,
    *,
    out_of_range: OutOfRange = "error",
    skip_drums: bool = False,
    limits: MidiLimits | None = None,
) -> list[str]:
    """Convert a MIDI file to REMI events exactly as the original converter (SPEC §1).

    Args:
        midi: a path, the file's bytes, a binary file object, or a ``pretty_midi.PrettyMIDI``.
        composer: value of the leading ``Composer_<name>`` event (``"None"`` for no label).
        out_of_range: what to do with a note outside piano range 21..108: ``"error"`` (the
            original's behaviour: the piece is rejected, here with a RemiError naming the
            pitch and its bar), ``"drop"`` the note, or move it by ``"octave"``s into range.
        skip_drums: drop the notes of MIDI channel 10 (the original keeps them).
        limits: bounds on the file (`midi_reader.MidiLimits`: bytes, tracks, messages, notes, beats),
            checked before it is decoded in full; default none. For files from strangers use
            `midi_reader.SAFE_MIDI_LIMITS` (what the web app uses).

    Returns:
        ``["Composer_<name>", "Tempo_<t>", "BOS_None", "Bar_None", "Time_Signature_<n/d>",
        "Beat_<g>", "Note_Pitch_<p>", "Note_Duration_<d>", ..., "EOS_None"]``.

    Raises:
        RemiError: unreadable, non-MIDI or corrupt file, a pitch out of range (by default), a
            set_tempo of 0, a file on which the original converter never terminates, or a file past
            ``limits`` (the message names the limit).
    """
    if out_of_range not in ("error", "drop", "octave"):
        raise InvalidArgumentError("out_of_range", repr(out_of_range), "must be 'error', 'drop' or 'octave'")
    if not isinstance(composer, str) or not composer:
        raise InvalidArgumentError("composer", repr(composer), "must be a non-empty string")
    data, label = read_midi_input(midi)
    messages = read_midi_messages(data, label, limits)
    return _convert(messages, composer, out_of_range, skip_drums, label)


# --- decoding: events -> MIDI --------------------------------------------------------------

_KNOWN = frozenset(complete_event_space()) | {PAD_TOKEN}


def _check_events(events: Sequence[str]) -> list[tuple[str, str]]:
    """Split every event into (name, value); RemiError on anything outside the vocabulary."""
    if isinstance(events, (str, bytes)):
        raise RemiError("events must be a sequence of event strings, not a single string")
    parsed = []
    for i, token in enumerate(events):
        if not isinstance(token, str) or (token not in _KNOWN and not
                                          (token.startswith("Composer_") and len(token) > len("Composer_"))):
            raise RemiError(f"unknown event {token!r} at position {i}")
        parsed.append(split_event(token))
    return parsed


@dataclass
class DecodedPiece:
    """What a REMI event list says, in ticks (480 per quarter): the one reading of events that
    `events_to_midi` and the score writer (`g2m_hf.notation`) share."""

    tempo: int  # BPM of a quarter note
    bars: list[tuple[int, str]]  # (start tick, time signature in effect) per bar, back to back
    end: int  # tick where the last bar ends
    notes: list[tuple[int, int, int]]  # (start tick, end tick, pitch), in event order
    signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator) of each Time_Signature event


def decode_events(events: Sequence[str]) -> DecodedPiece:
    """Read REMI events the way the original decoder does (see `events_to_midi`).

    Raises:
        RemiError: an event that is not in the vocabulary (composers may be any name).
    """
    tokens = _check_events(events)
    signature = "4/4"
    bar_length = bar_geometry(signature)[0]
    tempo = 120
    bars: list[tuple[int, str]] = []
    signatures: list[tuple[int, int, int]] = []  # (tick, num, den)
    notes: list[tuple[int, int, int]] = []  # (start, end, pitch)
    tick, grid, i = 0, 0, 0
    while i < len(tokens):
        name, value = tokens[i]
        i += 1
        if name == "Tempo":
            tempo = int(value)
        elif name == "EOS":
            break
        elif name == "Bar":
            bar_start = tick
            if i < len(tokens) and tokens[i][0] == "Time_Signature":
                signature = tokens[i][1]
                num, den = (int(x) for x in signature.split("/"))
                signatures.append((bar_start, num, den))
                bar_length = bar_geometry(signature)[0]
                i += 1
            bars.append((bar_start, signature))
            while i < len(tokens) and tokens[i][0] not in ("Bar", "EOS"):
                name, value = tokens[i]
                i += 1
                if name == "Beat":
                    grid = int(value)
                elif name == "Note_Pitch":
                    duration = TICKS_PER_GRID
                    if i < len(tokens) and tokens[i][0] == "Note_Duration":
                        duration = int(tokens[i][1])
                        i += 1
                    onset = bar_start + grid * TICKS_PER_GRID  # the original: bar length // grid count, 40 in every allowed bar
                    notes.append((onset, onset + duration, int(value)))
            tick += bar_length
    return DecodedPiece(tempo, bars, tick, notes, signatures)


def events_to_midi(events: Sequence[str]) -> pretty_midi.PrettyMIDI:
    """Decode REMI events to a one-track piano MIDI, following the original decoder.

    Bars are laid end to end, each as long as its ``Time_Signature`` (the previous one's when
    a ``Bar_None`` has none); a ``Beat_<g>`` sets the onset to ``g`` grids of 40 ticks (the
    beat carries over into the next bar until a new Beat); ``Note_Pitch`` takes the
    following ``Note_Duration`` or else one grid; tokens out of place are skipped and
    ``EOS_None`` ends the piece. Tempo tokens before the first bar set the tempo (the
    original writes each at tick 0, so the last one holds; 120 BPM without any). Resolution
    480 ticks per beat, velocity 64, program 0.

    Raises:
        RemiError: an event that is not in the vocabulary (composers may be any name).
    """
    piece = decode_events(events)
    tempo, signatures = piece.tempo, list(piece.signatures)
    if not signatures or signatures[0][0] != 0:
        # the original inserts the LAST signature at tick 0 (4/4 when there is none)
        num, den = signatures[-1][1:] if signatures else (4, 4)
        signatures.insert(0, (0, num, den))

    midi = pretty_midi.PrettyMIDI(resolution=TICKS_PER_BEAT, initial_tempo=float(tempo))
    seconds = 60.0 / (float(tempo) * TICKS_PER_BEAT)  # per tick, as pretty_midi computes it
    piano = pretty_midi.Instrument(program=PROGRAM, is_drum=False, name="Piano")
    notes = sorted(piece.notes, key=lambda n: n[0])
    piano.notes = [pretty_midi.Note(VELOCITY, p, s * seconds, e * seconds) for s, e, p in notes]
    midi.instruments.append(piano)
    signatures.sort(key=lambda s: s[0])
    midi.time_signature_changes = [pretty_midi.TimeSignature(n, d, t * seconds) for t, n, d in signatures]
    return midi
