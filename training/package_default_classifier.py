"""Assemble the bundled composer classifiers (``g2m_hf/default_classifier``) and state their held-out accuracy.

    python training/package_default_classifier.py --classifier outputs/default_classifier \\
        --features outputs/feature_classifier.safetensors --data data/mastery --output g2m_hf/default_classifier

A step of ``training/build_default_model.sh``. It copies the Transformer classifier's final files
(training/train_classifier.py with configs/default_classifier.yaml) and the feature classifier
(training/fit_feature_classifier.py) into one folder, classifies every piece of the dataset's ``test``
split with both — pieces that neither training nor checkpoint selection saw — and writes the results
(``evaluation.json``, a confusion matrix PNG per classifier) and the card ``README.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from g2m_hf import G2MTokenizer, fileio
from g2m_hf.cli import arguments
from g2m_hf.evaluation import (
    FEATURE_CLASSIFIER_FILE,
    ComposerClassifier,
    FeatureComposerClassifier,
    Recognition,
    feature_judge,
    judge_excerpts,
    network_judge,
)
from g2m_hf.model_card import CardSection, build_card, markdown_table
from g2m_hf.plotting import plot_confusion_matrix
from training.bundle import (
    EVALUATION_JSON,
    card_metadata,
    check_training_output,
    copy_model_files,
    recognition_row,
    refuse_to_replace,
)
from training.common import main_guard
from training.errors import ConfigError
from training.record import RECORD_NAME

CONFUSION_PNG = {"network": "confusion_matrix.png", "features": "feature_confusion_matrix.png"}
JUDGE_NAMES = {"network": "Transformer classifier (SPEC §6)", "features": "feature classifier (logistic regression)"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = arguments.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classifier", required=True, help="output folder of training/train_classifier.py")
    parser.add_argument("--features", required=True, help="file written by training/fit_feature_classifier.py")
    parser.add_argument("--data", required=True, help="the dataset both were trained on (its test split is measured)")
    parser.add_argument("--output", default="g2m_hf/default_classifier", help="the folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    return parser.parse_args(argv)


def held_out_accuracy(folder: Path, data: Path) -> dict[str, Any]:
    """Both classifiers' `Recognition` summaries on the test pieces of ``data``: one label per piece (``judges``)
    and one per excerpt of `evaluation.EXCERPT_BARS` bars (``excerpts``: what they are asked about generated pieces)."""
    splits = datasets.load_from_disk(str(data))
    if "test" not in splits:
        raise ConfigError(f"{data}: no test split (build it with --test-fraction)")
    network = ComposerClassifier.from_pretrained(folder)
    features = FeatureComposerClassifier.load(folder / FEATURE_CLASSIFIER_FILE)
    tokenizer = G2MTokenizer.from_pretrained(folder)
    test = splits["test"].filter(lambda composer: composer in network.labels, input_columns="composer")
    pieces = [tokenizer.ids_to_events(ids) for ids in test["input_ids"]]
    truth = list(test["composer"])
    predicted = {
        "network": network.predict([network.encode(events) for events in pieces]),
        "features": features.predict(pieces),
    }
    return {
        "split": "test",
        "pieces": len(pieces),
        "network_max_events": network.max_events,
        "judges": {name: Recognition.count(truth, labels, network.labels).summary() for name, labels in predicted.items()},
        "excerpts": judge_excerpts(list(zip(truth, pieces)),
                                   {"network": network_judge(network), "features": feature_judge(features)}, network.labels),
    }


def weak_classes(judges: dict[str, dict[str, Any]]) -> str:
    """A sentence naming, per judge, the composers it recognised in fewer than 80 % of their test pieces."""
    weak = {
        JUDGE_NAMES[name]: [c for c, e in summary["per_composer"].items() if e["rate"] is not None and e["rate"] < 0.8]
        for name, summary in judges.items()
    }
    named = [f"the {judge} {' and '.join(composers)}" for judge, composers in weak.items() if composers]
    if not named:
        return "Both recognise at least 80 % of every composer's test pieces."
    return f"Below 80 % of a composer's test pieces: {'; '.join(named)} - read its figures for them with care."


def card_sections(evaluation: dict[str, Any], record: dict[str, Any]) -> list[CardSection]:
    """What the classifiers are, how they were trained, their held-out accuracy and how to use them."""
    judges = evaluation["judges"]
    labels = judges["network"]["labels"]
    rows = []
    for name, summary in judges.items():
        cells = [f"{e['recognised']}/{e['pieces']}" for e in summary["per_composer"].values()]
        correct = sum(e["recognised"] for e in summary["per_composer"].values())
        low, high = summary["pooled_ci95"]
        rows.append([JUDGE_NAMES[name], *cells, f"{correct / evaluation['pieces']:.2f} [{low:.2f}, {high:.2f}]"])
    table = markdown_table(["classifier", *labels, "accuracy [95 % interval]"], rows)
    excerpts = evaluation["excerpts"]
    excerpt_rows = [recognition_row(JUDGE_NAMES[name], summary) for name, summary in excerpts["recognition"].items()]
    excerpt_table = markdown_table(["classifier", *labels, "mean of the composers' rates [95 % interval]"], excerpt_rows)
    shape = record["model"]
    bars = record.get("recipe", {}).get("classifier", {}).get("validation_excerpt_bars")
    chosen_on = f" (the mean of the composers' rates on their {bars}-bar excerpts)" if bars else ""
    init_from = record.get("recipe", {}).get("classifier", {}).get("init_from")
    start = (f"its layers start from `{init_from}`, the generator pretrained on the general corpus, so it learns the "
             "composers on top of what music in general looks like"
             if init_from else "trained from random weights")
    data = record.get("data", {})
    trained = ", ".join(f"{name} {count}" for name, count in data.get("composers", {}).items())
    return [
        CardSection("Two judges", f"""- `model.safetensors` (+ config and tokenizer): the paper's composer classifier (SPEC §6) at
  CPU size, a {shape['num_hidden_layers']}-layer, {shape['hidden_size']}-wide bidirectional Transformer encoder reading a piece's first
  {evaluation['network_max_events']} events without its composer token, classifying from the first position;
  {start}.
- `{FEATURE_CLASSIFIER_FILE}`: an independent second judge, a logistic regression on 38 score features
  of 8-bar windows (texture density, note values, beat positions, pitch range and tonality, top-voice
  motion; `g2m_hf.evaluation.FeatureComposerClassifier`).

They share only their training pieces. The bundled generator's default style guidance was chosen
with the feature classifier (`training/compare_style.py`), so the Transformer classifier is the judge no
choice was made with; README reports both."""),
        CardSection("Data", f"""The music21 corpus's Bach, Beethoven and Mozart works
(`training/build_dataset.py --music21 --composers bach beethoven mozart --test-fraction 0.2`), split by
piece per composer: training pieces {trained}; validation pieces chose the Transformer's checkpoint{chosen_on};
the test pieces ({evaluation['pieces']}) were seen by nothing before this measurement. Bach is mostly
four-part chorales, Beethoven and Mozart string quartet and sonata movements."""),
        CardSection("Held-out accuracy by piece", f"""{table}

Confusion matrices on the test pieces: `{CONFUSION_PNG['network']}`, `{CONFUSION_PNG['features']}`.
The test set is small for Beethoven and Mozart (a few pieces each, as the corpus has few), so their
rates are uncertain; the interval is the Wilson interval of the pooled count. {weak_classes(judges)}"""),
        CardSection(f"Held-out accuracy by {excerpts['bars']}-bar excerpt", f"""The same test pieces cut into consecutive
excerpts of {excerpts['bars']} bars, the length of the generated pieces the judges are asked about
(`g2m_hf.evaluation.judge_excerpts`; {', '.join(f'{c} {n}' for c, n in excerpts['excerpts'].items())} excerpts):

{excerpt_table}

The mean gives each composer the same weight; its interval is `Recognition.mean_interval`'s. Excerpts of one
piece are not independent, so read the intervals as narrower than they should be."""),
        CardSection("Use", """```bash
g2m-evaluate --generated generated/ --classifier default --output-dir report/
```

```python
from g2m_hf import default_classifier_path
from g2m_hf.evaluation import ComposerClassifier, FeatureComposerClassifier, FEATURE_CLASSIFIER_FILE

network = ComposerClassifier.from_pretrained(default_classifier_path())
features = FeatureComposerClassifier.load(default_classifier_path() / FEATURE_CLASSIFIER_FILE)
network.predict([network.encode(events)]), features.predict([events])   # events: a REMI event list
```"""),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    classifier, output = Path(args.classifier), Path(args.output)
    refuse_to_replace(output, "the bundled classifier", args.overwrite)
    check_training_output(classifier, "training/train_classifier.py")
    with fileio.atomic_directory(output, replace=True) as stage:  # the bundled folder is replaced only when all is done
        copy_model_files(classifier, stage)
        shutil.copy2(args.features, stage / FEATURE_CLASSIFIER_FILE)
        evaluation = held_out_accuracy(stage, Path(args.data))
        (stage / EVALUATION_JSON).write_text(json.dumps(evaluation, indent=1) + "\n", encoding="utf-8")
        for name, summary in evaluation["judges"].items():
            plot_confusion_matrix(
                summary["confusion_matrix"], summary["labels"], stage / CONFUSION_PNG[name],
                title=f"{JUDGE_NAMES[name]}, test pieces", row_title="true composer",
            )  # fmt: skip
        record = json.loads((stage / RECORD_NAME).read_text(encoding="utf-8"))
        summary = """Composer classifiers for Bach, Beethoven and Mozart, bundled with `g2m_hf` to judge whether
generated music is recognisably in the prompted composer's style (`g2m_hf.default_classifier_path()`)."""
        sections = card_sections(evaluation, record)
        build_card(card_metadata("text-classification"), "g2m_hf default composer classifiers", summary, sections).save(
            stage / "README.md"
        )
    for name, summary in evaluation["judges"].items():
        rates = ", ".join(f"{c} {e['recognised']}/{e['pieces']}" for c, e in summary["per_composer"].items())
        print(f"{JUDGE_NAMES[name]}: test pieces recognised {rates}")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
