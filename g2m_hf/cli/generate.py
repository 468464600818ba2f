"""`g2m-generate`: sample composer-style pieces and write MIDI, event lists, piano rolls (and scores, audio)."""

from __future__ import annotations

import argparse
import sys

from ..errors import G2MError
from ..generation import (
    PROMPT_FROM,
    check_generation_options,
    check_prompt_room,
    generate_midi,
    load_model_as,
    load_tokenizer,
    prompt_ids,
    trained_composers,
)
from ..vocab import TEMPO_CLASSES, TIME_SIGNATURES
from . import arguments
from . import pieces as pieces_cli

PROG = "g2m-generate"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(
        prog=PROG,
        description="Generate piano pieces in a composer's style (grammar-constrained, batched sampling). "
        "Writes <composer>_<n>.mid, the event list (.txt), a piano roll (.png, with the notation extra), "
        "with --score a MusicXML score (.musicxml) and with --audio a .wav per piece.",
    )
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the bundled model)")
    parser.add_argument(
        "--composer", nargs="+", default=["all"], metavar="NAME",
        help="one or more of the tokenizer's composers (case-insensitive), 'None' for no style, "
        "or 'all' (default): those the model was fine-tuned on",
    )
    parser.add_argument("--num-pieces", type=arguments.positive_int, default=1, help="pieces per composer (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same pieces")
    arguments.add_sampling_options(parser)
    arguments.add_texture_options(parser)
    length = parser.add_argument_group("length and form (a piece may be longer than the model's training window)")
    length.add_argument("--bars", type=arguments.positive_int, default=None, help="exactly this many bars per piece")
    length.add_argument("--duration", type=arguments.positive_float, default=None, metavar="SECONDS",
                        help="end each piece at the first bar line at or after this many seconds")
    length.add_argument("--max-bars", type=arguments.positive_int, default=128,
                        help="most bars per piece without --bars or --duration (default 128)")
    length.add_argument("--max-events", type=arguments.positive_int, default=None,
                        help="most events per piece (default: no limit)")
    length.add_argument("--tempo", type=int, choices=TEMPO_CLASSES, default=None,
                        help="tempo class in BPM (default: the model's choice)")
    length.add_argument("--time-signature", choices=TIME_SIGNATURES, default=None, metavar="N/D",
                        help=f"the first bar's time signature: {', '.join(TIME_SIGNATURES)} (default: the model's choice)")
    length.add_argument("--fixed-time-signature", action="store_true", help="every bar in --time-signature")
    prompt = parser.add_argument_group("continuing a MIDI file")
    prompt.add_argument("--prompt-midi", type=arguments.existing_file, default=None, help="continue this MIDI file")
    prompt.add_argument("--prompt-from", choices=PROMPT_FROM, default="end",
                        help="end (default): the whole file, then new bars; start: its first --prompt-bars bars")
    prompt.add_argument("--prompt-bars", type=arguments.positive_int, default=None,
                        help="with --prompt-from start: bars to keep (default 4)")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=4,
                        help="pieces sampled together (default 4)")
    pieces_cli.add_piece_output_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pieces_cli.require_output_extras(args)  # a missing extra is named before any work, in one line
        check_generation_options(
            args.bars, args.duration, args.tempo, args.time_signature, args.fixed_time_signature, args.prompt_midi,
            args.prompt_from, args.prompt_bars, args.max_bars, args.max_events, spell=arguments.option_name,
        )
        # Check the request against the tokenizer before loading the weights: bad input fails fast.
        tokenizer = load_tokenizer(args.model)
        wants_all = [c.lower() for c in args.composer] == ["all"]
        composers = trained_composers(tokenizer, args.model) if wants_all else args.composer
        for composer in composers:
            tokenizer.composer_token(composer)  # VocabularyError listing the known composers
        if args.prompt_midi is not None:
            prompt = prompt_ids(tokenizer, composers[0], args.prompt_midi, args.prompt_bars, args.prompt_from)  # RemiError
            check_prompt_room(tokenizer, [prompt], args.bars, args.max_events, spell=arguments.option_name)
        sampling = arguments.sampling_keywords(args, tokenizer)
        model = load_model_as(args.model, args.dtype)
        pieces = generate_midi(
            model,
            tokenizer,
            composers=composers,
            num_pieces=args.num_pieces,
            seed=args.seed,
            prompt_midi=args.prompt_midi,
            prompt_bars=args.prompt_bars,
            prompt_from=args.prompt_from,
            bars=args.bars,
            duration=args.duration,
            tempo=args.tempo,
            time_signature=args.time_signature,
            fixed_time_signature=args.fixed_time_signature,
            max_bars=args.max_bars,
            max_events=args.max_events,
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
