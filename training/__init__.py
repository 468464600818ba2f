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
