r"""Build a training dataset from MIDI files, the music21 corpus or the original's published event files (SPEC §4, §8).

    python training/build_dataset.py --music21 --composers bach beethoven mozart chopin --output data/finetune
    python training/build_dataset.py --music21 --general --output data/pretrain --num-proc 2
    python training/build_dataset.py --music21 --general ryansMammoth essenFolksong --limit 100 --output data/folk
    python training/build_dataset.py --midi-dir my_midi --output data/mine   # sub-folders name the composers
    python training/build_dataset.py --original-events pretrain_score.zip --output data/pretrain  # or its folder
    python training/build_dataset.py --original-events huggingface_data.zip --categories bach chopin mozart beethoven \
        --tokenizer dictionary.pkl --output data/classifier

The output folder holds a `datasets.DatasetDict` (train / validation; read it back with
``datasets.load_from_disk``), ``build_report.json`` and ``skipped.json`` (every work that could not
be encoded, with the reason), and ``tokenizer/`` when ``--add-composers`` added composer tokens.
Conversions and encodings are cached, so a rebuild is quick.

``--original-events`` reads the event pickles the original authors published (a zip is read in place):
the rows are their events exactly, each piece's composer is its Composer event and its category the
folder holding its file; a piece with an event outside the tokenizer's vocabulary (``--tokenizer
dictionary.pkl``: the original ids) is skipped and listed in ``skipped.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from g2m_hf.cli import arguments
from g2m_hf.corpus import corpus_sources, midi_sources, original_event_sources
from g2m_hf.data import SKIPPED_REPORT, add_composers, build_dataset
from g2m_hf.errors import G2MError
from training.common import load_tokenizer

PROG = "build_dataset.py"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = arguments.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--midi-dir", type=arguments.existing_dir,
                        help="folder of MIDI files; first-level sub-folders name the composers")
    source.add_argument("--music21", action="store_true", help="the music21 corpus")
    source.add_argument(
        "--original-events", metavar="PATH", type=arguments.existing_path,
        help="the original's published event pickles: a zip (pretrain_score.zip...) or the folder it unpacks to",
    )
    parser.add_argument(
        "--composers", nargs="+", default=[], metavar="NAME",
        help="music21 collections labelled with their composer (bach, beethoven, mozart, chopin, schumann...)",
    )
    parser.add_argument(
        "--general", nargs="*", metavar="COLLECTION",
        help="general material (Composer_None): with --music21, the named collections, or with no name "
        "every collection not in --composers; with --midi-dir, every file",
    )
    parser.add_argument("--composer-map", type=arguments.existing_file,
                        help="CSV (path,composer[,category]) or JSON {path: composer} for --midi-dir")
    parser.add_argument("--output", required=True, type=arguments.output_dir, help="output folder of the dataset")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
    parser.add_argument(
        "--num-proc", type=arguments.positive_int, default=os.cpu_count(), help="worker processes (default: all cores)"
    )
    parser.add_argument("--limit", type=arguments.positive_int,
                        help="at most N works per collection / category (the first ones)")
    parser.add_argument(
        "--categories", nargs="+", metavar="NAME",
        help="with --original-events: only these category folders "
        "(the original classifier read bach chopin mozart beethoven)",
    )
    parser.add_argument(
        "--out-of-range", choices=("error", "drop", "octave"),
        help="a note outside 21..108: skip the piece (error, the default, as the original), drop the note, "
        "or move it by octaves",
    )
    parser.add_argument("--skip-drums", action="store_true", help="leave out MIDI channel 10")
    parser.add_argument(
        "--tokenizer", type=arguments.existing_path,
        help="tokenizer folder or original dictionary.pkl (default: the complete G2M vocabulary); "
        "pieces with events outside it are skipped",
    )
    parser.add_argument(
        "--add-composers", action="store_true",
        help="add composer labels the tokenizer lacks (e.g. a haydn/ sub-folder) as new composer tokens",
    )
    parser.add_argument("--cache-dir", type=arguments.output_dir,
                        help="cache of conversions and encodings (default: in the datasets cache)")
    parser.add_argument("--validation-fraction", type=arguments.fraction, default=0.03,
                        help="per category (default 0.03)")
    parser.add_argument(
        "--test-fraction", type=arguments.fraction, default=0.0,
        help="per category, also hold out a test split of reference pieces that training never sees (default 0)",
    )
    parser.add_argument("--seed", type=int, default=42, help="split seed (default 42)")
    args = parser.parse_args(argv)
    if args.midi_dir and args.composers:
        parser.error("--composers selects music21 collections; with --midi-dir, sub-folders or a --composer-map")
    if args.midi_dir and args.general:
        parser.error("with --midi-dir, --general takes no collection names")
    if args.music21 and args.composer_map:
        parser.error("--composer-map applies to --midi-dir")
    if args.music21 and not args.composers and args.general is None:
        parser.error("--music21 needs --composers and/or --general")
    if args.categories and not args.original_events:
        parser.error("--categories selects category folders of --original-events")
    if args.original_events:
        given = [flag for flag, dest in _MIDI_ONLY_OPTIONS.items() if getattr(args, dest) != parser.get_default(dest)]
        if given:
            parser.error(
                f"{', '.join(given)}: not with --original-events (each piece's Composer event labels it, "
                "and its events are used as published)"
            )
    return args


_MIDI_ONLY_OPTIONS = {
    "--composers": "composers",
    "--general": "general",
    "--composer-map": "composer_map",
    "--add-composers": "add_composers",
    "--out-of-range": "out_of_range",
    "--skip-drums": "skip_drums",
}
"""Options that label or convert MIDI / music21 works, meaningless for the original's event files."""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        tokenizer = load_tokenizer(args.tokenizer)
        if args.original_events:
            sources = original_event_sources(args.original_events, categories=args.categories, limit=args.limit)
        elif args.midi_dir:
            sources = midi_sources(
                args.midi_dir, composer_map=args.composer_map, general=args.general is not None, limit=args.limit
            )
        else:
            general = True if args.general == [] else (args.general or False)
            sources = corpus_sources(args.composers, general=general, limit=args.limit)
        added = add_composers(tokenizer, sources) if args.add_composers else []
        _, report = build_dataset(
            sources,
            tokenizer,
            args.output,
            num_proc=args.num_proc,
            cache_dir=args.cache_dir,
            validation_fraction=args.validation_fraction,
            test_fraction=args.test_fraction,
            seed=args.seed,
            overwrite=args.overwrite,
            remi_options={"out_of_range": args.out_of_range or "error", "skip_drums": args.skip_drums},
            save_tokenizer=bool(added),  # the dataset's ids need this tokenizer (its new composers in this order)
        )
    except G2MError as error:
        return arguments.fail(PROG, error)
    work = "encodings read from the cache" if report.encoding_cached else f"{report.conversions} music21 conversions"
    print(f"encoded {report.encoded} of {report.works} works, {report.tokens:,} tokens, in {report.seconds} s ({work})")
    print("splits: " + ", ".join(f"{name} {size}" for name, size in report.splits.items()))
    print("composers: " + ", ".join(f"{name} {count}" for name, count in report.composers.items()))
    if added:
        print(f"new composer tokens: {', '.join(added)}; tokenizer saved to {os.path.join(args.output, 'tokenizer')}")
    print(f"skipped {len(report.skipped)} works: {os.path.join(args.output, SKIPPED_REPORT)}")
    print(f"saved to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
