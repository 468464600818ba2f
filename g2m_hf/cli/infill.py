"""`g2m-infill`: rewrite bars in the middle of a MIDI file in a composer's style (bar infilling).

    g2m-infill piece.mid --bars 9-12 --composer mozart --num-pieces 3

Writes the same files as `g2m-generate` per rewritten piece (``<composer>_<n>.mid``, the event list, a
piano roll with the rewritten bars shaded, and with ``--audio`` a WAV): each holds the whole piece, the
kept bars unchanged.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import G2MError
from ..generation import (
    infill_midi,
    load_model_as,
    load_tokenizer,
    prepare_infill,
)
from ..infill import parse_bars
from ..vocab import TIME_SIGNATURES
from . import arguments
from . import pieces as pieces_cli

PROG = "g2m-infill"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(
        prog=PROG,
        description="Rewrite bars in the middle of a MIDI file in a composer's style; the model reads the bars on "
        "both sides. Writes <composer>_<n>.mid, the event list (.txt), a piano roll (.png) and with --audio a .wav "
        "and --score a .musicxml per rewritten piece, each the whole piece.",
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
    arguments.add_sampling_options(parser)
    arguments.add_texture_options(parser)
    parser.add_argument("--batch-size", type=arguments.positive_int, default=4,
                        help="versions sampled together (default 4)")
    pieces_cli.add_piece_output_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pieces_cli.require_output_extras(args)  # a missing extra is named before any work, in one line
        bars = parse_bars(args.bars)
        # The request is checked against the tokenizer and the file before the weights are loaded.
        tokenizer = load_tokenizer(args.model)
        request = prepare_infill(tokenizer, args.piece, bars, args.composer, args.time_signature, spell=arguments.option_name)
        sampling = arguments.sampling_keywords(args, tokenizer)
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
            progress=True,
            **sampling,
        )
    except (G2MError, FileNotFoundError) as error:
        return arguments.fail(PROG, error)

    pieces_cli.write_pieces(PROG, pieces, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
