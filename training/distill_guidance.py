r"""Guidance distillation: fine-tune a composer model so that its plain prediction is its guided one (issue 26).

    python training/distill_guidance.py --model g2m_hf/default_model --dataset data/mastery \
        --output outputs/distilled --steps 150 --batch-size 4

Style guidance (`g2m_hf.style_guidance`) samples every event from
``log p_none + s * (log p_composer - log p_none)``: each step scores its rows under their composer and
again under ``Composer_None``. Distillation (Diversity-Rewarded CFG Distillation, Cideron et al., ICLR
2025, for MusicLM) teaches the model to predict that guided distribution by itself, so that plain
sampling (style guidance 1) gives the guided style without the unstyled rows.

The teacher is a frozen copy of ``--model``; the student starts as the same weights. At every step a
batch of windows is drawn as fine-tuning draws them (`G2MDataCollator`: bar-aligned windows, transposed;
pieces drawn composer-balanced, `composer_balanced_weights`). The teacher scores the batch once as
``[styled rows; unstyled rows]`` (`StyleGuidanceLogitsProcessor.pair_inputs`, the rows generation pairs)
and its two log-distributions are combined at every position by the processor's own `combine`, with the
warm-up, rescale and guided kinds of the model's generation config. The student minimises
KL(guided teacher || student), averaged over the non-padding positions, with AdamW and a warm-up then
cosine schedule. Only the distillation term of the paper is trained here, not its diversity reward.

The output folder is a complete model folder (weights in safetensors, tokenizer) whose generation config
has ``style_guidance`` 1 (the distilled model needs no guidance), plus ``distillation_record.json``: the
teacher and its scale, the dataset, the settings, the loss at every logging step and the KL on held-out
windows (the validation split) before and after. It is written atomically: complete or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import get_cosine_schedule_with_warmup

from g2m_hf import G2MForCausalLM, G2MTokenizer, fileio
from g2m_hf.cli import arguments
from g2m_hf.data import G2MDataCollator, composer_balanced_weights
from g2m_hf.errors import G2MError
from g2m_hf.generation import load_model, load_tokenizer
from g2m_hf.longform import training_window
from g2m_hf.style_guidance import CONTRASTS, STYLE_GUIDANCE_OPTIONS, StyleGuidanceLogitsProcessor, guidance_processor
from training.config import DataSection
from training.datasource import TrainingData, load_training_data
from training.errors import ConfigError

PROG = "distill_guidance.py"
RECORD_NAME = "distillation_record.json"
DEFAULT_GUIDANCE = 2.0
"""The teacher's scale when neither ``--style-guidance`` nor the model's generation config gives one."""
MAX_GRAD_NORM = 1.0
"""Gradient clipping: the student starts at the teacher, so a large step only moves it away from both."""
WARMUP_SHARE = 0.05
"""Share of the steps over which the learning rate warms up linearly before its cosine decay."""
HELD_OUT_PIECES = 32
"""Validation pieces whose windows measure the KL before and after (from each piece's start, untransposed)."""
MIN_WINDOW = 8
"""Shortest window (``--max-length``): what `G2MConfig` accepts as a ``training_window``."""


# --- command line -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The options, each refused in one line (exit code 2) before a model or a piece is loaded."""
    parser = arguments.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=arguments.existing_dir,
                        help="G2M composer model folder (with style adapters), e.g. g2m_hf/default_model")
    parser.add_argument("--dataset", required=True, type=arguments.existing_dir,
                        help="dataset folder from training/build_dataset.py (train / validation), e.g. data/mastery")
    parser.add_argument("--output", required=True, type=arguments.output_dir, help="the distilled model folder to write")
    parser.add_argument("--style-guidance", type=arguments.non_negative_float, default=None, metavar="S",
                        help=f"the teacher's scale (default: the model's generation config, else {DEFAULT_GUIDANCE:g})")
    parser.add_argument("--style-guidance-contrast", choices=CONTRASTS, default=None,
                        help="what the teacher's guidance pushes away from (default: the model's generation config, "
                             "else none: Composer_None)")
    parser.add_argument("--steps", type=arguments.positive_int, default=150, help="optimizer steps (default 150)")
    parser.add_argument("--batch-size", type=arguments.positive_int, default=4, help="windows per step (default 4)")
    parser.add_argument("--max-length", type=arguments.positive_int, default=None,
                        help="window length in events (default: the model's training_window)")
    parser.add_argument("--learning-rate", type=arguments.positive_float, default=1e-4, help="peak learning rate (default 1e-4)")
    parser.add_argument("--logging-steps", type=arguments.positive_int, default=10,
                        help="steps per logged (mean) loss (default 10)")
    parser.add_argument("--seed", type=arguments.non_negative_int, default=0, help="seed of the draws (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    args = parser.parse_args(argv)
    if not (args.model / "config.json").is_file() or not (args.model / "model.safetensors").is_file():
        parser.error(f"--model {args.model}: not a model folder (no config.json and model.safetensors)")
    if not (args.dataset / "dataset_dict.json").is_file():
        parser.error(f"--dataset {args.dataset}: not a dataset folder (build one with training/build_dataset.py)")
    if args.max_length is not None and args.max_length < MIN_WINDOW:
        parser.error(f"--max-length {args.max_length}: must be at least {MIN_WINDOW} events")
    if args.style_guidance == 1.0:
        parser.error("--style-guidance 1: no guidance, nothing to distil (the teacher would be the model itself)")
    if args.output.resolve() == args.model.resolve():
        parser.error(f"--output {args.output}: the teacher's own folder; name another")
    if args.output.is_dir() and any(args.output.iterdir()) and not args.overwrite:
        parser.error(f"--output {args.output}: already holds files (pass --overwrite to replace them)")
    return args


# --- the teacher's guided distribution and the loss ---------------------------------------------------


def guidance_of(
    teacher: G2MForCausalLM, scale: float | None, contrast: str | None = None
) -> StyleGuidanceLogitsProcessor:
    """The processor generation would use for ``teacher`` at ``scale`` (None: its generation config's, else
    `DEFAULT_GUIDANCE`), with the config's warm-up, rescale, guided kinds and contrast (``contrast``, if given,
    instead of the config's): the distribution to imitate."""
    config = teacher.generation_config
    if scale is None:  # 0 is a scale too (the unstyled model's prediction)
        scale = getattr(config, "style_guidance", None)
        scale = DEFAULT_GUIDANCE if scale is None else scale
    if scale == 1.0:
        raise ConfigError(f"{teacher.name_or_path}: its generation config's style_guidance is 1 (no guidance); "
                          "give the scale to distil with --style-guidance")
    options = {key: getattr(config, name, None) for key, name in STYLE_GUIDANCE_OPTIONS.items()}
    options["contrast"] = teacher_contrast(teacher, contrast)
    try:
        return guidance_processor(teacher, scale, teacher.config.pad_token_id,
                                  **{key: value for key, value in options.items() if value is not None})
    except G2MError as error:
        raise ConfigError(f"{teacher.name_or_path}: {error}") from None


def teacher_contrast(teacher: G2MForCausalLM, contrast: str | None) -> str:
    """What the teacher's guidance pushes away from: ``contrast`` if given (a fine-tuned folder's generation
    config has none; the build script names the bundled default's), else its generation config's, else
    ``none``."""
    return contrast or getattr(teacher.generation_config, "style_guidance_contrast", None) or "none"


def position_scales(guidance: StyleGuidanceLogitsProcessor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The scale at every position: the processor's ramp (``warmup``) over the events read so far, which at
    position t of a right-padded window are t + 1 (the processor's `_scale` at that step). [B, T]"""
    scale = torch.full(attention_mask.shape, guidance.guidance)  # [B, T]
    if guidance.warmup:
        read = attention_mask.long().cumsum(dim=-1).float()  # [B, T]
        scale = 1.0 + (scale - 1.0) * (read / guidance.warmup).clamp(max=1.0)
    return scale


@torch.no_grad()
def guided_log_probs(teacher: G2MForCausalLM, guidance: StyleGuidanceLogitsProcessor, batch: dict) -> torch.Tensor:
    """The teacher's guided next-event log-probabilities at every position of ``batch`` (right-padded windows):
    one forward of the styled and the contrast rows (first token and style token ``Composer_None``, or the
    other composers), combined as generation combines them, renormalised. [B, T, V]"""
    input_ids, attention_mask = batch["input_ids"], batch["attention_mask"]  # [B, T]
    paired_ids, paired_mask, _, style_ids = guidance.pair_inputs(input_ids, attention_mask, None, None, past_length=0)
    logits = teacher(input_ids=paired_ids, attention_mask=paired_mask, style_token_ids=style_ids).logits  # [copies*B, T, V]
    styled, contrasts = guidance.split(logits)  # [B, T, V], [copies - 1, B, T, V]
    styled, unstyled = torch.log_softmax(styled.float(), dim=-1), guidance.contrast_log_probs(contrasts)
    rows, length, width = styled.shape
    scale = position_scales(guidance, attention_mask).reshape(rows * length, 1)  # [B*T, 1]
    guided = guidance.combine(styled.reshape(-1, width), unstyled.reshape(-1, width), scale)  # [B*T, V]
    return torch.log_softmax(guided, dim=-1).reshape(rows, length, width)


def kl_per_position(target: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(target || student) at every position, from the target's log-probabilities and the student's
    logits [B, T, V]. [B, T]"""
    student = torch.log_softmax(student_logits.float(), dim=-1)  # [B, T, V]
    return torch.nn.functional.kl_div(student, target, reduction="none", log_target=True).sum(dim=-1)


def distillation_loss(student: G2MForCausalLM, target: torch.Tensor, batch: dict) -> torch.Tensor:
    """The mean KL(guided teacher || student) over the batch's non-padding positions: the student reads the
    windows plainly (its composer as first token), as it will when sampling without guidance."""
    logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # [B, T, V]
    mask = batch["attention_mask"].float()  # [B, T]
    return (kl_per_position(target, logits) * mask).sum() / mask.sum()


@torch.no_grad()
def held_out_kl(student: G2MForCausalLM, targets: Sequence[tuple[dict, torch.Tensor]]) -> float | None:
    """The student's mean KL from the guided teacher over held-out windows (eval mode; None: no windows)."""
    if not targets:
        return None
    was_training = student.training
    student.eval()
    total = positions = 0.0
    for batch, target in targets:
        logits = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # [B, T, V]
        mask = batch["attention_mask"].float()  # [B, T]
        total += float((kl_per_position(target, logits) * mask).sum())
        positions += float(mask.sum())
    student.train(was_training)
    return total / positions


# --- data --------------------------------------------------------------------------------------------


def load_data(folder: Path, tokenizer: G2MTokenizer) -> TrainingData:
    """The dataset's splits, refused when its pieces name a composer the model's vocabulary lacks (its ids
    would then mean nothing to the teacher)."""
    data = load_training_data(DataSection(dataset=str(folder)), tokenizer)
    if data.new_composers:
        raise ConfigError(f"--dataset {folder}: composers the model does not know ({', '.join(data.new_composers)})")
    if len(data.splits["train"]) == 0:
        raise ConfigError(f"--dataset {folder}: no training pieces for this model")
    return data


def training_batches(data: TrainingData, collator: G2MDataCollator, batch_size: int, seed: int) -> Iterator[dict]:
    """Endless batches of windows of training pieces drawn composer-balanced, with replacement (as fine-tuning
    draws them); the same seed gives the same batches."""
    train = data.splits["train"]
    weights = torch.tensor(composer_balanced_weights(train), dtype=torch.double)  # [N]
    generator = torch.Generator().manual_seed(seed)
    while True:
        rows = torch.multinomial(weights, batch_size, replacement=True, generator=generator).tolist()
        yield collator([train[row] for row in rows])


def held_out_targets(
    data: TrainingData, collator: G2MDataCollator, batch_size: int, teacher: G2MForCausalLM,
    guidance: StyleGuidanceLogitsProcessor,
) -> list[tuple[dict, torch.Tensor]]:
    """Windows of up to `HELD_OUT_PIECES` validation pieces (each from its start, untransposed) and the guided
    teacher's log-probabilities on them: the KL measured before and after."""
    validation = data.splits.get("validation")
    if validation is None or len(validation) == 0:
        return []
    pieces = [validation[row] for row in range(min(len(validation), HELD_OUT_PIECES))]
    batches = [collator(pieces[start : start + batch_size]) for start in range(0, len(pieces), batch_size)]
    return [(batch, guided_log_probs(teacher, guidance, batch)) for batch in batches]


# --- the run -----------------------------------------------------------------------------------------


def distil(
    student: G2MForCausalLM, teacher: G2MForCausalLM, guidance: StyleGuidanceLogitsProcessor,
    batches: Iterator[dict], args: argparse.Namespace,
) -> list[dict[str, float]]:
    """Train ``student`` towards the guided ``teacher`` for ``args.steps`` steps; the mean loss of every
    ``args.logging_steps`` steps (printed as it goes)."""
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.learning_rate, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, round(WARMUP_SHARE * args.steps), args.steps)
    student.train()
    log, losses, started = [], [], time.perf_counter()
    for step in range(1, args.steps + 1):
        batch = next(batches)
        target = guided_log_probs(teacher, guidance, batch)  # [B, T, V]
        loss = distillation_loss(student, target, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), MAX_GRAD_NORM)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if step % args.logging_steps == 0 or step == args.steps:
            entry = {"step": step, "loss": sum(losses) / len(losses), "learning_rate": schedule.get_last_lr()[0],
                     "seconds": round(time.perf_counter() - started, 1)}
            log.append(entry)
            losses = []
            print(f"step {step}/{args.steps}: KL {entry['loss']:.4f} ({entry['seconds']} s)", flush=True)
    student.eval()
    return log


def save(output: Path, student: G2MForCausalLM, tokenizer: G2MTokenizer, record: dict[str, Any], overwrite: bool) -> None:
    """Write the distilled model folder atomically: weights (safetensors), tokenizer, a generation config
    that samples without guidance (and without guidance's options, meaningless at 1), and the record."""
    config = student.generation_config
    config.style_guidance = 1.0
    for name in STYLE_GUIDANCE_OPTIONS.values():
        if hasattr(config, name):
            delattr(config, name)
    with fileio.atomic_directory(output, replace=overwrite) as stage:
        student.save_pretrained(str(stage))
        tokenizer.save_pretrained(str(stage))
        (stage / RECORD_NAME).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        torch.manual_seed(args.seed)  # dropout in the student
        tokenizer = load_tokenizer(args.model)
        teacher, student = load_model(args.model), load_model(args.model)
        teacher.requires_grad_(False)
        guidance = guidance_of(teacher, args.style_guidance, args.style_guidance_contrast)
        data = load_data(args.dataset, tokenizer)
        window = args.max_length or training_window(teacher.config)
        collator = G2MDataCollator(tokenizer, max_length=window, seed=args.seed)
        evaluation = G2MDataCollator(tokenizer, max_length=window, augment=False, random_windows=False)
        held_out = held_out_targets(data, evaluation, args.batch_size, teacher, guidance)
        before = held_out_kl(student, held_out)
        started = time.perf_counter()
        log = distil(student, teacher, guidance, training_batches(data, collator, args.batch_size, args.seed), args)
        seconds = time.perf_counter() - started
        record = {
            "task": "guidance distillation", "teacher": str(args.model), "style_guidance": guidance.guidance,
            "style_guidance_warmup": guidance.warmup, "style_guidance_rescale": guidance.rescale,
            "style_guidance_contrast": teacher_contrast(teacher, args.style_guidance_contrast),
            "dataset": str(args.dataset), "data": data.summary(), "steps": args.steps, "batch_size": args.batch_size,
            "max_length": window, "learning_rate": args.learning_rate, "seed": args.seed,
            "seconds": round(seconds, 1), "seconds_per_step": round(seconds / args.steps, 3), "log": log,
            "held_out_kl": {"windows": sum(len(b["input_ids"]) for b, _ in held_out), "before": before,
                            "after": held_out_kl(student, held_out)},
        }  # fmt: skip
        save(args.output, student, tokenizer, record, args.overwrite)
    except G2MError as error:
        return arguments.fail(PROG, error)
    kl = record["held_out_kl"]
    if kl["before"] is not None:
        print(f"held-out KL from the guided teacher: {kl['before']:.4f} -> {kl['after']:.4f}")
    print(f"wrote {args.output} ({seconds:.0f} s, {record['seconds_per_step']} s per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
