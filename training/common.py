"""What ``pretrain.py``, ``finetune.py`` and ``train_classifier.py`` share: the command line, the output
folder, `TrainingArguments`, the tokenizer and model configuration, the run itself and its end (saving,
record, model card, push).

Recipe keys read here (see ``training.config`` for the file format, ``training.datasource`` for ``data``):

``output_dir``
    The finished model folder. ``checkpoint-*`` folders are written inside it while training.
``tokenizer``
    None (the complete default vocabulary), a tokenizer folder, or an original ``dictionary.pkl``.
``model``
    `G2MConfig` keyword arguments (vocabulary size and special ids come from the tokenizer).
``training``
    `TrainingArguments` keyword arguments, verbatim, with ``bf16: auto`` (bf16 where the GPU supports
    it) and the defaults of `TRAINING_DEFAULTS` (TensorBoard logging, token counting, Adam...).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from transformers import GenerationConfig, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, IntervalStrategy, get_last_checkpoint
from transformers.utils import logging as hf_logging

from g2m_hf import fileio, validation
from g2m_hf.cli import arguments
from g2m_hf.grammar import SPEC_GENERATION_DEFAULTS

from .config import (
    DataSection,
    FinetuneSection,
    Recipe,
    apply_overrides,
    dump_recipe,
    load_recipe,
    section,
    training_argument_overrides,
    typed_section,
)
from .errors import ConfigError
from .record import model_summary, run_summary, write_model_card, write_training_record

logger = logging.getLogger(__name__)

RECIPE_COPY_NAME = "recipe.yaml"
"""The resolved recipe, saved next to the model (also inside ``training_record.json``)."""

TRAINING_DEFAULTS: dict[str, Any] = {
    "report_to": ["tensorboard"],
    "include_num_input_tokens_seen": "non_padding",  # for tokens/s in training_record.json
    "logging_first_step": True,
    "save_strategy": "steps",
    "eval_strategy": "steps",
    "optim": "adamw_torch",  # with weight_decay 0: the paper's Adam
    "weight_decay": 0.0,
    "dataloader_pin_memory": torch.cuda.is_available(),
    # --push_to_hub uploads the finished folder (model card and training_record.json included) once;
    # "every_save" would also upload unfinished checkpoints' weights, with a pickled training_args.bin
    "hub_strategy": "end",
}
"""`TrainingArguments` values the recipes assume unless they say otherwise."""

TRAINING_FIXED: dict[str, Any] = {
    # The collators need the dataset's bookkeeping columns (bar offsets, composer), which the Trainer
    # would drop as "unused by model.forward".
    "remove_unused_columns": False,
}


# --- command line -----------------------------------------------------------------------------


@dataclass
class Invocation:
    """A parsed command line: the resolved recipe and the run options around it."""

    recipe: Recipe
    recipe_file: str
    resume: str | None
    """``"last"`` (the newest checkpoint in output_dir, if any), a checkpoint folder, or None."""
    overwrite: bool
    options: argparse.Namespace = field(default_factory=argparse.Namespace)
    """Script-specific options (e.g. ``mode`` of finetune.py)."""
    data: DataSection = field(default_factory=DataSection)
    """The recipe's ``data`` section, checked."""
    finetune: FinetuneSection = field(default_factory=FinetuneSection)
    """The recipe's ``finetune`` section, checked (defaults for the other scripts)."""


def parse_command_line(
    argv: Sequence[str] | None,
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> Invocation:
    """Parse ``--config``, ``--set``, ``--resume``, ``--overwrite``, script options and TrainingArguments flags."""
    parser = arguments.ArgumentParser(
        description=description,
        allow_abbrev=False,  # an abbreviation must not swallow a TrainingArguments flag
        epilog="Any transformers.TrainingArguments flag (e.g. --push_to_hub --hub_model_id you/g2m, --max_steps 10) "
        "overrides the recipe's training section.",
    )
    parser.add_argument("--config", required=True, type=arguments.existing_file, help="YAML recipe (see configs/)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set training.learning_rate=3e-4 (repeatable; values are YAML)",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="last",
        default=None,
        metavar="CHECKPOINT",
        help="continue from a checkpoint folder, or (no value) from the newest checkpoint in output_dir",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start from scratch even if output_dir already holds a model or checkpoints",
    )
    if add_arguments is not None:
        add_arguments(parser)
    options, rest = parser.parse_known_args(argv)

    recipe = apply_overrides(load_recipe(options.config), options.overrides)
    flags = training_argument_overrides(rest)
    if flags:
        training = dict(section(recipe, "training"))
        training.update(flags)
        recipe["training"] = training
    # TrainingArguments spells these too; the recipe keeps output_dir at the top level, and the
    # Trainer itself never reads resume_from_checkpoint (scripts pass it to train())
    training = section(recipe, "training")
    output_dir = training.pop("output_dir", None) or recipe.get("output_dir")
    if not output_dir:
        raise ConfigError(f"{options.config}: the recipe sets no output_dir")
    recipe["output_dir"] = str(validation.output_dir("output_dir", output_dir))
    resume = options.resume or training.pop("resume_from_checkpoint", None)

    script_options = argparse.Namespace(
        **{k: v for k, v in vars(options).items() if k not in {"config", "overrides", "resume", "overwrite"}}
    )
    # typed before any work starts, so that a misspelt key stops the run with the key named
    recipe_file = str(options.config)
    data = typed_section(recipe, "data", DataSection, recipe_file)
    finetune = typed_section(recipe, "finetune", FinetuneSection, recipe_file)
    return Invocation(recipe, recipe_file, resume, options.overwrite, script_options, data, finetune)


def main_guard(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> int:
    """Run a script's ``main`` and turn our own errors into a one-line message and exit status 2."""
    from g2m_hf.errors import G2MError

    try:
        main(argv)
    except G2MError as error:
        return arguments.fail(os.path.basename(sys.argv[0]), error)  # argparse's default prog
    return 0


def setup_logging(args: TrainingArguments) -> None:
    """Our messages at INFO on the main process (warnings elsewhere); transformers at ``args.log_level``."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)
    for name in ("g2m_hf", "training"):
        logging.getLogger(name).setLevel(logging.INFO if args.should_log else logging.WARNING)
    hf_logging.set_verbosity(args.get_process_log_level())


# --- output folder and resuming ------------------------------------------------------------------


def resolve_resume(output_dir: str, resume: str | None, overwrite: bool) -> str | None:
    """The checkpoint to resume from, after checking that nothing the user made gets overwritten.

    * ``resume="last"``: the newest ``checkpoint-*`` in ``output_dir`` (None - a fresh start - if
      there is none yet, so a preemptible job can always pass ``--resume``);
    * ``resume=<folder>``: that checkpoint, which must exist;
    * no resume: ``output_dir`` must be empty or absent, unless ``overwrite`` (then its old
      checkpoints are removed, so that a later ``--resume`` cannot pick one of them up).
    """
    out = Path(output_dir)
    if resume not in (None, "last"):
        if not Path(resume).is_dir():
            raise ConfigError(f"--resume {resume}: no such checkpoint folder")
        return resume
    if resume == "last":
        checkpoint = get_last_checkpoint(str(out)) if out.is_dir() else None
        if checkpoint is None:
            logger.warning("--resume: no checkpoint in %s yet, starting from scratch", out)
        return checkpoint
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"{out} already holds files; pass --resume to continue its training, --overwrite to start "
                "over there, or choose another output_dir (--set output_dir=...)"
            )
        if os.environ.get("RANK", "0") == "0":  # called before the process group exists: one remover
            for old in out.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
                logger.warning("--overwrite: removing the old checkpoint %s", old)
                shutil.rmtree(old, ignore_errors=True)
    return None


# --- TrainingArguments ------------------------------------------------------------------------


def bf16_supported() -> bool:
    """Whether bf16 mixed precision pays off here: a CUDA device with native bf16 (CPU autocast is slower)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


_TRAINING_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "learning_rate": validation.positive_float,
    "num_train_epochs": validation.positive_float,
    "per_device_train_batch_size": validation.positive_int,
    "per_device_eval_batch_size": validation.positive_int,
    "gradient_accumulation_steps": validation.positive_int,
    "warmup_steps": validation.non_negative_float,  # a count, or a fraction of the run below 1
    "max_grad_norm": validation.non_negative_float,
    "weight_decay": validation.non_negative_float,
    "seed": validation.non_negative_int,
}
"""Range checks of `TrainingArguments` values, run before any data or model is loaded."""


def build_training_arguments(recipe: Recipe) -> TrainingArguments:
    """`TrainingArguments` from the recipe's ``training`` section (see `TRAINING_DEFAULTS`)."""
    kwargs = {**TRAINING_DEFAULTS, **section(recipe, "training"), **TRAINING_FIXED}
    for name, check in _TRAINING_CHECKS.items():  # values TrainingArguments would take and fail on later
        if kwargs.get(name) is not None:
            check(f"training.{name}", kwargs[name])
    if kwargs.get("max_steps", -1) != -1:  # -1: train for num_train_epochs
        validation.positive_int("training.max_steps", kwargs["max_steps"])
    if kwargs.get("bf16") == "auto":
        kwargs["bf16"] = bf16_supported()
    # Without an accelerator, `torchrun` / `accelerate launch` processes only form a (gloo) process
    # group when TrainingArguments is told to use the CPU; otherwise each trains alone, unaware.
    kwargs.setdefault("use_cpu", not torch.accelerator.is_available())
    if kwargs.get("eval_strategy") == "steps" and kwargs.get("eval_steps") is None:
        kwargs["eval_steps"] = kwargs.get("save_steps", 500)
    try:
        return TrainingArguments(output_dir=recipe["output_dir"], **kwargs)
    except TypeError as error:  # an unknown key
        raise ConfigError(f"recipe section 'training': {error}") from None
    except ValueError as error:  # an inconsistent combination, checked by TrainingArguments
        raise ConfigError(f"recipe section 'training': {error}") from None


# --- tokenizer and model configuration ---------------------------------------------------------


def load_tokenizer(location: str | None) -> Any:
    """The recipe's ``tokenizer``: None = the complete default vocabulary, a folder, or an original
    ``dictionary.pkl`` (ids as in an original checkpoint)."""
    from g2m_hf import G2MTokenizer

    if location is None:
        return G2MTokenizer()
    if str(location).endswith(".pkl"):
        return G2MTokenizer.from_original_dictionary(location)
    if not Path(location).is_dir():
        raise ConfigError(f"tokenizer {location}: no such folder (or original dictionary .pkl)")
    return G2MTokenizer.from_pretrained(location)


def model_config(model_section: dict[str, Any], tokenizer: Any, **extra: Any) -> Any:
    """A `G2MConfig` from the recipe's ``model`` section; the vocabulary and special ids come from the tokenizer."""
    import dataclasses

    from g2m_hf import G2MConfig

    known = {f.name for f in dataclasses.fields(G2MConfig)}
    unknown = sorted(set(model_section) - known)
    if unknown:
        raise ConfigError(f"recipe section 'model': unknown G2MConfig keys {unknown}")
    return G2MConfig(
        **{
            **model_section,
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "event_vocabulary": tokenizer.event_vocabulary,
            **extra,
        }
    )


# --- a run ---------------------------------------------------------------------------------------


def train_language_model(
    invocation: Invocation,
    args: TrainingArguments,
    resume: str | None,
    model: Any,
    tokenizer: Any,
    data: Any,
    **options: Any,
) -> dict[str, Any]:
    """`run_training` with the language-model collators of the recipe's ``data`` section."""
    from .datasource import lm_collators

    seed = args.data_seed if args.data_seed is not None else args.seed
    train_collator, eval_collator = lm_collators(tokenizer, invocation.data, seed, args.process_index)
    # Generation keeps its contexts within what the model was trained on (g2m_hf.longform).
    model.config.training_window = eval_collator.max_length
    return run_training(invocation, args, resume, model, tokenizer, data, train_collator, eval_collator, **options)


def run_training(
    invocation: Invocation,
    args: TrainingArguments,
    resume: str | None,
    model: Any,
    tokenizer: Any,
    data: Any,
    train_collator: Any,
    eval_collator: Any,
    *,
    task: str,
    mode: str | None = None,
    base_model: str | None = None,
    adapter_max_grad_norm: float | None = None,
    sample_weights: Sequence[float] | None = None,
    samples_per_epoch: int | None = None,
    compute_metrics: Callable | None = None,
    report_perplexity: bool = True,
    callbacks: Sequence[Any] = (),
    extra_eval: Callable[[Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``data`` (a `datasource.TrainingData`) with a `G2MTrainer` and write the output
    folder; return the final evaluation metrics.

    Args:
        train_collator: a `StreamSeededCollator` (resumable randomness).
        eval_collator: the deterministic evaluation collator.
        task, mode, base_model: what training_record.json says about the run.
        adapter_max_grad_norm, sample_weights, samples_per_epoch: see `G2MTrainer` (``train_*``).
        compute_metrics: `Trainer`'s, for evaluations.
        report_perplexity: evaluations report exp(loss) too (language models).
        callbacks: extra `TrainerCallback` objects.
        extra_eval: called with the trainer after training; its metrics join the record's ``eval``.
    """
    from .trainer import CollatorStreamCallback, G2MTrainer

    validation = data.splits.get("validation")
    if validation is None or len(validation) == 0:
        logger.warning("no validation pieces: training without evaluation")
        validation = None
        args.eval_strategy = IntervalStrategy.NO
    trainer = G2MTrainer(
        model=model,
        args=args,
        train_dataset=data.splits["train"],
        eval_dataset=validation,
        data_collator=train_collator,
        eval_data_collator=eval_collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics,
        report_perplexity=report_perplexity,
        callbacks=[CollatorStreamCallback(train_collator), *callbacks],
        adapter_max_grad_norm=adapter_max_grad_norm,
        train_sample_weights=sample_weights,
        train_samples_per_epoch=samples_per_epoch,
    )
    result = trainer.train(resume_from_checkpoint=resume)
    return finish_run(
        trainer,
        invocation,
        task=task,
        mode=mode,
        base_model=base_model,
        train_metrics=result.metrics,
        resumed_from=resume,
        data_summary=data.summary(),
        extra_eval=extra_eval,
    )


# --- end of a run -------------------------------------------------------------------------------


def spec_generation_config(config: Any) -> GenerationConfig:
    """The original's sampling (SPEC §5) as the model folder's ``generation_config.json``."""
    return GenerationConfig(
        **SPEC_GENERATION_DEFAULTS,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )


def final_metrics(trainer: Any) -> dict[str, Any]:
    """Evaluate once more on the validation split (the numbers of the record and the model card)."""
    if trainer.eval_dataset is None:
        return {}
    metrics = trainer.evaluate()
    bookkeeping = ("epoch", "num_input_tokens_seen")
    return {k: v for k, v in metrics.items() if not k.endswith(("_runtime", "_per_second")) and k not in bookkeeping}


def finish_run(
    trainer: Any,
    invocation: Invocation,
    *,
    task: str,
    train_metrics: dict[str, float],
    resumed_from: str | None,
    data_summary: dict[str, Any],
    mode: str | None = None,
    base_model: str | None = None,
    extra_eval: Callable[[Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Save the model folder, evaluate, write the record and the model card, push if asked.

    Returns the final evaluation metrics. Everything is written by the main process only.
    """
    output_dir = invocation.recipe["output_dir"]
    trainer.save_model(output_dir)  # model (or PEFT adapter) + tokenizer (the Trainer's processing_class)
    eval_metrics = final_metrics(trainer)
    if extra_eval is not None:
        eval_metrics.update(extra_eval(trainer))
    if trainer.is_world_process_zero():
        fileio.write_text(Path(output_dir) / RECIPE_COPY_NAME, dump_recipe(invocation.recipe))
        record = write_training_record(
            output_dir,
            task=task,
            mode=mode,
            recipe=invocation.recipe,
            recipe_file=invocation.recipe_file,
            base_model=base_model,
            data=data_summary,
            model=model_summary(trainer.model),
            run=run_summary(trainer, train_metrics, resumed_from),
            eval_metrics=eval_metrics,
            log_history=trainer.state.log_history,
        )
        logger.info("wrote %s", record)
    if trainer.args.push_to_hub:
        trainer.push_to_hub()  # G2MTrainer.create_model_card writes our card first
    elif trainer.is_world_process_zero():
        write_model_card(output_dir)
    return eval_metrics
