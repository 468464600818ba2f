"""`MidiLimits`: hostile MIDI files refused with a reason, quickly, before they are decoded in full."""

from __future__ import annotations

import time

import pytest

from g2m_hf.errors import RemiError
from g2m_hf.midi_reader import SAFE_MIDI_LIMITS, MidiLimits
from g2m_hf.remi import midi_to_events
from tests import hostile_midi


@pytest.mark.parametrize("data, reason", [
    (hostile_midi.many_notes(300_000), "messages 600,001, at most 250,000"),
    (hostile_midi.many_notes(60_000), "notes 60,000, at most 50,000"),
    (hostile_midi.far_tick(), r"beats \(.*\) 559,241, at most 20,000"),
    (hostile_midi.many_tracks(5000), "tracks 5,000, at most 64"),
    (hostile_midi.junk(3 * 2**20), "bytes 3,145,728, at most 2,097,152"),
    (hostile_midi.huge_track_length(), "corrupt MIDI file"),
], ids=["300k notes", "60k notes", "far tick", "5000 tracks", "3 MB", "4 GB track"])
def test_hostile_files_are_refused_quickly_with_a_reason(data, reason):
    start = time.perf_counter()
    with pytest.raises(RemiError, match=reason):
        midi_to_events(data, limits=SAFE_MIDI_LIMITS)
    assert time.perf_counter() - start < 2.0


def test_each_limit_alone_and_no_limit_by_default():
    piece = hostile_midi.small_piece()
    events = midi_to_events(piece, limits=SAFE_MIDI_LIMITS)
    assert events == midi_to_events(piece) and events.count("Note_Pitch_60") == 1, "a small piece passes unchanged"
    assert len(midi_to_events(hostile_midi.many_notes(60_000))) > 60_000, "no limits unless asked"
    for limits, reason in [(MidiLimits(max_bytes=len(piece) - 1), "bytes"), (MidiLimits(max_notes=7), "notes 8"),
                           (MidiLimits(max_messages=10), "messages"), (MidiLimits(max_beats=7.5), "beats"),
                           (MidiLimits(max_tracks=0), "tracks 1")]:
        with pytest.raises(RemiError, match=f"<bytes> is too large to read: {reason}"):
            midi_to_events(piece, limits=limits)
    # a file mido must read (a running status after a program change) is counted before mido reads it
    slow = hostile_midi.many_notes(30_000).replace(b"\x00\x90\x3c\x40\x01", b"\x00\xc0\x00\x00\x90\x3c\x40\x01", 1)
    with pytest.raises(RemiError, match="messages"):
        midi_to_events(slow, limits=MidiLimits(max_messages=50_000))
