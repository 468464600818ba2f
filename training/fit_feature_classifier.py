"""Fit the feature composer classifier (g2m_hf.evaluation.feature_classifier) on a dataset's training pieces.

    python training/fit_feature_classifier.py --dataset data/mastery --output outputs/feature_classifier.safetensors

The second judge of style, independent of the Transformer classifier (SPEC §6): a logistic regression on
score features of 8-bar windows. Fitted on the ``train`` split of a dataset from training/build_dataset.py
(every composer-labelled piece; general pieces are left out), it prints and saves (``<output>.json``) its
accuracy by piece on the ``test`` split (or ``validation`` when the dataset has no test split).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import datasets

from g2m_hf import G2MTokenizer, fileio
from g2m_hf.cli import arguments
from g2m_hf.errors import G2MError
from g2m_hf.evaluation.feature_classifier import FeatureComposerClassifier
from g2m_hf.evaluation.recognition import Recognition
from g2m_hf.vocab import NO_COMPOSER


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = arguments.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset folder (train / validation[ / test])")
    parser.add_argument("--output", required=True, type=arguments.output_file,
                        help="the classifier file to write (.safetensors; its report goes beside it as .json)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing classifier file")
    parser.add_argument("--labels", nargs="+", help="composers to tell apart (default: every composer of the data)")
    parser.add_argument("--tokenizer", help="tokenizer folder the dataset was encoded with (default: the complete vocabulary)")
    args = parser.parse_args(argv)
    if not (Path(args.dataset) / "dataset_dict.json").is_file():
        parser.error(f"--dataset {args.dataset}: not a dataset folder (build one with training/build_dataset.py)")
    if Path(args.output).exists() and not args.overwrite:
        parser.error(f"--output {args.output}: already exists (pass --overwrite to replace it)")
    return args


def labelled_pieces(split: datasets.Dataset, tokenizer: G2MTokenizer, labels: Sequence[str]) -> tuple[list, list]:
    """The event lists and composers of the split's pieces of ``labels``."""
    keep = [i for i, composer in enumerate(split["composer"]) if composer in labels]
    rows = split.select(keep)
    return [tokenizer.ids_to_events(ids) for ids in rows["input_ids"]], list(rows["composer"])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        splits = datasets.load_from_disk(args.dataset)
        tokenizer = G2MTokenizer.from_pretrained(args.tokenizer) if args.tokenizer else G2MTokenizer()
        labels = args.labels or sorted(set(splits["train"]["composer"]) - {NO_COMPOSER})
        pieces, composers = labelled_pieces(splits["train"], tokenizer, labels)
        classifier = FeatureComposerClassifier.fit(pieces, composers)
        held_out_split = "test" if "test" in splits else "validation"
        held_out, truth = labelled_pieces(splits[held_out_split], tokenizer, labels)
        summary = Recognition.count(truth, classifier.predict(held_out), classifier.labels).summary()
    except G2MError as error:
        print(f"fit_feature_classifier: error: {error}", file=sys.stderr)
        return 2
    output = Path(args.output)
    classifier.save(output)
    summary = {"split": held_out_split, "training_pieces": len(pieces), **summary}
    fileio.write_text(output.with_suffix(".json"), json.dumps(summary, indent=2) + "\n")
    rates = ", ".join(f"{label} {entry['recognised']}/{entry['pieces']}" for label, entry in summary["per_composer"].items())
    print(f"fitted on {len(pieces)} pieces; {held_out_split} pieces recognised: {rates}; saved to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
