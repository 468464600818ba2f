"""REMI codec: parity with the original converter and decoder (tests/reference/original_remi.py).

Real pieces come from the music21 corpus (``corpus_midi`` fixture); edge cases are MIDI files
written here with mido, one quirk of the original per test.
"""

from __future__ import annotations

import io
import itertools
import random

import mido
import numpy as np
import pretty_midi
import pytest

from g2m_hf import RemiError, events_to_midi, midi_to_events
from g2m_hf.midi_reader import _parse_fast, _parse_mido
from g2m_hf.vocab import complete_vocabulary
from tests.reference import original_remi as original

# --- helpers --------------------------------------------------------------------------------


def midi_bytes(*tracks, ticks_per_beat: int = 480) -> bytes:
    """A type-1 MIDI file whose tracks are lists of (absolute tick, mido message)."""
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track = mido.MidiTrack()
        last = 0
        for tick, msg in sorted(events, key=lambda e: e[0]):
            track.append(msg.copy(time=tick - last))
            last = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def note(start: int, end: int, pitch: int = 60, channel: int = 0, velocity: int = 80) -> list:
    return [(start, mido.Message("note_on", note=pitch, velocity=velocity, channel=channel)),
            (end, mido.Message("note_off", note=pitch, channel=channel))]


def signature(tick: int, num: int, den: int) -> tuple:
    return tick, mido.MetaMessage("time_signature", numerator=num, denominator=den)


def tempo(tick: int, bpm: float) -> tuple:
    return tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


def end_of_track(tick: int) -> tuple:
    return tick, mido.MetaMessage("end_of_track")


def melody(n_notes: int, step: int = 240, length: int = 200, low: int = 48) -> list:
    """A scale-like line of n_notes notes, one every `step` ticks."""
    return [e for i in range(n_notes) for e in note(i * step, i * step + length, low + (i * 5) % 30)]


def same_messages(data: bytes) -> bool:
    """The fast reader, where it answers, reads what mido reads."""
    fast, slow = _parse_fast(data), _parse_mido(data)
    return fast is None or (
        fast.ticks_per_beat == slow.ticks_per_beat and fast.tempos == slow.tempos
        and fast.signatures == slow.signatures and fast.tick_range == slow.tick_range
        and all(np.array_equal(getattr(fast, f), getattr(slow, f)) for f in ("note_tick", "note_key", "note_on")))


def assert_parity(data: bytes, composer: str = "None") -> list[str]:
    """Our events equal the original's (which must accept the file); returns them."""
    expected = original.midi_to_events(data, composer)
    assert expected is not None
    assert midi_to_events(data, composer) == expected
    assert same_messages(data)
    return expected


def signatures_of(events: list[str]) -> list[str]:
    return [e.rpartition("_")[2] for e in events if e.startswith("Time_Signature_")]


def decoded_ticks(midi: pretty_midi.PrettyMIDI) -> dict:
    """Our decoder's output in the baseline decoder's terms (ticks)."""
    (piano,) = midi.instruments
    _, tempi = midi.get_tempo_changes()
    return {
        "notes": [(n.pitch, midi.time_to_tick(n.start), midi.time_to_tick(n.end)) for n in piano.notes],
        "tempo": float(tempi[0]),
        "time_signatures": [(s.numerator, s.denominator, midi.time_to_tick(s.time))
                            for s in midi.time_signature_changes],
        "velocities": {n.velocity for n in piano.notes},
        "program": (piano.program, piano.is_drum),
    }


def assert_decoder_parity(events: list[str]) -> None:
    expected = original.events_to_midi(events)
    ours = decoded_ticks(events_to_midi(events))
    assert ours["notes"] == expected["notes"]
    assert ours["time_signatures"] == expected["time_signatures"]
    assert all(tick == 0 for _, tick in expected["tempos"])  # so the last one is the tempo
    assert ours["tempo"] == pytest.approx(expected["tempos"][-1][0])
    assert ours["velocities"] <= {64} and ours["program"] == (0, False)


# --- real pieces ----------------------------------------------------------------------------


def test_corpus_parity(corpus_midi):
    composers = ["None", "Bach", "Mozart"]
    for i, (work, path) in enumerate(corpus_midi.items()):
        data = path.read_bytes()
        events = assert_parity(data, composers[i % 3])
        assert events[0] == f"Composer_{composers[i % 3]}" and events[-1] == "EOS_None", work
    assert len(corpus_midi) >= 50


def test_corpus_inputs_path_bytes_file_object(corpus_midi):
    path = corpus_midi["bach/bwv1.6"]
    expected = original.midi_to_events(str(path))
    assert midi_to_events(path) == midi_to_events(str(path)) == expected
    assert midi_to_events(path.read_bytes()) == expected
    assert midi_to_events(bytearray(path.read_bytes())) == expected
    with open(path, "rb") as handle:
        assert midi_to_events(handle) == expected


def test_corpus_covers_the_interesting_cases(corpus_midi):
    """The real set exercises pickups, 3/4, 2/4, 6/8, and voices sharing a MIDI channel."""
    seen, shared_channel = set(), 0
    for path in corpus_midi.values():
        events = midi_to_events(path)
        seen.update(signatures_of(events))
        midi = mido.MidiFile(path)
        channels = [{m.channel for m in t if m.type == "note_on"} for t in midi.tracks]
        channels = [c for c in channels if c]
        shared_channel += len(set().union(*channels)) < len(channels)
    assert {"2/4", "3/4", "4/4", "6/8"} <= seen
    assert shared_channel >= 5


def test_decoder_parity_on_corpus(corpus_midi):
    for path in list(corpus_midi.values())[::3]:
        assert_decoder_parity(midi_to_events(path))


def has_same_pitch_overlap(events: list[str]) -> bool:
    """Two notes of one pitch sounding at once after decoding (MIDI cannot keep them apart)."""
    notes = sorted((p, s, e) for p, s, e in original.events_to_midi(events)["notes"])
    return any(a[0] == b[0] and b[1] < a[2] for a, b in itertools.pairwise(notes))


def test_round_trip_on_corpus(corpus_midi):
    """events -> MIDI -> events is the identity, except where the events hold two notes of one
    pitch that overlap (voices in unison on one MIDI channel): one piano track cannot keep them apart."""
    exact = 0
    for work, path in corpus_midi.items():
        events = midi_to_events(path, "Bach")
        back = midi_to_events(events_to_midi(events), "Bach")
        if not has_same_pitch_overlap(events):
            assert back == events, work
            exact += 1
        assert signatures_of(back)[:5] == signatures_of(events)[:5]
    assert exact >= 25


# --- constructed edge cases: bars and signatures ---------------------------------------------


def test_plain_four_four_layout():
    data = midi_bytes([signature(0, 4, 4), tempo(0, 120), *note(0, 480, 72), *note(0, 960, 60),
                       *note(480, 720, 64), *note(1920, 3840, 67)])
    events = assert_parity(data, "Bach")
    assert events == ["Composer_Bach", "Tempo_120", "BOS_None",
                      "Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_72", "Note_Duration_480",
                      "Note_Pitch_60", "Note_Duration_960", "Beat_12", "Note_Pitch_64", "Note_Duration_240",
                      "Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_67", "Note_Duration_1920",
                      "EOS_None"]


def test_pickup_takes_next_signature_and_is_padded():
    # a one-beat 1/4 pickup, then 3/4 bars
    data = midi_bytes([signature(0, 1, 4), signature(480, 3, 4), *note(0, 480, 67), *note(480, 960, 72),
                       *note(1920, 2400, 74)])
    events = assert_parity(data)
    assert signatures_of(events)[:2] == ["3/4", "3/4"]
    assert events[5:8] == ["Beat_24", "Note_Pitch_67", "Note_Duration_480"]  # 36 - 12 grids of padding


def test_pickup_longer_than_its_padding_gives_negative_beats():
    # 7/8 (42 grids) before 5/4: the pickup shows 3/4 (36 grids), so the offset is -6
    data = midi_bytes([signature(0, 7, 8), signature(1680, 5, 4), *note(0, 100), *note(240, 400, 62)])
    assert assert_parity(data)[4:6] == ["Time_Signature_3/4", "Beat_-6"]


def test_lone_three_four_gets_a_four_four_pickup_bar():
    data = midi_bytes([signature(0, 3, 4), *melody(24, step=240)])
    events = assert_parity(data)
    assert signatures_of(events)[:3] == ["4/4", "3/4", "3/4"]
    assert events[5] == "Beat_12"  # the first bar is padded by 48 - 36 grids


@pytest.mark.parametrize("sig, bars", [((5, 4), ["2/4", "3/4"]), ((6, 4), ["3/4", "3/4"]),
                                        ((12, 8), ["6/8", "6/8"]), ((7, 8), ["4/4"]), ((9, 8), ["4/4"]),
                                        ((2, 2), ["4/4"]), ((3, 8), ["3/8"]), ((6, 8), ["6/8"])])
def test_signature_mapping(sig, bars):
    data = midi_bytes([signature(0, *sig), *melody(40, step=180, length=170)])
    events = assert_parity(data)
    found = signatures_of(events)
    if sig in ((3, 8), (6, 8)):  # shorter than 4/4 with nothing after: a 4/4 pickup first
        assert found[0] == "4/4"
        found = found[1:]
    assert found[:4] == (bars * 4)[:4]


def test_eighth_bars_use_eighth_grid_and_80_tick_unit():
    data = midi_bytes([signature(0, 6, 8), signature(1440, 6, 8), *note(0, 100, 60), *note(240, 260, 62)])
    events = assert_parity(data)
    assert events[4:11] == ["Time_Signature_6/8", "Beat_0", "Note_Pitch_60", "Note_Duration_80",
                            "Beat_6", "Note_Pitch_62", "Note_Duration_80"]


def test_signature_index_advances_one_per_bar():
    """Signatures are taken one per bar, only once the bar start has reached them: a change in
    mid-bar and duplicates at one tick (one per track) lag behind."""
    data = midi_bytes(
        [signature(0, 4, 4), signature(0, 4, 4), signature(2000, 3, 4), signature(2000, 2, 4), *melody(60)],
        [signature(0, 4, 4), *melody(30, step=400, low=40)],
    )
    events = assert_parity(data)
    assert signatures_of(events)[:6] == ["4/4", "4/4", "4/4", "3/4", "2/4", "2/4"]


def test_signature_changes_within_the_piece():
    data = midi_bytes([signature(0, 4, 4), signature(1920, 5, 4), signature(1920 + 2400 * 2, 12, 8),
                       signature(1920 + 4800 + 2880, 7, 8), *melody(80, step=150)])
    events = assert_parity(data)
    assert "2/4" in signatures_of(events) and "6/8" in signatures_of(events)


def test_random_signature_lists_match_the_original():
    """Random signatures (odd ones, duplicates, changes in mid-bar, at tick 0 or not) and tempos."""
    rng = random.Random(5)
    hangs = 0
    for _ in range(150):
        track = melody(rng.randrange(0, 40), step=rng.choice([90, 240, 700]))
        for _ in range(rng.randrange(0, 6)):
            tick = rng.choice([0, 0, rng.randrange(0, 20000)])
            track.append(signature(tick, rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 13]), rng.choice([1, 2, 4, 8, 16])))
        if rng.random() < 0.5:
            track.append(tempo(rng.randrange(0, 9000), rng.uniform(30, 250)))
        data = midi_bytes(track, [end_of_track(rng.randrange(0, 30000))], ticks_per_beat=rng.choice([480, 96, 10080]))
        try:
            expected = original.midi_to_events(data)
        except RuntimeError:  # where the original never terminates
            hangs += 1
            with pytest.raises(RemiError, match="never terminates"):
                midi_to_events(data)
            continue
        assert midi_to_events(data) == expected
    assert hangs < 20


def test_zero_length_pickup_bar_is_an_error_not_a_hang():
    data = midi_bytes([signature(0, 0, 4), *note(0, 480)])
    with pytest.raises(RemiError, match="never terminates"):
        midi_to_events(data)
    with pytest.raises(RuntimeError):
        original.midi_to_events(data)
    # followed by a real signature at tick 0 the empty bar is harmless
    assert_parity(midi_bytes([signature(0, 0, 4), signature(0, 4, 4), *note(0, 480)]))


# --- constructed edge cases: notes, tracks, timing ------------------------------------------


def test_tempo_is_time_weighted_and_snapped():
    # 3 beats at 60 BPM then 1 beat at 200 -> mean 95 -> 80; default 120 before the first set_tempo
    assert assert_parity(midi_bytes([tempo(0, 60), tempo(1440, 200), *note(0, 1920)]))[1] == "Tempo_80"
    assert assert_parity(midi_bytes([tempo(960, 200), *note(0, 1920)]))[1] == "Tempo_160"
    # exactly between two classes: the lower one
    assert assert_parity(midi_bytes([tempo(0, 80), tempo(960, 120), *note(0, 1920)]))[1] == "Tempo_80"
    assert assert_parity(midi_bytes([end_of_track(0)]))[1] == "Tempo_120"


def test_tempo_change_in_another_track_counts():
    data = midi_bytes([tempo(0, 40), *note(0, 960)], [tempo(480, 160), *note(480, 3840, 64)])
    assert assert_parity(data)[1] == "Tempo_160"


def test_tempo_of_zero_is_an_error():
    data = midi_bytes([(0, mido.MetaMessage("set_tempo", tempo=0)), *note(0, 960)])
    with pytest.raises(RemiError, match="set_tempo of 0"):
        midi_to_events(data)


def test_notes_pair_across_tracks_and_channels_are_kept_apart():
    one = [(0, mido.Message("note_on", note=60, velocity=80)), (0, mido.Message("note_on", note=64, channel=1))]
    two = [(960, mido.Message("note_off", note=60)), (480, mido.Message("note_off", note=64, channel=2)),
           (720, mido.Message("note_off", note=64, channel=1))]
    events = assert_parity(midi_bytes(one, two))
    assert events[5:10] == ["Beat_0", "Note_Pitch_64", "Note_Duration_720", "Note_Pitch_60", "Note_Duration_960"]


def test_overlapping_same_pitch_notes_follow_the_original():
    """A second note_on replaces the open one; note_on velocity 0 ends a note; order within a tick counts."""
    track = [
        (0, mido.Message("note_on", note=60, velocity=70)), (240, mido.Message("note_on", note=60, velocity=70)),
        (480, mido.Message("note_on", note=60, velocity=0)), (960, mido.Message("note_off", note=60)),
        # same tick: note_on before the note_off of the previous note gives a 0-tick note
        (960, mido.Message("note_on", note=62, velocity=70)), (1440, mido.Message("note_on", note=62, velocity=70)),
        (1440, mido.Message("note_off", note=62)), (1920, mido.Message("note_off", note=62)),
    ]
    events = assert_parity(midi_bytes(track))
    assert events[5:] == ["Beat_6", "Note_Pitch_60", "Note_Duration_240",  # the note from 0 is lost
                          "Beat_36", "Note_Pitch_62", "Note_Duration_40", "EOS_None"]  # and the one from 960


def test_unisons_on_one_beat_keep_the_original_order():
    data = midi_bytes([*note(0, 480, 60, channel=0), *note(0, 960, 60, channel=1), *note(10, 200, 60, channel=2),
                       *note(0, 480, 67, channel=3)])
    events = assert_parity(data)
    assert events[5:14] == ["Beat_0", "Note_Pitch_67", "Note_Duration_480", "Note_Pitch_60", "Note_Duration_480",
                            "Note_Pitch_60", "Note_Duration_960", "Note_Pitch_60", "Note_Duration_200"]


def test_unclosed_notes_are_dropped():
    track = [(0, mido.Message("note_on", note=60, velocity=80)), *note(480, 960, 64),
             (960, mido.Message("note_on", note=67, velocity=80))]
    events = assert_parity(midi_bytes(track))
    assert "Note_Pitch_60" not in events and "Note_Pitch_67" not in events and "Note_Pitch_64" in events


def test_drums_are_kept_unless_skipped():
    data = midi_bytes([*note(0, 480, 60), *note(0, 120, 42, channel=9), *note(480, 600, 36, channel=9)])
    assert "Note_Pitch_42" in assert_parity(data)
    events = midi_to_events(data, skip_drums=True)
    assert "Note_Pitch_42" not in events and "Note_Pitch_36" not in events and "Note_Pitch_60" in events


@pytest.mark.parametrize("tpb", [96, 100, 384, 1000, 10080])
def test_other_resolutions_rescale_without_rounding(tpb):
    scale = tpb / 480
    events = [e for i in range(30) for e in note(int(i * 173 * scale), int((i * 173 + 97) * scale), 50 + i)]
    assert_parity(midi_bytes([signature(0, 3, 4), *events, end_of_track(int(9000 * scale))], ticks_per_beat=tpb))


def test_rescaling_multiplies_by_the_rounded_factor():
    """The original computes ``tick * (480 / tpq)``, not ``tick * 480 / tpq``: at 220 ticks per beat
    (pretty_midi's default) beat 2 lands at 479.99999999999994, in grid 11, not 12."""
    data = midi_bytes([*note(0, 50, 60), *note(220, 270, 62), end_of_track(880)], ticks_per_beat=220)
    assert assert_parity(data)[8:11] == ["Beat_11", "Note_Pitch_62", "Note_Duration_120"]


def test_smpte_time_division_follows_the_original():
    """A negative ticks-per-beat (SMPTE frames) makes every tick negative: no bar at all."""
    data = bytearray(midi_bytes([tempo(0, 100), *melody(10)]))
    data[12:14] = bytes([0xE7, 0x28])  # -25 frames/s, 40 ticks/frame
    assert assert_parity(bytes(data)) == ["Composer_None", "Tempo_120", "BOS_None", "EOS_None"]


def test_durations_round_half_to_even_and_are_capped():
    # 60 ticks = 1.5 units -> 2 units; 100 = 2.5 -> 2; 140 = 3.5 -> 4; 10 -> at least 1 unit; 5000 -> bar
    data = midi_bytes([*note(0, 60, 60), *note(480, 580, 62), *note(960, 1100, 64), *note(1440, 1450, 65),
                       *note(1920, 6920, 67)])
    durations = [e for e in assert_parity(data) if e.startswith("Note_Duration")]
    assert durations == ["Note_Duration_80", "Note_Duration_80", "Note_Duration_160", "Note_Duration_40",
                         "Note_Duration_1920"]


def test_bars_run_to_the_last_message_of_any_kind():
    data = midi_bytes([*note(0, 480)], [(9000, mido.MetaMessage("marker", text="end"))])
    events = assert_parity(data)
    assert events.count("Bar_None") == 5  # 9000 ticks of 1920-tick bars
    # notes starting exactly at the end are in no bar, and are not range-checked either
    data = midi_bytes([*note(0, 480), (1920, mido.Message("note_on", note=5, velocity=80)),
                       (1920, mido.Message("note_off", note=5))])
    assert assert_parity(data).count("Bar_None") == 1


def test_empty_files():
    assert assert_parity(midi_bytes([end_of_track(0)])) == ["Composer_None", "Tempo_120", "BOS_None", "EOS_None"]
    assert assert_parity(midi_bytes()) == ["Composer_None", "Tempo_120", "BOS_None", "EOS_None"]
    silent = assert_parity(midi_bytes([signature(0, 3, 4), end_of_track(2000)]))
    assert silent.count("Bar_None") == 2 and not any(e.startswith("Beat") for e in silent)


def test_empty_track_chunks():
    data = midi_bytes([*melody(8)], [*melody(6, low=40)])
    header, first, second = data[:14], data[14:].split(b"MTrk")[1], data[14:].split(b"MTrk")[2]
    empty = b"MTrk" + bytes(4)
    for tracks in ([first, empty], [empty, first, empty, second], [empty]):
        rebuilt = bytearray(header + b"".join(t if t is empty else b"MTrk" + t for t in tracks))
        rebuilt[10:12] = len(tracks).to_bytes(2, "big")
        assert _parse_fast(bytes(rebuilt)) is not None
        assert_parity(bytes(rebuilt))


def test_running_status_sysex_and_odd_meta_events_read_as_mido_reads_them():
    """Files the fast reader leaves to mido: a running status after a program change, sysex,
    an SMPTE offset, a key signature mido refuses."""
    body = bytes([0x00, 0xC0, 0x05, 0x00, 0x06,  # program change, then running status (1 data byte)
                  0x00, 0x90, 0x3C, 0x40, 0x83, 0x60, 0x3C, 0x00,  # note on / off (running status)
                  0x00, 0xF0, 0x03, 0x7E, 0x7F, 0xF7,  # sysex
                  0x00, 0xFF, 0x54, 0x05, 0x60, 0x00, 0x00, 0x00, 0x00,  # SMPTE offset
                  0x00, 0xFF, 0x2F, 0x00])
    data = b"MThd" + (6).to_bytes(4, "big") + bytes([0, 1, 0, 1, 1, 0xE0]) + b"MTrk" + len(body).to_bytes(4, "big") + body
    assert _parse_fast(data) is None
    assert assert_parity(data)[5:8] == ["Beat_0", "Note_Pitch_60", "Note_Duration_480"]
    bad_key = midi_bytes([*note(0, 480)]).replace(b"\x00\xff\x2f\x00", b"\x00\xff\x59\x02\x09\x00\x00\xff\x2f\x00")
    bad_key = bad_key.replace(b"MTrk\x00\x00\x00\x0c", b"MTrk\x00\x00\x00\x12")  # a key of 9 sharps
    with pytest.raises(RemiError, match="corrupt"):
        midi_to_events(bad_key)


def test_long_meta_and_sysex_events_are_read_fast():
    data = midi_bytes([(0, mido.MetaMessage("copyright", text="c" * 300)), *note(0, 480),
                       (240, mido.Message("sysex", data=[1] * 200)), signature(960, 3, 4), *note(960, 1200, 64)])
    assert _parse_fast(data) is not None
    assert_parity(data)


def test_random_files_match_mido_and_the_original():
    """mido-written files with every kind of message (running status included), read fast or not."""
    rng = random.Random(7)
    metas = [lambda: mido.MetaMessage("text", text="x" * rng.randrange(0, 100 if plain else 200)),
             lambda: mido.MetaMessage("key_signature", key=rng.choice(["C", "F#m", "Bb"])),
             lambda: mido.MetaMessage("time_signature", numerator=rng.choice([2, 3, 4, 5, 6, 7, 12]),
                                      denominator=rng.choice([2, 4, 8])),
             lambda: mido.MetaMessage("set_tempo", tempo=rng.randrange(200000, 2000000)),
             lambda: mido.MetaMessage("smpte_offset", minutes=rng.randrange(60)),
             lambda: mido.MetaMessage("sequence_number", number=rng.randrange(100))]
    channel_messages = [
        lambda c: mido.Message("note_on", channel=c, note=rng.randrange(21, 109), velocity=rng.randrange(0, 128)),
        lambda c: mido.Message("note_off", channel=c, note=rng.randrange(21, 109)),
        lambda c: mido.Message("control_change", channel=c, control=rng.randrange(128), value=rng.randrange(128)),
        lambda c: mido.Message("program_change", channel=c, program=rng.randrange(128)),
        lambda c: mido.Message("pitchwheel", channel=c, pitch=rng.randrange(-8192, 8192)),
        lambda c: mido.Message("aftertouch", channel=c, value=rng.randrange(128)),
        lambda c: mido.Message("sysex", data=[rng.randrange(128) for _ in range(rng.randrange(0, 150))]),
    ]
    fast = 0
    for i in range(60):
        plain = i % 2  # only messages the fast reader takes: notes, controls, standard meta events
        tracks = []
        for _ in range(rng.randrange(1, 4)):
            tick, track = 0, []
            for _ in range(rng.randrange(0, 120)):
                tick += rng.choice([0, 0, 10, 120, 480, 1000, 20000])
                make = rng.choice(metas[:4] if plain else metas) if rng.random() < 0.1 else None
                weights = [8, 6, 1, 0, 1, 1, 0] if plain else [8, 6, 1, 1, 1, 1, 1]
                message = make() if make else rng.choices(channel_messages, weights)[0](rng.randrange(3))
                track.append((tick, message))
            tracks.append(track)
        data = midi_bytes(*tracks, ticks_per_beat=rng.choice([96, 480, 384, 1000]))
        fast += _parse_fast(data) is not None
        assert same_messages(data)
        assert midi_to_events(data) == original.midi_to_events(data)
    assert fast >= 20


# --- errors ---------------------------------------------------------------------------------


def test_out_of_range_pitch_names_pitch_and_bar():
    data = midi_bytes([*note(0, 480, 60), *note(1920 + 480, 1920 + 960, 110)])
    assert original.midi_to_events(data) is None
    with pytest.raises(RemiError, match=r"pitch 110 at bar 2, grid 12"):
        midi_to_events(data)
    assert "Note_Pitch_110" not in midi_to_events(data, out_of_range="drop")
    moved = midi_to_events(data, out_of_range="octave")
    assert moved[-3:] == ["Note_Pitch_98", "Note_Duration_480", "EOS_None"]
    low = midi_bytes([*note(0, 480, 0), *note(0, 480, 20)])
    assert midi_to_events(low, out_of_range="octave")[5:10] == [
        "Beat_0", "Note_Pitch_32", "Note_Duration_480", "Note_Pitch_24", "Note_Duration_480"]


def test_unreadable_and_non_midi_files_name_the_file(tmp_path):
    (tmp_path / "empty.mid").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a MIDI file at all")
    (tmp_path / "cut.mid").write_bytes(midi_bytes([*melody(40)])[:-30])
    (tmp_path / "garbage.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xf4\x00\x00")
    for name, reason in [("empty.mid", "empty"), ("notes.txt", "not a MIDI file"), ("cut.mid", "corrupt"),
                         ("garbage.mid", "corrupt"), ("missing.mid", "cannot read")]:
        with pytest.raises(RemiError, match=reason) as caught:
            midi_to_events(tmp_path / name)
        assert name in str(caught.value)
    with pytest.raises(RemiError, match="0 ticks per beat"):
        midi_to_events(midi_bytes([*note(0, 480)]).replace(b"\x01\xe0", b"\x00\x00", 1))
    with pytest.raises(RemiError, match="binary mode"):
        midi_to_events(io.StringIO("MThd"))
    with pytest.raises(RemiError):
        midi_to_events(12)


def test_corrupted_bytes_never_escape_as_library_errors(corpus_midi):
    data = bytearray(corpus_midi["bach/bwv10.7"].read_bytes())
    rng = random.Random(3)
    outcomes = set()
    for _ in range(150):
        broken = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            broken[rng.randrange(len(broken))] = rng.randrange(256)
        try:
            events = midi_to_events(bytes(broken))
            outcomes.add("events")
        except RemiError:
            outcomes.add("error")
            continue
        if len(events) < 5000 and same_messages(bytes(broken)):  # keep the quadratic baseline cheap
            assert events == original.midi_to_events(bytes(broken))
    assert outcomes == {"events", "error"}


# --- decoder --------------------------------------------------------------------------------


def test_decoder_layout():
    events = ["Composer_Bach", "Tempo_80", "BOS_None", "Bar_None", "Time_Signature_3/4", "Beat_0", "Note_Pitch_60",
              "Note_Duration_480", "Beat_12", "Note_Pitch_64", "Bar_None", "Note_Pitch_67", "Note_Duration_40",
              "Bar_None", "Time_Signature_6/8", "Beat_6", "Note_Pitch_72", "Note_Duration_160", "EOS_None",
              "Bar_None", "Time_Signature_2/4", "Beat_0", "Note_Pitch_50"]
    decoded = decoded_ticks(events_to_midi(events))
    assert decoded["notes"] == [(60, 0, 480), (64, 480, 520), (67, 1920, 1960), (72, 3120, 3280)]
    assert decoded["time_signatures"] == [(3, 4, 0), (6, 8, 2880)]
    assert decoded["tempo"] == pytest.approx(80)
    assert_decoder_parity(events)


def test_decoder_quirks():
    # no Time_Signature after the first Bar: the LAST signature seen is put at tick 0
    events = ["Bar_None", "Beat_0", "Note_Pitch_60", "Bar_None", "Time_Signature_3/4", "Beat_3", "Note_Pitch_62"]
    decoded = decoded_ticks(events_to_midi(events))
    assert decoded["time_signatures"] == [(3, 4, 0), (3, 4, 1920)]
    assert decoded["tempo"] == pytest.approx(120)
    assert_decoder_parity(events)
    # several tempos before the first bar: the last holds; tempos inside bars are ignored
    events = ["Tempo_40", "Tempo_160", "Bar_None", "Tempo_80", "Beat_0", "Note_Pitch_60", "Note_Duration_40"]
    assert decoded_ticks(events_to_midi(events))["tempo"] == pytest.approx(160)
    assert_decoder_parity(events)
    assert decoded_ticks(events_to_midi([]))["notes"] == []


def test_decoder_fuzz_matches_original():
    vocabulary = complete_vocabulary() + ["Composer_Haydn"]
    structural = ["Bar_None", "Time_Signature_3/4", "Time_Signature_6/8", "Beat_5", "Note_Pitch_60",
                  "Note_Duration_120", "EOS_None"]
    rng = random.Random(11)
    for i in range(300):
        pool = vocabulary if i % 2 else structural + rng.sample(vocabulary, 20)
        events = [rng.choice(pool) for _ in range(rng.randrange(0, 200))]
        midi = events_to_midi(events)
        assert isinstance(midi, pretty_midi.PrettyMIDI)
        assert_decoder_parity(events)


def test_decoder_rejects_unknown_events():
    for bad in (["Bar_None", "Note_Pitch_200"], ["Beat_48"], ["Tempo_100"], ["Time_Signature_5/4"],
                ["hello"], ["Bar_None", 60], ["Composer_"]):
        with pytest.raises(RemiError, match="unknown event"):
            events_to_midi(bad)
    with pytest.raises(RemiError, match="single string"):
        events_to_midi("Bar_None")
    events_to_midi(["Composer_Hildegard", "PAD_None"])  # any composer name is fine

