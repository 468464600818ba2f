"""`g2m-demo`: one short piece per composer from the bundled default model, written to a folder.

Everything runs offline from the package: the model in ``g2m_hf/default_model`` writes a piece in
the style of each composer it was fine-tuned on (Bach, Beethoven, Mozart), saved as
``<Composer>_<n>.mid``, its event list (``.txt``), a piano roll (``.png``), its score (``.musicxml``) and
its audio (``.wav``, rendered offline with the SoundFont that pretty_midi installs), exactly as
``g2m-generate --score --audio`` writes them (new numbers instead of overwriting). About a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import sys
import time

from .. import extras
from ..errors import AudioError, G2MError
from ..generation import (
    generate_midi,
    load_model,
    load_tokenizer,
    output_stem,
    trained_composers,
    write_piece,
)
from . import arguments
from .pieces import piano_rolls_available

PROG = "g2m-demo"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].strip("`"))
    parser.add_argument("--output-dir", type=arguments.output_dir, default="demo_output",
                        help="where to write the files (default ./demo_output)")
    parser.add_argument("--composer", nargs="+", default=None, metavar="NAME",
                        help="composers to write a piece for (default: those the model was fine-tuned on)")
    parser.add_argument("--max-bars", type=arguments.positive_int, default=24, help="most bars per piece (default 24)")
    parser.add_argument("--max-events", type=arguments.positive_int, default=600,
                        help="most events per piece (default 600)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same pieces")
    parser.add_argument("--no-audio", action="store_true", help="write no .wav files")
    parser.add_argument("--no-score", action="store_true", help="write no .musicxml scores")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        if not args.no_audio:
            for module in extras.AUDIO_MODULES:
                extras.require(module, "audio", "the demo's audio (or pass --no-audio)")
        if not args.no_score:
            extras.require("music21", "notation", "the demo's scores (or pass --no-score)")
        tokenizer = load_tokenizer()  # the bundled model (ModelNotFoundError if the package lacks it)
        composers = args.composer or trained_composers(tokenizer)
        model = load_model()
        pieces = generate_midi(
            model,
            tokenizer,
            composers=composers,
            seed=args.seed,
            max_bars=args.max_bars,
            max_events=args.max_events,
            batch_size=len(composers),  # one batch: every composer at once
            progress=True,
        )
    except G2MError as error:
        return arguments.fail(PROG, error)
    directory = args.output_dir
    directory.mkdir(parents=True, exist_ok=True)
    piano_roll = piano_rolls_available(PROG)
    taken: set[str] = set()
    for piece in pieces:
        stem = output_stem(directory, piece.composer, taken, overwrite=False)
        notes = sum(event.startswith("Note_Pitch") for event in piece.events)
        bars = piece.events.count("Bar_None")
        try:
            write_piece(piece, stem, audio=not args.no_audio, piano_roll=piano_roll, score=not args.no_score)
            listen = "" if args.no_audio else f"; listen: {stem}.wav"
        except AudioError as error:  # a piece without notes has no sound; its other files are written
            listen = f"; no audio ({error})"
        also = ".txt events" + (", .png piano roll" if piano_roll else "") + ("" if args.no_score else ", .musicxml score")
        print(f"{piece.composer}: {bars} bars, {notes} notes -> {stem}.mid (+ {also}){listen}")
    played = "play the .mid files with any MIDI player" if args.no_audio else f"listen to the .wav files in {directory}"
    print(f"{len(pieces)} pieces in {time.perf_counter() - start:.0f} s; {played}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
