"""`g2m-infill`: rewrite bars in the middle of a MIDI file in a composer's style (bar infilling).

    g2m-infill piece.mid --bars 9-12 --composer mozart --num-pieces 3

Writes the same files as `g2m-generate` per rewritten piece (``<composer>_<n>.mid``, the event list, a
piano roll with the rewritten bars shaded, and with ``--audio`` a WAV): each holds the whole piece, the
kept bars unchanged.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import AudioError, G2MError
from ..generation import (
    WEIGHT_DTYPES,
    infill_midi,
    load_model_as,
    load_tokenizer,
    output_stem,
    prepare_infill,
    write_piece,
)
from ..infill import parse_bars
from ..vocab import TIME_SIGNATURES
from . import arguments

PROG = "g2m-infill"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(
        prog=PROG,
        description="Rewrite bars in the middle of a MIDI file in a composer's style; the model reads the bars on "
        "both sides. Writes <composer>_<n>.mid, the event list (.txt), a piano roll (.png) and with --audio a .wav "
        "per rewritten piece, each the whole piece.",
    )
    parser.add_argument("piece", type=arguments.existing_file, help="the MIDI file to rewrite bars of")
    parser.add_argument("--bars", required=True, metavar="FIRST-LAST",
                        help="the bars to rewrite, counted from 1, inclusive (9-12; a single bar: 9)")
    parser.add_argument("--composer", required=True, metavar="NAME",
                        help="the style of the new bars: one of the tokenizer's composers (case-insensitive)")
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the bundled model)")
    parser.add_argument("--num-pieces", type=arguments.positive_int, default=1, help="versions to write (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same pieces")
    parser.add_argument("--time-signature", choices=TIME_SIGNATURES, default=None, metavar="N/D",
                        help="the new bars' time signature (default: those of the bars they replace)")
    parser.add_argument("--temperature", type=arguments.positive_float, default=None,
                        help="sampling temperature (default: the model's generation config)")
    parser.add_argument("--top-p", type=arguments.probability, default=None,
                        help="nucleus probability (default: the model's generation config)")
    parser.add_argument("--style-guidance", type=arguments.non_negative_float, default=None, metavar="S",
                        help="classifier-free guidance on the composer: 1 = none, larger = a stronger style "
                        "(default: the model's generation config, else 1)")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=4,
                        help="versions sampled together (default 4)")
    parser.add_argument("--output-dir", type=arguments.output_dir, default="generated",
                        help="where to write the files (default ./generated)")
    parser.add_argument("--audio", action="store_true",
                        help="also write <composer>_<n>.wav, rendered with the General MIDI SoundFont of pretty_midi")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files instead of picking new names")
    parser.add_argument("--dtype", choices=WEIGHT_DTYPES, default="float32",
                        help="weights: float32 (default), bfloat16, or int8 (dynamic quantization, fastest on CPU)")
    return parser


def _option(name: str) -> str:
    """The option of an `infill_midi` argument: ``time_signature`` -> ``--time-signature``."""
    return "--" + name.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        bars = parse_bars(args.bars)
        # The request is checked against the tokenizer and the file before the weights are loaded.
        tokenizer = load_tokenizer(args.model)
        request = prepare_infill(tokenizer, args.piece, bars, args.composer, args.time_signature, spell=_option)
        model = load_model_as(args.model, args.dtype)
        pieces = infill_midi(
            model,
            tokenizer,
            args.piece,
            bars=request.bars,
            composer=request.composer,
            num_pieces=args.num_pieces,
            seed=args.seed,
            time_signature=args.time_signature,
            batch_size=args.batch_size,
            temperature=args.temperature,
            top_p=args.top_p,
            style_guidance=args.style_guidance,
            progress=True,
        )
    except (G2MError, FileNotFoundError) as error:
        return arguments.fail(PROG, error)

    directory = args.output_dir
    directory.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for piece in pieces:
        stem = output_stem(directory, piece.composer, taken, args.overwrite)
        try:
            write_piece(piece, stem, audio=args.audio)
        except AudioError as error:  # a piece without notes: its other files are written, it has no sound
            print(f"{PROG}: no WAV for {stem}.mid: {error}", file=sys.stderr)
        first, last = piece.infilled_bars
        print(f"{stem}.mid  {len(piece.events)} events, bars {first}-{last} rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
