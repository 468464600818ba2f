"""Training G2M models with the Hugging Face `Trainer` (SPEC §4, §6).

Scripts (each also a console command once installed):

* ``pretrain.py`` (``g2m-pretrain``) - the general pretraining;
* ``finetune.py`` (``g2m-finetune``) - composer fine-tuning, ``--mode full`` (the paper) or ``peft``;
* ``train_classifier.py`` (``g2m-train-classifier``) - the composer classifier of the evaluation;
* ``build_dataset.py`` - encode a MIDI folder or the music21 corpus into a dataset folder.

Shared modules: ``config`` (YAML recipes and overrides), ``common`` (command line, TrainingArguments,
the run and its outputs), ``datasource`` (dataset folder or build spec), ``trainer`` (`G2MTrainer`,
resumable collator randomness, balanced sampling) and ``record`` (``training_record.json``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

TRAIN_EXTRA_MODULES = frozenset({"datasets", "accelerate", "peft", "music21", "tensorboard", "yaml", "sklearn", "scipy",
                                 "matplotlib"})
"""Top-level modules that the ``train`` extra installs (setup.cfg)."""


def _console_script(module: str, prog: str) -> Callable[[], int]:
    """The entry point of a training script: its ``cli()``, or, when the ``train`` extra is missing, one
    line that says to install it (the scripts import datasets, accelerate... at their top)."""

    def run() -> int:
        try:
            script = importlib.import_module(module)
        except ModuleNotFoundError as error:
            if (error.name or "").partition(".")[0] not in TRAIN_EXTRA_MODULES:
                raise
            print(f'{prog}: error: training needs {error.name}, which is not installed: pip install "g2m_hf[train]"',
                  file=sys.stderr)
            return 2
        return script.cli()

    return run


pretrain_cli = _console_script("training.pretrain", "g2m-pretrain")
finetune_cli = _console_script("training.finetune", "g2m-finetune")
train_classifier_cli = _console_script("training.train_classifier", "g2m-train-classifier")
