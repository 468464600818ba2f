"""MIDI <-> REMI events (SPEC §1): the original converter's output, quirks included, fast.

``midi_to_events`` gives, for any MIDI file, exactly the events of the original
``midi2events_score.midi_to_sequence`` (as ``Name_Value`` strings), at a small fraction of
its cost. The original merges the messages of every track, pairs notes by
(channel, pitch) in that merged order and fills each bar by scanning every note. Here:

1. *Reading.* A regular expression (C speed) cuts every track chunk into whole events;
   numpy decodes delta times, running status and data bytes for all events at once.
   Anything the fast reader is not sure mido reads the same way (a running status after a
   two-byte message or a sysex, a meta event mido may refuse, a system message, a
   truncated chunk...) goes through mido itself, so the messages are always mido's.
2. *Converting.* Notes, bars and grid positions are computed with numpy from the message
   arrays, with the original's float arithmetic and tie rules (see ``_convert``).

``events_to_midi`` follows the original decoder (``events2score.convert_sequence_to_midi``)
and returns a ``pretty_midi.PrettyMIDI``.
"""

from __future__ import annotations

import io
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np
import pretty_midi

from .errors import RemiError
from .vocab import (
    BAR_TOKEN,
    BOS_TOKEN,
    DURATION_MAX,
    EOS_TOKEN,
    MAX_GRIDS,
    NO_COMPOSER,
    PAD_TOKEN,
    PITCH_MAX,
    PITCH_MIN,
    TEMPO_CLASSES,
    TICKS_PER_BEAT,
    TIME_SIGNATURES,
    complete_event_space,
    event,
    split_event,
)

__all__ = ["events_to_midi", "midi_to_events"]

MidiInput = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | pretty_midi.PrettyMIDI

DEFAULT_TEMPO = 500000
"""Microseconds per beat before the first set_tempo (MIDI default, 120 BPM)."""

VELOCITY, PROGRAM = 64, 0
"""What the original decoder writes for every note."""

# --- signatures (SPEC §1) -----------------------------------------------------------------

_ALLOWED = {tuple(map(int, s.split("/"))) for s in TIME_SIGNATURES}
_SPLITS = {(5, 4): ((2, 4), (3, 4)), (6, 4): ((3, 4), (3, 4)), (12, 8): ((6, 8), (6, 8))}
_PICKUP_MAP = {(5, 4): (3, 4), (6, 4): (3, 4), (12, 8): (6, 8)}
_FULL_BAR = 4 * TICKS_PER_BEAT


def _bar_size(num: int, den: int) -> tuple[int, int]:
    """(ticks, grids) of a bar: /8 bars count eighths (240 ticks, 6 grids), all else quarters."""
    if den == 8:
        return num * TICKS_PER_BEAT // 2, num * 6
    return num * TICKS_PER_BEAT, num * 12


def _effective(num: int, den: int) -> tuple[tuple[int, int], ...]:
    """The bar signatures a signature is written as: allowed stays, 5/4 6/4 12/8 split, else 4/4."""
    if (num, den) in _ALLOWED:
        return ((num, den),)
    return _SPLITS.get((num, den), ((4, 4),))


# --- reading: MIDI bytes -> message arrays ------------------------------------------------


@dataclass
class _Messages:
    """What the converter needs from a MIDI file, every track concatenated in file order.

    Ticks are the file's absolute ticks (integers, per track); the converter rescales them.
    """

    ticks_per_beat: int
    note_tick: np.ndarray  # [N] int64, note_on/note_off messages only
    note_key: np.ndarray  # [N] int64, channel * 128 + pitch
    note_on: np.ndarray  # [N] bool, note_on with velocity > 0 (else a note end)
    tempos: list[tuple[int, int]]  # (tick, microseconds per beat)
    signatures: list[tuple[int, int, int]]  # (tick, numerator, denominator)
    tick_range: tuple[int, int] | None  # (min, max) tick over all messages; None if none


_VLQ = rb"[\x80-\xff]{0,3}[\x00-\x7f]"
_SIZED = b"(?:" + b"|".join(re.escape(bytes([n])) + (rb"[\s\S]{%d}" % n if n else b"") for n in range(128)) + b")"
_EVENT = re.compile(
    _VLQ
    + rb"(?:[\x80-\xbf\xe0-\xef][\x00-\x7f]{2}"  # three-byte channel message
    + rb"|[\xc0-\xdf][\x00-\x7f]"  # program change / channel pressure
    + rb"|[\x00-\x7f]{2}"  # running status (checked to follow a three-byte status)
    + rb"|\xff[\s\S]" + _SIZED  # meta event, length < 128
    + rb"|\xf0" + _SIZED  # sysex, length < 128
    + rb")"
)
"""One event of a track chunk. Alternatives are told apart by the byte after the delta, so
back-to-back matches covering a whole chunk are the only way mido can read it too."""

_EVENTS = re.compile(b"(?:" + _EVENT.pattern + b")*")

MAX_MESSAGE_LENGTH = 1_000_000
"""mido refuses longer meta or sysex data."""


def _read_vlq(body: bytes, at: int) -> tuple[int, int] | None:
    """(value, position after) of the variable-length quantity at ``at`` (at most 4 bytes)."""
    value = 0
    for i in range(at, min(at + 4, len(body))):
        value = (value << 7) | (body[i] & 0x7F)
        if body[i] < 0x80:
            return value, i + 1
    return None


def _event_sizes_with_long_ones(body: bytes) -> list[int] | None:
    """Event sizes of a track chunk holding meta or sysex events of 128 bytes or more (their
    length takes several bytes, which the regex does not read); None if anything else stops
    the regex."""
    sizes: list[int] = []
    pos = 0
    while True:
        end = _EVENTS.match(body, pos).end()
        sizes += map(len, _EVENT.findall(body, pos, end))
        if end == len(body):
            return sizes
        delta = _read_vlq(body, end)
        if delta is None or body[delta[1]:delta[1] + 1] not in (b"\xff", b"\xf0"):
            return None
        length = _read_vlq(body, delta[1] + (2 if body[delta[1]] == 0xFF else 1))
        if length is None or length[0] > MAX_MESSAGE_LENGTH or length[1] + length[0] > len(body):
            return None
        pos = length[1] + length[0]
        sizes.append(pos - end)


_CHECKED_META = (0x00, 0x20, 0x51, 0x54, 0x58, 0x59)
"""Meta types that carry a tempo or signature, or whose mido decoder can fail on odd data:
only their standard forms are read fast."""

_RUNNING_OK = np.zeros(256, bool)
_RUNNING_OK[0x80:0xC0] = _RUNNING_OK[0xE0:0xF0] = True
"""Statuses whose running-status events carry two data bytes, as the regex read them."""


_NOTE_STATUS = np.zeros(256, bool)
_NOTE_STATUS[0x80:0xA0] = True
_META_TO_CHECK = np.zeros(256, bool)
_META_TO_CHECK[list(_CHECKED_META)] = True


def _parse_fast(data: bytes) -> _Messages | None:
    """Read the messages with regex + numpy; None whenever mido's own reading is needed."""
    if len(data) < 14 or data[:4] != b"MThd":
        return None
    header_size = int.from_bytes(data[4:8], "big")
    if header_size < 6:
        return None
    _, n_tracks, tpq = struct.unpack(">hhh", data[8:14])
    pos = 8 + header_size
    bodies, sizes, counts = [], [], []
    for _ in range(n_tracks):
        if data[pos:pos + 4] != b"MTrk" or pos + 8 > len(data):
            return None
        size = int.from_bytes(data[pos + 4:pos + 8], "big")
        body = data[pos + 8:pos + 8 + size]
        track_sizes = list(map(len, _EVENT.findall(body)))
        if sum(track_sizes) != size:
            track_sizes = _event_sizes_with_long_ones(body)
        if len(body) != size or track_sizes is None:
            return None
        bodies.append(body)
        sizes += track_sizes
        counts.append(len(track_sizes))
        pos += 8 + size
    if not sizes:
        empty = np.zeros(0, np.int64)
        return _Messages(tpq, empty, empty, np.zeros(0, bool), [], [], None)

    raw = np.frombuffer(b"".join(bodies) + bytes(8), np.uint8).astype(np.int64)
    size_of = np.array(sizes)
    start = np.cumsum(size_of) - size_of  # [n] offset of each event
    # delta time: a variable-length quantity of at most 4 bytes (the regex saw to that)
    byte = raw[start]
    delta, more = byte & 0x7F, byte >= 0x80
    vlq_len = 1 + more
    for k in (1, 2, 3):
        if not more.any():
            break
        byte = raw[start + k]
        delta = np.where(more, (delta << 7) | (byte & 0x7F), delta)
        more &= byte >= 0x80
        vlq_len += more
    tick = np.cumsum(delta)  # absolute ticks, restarting at every track
    if len(counts) > 1:
        first = np.minimum(np.cumsum(counts) - counts, len(sizes) - 1)  # (clipped for empty last tracks)
        tick -= np.repeat(tick[first] - delta[first], counts)

    status_at = start + vlq_len
    status = raw[status_at]
    explicit = status >= 0x80
    if not explicit.all():
        # running status: the track's last status byte that is not a meta event (as in mido)
        n = len(sizes)
        last = np.maximum.accumulate(np.where(explicit & (status != 0xFF), np.arange(n), -1))
        running = np.flatnonzero(~explicit)
        owner = np.repeat(np.cumsum(counts) - counts, counts)[running]
        if (last[running] < owner).any():
            return None  # no status yet in this track: mido raises
        status[running] = status[last[running]]
        if (~_RUNNING_OK[status[running]]).any():
            return None  # after a two-byte message or a sysex: not read with two data bytes
    data_at = status_at + explicit
    first_data = raw[data_at]

    tempos, signatures = [], []
    for i in np.flatnonzero((status == 0xFF) & _META_TO_CHECK[first_data]).tolist():
        at = int(status_at[i])
        kind, size, payload = raw[at + 1], raw[at + 2], raw[at + 3:at + 8].tolist()
        if kind == 0x51 and size == 3:
            tempos.append((int(tick[i]), (payload[0] << 16) | (payload[1] << 8) | payload[2]))
        elif kind == 0x58 and size == 4:
            signatures.append((int(tick[i]), payload[0], 2 ** payload[1]))
        elif not ((kind == 0x59 and size == 2 and -7 <= (payload[0] ^ 0x80) - 0x80 <= 7 and payload[1] < 2)
                  or (kind == 0x00 and size in (0, 2)) or (kind == 0x20 and size == 1)):
            return None  # a meta event mido may refuse (e.g. SMPTE offset fields out of range)

    note = np.flatnonzero(_NOTE_STATUS[status])
    note_status = status[note]
    return _Messages(
        ticks_per_beat=tpq,
        note_tick=tick[note],
        note_key=(note_status & 0x0F) * 128 + first_data[note],
        note_on=(note_status >= 0x90) & (raw[data_at[note] + 1] > 0),
        tempos=tempos,
        signatures=signatures,
        tick_range=(int(tick.min()), int(tick.max())),
    )


def _parse_mido(data: bytes) -> _Messages:
    """Read the messages with mido (exact on anything mido reads; raises what mido raises)."""
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    note_tick, note_key, note_on, tempos, signatures, ticks = [], [], [], [], [], []
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            ticks.append(tick)
            if msg.type in ("note_on", "note_off"):
                note_tick.append(tick)
                note_key.append(msg.channel * 128 + msg.note)
                note_on.append(msg.type == "note_on" and msg.velocity > 0)
            elif msg.type == "set_tempo":
                tempos.append((tick, msg.tempo))
            elif msg.type == "time_signature":
                signatures.append((tick, msg.numerator, msg.denominator))
    return _Messages(
        ticks_per_beat=midi.ticks_per_beat,
        note_tick=np.asarray(note_tick, np.int64),
        note_key=np.asarray(note_key, np.int64),
        note_on=np.asarray(note_on, bool),
        tempos=tempos,
        signatures=signatures,
        tick_range=(min(ticks), max(ticks)) if ticks else None,
    )


def _read_input(midi: MidiInput) -> tuple[bytes, str]:
    """The file's bytes and a name for error messages."""
    if isinstance(midi, pretty_midi.PrettyMIDI):
        buffer = io.BytesIO()
        midi.write(buffer)
        return buffer.getvalue(), "<PrettyMIDI>"
    if isinstance(midi, (bytes, bytearray, memoryview)):
        return bytes(midi), "<bytes>"
    if hasattr(midi, "read"):
        label = repr(getattr(midi, "name", "<file object>"))
        try:
            data = midi.read()
        except OSError as err:
            raise RemiError(f"cannot read MIDI file {label}: {err}") from err
        if not isinstance(data, (bytes, bytearray)):
            raise RemiError(f"MIDI file object {label} must be opened in binary mode")
        return bytes(data), label
    if isinstance(midi, (str, os.PathLike)):
        label = repr(os.fspath(midi))
        try:
            with open(midi, "rb") as handle:
                return handle.read(), label
        except OSError as err:
            raise RemiError(f"cannot read MIDI file {label}: {err.strerror or err}") from err
    raise RemiError(f"expected a MIDI path, bytes or a binary file object, got {type(midi).__name__}")


def _read_messages(data: bytes, label: str) -> _Messages:
    messages = _parse_fast(data)
    if messages is not None:
        return messages
    if not data:
        raise RemiError(f"{label} is empty, not a MIDI file")
    if data[:4] != b"MThd":
        raise RemiError(f"{label} is not a MIDI file (no MThd header)")
    try:
        return _parse_mido(data)
    except Exception as err:  # mido raises many types (OSError, EOFError, KeySignatureError...)
        reason = str(err) or type(err).__name__
        raise RemiError(f"{label} is a corrupt MIDI file ({reason})") from err


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
        measure, grids = _bar_size(num, den)
        key = (num, den, measure if span is None else span, offset)
        if key not in self._index:
            self._index[key] = len(self._table)
            self._table.append((TIME_SIGNATURES.index(f"{num}/{den}"), grids, 40 if den == 4 else 80,
                                key[2], grids - offset, offset))
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
            if cur == 0 and orig_ticks < _FULL_BAR:
                nxt = signatures[idx][1:] if idx < len(signatures) else (4, 4)
                full_next = _bar_size(*nxt)[0] if nxt[1] in (4, 8) else _FULL_BAR  # (sic: not num * 480)
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


def _convert(messages: _Messages, composer: str, out_of_range: OutOfRange, skip_drums: bool,
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
) -> list[str]:
    """Convert a MIDI file to REMI events exactly as the original converter (SPEC §1).

    Args:
        midi: a path, the file's bytes, a binary file object, or a ``pretty_midi.PrettyMIDI``.
        composer: value of the leading ``Composer_<name>`` event (``"None"`` for no label).
        out_of_range: what to do with a note outside piano range 21..108: ``"error"`` (the
            original's behaviour: the piece is rejected, here with a RemiError naming the
            pitch and its bar), ``"drop"`` the note, or move it by ``"octave"``s into range.
        skip_drums: drop the notes of MIDI channel 10 (the original keeps them).

    Returns:
        ``["Composer_<name>", "Tempo_<t>", "BOS_None", "Bar_None", "Time_Signature_<n/d>",
        "Beat_<g>", "Note_Pitch_<p>", "Note_Duration_<d>", ..., "EOS_None"]``.

    Raises:
        RemiError: unreadable, non-MIDI or corrupt file, a pitch out of range (by default), a
            set_tempo of 0, or a file on which the original converter never terminates.
    """
    if out_of_range not in ("error", "drop", "octave"):
        raise ValueError(f"out_of_range must be 'error', 'drop' or 'octave', not {out_of_range!r}")
    if not isinstance(composer, str) or not composer:
        raise ValueError(f"composer must be a non-empty string, not {composer!r}")
    data, label = _read_input(midi)
    messages = _read_messages(data, label)
    return _convert(messages, composer, out_of_range, skip_drums, label)


# --- decoding: events -> MIDI --------------------------------------------------------------

_KNOWN = frozenset(complete_event_space()) | {PAD_TOKEN}


def _bar_parameters(signature: str) -> tuple[int, int]:
    """(bar length, ticks per grid) of a Time_Signature value, as the original decoder."""
    num, den = (int(x) for x in signature.split("/"))
    length = num * TICKS_PER_BEAT * 4 // den
    count = {(6, 8): 36, (3, 8): 18}.get((num, den), num * 12)
    return length, length // count


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
    tokens = _check_events(events)
    signature = "4/4"
    bar_length, per_grid = _bar_parameters(signature)
    tempo = 120
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
                bar_length, per_grid = _bar_parameters(signature)
                i += 1
            while i < len(tokens) and tokens[i][0] not in ("Bar", "EOS"):
                name, value = tokens[i]
                i += 1
                if name == "Beat":
                    grid = int(value)
                elif name == "Note_Pitch":
                    duration = per_grid
                    if i < len(tokens) and tokens[i][0] == "Note_Duration":
                        duration = int(tokens[i][1])
                        i += 1
                    onset = bar_start + grid * per_grid
                    notes.append((onset, onset + duration, int(value)))
            tick += bar_length
    if not signatures or signatures[0][0] != 0:
        num, den = (int(x) for x in signature.split("/"))  # the original inserts the LAST one
        signatures.insert(0, (0, num, den))

    midi = pretty_midi.PrettyMIDI(resolution=TICKS_PER_BEAT, initial_tempo=float(tempo))
    seconds = 60.0 / (float(tempo) * TICKS_PER_BEAT)  # per tick, as pretty_midi computes it
    piano = pretty_midi.Instrument(program=PROGRAM, is_drum=False, name="Piano")
    notes.sort(key=lambda n: n[0])
    piano.notes = [pretty_midi.Note(VELOCITY, p, s * seconds, e * seconds) for s, e, p in notes]
    midi.instruments.append(piano)
    signatures.sort(key=lambda s: s[0])
    midi.time_signature_changes = [pretty_midi.TimeSignature(n, d, t * seconds) for t, n, d in signatures]
    return midi
