"""Fine-tune a pretrained G2M decoder on composer-labelled pieces: the "mastery" stage (SPEC §4).

    python training/finetune.py --config configs/finetune.yaml                 # the paper: all weights
    python training/finetune.py --config configs/finetune.yaml --mode peft     # LoRA + style adapters
    torchrun --nproc_per_node 4 training/finetune.py --config configs/finetune.yaml

Modes:

``full`` (the paper)
    Style adapters are added to the pretrained model (``finetune.style_adapter_layers``, newly
    initialised) and every weight is trained; adapter gradients are clipped to
    ``finetune.adapter_max_grad_norm`` (2.5) and the rest to ``training.max_grad_norm`` (0.5). The output
    is a complete model folder.
``peft``
    The pretrained weights stay frozen; LoRA matrices (``finetune.peft``: ``r``, ``lora_alpha``,
    ``lora_dropout``, ``target_modules``) and the style adapters (PEFT ``modules_to_save``) are trained.
    The output is a small PEFT adapter folder with the tokenizer; `load_peft_model` (or PEFT's own
    ``PeftModel.from_pretrained(base, folder)`` on a base loaded with the same ``style_adapter_layers``)
    loads it, ``merge_and_unload()`` turns it into a plain model, and several such folders can share
    one base (``load_adapter`` / ``set_adapter``).

Composers the pretrained tokenizer does not know (a folder of Haydn) are added as new tokens and the
embedding matrix grows. In ``peft`` mode the embedding rows of the fine-tuned composers train
(``trainable_token_indices``), the rest of the embedding stays frozen.
Batches are balanced over composers (``finetune.balanced``, default true).

With ``finetune.general_dataset``, windows of general pieces (``Composer_None``, e.g. the pretraining
data) are mixed in, ``general_share`` of the draws: the style adapters then learn what *no* composer
sounds like too, which classifier-free style guidance (``generate(style_guidance=...)``) pushes away
from. Validation stays on the composers' pieces.

Recipe section ``finetune``::

    finetune:
      pretrained: outputs/pretrain        # model folder (with its tokenizer) or Hub id
      mode: full                          # or peft; --mode overrides
      style_adapter_layers: [1, 3, 5, 7, 9]   # null: the checkpoint's own (to go on from a fine-tuned model)
      adapter_max_grad_norm: 2.5
      balanced: true                      # draw every composer equally often (with replacement)
      samples_per_epoch: null             # balanced draws per epoch (default: the training pieces)
      general_dataset: null               # a general (Composer_None) dataset folder to mix in, e.g. data/general
      general_share: 0.25                 # with general_dataset: the share of draws from its pieces
      peft: {r: 8, lora_alpha: 16, lora_dropout: 0.05, target_modules: [q_proj, k_proj, v_proj, o_proj]}
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from datasets import concatenate_datasets
from transformers import set_seed

from g2m_hf import G2MForCausalLM, G2MTokenizer
from g2m_hf.data import composer_balanced_weights
from g2m_hf.vocab import NO_COMPOSER
from training.common import (
    RECIPE_COPY_NAME,
    build_training_arguments,
    main_guard,
    parse_command_line,
    resolve_resume,
    setup_logging,
    spec_generation_config,
    train_language_model,
)
from training.config import DataSection, FinetuneSection, load_recipe, typed_section
from training.datasource import TrainingData, add_collator_tokens, load_training_data
from training.errors import ConfigError

MODES = ("full", "peft")
PEFT_DEFAULTS: dict[str, Any] = {
    "r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
}
"""LoRA settings when the recipe gives none: the attention projections, as is usual for LoRA."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=MODES, help="full: all weights (the paper); peft: LoRA + style adapters")


def main(argv: Sequence[str] | None = None, callbacks: Sequence[Any] = ()) -> dict:
    """Run a fine-tuning recipe; returns the final evaluation metrics.

    ``callbacks`` are extra `TrainerCallback` objects (progress hooks, early stopping...).
    """
    invocation = parse_command_line(argv, "Fine-tune a pretrained G2M decoder on composers.", add_arguments)
    recipe = invocation.recipe
    settings = invocation.finetune
    mode = invocation.options.mode or settings.mode
    if mode not in MODES:
        raise ConfigError(f"finetune.mode must be one of {MODES}, got {mode!r}")
    pretrained = settings.pretrained
    if not pretrained:
        raise ConfigError("recipe key finetune.pretrained (the pretrained model folder) is not set")
    recipe["finetune"]["mode"] = mode  # the record shows the mode actually used

    resume = resolve_resume(recipe["output_dir"], invocation.resume, invocation.overwrite)
    args = build_training_arguments(recipe)
    if settings.balanced and args.train_sampling_strategy != "random":
        # balanced batches are drawn by composer weight (G2MTrainer); another order would be ignored
        raise ConfigError(
            f"training.train_sampling_strategy {args.train_sampling_strategy!r} cannot order balanced "
            "fine-tuning (finetune.balanced: true draws batches by composer); remove it or set balanced: false"
        )
    setup_logging(args)
    set_seed(args.seed)

    try:
        tokenizer = G2MTokenizer.from_pretrained(pretrained)
    except OSError as error:
        raise ConfigError(
            f"finetune.pretrained {pretrained}: not a model folder, nor a Hub model that loads ({error})"
        ) from None
    with args.main_process_first(desc="loading the dataset"):
        data = load_training_data(invocation.data, tokenizer)
    new_tokens = add_collator_tokens(tokenizer, invocation.data)  # infill tokens: new rows, existing ids unchanged
    model = load_base_model(pretrained, tokenizer, settings.style_adapter_layers)
    if settings.general_dataset:
        with args.main_process_first(desc="loading the general dataset"):
            mix_general_pieces(data, settings.general_dataset, tokenizer)
    composers = sorted(set(data.splits["train"]["composer"]) - {NO_COMPOSER})
    # What "every composer" means for this model (g2m-generate --composer all): those it has now seen.
    model.config.trained_composers = sorted(set(model.config.trained_composers or []) | set(composers))
    if mode == "peft":
        model = add_peft_adapter(model, settings.peft, composer_token_ids(tokenizer, composers) + new_tokens)
    share = settings.general_share if settings.general_dataset else None
    weights = composer_balanced_weights(data.splits["train"], unlabelled_share=share) if settings.balanced else None
    return train_language_model(
        invocation,
        args,
        resume,
        model,
        tokenizer,
        data,
        task="finetune",
        mode=mode,
        base_model=str(pretrained),
        adapter_max_grad_norm=settings.adapter_max_grad_norm,
        sample_weights=weights,
        samples_per_epoch=settings.samples_per_epoch,
        callbacks=callbacks,
    )


def mix_general_pieces(data: TrainingData, folder: str, tokenizer: Any) -> None:
    """Add the general (``Composer_None``) training pieces of dataset ``folder`` to ``data``'s train split."""
    general = load_training_data(DataSection(dataset=folder), tokenizer).splits["train"]
    general = general.filter(lambda composer: composer == NO_COMPOSER, input_columns="composer")
    if len(general) == 0:
        raise ConfigError(f"finetune.general_dataset {folder}: no general (Composer_None) training pieces")
    data.splits["train"] = concatenate_datasets([data.splits["train"], general.cast(data.splits["train"].features)])
    data.source += f" + general pieces of {folder}"


def load_base_model(pretrained: str, tokenizer: Any, style_adapter_layers: Sequence[int] | None) -> G2MForCausalLM:
    """The pretrained decoder with style adapters after ``style_adapter_layers`` and room for ``tokenizer``.

    Adapters the checkpoint lacks are initialised as SPEC §3 says (`from_pretrained` calls the model's
    ``_init_weights`` for missing weights); new composer rows start from the mean embedding.
    """
    overrides = {} if style_adapter_layers is None else {"style_adapter_layers": list(style_adapter_layers)}
    model = G2MForCausalLM.from_pretrained(pretrained, **overrides)
    if len(tokenizer) != model.config.vocab_size:
        model.resize_token_embeddings(len(tokenizer))
    model.config.event_vocabulary = tokenizer.event_vocabulary
    model.generation_config = spec_generation_config(model.config)
    return model


def composer_token_ids(tokenizer: Any, composers: Sequence[str]) -> list[int]:
    """Token ids of composer names."""
    vocabulary = tokenizer.get_vocab()
    return [vocabulary[tokenizer.composer_token(name)] for name in composers]


def add_peft_adapter(model: G2MForCausalLM, peft_settings: dict[str, Any], trainable_tokens: Sequence[int]):
    """Freeze ``model`` and wrap it with LoRA, trainable style adapters and trainable ``trainable_tokens`` rows.

    The rows are those of the fine-tuned composers: a general pretraining corpus only ever shows
    ``Composer_None``, so the other composer embeddings - the style condition the adapters read - are
    still at their random initialisation (and a new composer's row is brand new). Giving every adapter
    trainable rows also keeps adapters loadable side by side on one base (PEFT expects the same
    auxiliary modules in all of them).
    """
    from peft import LoraConfig, get_peft_model

    options = {**PEFT_DEFAULTS, **peft_settings}
    if trainable_tokens:
        options["trainable_token_indices"] = {"embed_tokens": list(trainable_tokens)}
    try:
        config = LoraConfig(task_type="CAUSAL_LM", modules_to_save=["style_adapters"], **options)
    except TypeError as error:
        raise ConfigError(f"recipe section finetune.peft: {error}") from None
    return get_peft_model(model, config)


def load_peft_model(adapter_dir: str | Path, base: str | Path | None = None, adapter_name: str = "default"):
    """Load a ``--mode peft`` output folder onto its base model: ``(PeftModel, tokenizer)``.

    The base (default: the folder the adapter was trained from, ``base_model_name_or_path``) is loaded
    with the style-adapter layers of the fine-tuning recipe and resized to the adapter's tokenizer, so
    that ``PeftModel.from_pretrained`` finds every module the adapter trained.
    """
    from peft import PeftConfig, PeftModel

    adapter_dir = Path(adapter_dir)
    peft_config = PeftConfig.from_pretrained(str(adapter_dir))
    tokenizer = G2MTokenizer.from_pretrained(str(adapter_dir))
    recipe_copy = adapter_dir / RECIPE_COPY_NAME
    layers = typed_section(load_recipe(recipe_copy), "finetune", FinetuneSection, str(recipe_copy)).style_adapter_layers
    model = load_base_model(str(base or peft_config.base_model_name_or_path), tokenizer, layers)
    return PeftModel.from_pretrained(model, str(adapter_dir), adapter_name=adapter_name), tokenizer


def cli() -> int:
    """Console-script entry point (``g2m-finetune``)."""
    return main_guard(main)


if __name__ == "__main__":
    sys.exit(cli())
