"""`g2m-generate`: sample composer-style pieces and write MIDI, event lists, piano rolls (and scores, audio)."""

from __future__ import annotations

import argparse
import sys

from .. import extras
from ..errors import AudioError, G2MError
from ..generation import (
    PROMPT_FROM,
    WEIGHT_DTYPES,
    check_generation_options,
    check_prompt_room,
    generate_midi,
    load_model_as,
    load_tokenizer,
    output_stem,
    prompt_ids,
    trained_composers,
    write_piece,
)
from ..vocab import TEMPO_CLASSES, TIME_SIGNATURES
from . import arguments

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
    parser.add_argument("--temperature", type=arguments.positive_float, default=None,
                        help="sampling temperature (default: the model's generation config)")
    parser.add_argument("--top-p", type=arguments.probability, default=None,
                        help="nucleus probability (default: the model's generation config)")
    parser.add_argument(
        "--style-guidance", type=arguments.non_negative_float, default=None, metavar="S",
        help="classifier-free guidance on the composer: 1 = none, larger = a stronger style "
        "(default: the model's generation config, else 1)",
    )
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
    parser.add_argument("--output-dir", type=arguments.output_dir, default="generated",
                        help="where to write the files (default ./generated)")
    parser.add_argument("--audio", action="store_true",
                        help="also write <composer>_<n>.wav, rendered with the General MIDI SoundFont of pretty_midi")
    parser.add_argument("--score", action="store_true",
                        help="also write <composer>_<n>.musicxml, a two-staff piano score (MuseScore, Finale, Dorico, Sibelius)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files instead of picking new names")
    parser.add_argument(
        "--dtype", choices=WEIGHT_DTYPES, default="int8",
        help="weights: int8 (default: dynamic quantization, about 1.4x float32's speed per step on CPU, next-token "
             "distributions within 0.03 of float32's, the same style figures; docs/speed.md), float32, or bfloat16",
    )
    return parser


def _option(name: str) -> str:
    """The option of a `generate_midi` argument: ``max_bars`` -> ``--max-bars``."""
    return "--" + name.replace("_", "-")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.audio:  # a missing extra is named before any work, in one line
            for module in extras.AUDIO_MODULES:
                extras.require(module, "audio", "--audio")
        if args.score:
            extras.require("music21", "notation", "--score")
        check_generation_options(
            args.bars, args.duration, args.tempo, args.time_signature, args.fixed_time_signature, args.prompt_midi,
            args.prompt_from, args.prompt_bars, args.max_bars, args.max_events, spell=_option,
        )
        # Check the request against the tokenizer before loading the weights: bad input fails fast.
        tokenizer = load_tokenizer(args.model)
        wants_all = [c.lower() for c in args.composer] == ["all"]
        composers = trained_composers(tokenizer, args.model) if wants_all else args.composer
        for composer in composers:
            tokenizer.composer_token(composer)  # VocabularyError listing the known composers
        if args.prompt_midi is not None:
            prompt = prompt_ids(tokenizer, composers[0], args.prompt_midi, args.prompt_bars, args.prompt_from)  # RemiError
            check_prompt_room(tokenizer, [prompt], args.bars, args.max_events, spell=_option)
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
            temperature=args.temperature,
            top_p=args.top_p,
            style_guidance=args.style_guidance,
            progress=True,
        )
    except (G2MError, FileNotFoundError) as error:
        return arguments.fail(PROG, error)

    directory = args.output_dir
    directory.mkdir(parents=True, exist_ok=True)
    piano_roll = extras.available("matplotlib")
    if not piano_roll:
        print(f"{PROG}: no piano rolls (.png) without matplotlib: pip install \"g2m_hf[notation]\"", file=sys.stderr)
    taken: set[str] = set()
    for piece in pieces:
        stem = output_stem(directory, piece.composer, taken, args.overwrite)
        try:
            write_piece(piece, stem, audio=args.audio, piano_roll=piano_roll, score=args.score)
        except AudioError as error:  # a piece without notes: its other files are written, it has no sound
            print(f"{PROG}: no WAV for {stem}.mid: {error}", file=sys.stderr)
        bars = piece.events.count("Bar_None")
        print(f"{stem}.mid  {len(piece.events)} events, {bars} bars")
    return 0


if __name__ == "__main__":
    sys.exit(main())
