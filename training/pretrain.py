"""Pretrain a G2M decoder on a general corpus: the "generality" stage of the paper (SPEC §4).

    python training/pretrain.py --config configs/pretrain.yaml
    python training/pretrain.py --config configs/smoke_pretrain.yaml --set output_dir=/tmp/smoke --max_steps 5
    torchrun --nproc_per_node 4 training/pretrain.py --config configs/pretrain.yaml
    accelerate launch --multi_gpu --num_processes 4 training/pretrain.py --config configs/pretrain.yaml
    python training/pretrain.py --config configs/pretrain.yaml --resume        # continue after an interruption

Recipe sections (see ``configs/pretrain.yaml``):

``tokenizer``
    None (the complete default vocabulary), a tokenizer folder, or an original ``dictionary.pkl``.
``data``
    A dataset folder or a build spec, window length and collator options (``training.datasource``).
``model``
    `G2MConfig` keyword arguments; vocabulary size and special ids come from the tokenizer. The paper
    pretrains without style adapters (``style_adapter_layers: []``); fine-tuning adds them.
``training``
    `TrainingArguments` (Adam = ``adamw_torch`` with ``weight_decay: 0``, warmup then
    ``cosine_with_min_lr``, clipping ``max_grad_norm``, ``bf16: auto``).

The output folder is a model folder (``from_pretrained``) with the tokenizer, a generation config
with the original's sampling, ``training_record.json``, ``recipe.yaml`` and TensorBoard logs in ``runs/``.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from transformers import set_seed

from g2m_hf import G2MForCausalLM
from training.common import (
    build_training_arguments,
    load_tokenizer,
    main_guard,
    model_config,
    parse_command_line,
    resolve_resume,
    setup_logging,
    spec_generation_config,
    train_language_model,
)
from training.config import section
from training.datasource import add_collator_tokens, load_training_data


def main(argv: Sequence[str] | None = None, callbacks: Sequence[Any] = ()) -> dict:
    """Run a pretraining recipe; returns the final evaluation metrics.

    ``callbacks`` are extra `TrainerCallback` objects (progress hooks, early stopping...).
    """
    invocation = parse_command_line(argv, "Pretrain a G2M decoder on a general corpus (SPEC §4).")
    recipe = invocation.recipe
    resume = resolve_resume(recipe["output_dir"], invocation.resume, invocation.overwrite)
    args = build_training_arguments(recipe)
    setup_logging(args)
    set_seed(args.seed)  # before the model is built: its initialisation is part of the run

    tokenizer = load_tokenizer(recipe.get("tokenizer"))
    config = model_config(section(recipe, "model"), tokenizer)  # a bad model section fails before the data work
    with args.main_process_first(desc="loading the dataset"):  # the first process builds, the others read the cache
        data = load_training_data(invocation.data, tokenizer)
    if add_collator_tokens(tokenizer, invocation.data):  # infill tokens, after any composers the data added
        config = model_config(section(recipe, "model"), tokenizer)
    model = G2MForCausalLM(config)
    model.generation_config = spec_generation_config(model.config)
    return train_language_model(invocation, args, resume, model, tokenizer, data, task="pretrain", callbacks=callbacks)


def cli() -> int:
    """Console-script entry point (``g2m-pretrain``)."""
    return main_guard(main)


if __name__ == "__main__":
    sys.exit(cli())
