"""The `Trainer` pieces the G2M recipes need on top of transformers.

* :class:`G2MTrainer` - clips style-adapter gradients and the rest separately (SPEC §4: 2.5 / 0.5),
  draws composer-balanced batches when given sampling weights (length-grouped ones with
  ``group_by_length``), evaluates with its own (deterministic) collator and reports perplexity next to
  the evaluation loss.
* :class:`StreamSeededCollator` + :class:`CollatorStreamCallback` - make a random collator (bar-aligned
  windows, transposition) a pure function of the batch's position in the data stream, so that a run
  resumed from a checkpoint sees exactly the batches of an uninterrupted run.
* :class:`EpochSeededWeightedSampler` - weighted sampling with replacement, reseeded every epoch from
  ``(seed, epoch)`` so that the order is the same on every process and after a resume.
* :class:`EpochSeededLengthGroupedSampler` - ``train_sampling_strategy: group_by_length`` (batches of
  similar lengths, little padding), reseeded the same way: transformers' sampler draws from the global
  RNG, whose state a resumed run does not have when the epoch's order is drawn.

Why the collator needs help: the Trainer restores the global RNG states of a checkpoint only after it
has fetched the first batches of the resumed run, and accelerate's loader fetches one batch ahead,
so a collator drawing from the global RNGs would see different states than in an uninterrupted run
(and would shift the dropout masks of the model too).
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from accelerate.utils import DistributedType
from torch.utils.data import Sampler, get_worker_info
from transformers import Trainer, TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_pt_utils import LengthGroupedSampler
from transformers.trainer_utils import EvalLoopOutput

from .errors import ConfigError
from .record import write_model_card

logger = logging.getLogger(__name__)

STYLE_ADAPTER_KEY = "style_adapters."
"""Substring of every style-adapter parameter name (also under DDP's ``module.`` and PEFT's prefixes)."""


# --- reproducible randomness ------------------------------------------------------------------


@contextlib.contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Seed python's, numpy's and torch's (CPU) global RNGs with ``seed``; put the outer states back after."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


class StreamSeededCollator:
    """Wrap a random collator so that batch *k* of the run is always collated with the same random draws.

    Batch *k* (counted over the whole run, per process) is collated inside :func:`isolated_rng` seeded
    from ``(seed, process_index, k)``. The Trainer resumes by skipping the batches already trained, and
    :class:`CollatorStreamCallback` sets :attr:`batches_drawn` to that number, so the resumed run cuts
    the same windows and transpositions as an uninterrupted one. Dataloader workers are supported
    (not ``persistent_workers``): each epoch's workers copy this object, and a map-style loader hands
    batch ``i`` of the epoch's iterator to worker ``i % num_workers``.

    Args:
        collator: the collator to wrap (any callable taking a list of features).
        seed: the run's data seed.
        process_index: this process's rank, so that processes draw differently.
    """

    def __init__(self, collator: Callable[[list[dict[str, Any]]], dict[str, Any]], seed: int, process_index: int = 0):
        self.collator = collator
        self.seed = seed
        self.process_index = process_index
        self.batches_drawn = 0
        """Batches of the data stream collated so far by this process (in the main process' copy)."""
        self._worker_batches = 0

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        worker = get_worker_info()
        if worker is None:
            batch_index = self.batches_drawn
            self.batches_drawn += 1
        else:  # this object is the worker's copy, taken when the epoch's iterator was created
            batch_index = self.batches_drawn + worker.id + self._worker_batches * worker.num_workers
            self._worker_batches += 1
        seed = int(np.random.SeedSequence([self.seed, self.process_index, batch_index]).generate_state(1)[0])
        with isolated_rng(seed):
            return self.collator(features)


def batches_consumed(global_step: int, batches_per_epoch: int, gradient_accumulation_steps: int) -> int:
    """Batches of the data stream used by ``global_step`` optimizer steps (the Trainer's own resume rule)."""
    steps_per_epoch = max(math.ceil(batches_per_epoch / gradient_accumulation_steps), 1)
    epochs, steps_into_epoch = divmod(global_step, steps_per_epoch)
    return epochs * batches_per_epoch + steps_into_epoch * gradient_accumulation_steps


class CollatorStreamCallback(TrainerCallback):
    """Point a :class:`StreamSeededCollator` at the first batch each epoch (of a possibly resumed run) draws.

    Called before the epoch's loader iterator exists, so that dataloader workers copy the right count.
    """

    def __init__(self, collator: StreamSeededCollator):
        self.collator = collator

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        if train_dataloader is None:
            return
        batches_per_epoch = len(train_dataloader)
        self.collator.batches_drawn = batches_consumed(
            state.global_step, batches_per_epoch, args.gradient_accumulation_steps
        )


class EpochSeededWeightedSampler(Sampler[int]):
    """Draw ``num_samples`` indices with replacement, proportionally to ``weights``, reseeded per epoch.

    The order depends only on ``(seed, epoch)``, so every DDP process builds the same sequence (accelerate
    then gives each process its share of the batches) and a resumed run can skip into it.
    """

    def __init__(self, weights: Sequence[float], num_samples: int | None = None, seed: int = 0):
        self.weights = torch.as_tensor(list(weights), dtype=torch.double)
        if self.weights.ndim != 1 or len(self.weights) == 0 or bool((self.weights < 0).any()):
            raise ValueError("sampling weights must be a non-empty sequence of non-negative numbers")
        self.num_samples = len(self.weights) if num_samples is None else num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)
        return iter(draws.tolist())

    def __len__(self) -> int:
        return self.num_samples


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """`LengthGroupedSampler` (random mega-batches, each sorted by length) whose order depends only on
    ``(seed, epoch)``, as `EpochSeededWeightedSampler`'s."""

    def __init__(self, batch_size: int, lengths: Sequence[int], seed: int = 0):
        super().__init__(batch_size, lengths=list(lengths))
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return super().__iter__()


# --- the Trainer ------------------------------------------------------------------------------


class G2MTrainer(Trainer):
    """`Trainer` with the G2M recipe's extras (see the module docstring).

    Args:
        adapter_max_grad_norm: gradient-norm limit of the style-adapter parameters; the other parameters are
            clipped to ``args.max_grad_norm``, each group on its own norm (SPEC §4). ``None`` keeps the
            Trainer's single global clip.
        train_sample_weights: one weight per training example; when given, batches are drawn with
            replacement proportionally to them (composer-balanced fine-tuning).
        train_samples_per_epoch: draws per epoch with ``train_sample_weights`` (default: the dataset size).
        eval_data_collator: collator of the evaluation loader (default: the training collator).
        report_perplexity: add ``eval_perplexity`` = exp(``eval_loss``) to evaluations (language models).
        *args, **kwargs: as for `Trainer`.
    """

    def __init__(
        self,
        *args: Any,
        adapter_max_grad_norm: float | None = None,
        train_sample_weights: Sequence[float] | None = None,
        train_samples_per_epoch: int | None = None,
        eval_data_collator: Callable | None = None,
        report_perplexity: bool = True,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.adapter_max_grad_norm = adapter_max_grad_norm
        self.train_sample_weights = train_sample_weights
        self.train_samples_per_epoch = train_samples_per_epoch
        self.eval_data_collator = eval_data_collator
        self.report_perplexity = report_perplexity
        self._warned_group_clip = False
        if adapter_max_grad_norm is not None and self.args.max_grad_norm <= 0:
            raise ConfigError("separate adapter clipping needs training.max_grad_norm > 0 (the limit of the rest)")

    # Separate clipping. Trainer calls `_clip_grad_norm` once per optimizer step, after the gradients of
    # all accumulated micro-batches are summed and (under DDP) all-reduced, and uses the returned
    # pre-clip norm for logging: the one place where clipping belongs.
    def _clip_grad_norm(self, model: torch.nn.Module) -> torch.Tensor:
        if self.adapter_max_grad_norm is None or not self._can_clip_groups():
            return super()._clip_grad_norm(model)
        self.accelerator.unscale_gradients()  # no-op except with fp16 loss scaling
        adapter, rest = [], []
        for name, param in model.named_parameters():
            if param.requires_grad:
                (adapter if STYLE_ADAPTER_KEY in name else rest).append(param)
        norms = [
            torch.nn.utils.clip_grad_norm_(params, limit)
            for params, limit in ((adapter, self.adapter_max_grad_norm), (rest, self.args.max_grad_norm))
            if params
        ]
        # FSDP2 gives DTensor norms, already reduced over the mesh; the combined norm is only logged
        norms = [n.full_tensor() if hasattr(n, "full_tensor") else n for n in norms]
        return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))

    def _can_clip_groups(self) -> bool:
        """Per-group clipping needs whole (or DTensor) gradients; DeepSpeed and FSDP1 hold flat shards."""
        deepspeed = self.accelerator.distributed_type == DistributedType.DEEPSPEED
        fsdp1 = self.is_fsdp_enabled and not getattr(self.accelerator, "is_fsdp2", False)
        if not (deepspeed or fsdp1):
            return True
        if not self._warned_group_clip:
            logger.warning(
                "separate style-adapter clipping is not available with %s: clipping all parameters to %s",
                self.accelerator.distributed_type,
                self.args.max_grad_norm,
            )
            self._warned_group_clip = True
        return False

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        if self.train_sample_weights is not None:
            draws = self.train_samples_per_epoch or len(dataset)
            return EpochSeededWeightedSampler(self.train_sample_weights, num_samples=draws, seed=seed)
        if self.args.train_sampling_strategy == "group_by_length":
            column = self.args.length_column_name
            if column in getattr(dataset, "column_names", ()):
                lengths = dataset[column]
            else:
                lengths = [len(example["input_ids"]) for example in dataset]
            batch = self.args.train_batch_size * self.args.gradient_accumulation_steps  # one optimizer step's pieces
            return EpochSeededLengthGroupedSampler(batch, lengths, seed=seed)
        return super()._get_train_sampler(train_dataset)

    def get_eval_dataloader(self, eval_dataset=None):
        if self.eval_data_collator is None:
            return super().get_eval_dataloader(eval_dataset)
        train_collator, self.data_collator = self.data_collator, self.eval_data_collator
        try:
            return super().get_eval_dataloader(eval_dataset)
        finally:
            self.data_collator = train_collator

    def evaluation_loop(self, *args: Any, metric_key_prefix: str = "eval", **kwargs: Any) -> EvalLoopOutput:
        output = super().evaluation_loop(*args, metric_key_prefix=metric_key_prefix, **kwargs)
        loss = output.metrics.get(f"{metric_key_prefix}_loss")
        if self.report_perplexity and loss is not None:
            output.metrics[f"{metric_key_prefix}_perplexity"] = perplexity(loss)
        return output

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Our model card (built from training_record.json) instead of the Trainer's generic one."""
        if self.is_world_process_zero():
            write_model_card(self.args.output_dir, repo_id=self.args.hub_model_id)

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Save as Trainer does, without ``training_args.bin``: a pickle the Hub flags and that nothing
        here reads (the recipe is in ``recipe.yaml`` and ``training_record.json``)."""
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            Path(output_dir or self.args.output_dir, TRAINING_ARGS_NAME).unlink(missing_ok=True)


def perplexity(loss: float) -> float:
    """exp(loss), capped so that a diverged run reports a large number instead of overflowing."""
    return math.exp(min(loss, 50.0))
