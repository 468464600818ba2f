"""Reading a MIDI file into the message arrays the REMI converter needs, fast and exactly as mido.

A regular expression (C speed) cuts every track chunk into whole events; numpy decodes delta
times, running status and data bytes for all events at once. Anything the fast reader is not
sure mido reads the same way (a running status after a two-byte message or a sysex, a meta
event mido may refuse, a system message, a truncated chunk...) goes through mido itself, so the
messages are always mido's. `remi.midi_to_events` converts them (SPEC §1).

`MidiLimits` bounds what a file may hold (bytes, tracks, messages, notes, length in beats); a file past
one is refused before it is decoded in full, so a hostile upload costs a web app a second, not its memory.
"""

from __future__ import annotations

import io
import os
import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pretty_midi

from .errors import RemiError

MidiInput = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO | pretty_midi.PrettyMIDI
"""What the converter reads: a path, the file's bytes, a binary file object or a PrettyMIDI."""


@dataclass
class MidiMessages:
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


@dataclass(frozen=True)
class MidiLimits:
    """Bounds on a MIDI file, each checked as early as it can be (None: no bound).

    ``max_bytes`` and ``max_tracks`` (the header's count) before anything is read; ``max_messages`` as the
    track chunks are cut into events (before mido reads a file the fast reader cannot); ``max_notes``
    (note-ons) and ``max_beats`` (the last message's tick over ticks per beat: a stray event hours after
    the music makes millions of bars) before the conversion to events.
    """

    max_bytes: int | None = None
    max_tracks: int | None = None
    max_messages: int | None = None
    max_notes: int | None = None
    max_beats: float | None = None

    def refuse(self, label: str, what: str, count: float, limit: float) -> RemiError:
        return RemiError(f"{label} is too large to read: {what} {count:,.0f}, at most {limit:,.0f} allowed")


SAFE_MIDI_LIMITS = MidiLimits(max_bytes=2 * 2**20, max_tracks=64, max_messages=250_000, max_notes=50_000,
                              max_beats=20_000)
"""Limits for files from strangers (the web app's uploads): piano pieces hold a few thousand notes in some
hundred kilobytes; 20,000 beats are 5,000 bars of 4/4, hours of music."""

NO_LIMITS = MidiLimits()


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


def _parse_fast(data: bytes, limits: MidiLimits = NO_LIMITS, label: str = "") -> MidiMessages | None:
    """Read the messages with regex + numpy; None whenever mido's own reading is needed.

    Raises `RemiError` when the file holds more messages than ``limits.max_messages`` (counted per track chunk).
    """
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
        if limits.max_messages is not None and len(sizes) + len(track_sizes) > limits.max_messages:
            raise limits.refuse(label, "messages", len(sizes) + len(track_sizes), limits.max_messages)
        bodies.append(body)
        sizes += track_sizes
        counts.append(len(track_sizes))
        pos += 8 + size
    if not sizes:
        empty = np.zeros(0, np.int64)
        return MidiMessages(tpq, empty, empty, np.zeros(0, bool), [], [], None)

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
    return MidiMessages(
        ticks_per_beat=tpq,
        note_tick=tick[note],
        note_key=(note_status & 0x0F) * 128 + first_data[note],
        note_on=(note_status >= 0x90) & (raw[data_at[note] + 1] > 0),
        tempos=tempos,
        signatures=signatures,
        tick_range=(int(tick.min()), int(tick.max())),
    )


def _parse_mido(data: bytes) -> MidiMessages:
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
    return MidiMessages(
        ticks_per_beat=midi.ticks_per_beat,
        note_tick=np.asarray(note_tick, np.int64),
        note_key=np.asarray(note_key, np.int64),
        note_on=np.asarray(note_on, bool),
        tempos=tempos,
        signatures=signatures,
        tick_range=(min(ticks), max(ticks)) if ticks else None,
    )


def read_midi_input(midi: MidiInput) -> tuple[bytes, str]:
    """The file's bytes and a name for error messages; `RemiError` when it cannot be read."""
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


def read_midi_messages(data: bytes, label: str, limits: MidiLimits | None = None) -> MidiMessages:
    """The messages of a MIDI file's bytes, read fast where that is exact, else by mido.

    Raises `RemiError` naming ``label`` for an empty, non-MIDI or corrupt file, or one past ``limits``
    (default: none).
    """
    limits = limits or NO_LIMITS
    if limits.max_bytes is not None and len(data) > limits.max_bytes:
        raise limits.refuse(label, "bytes", len(data), limits.max_bytes)
    if limits.max_tracks is not None and data[:8] == b"MThd\x00\x00\x00\x06" and len(data) >= 14:  # a real header
        tracks = int.from_bytes(data[10:12], "big")
        if tracks > limits.max_tracks:
            raise limits.refuse(label, "tracks", tracks, limits.max_tracks)
    messages = _parse_fast(data, limits, label)
    if messages is None:
        if not data:
            raise RemiError(f"{label} is empty, not a MIDI file")
        if data[:4] != b"MThd":
            raise RemiError(f"{label} is not a MIDI file (no MThd header)")
        if limits.max_messages is not None:  # mido reads a whole file before anything can be counted
            count = len(_EVENT.findall(data))  # the events the regex finds: about every message
            if count > limits.max_messages:
                raise limits.refuse(label, "messages", count, limits.max_messages)
        try:
            messages = _parse_mido(data)
        except Exception as err:  # mido raises many types (OSError, EOFError, KeySignatureError...)
            reason = str(err) or type(err).__name__
            raise RemiError(f"{label} is a corrupt MIDI file ({reason})") from err
    notes = int(messages.note_on.sum())
    if limits.max_notes is not None and notes > limits.max_notes:
        raise limits.refuse(label, "notes", notes, limits.max_notes)
    if limits.max_beats is not None and messages.tick_range is not None and messages.ticks_per_beat > 0:
        beats = max(map(abs, messages.tick_range)) / messages.ticks_per_beat
        if beats > limits.max_beats:
            raise limits.refuse(label, "beats (its last event's tick / ticks per beat)", beats, limits.max_beats)
    return messages


__all__ = ["MidiInput", "MidiLimits", "MidiMessages", "NO_LIMITS", "SAFE_MIDI_LIMITS", "read_midi_input",
           "read_midi_messages"]
