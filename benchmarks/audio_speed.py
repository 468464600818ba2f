"""Audio rendering speed as a multiple of real time (seconds of music per second of rendering).

Pieces: music21-corpus works written to MIDI and played on the piano like generated pieces (a Bach
chorale, a Haydn and a Mozart quartet movement: 8 minutes of music), rendered with the default SoundFont (TimGM6mb.sf2 from pretty_midi). The baseline
is the piece's own playing time; each renderer is timed on the same bytes in this run (best of
``--rounds``, the renderers taking turns):

- ``render_audio``: g2m_hf.audio as users call it (midirenderer + resampling to 44.1 kHz + normalising);
- ``midirenderer``: the bare renderer call inside it (its WAV bytes at 48 kHz);
- ``tinysoundfont`` and ``symusic``, when importable: the other pip wheels considered (see docs/benchmarks.md,
  "Audio rendering", for why they are not used). They are not dependencies; install them by hand to compare.

    python benchmarks/audio_speed.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pretty_midi

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from g2m_hf.audio import default_soundfont, render_audio

WORKS = ("bach/bwv66.6", "haydn/opus1no1/movement2", "mozart/k155/movement1")


def corpus_midi(folder: Path) -> dict[str, Path]:
    from music21 import corpus

    paths = {}
    for work in WORKS:
        paths[work] = folder / (work.replace("/", "_") + ".mid")
        corpus.parse(work).write("midi", fp=str(paths[work]))
        midi = pretty_midi.PrettyMIDI(str(paths[work]))
        for instrument in midi.instruments:
            instrument.program = 0  # acoustic grand piano, as in every generated piece
        midi.write(str(paths[work]))
    return paths


def renderers(font: Path):
    """{name: function(midi path)} for every renderer importable here."""
    import midirenderer

    font_bytes = font.read_bytes()
    found = {
        "render_audio": lambda path: render_audio(path),
        "midirenderer": lambda path: midirenderer.render_wave_from(font_bytes, path.read_bytes()),
    }
    try:
        import tinysoundfont
    except ImportError:
        print("tinysoundfont: not installed (its PyAudio dependency needs PortAudio from the system to build)")
    else:
        def tiny(path: Path):
            synth = tinysoundfont.Synth(samplerate=44100)
            synth.sfload(str(font))
            sequencer = tinysoundfont.Sequencer(synth)
            sequencer.midi_load(str(path))
            return synth.generate(int((pretty_midi.PrettyMIDI(str(path)).get_end_time() + 1) * 44100))

        found["tinysoundfont"] = tiny
    try:
        import symusic
    except ImportError:
        print("symusic: not installed")
    else:
        synthesizer = symusic.Synthesizer(str(font), 44100)
        found["symusic"] = lambda path: synthesizer.render(symusic.Score(str(path)), stereo=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        pieces = corpus_midi(Path(folder))
        durations = {work: pretty_midi.PrettyMIDI(str(path)).get_end_time() for work, path in pieces.items()}
        total = sum(durations.values())
        print(f"{len(pieces)} pieces, {total:.1f} s of music; soundfont {default_soundfont()}")
        candidates = renderers(default_soundfont())
        best = {name: dict.fromkeys(pieces, float("inf")) for name in candidates}
        for _ in range(args.rounds):  # renderers take turns, so a busy moment of the machine hits them alike
            for work, path in pieces.items():
                for name, render in list(candidates.items()):
                    start = time.perf_counter()
                    try:
                        render(path)
                    except Exception as error:  # a renderer that fails here is reported, not fatal
                        print(f"{name}: fails: {type(error).__name__}: {str(error).splitlines()[0]}")
                        del candidates[name], best[name]
                        continue
                    best[name][work] = min(best[name][work], time.perf_counter() - start)
        for name, times in best.items():
            for work, seconds in times.items():
                print(f"  {name:14s} {work:28s} {durations[work]:6.1f} s in {seconds:6.3f} s = "
                      f"{durations[work] / seconds:4.0f}x real time")
            seconds = sum(times.values())
            print(f"{name:14s} all pieces: {total:.1f} s of music in {seconds:.2f} s = {total / seconds:.0f}x real time")

if __name__ == "__main__":
    main()
