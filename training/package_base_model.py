"""Assemble the bundled base model (``g2m_hf/default_base_model``) from the default pretraining run.

    python training/package_base_model.py --pretrained outputs/default_pretrain --output g2m_hf/default_base_model

The general model the bundled default model's recipe fine-tunes from (the paper's "generality" stage),
shipped so that fine-tuning a composer - the default three, or your own - starts from it instead of
from an hours-long pretraining. It

1. copies the pretraining output folder's final files (weights, config, generation config,
   tokenizer, training record, recipe; `training.bundle.SHIPPED_FILES`) and records that it was
   fine-tuned on no composer (``trained_composers: []``);
2. draws its training and validation losses into ``loss_curves.png``;
3. writes ``evaluation.json`` (how flat the validation loss ended, `g2m_hf.evaluation.convergence`)
   and the model card ``README.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from g2m_hf import fileio
from g2m_hf.cli import arguments
from g2m_hf.evaluation import convergence
from g2m_hf.model_card import CardSection, build_card
from g2m_hf.plotting import plot_loss_curves
from training.bundle import (
    EVALUATION_JSON,
    GENERAL_MATERIAL,
    LOSS_CURVES,
    card_metadata,
    check_training_output,
    copy_model_files,
    flatness,
    read_record,
    refuse_to_replace,
    stages_table,
)
from training.common import main_guard
from training.record import RECORD_NAME


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = arguments.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", required=True, type=arguments.existing_dir,
                        help="output folder of training/pretrain.py")
    parser.add_argument("--output", type=arguments.output_dir, default="g2m_hf/default_base_model",
                        help="the model folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    return parser.parse_args(argv)


def declare_no_composer(folder: Path) -> None:
    """Record that the base was fine-tuned on no composer: ``g2m-generate --composer all`` and the app offer
    it only ``Composer_None``, not the vocabulary's composers whose tokens it never trained."""
    # edited as JSON: G2MConfig.save_pretrained would add the remote-code files the bundled folders go without
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["trained_composers"] = []
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def card(record: dict[str, Any], evaluation: dict[str, Any]) -> tuple[str, list[CardSection]]:
    """The card's summary and sections: what the model is, how to use and fine-tune it, how it was trained."""
    window = record["recipe"]["data"]["max_length"]
    model = record["recipe"]["model"]
    parameters, minutes = record["model"]["parameters"] / 1e6, record["run"]["train_runtime_s"] / 60
    summary = f"""A Transformer decoder ({parameters:.1f}M parameters) that writes solo piano music
as REMI events (bars, beats, pitches, durations), pretrained on general material only: the first
("generality") stage of the Generality-to-Mastery recipe, before any composer is fine-tuned. The recipe of
the bundled default model (`g2m_hf.default_model_path()`, `configs/default_finetune.yaml`) fine-tunes
it on Bach, Beethoven and Mozart; start from here to fine-tune your own composers. It ships inside the
`g2m_hf` package, so it works offline:

```python
from g2m_hf import G2MForCausalLM, G2MTokenizer, default_base_model_path, generate_midi

model = G2MForCausalLM.from_pretrained(default_base_model_path()).eval()
tokenizer = G2MTokenizer.from_pretrained(default_base_model_path())
(piece,) = generate_midi(model, tokenizer, composers=[None], max_bars=16)   # Composer_None: no style asked
piece.midi.write("general.mid")
```

Fine-tune a composer from it (a folder of your MIDI files, one sub-folder per composer; `--mode peft`
trains a small LoRA adapter instead of every weight):

```bash
python training/finetune.py --config configs/finetune_small.yaml \\
    --set "finetune.pretrained=$(python -c 'import g2m_hf; print(g2m_hf.default_base_model_path())')" \\
    --set 'data.build={{source: my_midi, num_proc: 2}}' --set output_dir=outputs/my_composer
```"""
    training = f"""Pretrained from scratch on {GENERAL_MATERIAL}, on one machine with 2 CPU cores, by
`training/build_default_model.sh` (recipe `configs/default_pretrain.yaml`: {model['num_hidden_layers']} layers,
{model['hidden_size']} wide, {window}-event windows, one cosine schedule):

{stages_table({"pretraining": record})}

Losses are cross-entropy in nats per event (validation: every validation piece from its start);
`loss_curves.png` shows them and `training_record.json` keeps the full log and recipe. Over the last
quarter of the steps the validation loss went {flatness(evaluation['convergence'])}."""
    limits = f"""- A very small model trained for {minutes:.0f} minutes on 2 CPU cores, far from the paper's quality.
- It knows no composer: the vocabulary's composer tokens (`Composer_Bach`, ...) were never trained
  here, so prompt `Composer_None` (`composers=[None]`) or fine-tune first.
- Trained on windows of {window} events: longer pieces are generated with a sliding window of that length."""
    return summary, [CardSection("Training", training), CardSection("Limits", limits, level=3)]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    pretrained, output = Path(args.pretrained), Path(args.output)
    refuse_to_replace(output, "the base model", args.overwrite)
    check_training_output(pretrained, "training/pretrain.py")
    with fileio.atomic_directory(output, replace=True) as stage:  # the folder is replaced only when all is done
        copy_model_files(pretrained, stage)
        declare_no_composer(stage)
        record = read_record(stage / RECORD_NAME)
        plot_loss_curves({"pretraining (general corpus)": record["log_history"]}, stage / LOSS_CURVES)
        evaluation = {"convergence": {"pretraining": convergence(record)}}
        (stage / EVALUATION_JSON).write_text(json.dumps(evaluation, indent=1) + "\n", encoding="utf-8")
        summary, sections = card(record, evaluation)
        build_card(card_metadata(), "g2m_hf default base model", summary, sections).save(stage / "README.md")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main_guard(main))
