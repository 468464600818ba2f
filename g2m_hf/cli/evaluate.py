"""`g2m-evaluate`: the paper's objective metrics and composer recognition for folders of MIDI files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import extras
from ..errors import G2MError
from ..evaluation import (
    DEFAULT_SI_MAX_SECONDS,
    check_output_dir,
    default_classifier_path,
    evaluate_folders,
    write_report,
)
from . import arguments

PROG = "g2m-evaluate"


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.ArgumentParser(
        prog=PROG,
        description="Compute the paper's metrics H, GS and SI (as in MusDr) for every .mid file under the "
        "folders and, with a composer classifier, how often generated pieces are recognised as their prompted "
        "composer (from the file name <composer>_<n>.mid or the event list g2m-generate writes beside it). "
        "Writes report.json, report.md and PNG plots into --output-dir.",
    )
    parser.add_argument("--generated", required=True, type=arguments.existing_dir, metavar="DIR",
                        help="folder of generated .mid files (recursive)")
    parser.add_argument("--reference", type=arguments.existing_dir, metavar="DIR",
                        help="folder of real pieces to compare with (recursive)")
    parser.add_argument(
        "--classifier",
        metavar="PATH",
        help="composer classifier: a folder (or Hub id) loadable with AutoModelForSequenceClassification, "
        "or 'default': the classifier bundled with the package (Bach, Beethoven, Mozart)",
    )
    parser.add_argument("--output-dir", required=True, type=arguments.output_dir, metavar="OUT",
                        help="where report.json/.md and plots go")
    parser.add_argument("--overwrite", action="store_true", help="replace a report already in --output-dir")
    parser.add_argument(
        "--si-max-seconds",
        type=arguments.non_negative_float,
        default=DEFAULT_SI_MAX_SECONDS,
        metavar="S",
        help=f"compute SI on at most the first S seconds of a piece (default {DEFAULT_SI_MAX_SECONDS:g}; "
        "0: whole pieces, slow for long ones)",
    )
    parser.add_argument("--batch-size", type=arguments.positive_int, default=8,
                        help="pieces per classifier batch (default 8)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        for module in ("scipy", "matplotlib"):  # the intervals and the plots: refused now, not after the long run
            extras.require(module, "eval", PROG)
        check_output_dir(args.output_dir, args.overwrite)  # refuse before the long run, not after it
        classifier = default_classifier_path() if args.classifier == "default" else args.classifier
        report = evaluate_folders(
            args.generated,
            args.reference,
            classifier,
            si_max_seconds=args.si_max_seconds or None,
            batch_size=args.batch_size,
        )
        written = write_report(report, args.output_dir, overwrite=args.overwrite)
    except G2MError as error:
        return arguments.fail(PROG, error)

    summary = report["summary"]
    for set_name in ("generated", "reference"):
        if set_name in summary:
            means = summary[set_name]["metrics"]
            text = "  ".join(
                f"{name} {stats['mean']:.3f}" for name, stats in means.items() if stats["mean"] is not None
            )
            print(f"{set_name}: {summary[set_name]['count']} pieces  {text}")
            if "classifier" in summary[set_name] and summary[set_name]["classifier"]["accuracy"] is not None:
                print(f"{set_name}: recognised as their composer {summary[set_name]['classifier']['accuracy']:.3f}")
    if report["skipped"]:
        print(f"skipped {len(report['skipped'])} unreadable files (listed in the report)")
    print(f"report: {Path(args.output_dir) / 'report.md'} ({len(written)} files written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
