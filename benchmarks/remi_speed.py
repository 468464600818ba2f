"""MIDI -> REMI events: g2m_hf.remi against the original converter (tests/reference/original_remi.py).

Pieces: music21-corpus works written to MIDI (chorales, a Palestrina mass movement, fiddle tunes,
quartet movements) and two long piano files built here (600 dense 4/4 bars with pedal; 520 bars
of 3/4 with a tempo change every bar, at 384 ticks per beat). Both converters read the same bytes;
their outputs must be identical. Prints events/s of each and the ratio per piece, per group and
overall (total events / total time), all measured in this run, the two converters taking turns.

    python benchmarks/remi_speed.py [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mido

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.reference

from g2m_hf.remi import midi_to_events
from tests.reference.original_remi import midi_to_events as original_midi_to_events

CORPUS_WORKS = (
    "bach/bwv1.6", "bach/bwv10.7", "bach/bwv11.6", "bach/bwv103.6", "palestrina/Agnus_01",
    "ryansMammoth/AcaciaReel", "ryansMammoth/AcrobatsHornpipe", "trecento/Fava_Dicant_nunc_iudei",
    "haydn/opus1no1/movement2", "mozart/k155/movement1",
)


def corpus_midi(works: tuple[str, ...]) -> dict[str, bytes]:
    from music21 import corpus

    pieces = {}
    with tempfile.TemporaryDirectory() as folder:
        for work in works:
            path = Path(folder) / (work.replace("/", "_") + ".mid")
            corpus.parse(work).write("midi", fp=str(path))
            pieces[work] = path.read_bytes()
    return pieces


def _save(midi: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _track(events: list[tuple[int, mido.Message]]) -> mido.MidiTrack:
    track, last = mido.MidiTrack(), 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - last))
        last = tick
    return track


def dense_piano(bars: int = 600) -> bytes:
    """4/4 at 480 TPQ: sixteenths in the right hand, eighth arpeggios and half-bar chords in the
    left, sustain pedal each half bar (about 30 notes a bar)."""
    right, left = [], [(0, mido.MetaMessage("time_signature", numerator=4, denominator=4)),
                       (0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(96)))]
    for bar in range(bars):
        t0 = bar * 1920
        for i in range(16):
            pitch = 72 + (bar * 3 + i * 5) % 19
            right += [(t0 + i * 120, mido.Message("note_on", note=pitch, velocity=60 + i)),
                      (t0 + i * 120 + 110, mido.Message("note_off", note=pitch))]
        for i in range(8):
            pitch = 43 + (bar + i * 7) % 17
            left += [(t0 + i * 240, mido.Message("note_on", note=pitch, velocity=50, channel=1)),
                     (t0 + i * 240 + 230, mido.Message("note_off", note=pitch, channel=1))]
        for half in (0, 960):
            for pitch in (55 + bar % 5, 59 + bar % 5, 62 + bar % 5):
                left += [(t0 + half, mido.Message("note_on", note=pitch, velocity=45, channel=1)),
                         (t0 + half + 900, mido.Message("note_off", note=pitch, channel=1))]
            left += [(t0 + half, mido.Message("control_change", control=64, value=127, channel=1)),
                     (t0 + half + 940, mido.Message("control_change", control=64, value=0, channel=1))]
    return _save(mido.MidiFile(ticks_per_beat=480, tracks=[_track(right), _track(left)]))


def waltz(bars: int = 520) -> bytes:
    """3/4 at 384 TPQ in one track: a bass note and two chords per bar, a melody in eighths,
    a tempo change every bar."""
    q = 384
    events = [(0, mido.MetaMessage("time_signature", numerator=3, denominator=4))]
    for bar in range(bars):
        t0 = bar * 3 * q
        events.append((t0, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(150 + 30 * ((bar % 8) - 4) / 4))))
        events += [(t0, mido.Message("note_on", note=36 + bar % 12, velocity=70)),
                   (t0 + q - 20, mido.Message("note_off", note=36 + bar % 12))]
        for beat in (1, 2):
            for pitch in (55, 60, 64):
                events += [(t0 + beat * q, mido.Message("note_on", note=pitch + bar % 4, velocity=50)),
                           (t0 + beat * q + q // 2, mido.Message("note_off", note=pitch + bar % 4))]
        for i in range(6):
            pitch = 76 + (bar + 2 * i) % 12
            events += [(t0 + i * q // 2, mido.Message("note_on", note=pitch, velocity=64)),
                       (t0 + i * q // 2 + q // 2 - 10, mido.Message("note_off", note=pitch))]
    return _save(mido.MidiFile(ticks_per_beat=q, tracks=[_track(events)]))


def time_interleaved(steps: dict[str, callable], rounds: int, min_seconds: float = 0.05) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns in every round (so that
    load from other processes slows them alike). Short calls are repeated within a round."""
    repeats = {}
    for name, step in steps.items():  # warm-up, and how many calls make a measurable round
        start = time.perf_counter()
        step()
        repeats[name] = max(1, int(min_seconds / max(time.perf_counter() - start, 1e-6)))
    durations: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(repeats[name]):
                step()
            durations[name].append((time.perf_counter() - start) / repeats[name])
    return {name: statistics.median(values) for name, values in durations.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per piece (median is kept)")
    parser.add_argument("--quick", action="store_true", help="4 corpus works and shorter long pieces")
    args = parser.parse_args()

    print("writing the pieces ...", flush=True)
    groups = {
        "corpus": corpus_midi(CORPUS_WORKS[::3] if args.quick else CORPUS_WORKS),
        "long piano": {"dense 4/4 piano": dense_piano(150 if args.quick else 600),
                       "3/4 waltz, tempo changes": waltz(130 if args.quick else 520)},
    }
    print(f"{'piece':34s} {'events':>7s} {'original ev/s':>14s} {'g2m_hf ev/s':>12s} {'ratio':>7s}")
    totals = {"events": 0, "original": 0.0, "ours": 0.0}
    for group, pieces in groups.items():
        sums = {"events": 0, "original": 0.0, "ours": 0.0}
        for name, data in pieces.items():
            expected = original_midi_to_events(data)
            assert midi_to_events(data) == expected, f"{name}: outputs differ"
            times = time_interleaved({"original": lambda data=data: original_midi_to_events(data),
                                      "ours": lambda data=data: midi_to_events(data)}, args.rounds)
            n = len(expected)
            print(f"{name:34s} {n:7d} {n / times['original']:14,.0f} {n / times['ours']:12,.0f} "
                  f"{times['original'] / times['ours']:6.1f}x", flush=True)
            for record in (sums, totals):
                record["events"] += n
                record["original"] += times["original"]
                record["ours"] += times["ours"]
        print(f"{'  = ' + group:34s} {sums['events']:7d} {sums['events'] / sums['original']:14,.0f} "
              f"{sums['events'] / sums['ours']:12,.0f} {sums['original'] / sums['ours']:6.1f}x")
    print(f"{'overall':34s} {totals['events']:7d} {totals['events'] / totals['original']:14,.0f} "
          f"{totals['events'] / totals['ours']:12,.0f} {totals['original'] / totals['ours']:6.1f}x")
    print("outputs identical on every piece")


if __name__ == "__main__":
    main()
