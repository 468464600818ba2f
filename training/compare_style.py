"""Compare how strongly models and guidance scales steer the style: the remedies of issue 13, side by side.

    python training/compare_style.py --model g2m_hf/default_model outputs/default_finetune \\
        --guidance 1 1.5 2 3 --sampling 1.1/0.99 1.0/0.95 --judge features=outputs/feature_classifier.safetensors

For every model, ``--sampling`` setting (temperature/top-p) and ``--guidance`` scale it generates ``--pieces`` pieces per composer (the same
seeds for every composer), lets every ``--judge`` name their composers, and prints one row: mean
recognition with its 95 % interval, the rate per composer, and the texture measures that show where a
style is missed. Judges: ``features=<file>`` (g2m_hf.evaluation.feature_classifier) or ``network=<folder>`` (a
sequence classifier, e.g. g2m_hf/default_classifier). Choose settings with one judge and report the
other: a judge that chose the setting flatters it. ``--output`` keeps every figure as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import datasets

from g2m_hf import G2MTokenizer, fileio
from g2m_hf.cli import arguments
from g2m_hf.errors import G2MError
from g2m_hf.evaluation import ComposerClassifier, SpanIndex
from g2m_hf.evaluation.style import DESCRIBED, describe, feature_judge, measure_style, network_judge
from g2m_hf.generation import load_model, load_tokenizer, trained_composers


def sampling(text: str) -> tuple[float, float]:
    """``TEMPERATURE/TOP_P`` (e.g. ``1.0/0.95``), each checked as `g2m-generate` checks it."""
    temperature, slash, top_p = text.partition("/")
    if not slash:
        raise argparse.ArgumentTypeError(f"{text} (not TEMPERATURE/TOP_P, e.g. 1.0/0.95)")
    return arguments.positive_float(temperature), arguments.probability(top_p)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = arguments.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", required=True, help="model folders (or Hub ids) to compare")
    parser.add_argument("--guidance", nargs="+", type=arguments.non_negative_float, default=[1.0], help="style guidance scales (default 1)")
    parser.add_argument("--sampling", nargs="+", type=sampling, default=[None], metavar="T/P",
                        help="temperature/top-p settings (default: the model's generation config)")
    parser.add_argument("--judge", nargs="+", required=True, metavar="KIND=PATH", help="features=FILE or network=FOLDER")
    parser.add_argument("--pieces", type=arguments.positive_int, default=12, help="pieces per composer and setting (default 12)")
    parser.add_argument("--max-events", type=arguments.positive_int, default=None, help="most events per piece (default: none, as g2m-generate)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=arguments.positive_int, default=12)
    parser.add_argument("--training-data", metavar="DATASET",
                        help="dataset folder whose train split the models learnt from: report the share of "
                        "generated 4-bar spans found in it (memorisation)")
    parser.add_argument("--output", type=arguments.output_file, help="JSON file for every figure")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    args = parser.parse_args(argv)
    for spec in args.judge:
        kind, _, path = spec.partition("=")
        if kind not in ("features", "network") or not path or not Path(path).exists():
            parser.error(f"--judge {spec}: give features=<existing file> or network=<existing folder>")
    if args.output and Path(args.output).exists() and not args.overwrite:
        parser.error(f"--output {args.output}: already exists (pass --overwrite to replace it)")
    if args.training_data and not (Path(args.training_data) / "dataset_dict.json").is_file():
        parser.error(f"--training-data {args.training_data}: not a dataset folder")
    return args


def load_judges(specs: Sequence[str]) -> dict:
    judges = {}
    for spec in specs:
        kind, _, path = spec.partition("=")
        judges[kind] = feature_judge(path) if kind == "features" else network_judge(ComposerClassifier.from_pretrained(path))
    return judges


def real_pieces_row(folder: str) -> str:
    """The `DESCRIBED` measures of the dataset's pieces, per composer."""
    tokenizer, splits = G2MTokenizer(), datasets.load_from_disk(folder)
    pieces: dict[str, list] = {}
    for split in splits.values():
        for composer, ids in zip(split["composer"], split["input_ids"]):
            pieces.setdefault(composer, []).append(tokenizer.ids_to_events(ids))
    measured = {composer: describe(events) for composer, events in sorted(pieces.items())}
    return " | ".join(f"{c[:4]} " + " ".join(f"{m[k]:.2f}" for k in DESCRIBED) for c, m in measured.items())


def row(model: str, setting: tuple[float, float] | None, guidance: float, result: dict) -> str:
    cells = [model, "default" if setting is None else "%g/%g" % setting, f"{guidance:g}"]
    for name, summary in result["recognition"].items():
        low, high = summary["mean_ci95"]
        rates = " ".join(f"{c[:4]} {e['rate']:.2f}" for c, e in summary["per_composer"].items() if e["rate"] is not None)
        cells.append(f"{name}: {summary['mean']:.2f} [{low:.2f}, {high:.2f}] ({rates})")
    if "copied_spans" in result:
        cells.append(f"copied 4-bar spans {result['copied_spans']['copied']}/{result['copied_spans']['spans']}")
    for composer, measures in result["described"].items():
        cells.append(f"{composer[:4]} " + " ".join(f"{measures[m]:.2f}" for m in DESCRIBED if measures[m] is not None))
    return " | ".join(cells)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results = []
    try:
        judges = load_judges(args.judge)
        training_pieces = (
            SpanIndex.from_ids(datasets.load_from_disk(args.training_data)["train"]["input_ids"], G2MTokenizer())
            if args.training_data else None
        )  # every 4-bar span of the pieces the models learnt from
        if args.training_data:  # what real pieces of each composer measure, to read the rows against
            print("real pieces (all splits) | " + real_pieces_row(args.training_data))
        print("model | temperature/top-p | guidance | judge: mean recognition [95% interval] (per composer) | per composer: " + " ".join(DESCRIBED))
        for model_name in args.model:
            tokenizer, model = load_tokenizer(model_name), load_model(model_name)
            composers = trained_composers(tokenizer, model_name)
            for setting, guidance in itertools.product(args.sampling, args.guidance):
                temperature, top_p = setting or (None, None)  # None: the model's generation config
                result = measure_style(
                    model, tokenizer, composers, judges, pieces_per_composer=args.pieces, seed=args.seed,
                    training_pieces=training_pieces, max_events=args.max_events, batch_size=args.batch_size,
                    style_guidance=guidance, temperature=temperature, top_p=top_p,
                )  # fmt: skip
                results.append({"model": model_name, "guidance": guidance, **result})
                print(row(model_name, setting, guidance, result), flush=True)
    except G2MError as error:
        print(f"compare_style: error: {error}", file=sys.stderr)
        return 2
    if args.output:
        fileio.write_text(args.output, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
