"""MIDI files built to explode a reader (tests of `MidiLimits` and of the web app's uploads), written as raw
bytes: building them with pretty_midi would take longer than reading them should."""

from __future__ import annotations

import struct


def _vlq(value: int) -> bytes:
    out = [value & 0x7F]
    while value > 0x7F:
        value >>= 7
        out.append(0x80 | (value & 0x7F))
    return bytes(reversed(out))


def _file(tracks: list[bytes], declared_tracks: int | None = None) -> bytes:
    header = b"MThd" + struct.pack(">IhhH", 6, 1, len(tracks) if declared_tracks is None else declared_tracks, 480)
    return header + b"".join(b"MTrk" + struct.pack(">I", len(body)) + body for body in tracks)


END_OF_TRACK = b"\x00\xff\x2f\x00"


def many_notes(count: int) -> bytes:
    """One track of ``count`` short notes (running status: 6 bytes a note)."""
    return _file([b"\x00\x90\x3c\x40\x01\x3c\x00" + b"\x01\x3c\x40\x01\x3c\x00" * (count - 1) + END_OF_TRACK])


def far_tick() -> bytes:
    """One note, then the track's end 268 million ticks later (559,000 beats: millions of bars)."""
    return _file([b"\x00\x90\x3c\x40\x60\x3c\x00" + _vlq(0x0FFFFFFF) + b"\xff\x2f\x00"])


def many_tracks(count: int) -> bytes:
    """``count`` tracks of one note each."""
    return _file([b"\x00\x90\x3c\x40\x60\x3c\x00" + END_OF_TRACK] * count)


def huge_track_length() -> bytes:
    """A track chunk that claims 4 GB and holds a few bytes."""
    return _file([], declared_tracks=1) + b"MTrk" + struct.pack(">I", 0xFFFFFFF0) + b"\x00\x90\x3c\x40"


def junk(size: int) -> bytes:
    """``size`` bytes behind a MIDI header."""
    return b"MThd" + bytes(size - 4)


def small_piece() -> bytes:
    """Eight quarter notes: a file every limit lets through."""
    notes = b"".join(b"\x00\x90" + bytes([60 + i, 80]) + b"\x83\x60\x80" + bytes([60 + i, 0]) for i in range(8))
    return _file([notes + END_OF_TRACK])
