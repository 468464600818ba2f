"""Generating pieces: the Python API behind ``g2m-generate``.

`generate_midi` turns composer names (and optionally a MIDI file to continue) into prompts, samples
them in batches with `G2MForCausalLM.generate` (the SPEC §5 sampling with the REMI grammar processor,
see `grammar.py`; sliding over the model's training window for long pieces, see `longform.py`) and
decodes every piece to MIDI.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from transformers.generation.streamers import BaseStreamer

from . import control_tokens, fileio, infill, texture_plan, validation
from .configuration_g2m import G2MConfig
from .errors import G2MError, InvalidArgumentError, ModelNotFoundError
from .grammar import InfillGrammarLogitsProcessor, RemiGrammarLogitsProcessor
from .hub import check_hub_model
from .longform import CONTEXT_FRACTION, StopWhenAsked, sample_long, training_window
from .modeling_g2m import G2MForCausalLM
from .style_guidance import CONTRASTS
from .tokenization_g2m import G2MTokenizer
from .vocab import BAR_TOKEN, EOS_TOKEN, NO_COMPOSER, TEMPO_CLASSES, TIME_SIGNATURES, bar_geometry, event, split_event

if TYPE_CHECKING:
    import pretty_midi

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
"""Where the package keeps its bundled checkpoint (built by training/build_default_model.sh)."""

DEFAULT_BASE_MODEL_DIR = Path(__file__).resolve().parent / "default_base_model"
"""Where the package keeps the bundled model's first stage: the general model its recipe fine-tunes from."""

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


def _bundled(folder: Path) -> Path:
    if not any((folder / name).is_file() for name in _WEIGHT_FILES):
        raise ModelNotFoundError(
            f"{folder}: no bundled model weights (model.safetensors) in this installation; "
            "pass a model folder or Hub id instead"
        )
    return folder


def default_model_path() -> Path:
    """The bundled model folder; raises `ModelNotFoundError` when it holds no weights."""
    return _bundled(DEFAULT_MODEL_DIR)


def default_base_model_path() -> Path:
    """The bundled general (pretrained, unstyled) model folder: the base to fine-tune your own composers
    from (``finetune.pretrained``); raises `ModelNotFoundError` when it holds no weights."""
    return _bundled(DEFAULT_BASE_MODEL_DIR)


def _model_source(model_name_or_path: str | os.PathLike | None) -> str | os.PathLike:
    """The folder or Hub id to load (the bundled model by default); a local folder must hold weights,
    a Hub id must name a G2M model the Hub serves (`hub.check_hub_model`, once per id)."""
    source = default_model_path() if model_name_or_path is None else model_name_or_path
    if os.path.isdir(source):
        if not any(Path(source, name).is_file() for name in _WEIGHT_FILES):
            raise ModelNotFoundError(f"{source}: no model weights (model.safetensors) in this folder")
    elif os.path.exists(source) or str(source).startswith((".", "/", "~")) or str(source).count("/") > 1:
        raise ModelNotFoundError(f"{source}: no such model folder (nor a Hub id, which reads USER/NAME)")
    elif str(source) not in _CHECKED_HUB_IDS:
        check_hub_model(str(source))
        _CHECKED_HUB_IDS.add(str(source))
    return source


_CHECKED_HUB_IDS: set[str] = set()
"""Hub ids `_model_source` found serving a G2M model (the tokenizer, config and weights load one after another)."""


def _loading_error(source: str | os.PathLike, error: OSError) -> ModelNotFoundError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelNotFoundError(f"{source}: cannot load a G2M model ({reason})")


def load_tokenizer(model_name_or_path: str | os.PathLike | None = None) -> G2MTokenizer:
    """The tokenizer of a model folder or Hub id (default: the bundled model)."""
    source = _model_source(model_name_or_path)
    try:
        return G2MTokenizer.from_pretrained(source)
    except OSError as error:  # not a folder and not a reachable Hub repository
        raise _loading_error(source, error) from None


def load_model(
    model_name_or_path: str | os.PathLike | None = None, dtype: torch.dtype = torch.float32
) -> G2MForCausalLM:
    """The causal G2M model (eval mode) of a model folder or Hub id (default: the bundled model).

    In bfloat16 it uses eager attention: on CPU, the SDPA kernel decodes bfloat16 about twice as slowly
    as a plain matmul + softmax at batch 8 (52 against 24 ms per step, 600 cached tokens, one thread).
    """
    source = _model_source(model_name_or_path)
    attention = "eager" if dtype == torch.bfloat16 else None
    try:
        return G2MForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=attention).eval()
    except OSError as error:
        raise _loading_error(source, error) from None


def model_vocabulary(model: G2MForCausalLM) -> list[str]:
    """The events the model has rows for (``config.event_vocabulary`` up to ``vocab_size``; empty when the config
    does not name them): what decides whether it knows the infill and texture-control tokens."""
    return list((getattr(model.config, "event_vocabulary", None) or [])[: model.config.vocab_size])


def trained_composers(tokenizer: G2MTokenizer, model_name_or_path: str | os.PathLike | None = None) -> list[str]:
    """The composers a model was fine-tuned on (its config's ``trained_composers``), without loading weights.

    What "every composer" means for ``g2m-generate --composer all`` and ``g2m-demo``: a vocabulary can
    name composers the model never learnt (the bundled model's has Chopin and Schumann). Models that
    do not record them (converted original checkpoints) give every composer of ``tokenizer``; a model
    that records none (the bundled base model, fine-tuned on no composer) gives ``["None"]``: the
    unstyled condition is all it knows.
    """
    source = _model_source(model_name_or_path)
    try:
        config = G2MConfig.from_pretrained(source)
    except OSError as error:
        raise _loading_error(source, error) from None
    if config.trained_composers is None:
        return list(tokenizer.composers)
    return list(config.trained_composers) or [NO_COMPOSER]


def quantize_int8(model: G2MForCausalLM) -> G2MForCausalLM:
    """Dynamic int8 quantization of every Linear layer, in place, for faster decoding on CPU.

    Weights are stored as int8 and activations quantized on the fly (``torch.ao.quantization.
    quantize_dynamic``; torch announces its move to torchao with a warning, silenced here). Measured
    (benchmarks/generation_speed.py): about twice the float32 speed at batch 1; on the bundled model the
    next-token distributions stay within a total variation of 0.03 of float32's (bfloat16: 0.01;
    tests/test_default_model.py).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)


WEIGHT_DTYPES = ("float32", "bfloat16", "int8")
"""How `load_model_as` holds the weights: full precision, bfloat16, or int8 (`quantize_int8`)."""


def load_model_as(model_name_or_path: str | os.PathLike | None = None, dtype: str = "float32") -> G2MForCausalLM:
    """`load_model` with the weights as one of `WEIGHT_DTYPES`, by name (the ``--dtype`` of the tools)."""
    if dtype not in WEIGHT_DTYPES:
        raise G2MError(f"dtype must be one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")
    model = load_model(model_name_or_path, dtype=torch.bfloat16 if dtype == "bfloat16" else torch.float32)
    return quantize_int8(model) if dtype == "int8" else model


@dataclass
class GeneratedPiece:
    """One generated piece: its composer, the whole event list (prompt included) and its MIDI."""

    composer: str  # the composer name without "Composer_" ("None": unconditioned)
    events: list[str]  # Composer_..., Tempo_..., BOS_None, bars..., EOS_None
    midi: pretty_midi.PrettyMIDI
    prompt_length: int  # how many of `events` came from the prompt (`infill_midi`: the events before the span)
    infilled_bars: tuple[int, int] | None = None  # `infill_midi`: the bars it wrote (counted from 1, inclusive)


PROMPT_FROM = ("end", "start")
"""Where a MIDI prompt is continued: after its end (the whole piece), or after its first bars."""

DEFAULT_PROMPT_BARS = 4
"""Bars of a MIDI prompt kept with ``prompt_from="start"`` when ``prompt_bars`` is not given."""


def prompt_ids(
    tokenizer: G2MTokenizer,
    composer: str | None,
    prompt_midi: str | os.PathLike | bytes | None = None,
    prompt_bars: int | None = None,
    prompt_from: str = "end",
    tempo: int | None = None,
) -> list[int]:
    """Prompt token ids: ``[Composer_X]`` (``[Composer_X, Tempo_T]`` with ``tempo``), or ``prompt_midi``
    encoded with composer X (its own tempo kept; EOS dropped so the model continues).

    ``prompt_from="end"`` (default) keeps the whole piece and opens a new bar after it: the model writes
    new bars after the end. ``"start"`` keeps the first ``prompt_bars`` bars (default 4), which the model
    may go on filling before it adds bars.

    Raises `VocabularyError` for an unknown composer and `RemiError` for an unreadable MIDI file.
    """
    if prompt_midi is None:
        ids = tokenizer.composer_prompt([composer], return_tensors=None)["input_ids"][0]
        return ids + tokenizer.events_to_ids([event("Tempo", tempo)]) if tempo is not None else ids
    keep = DEFAULT_PROMPT_BARS if prompt_bars is None else validation.positive_int("prompt_bars", prompt_bars)
    events = tokenizer.ids_to_events(tokenizer.encode_midi(prompt_midi, composer=composer))
    if events and events[-1] == EOS_TOKEN:
        events = events[:-1]
    bar_starts = [i for i, token in enumerate(events) if token == BAR_TOKEN]
    if prompt_from == "end":
        events = events + [BAR_TOKEN]
    elif len(bar_starts) > keep:
        events = events[: bar_starts[keep]]
    return tokenizer.events_to_ids(events)


def check_generation_options(
    bars: int | None = None,
    duration: float | None = None,
    tempo: int | None = None,
    time_signature: str | None = None,
    fixed_time_signature: bool = False,
    prompt_midi: object = None,
    prompt_from: str = "end",
    prompt_bars: int | None = None,
    max_bars: int = 128,
    max_events: int | None = None,
    spell: Callable[[str], str] = str,
) -> None:
    """Refuse length and prompt options that are out of range or cannot work together, before any work
    (`InvalidArgumentError`, one line).

    `generate_midi` runs it first thing; ``g2m-generate`` runs it before loading a model, with ``spell``
    turning argument names into its option names (``max_bars`` -> ``--max-bars``).
    """

    def refuse(name: str, value: object, why: str) -> InvalidArgumentError:
        return InvalidArgumentError(spell(name), value, why)

    for name, count in (("bars", bars), ("max_bars", max_bars), ("max_events", max_events), ("prompt_bars", prompt_bars)):
        if count is not None:
            validation.positive_int(spell(name), count)
    if duration is not None:
        validation.positive_float(spell("duration"), duration)
    if bars is not None and duration is not None:
        raise refuse("duration", duration, f"give {spell('bars')} or {spell('duration')}: each sets where the piece ends")
    if tempo is not None and tempo not in TEMPO_CLASSES:
        raise refuse("tempo", tempo, f"not a tempo class: {', '.join(map(str, TEMPO_CLASSES))}")
    if time_signature is not None and time_signature not in TIME_SIGNATURES:
        raise refuse("time_signature", time_signature, f"not one of {', '.join(TIME_SIGNATURES)}")
    if fixed_time_signature and time_signature is None:
        raise refuse("fixed_time_signature", True, f"needs {spell('time_signature')}, the signature of every bar")
    if bars == 1 and time_signature is not None and bar_geometry(time_signature)[0] < bar_geometry("4/4")[0]:
        raise refuse("bars", bars, f"a lone bar in {time_signature} reads back as a pickup; ask for 2 or more")
    if prompt_from not in PROMPT_FROM:
        raise refuse("prompt_from", prompt_from, f"not one of {', '.join(PROMPT_FROM)}")
    if prompt_midi is not None and (tempo is not None or time_signature is not None):
        name, value = ("tempo", tempo) if tempo is not None else ("time_signature", time_signature)
        raise refuse(name, value, f"only for pieces without {spell('prompt_midi')}, which sets its own")
    if prompt_bars is not None and (prompt_midi is None or prompt_from != "start"):
        raise refuse("prompt_bars", prompt_bars, f"only with {spell('prompt_midi')} and {spell('prompt_from')} start "
                     "(from the end the whole file is continued)")


def check_prompt_room(
    tokenizer: G2MTokenizer,
    prompts: Iterable[Sequence[int]],
    bars: int | None = None,
    max_events: int | None = None,
    spell: Callable[[str], str] = str,
) -> None:
    """Refuse prompts (token ids) that leave no room: as many events as ``max_events``, more bars than
    ``bars`` (a continued file's bars count, and the new bar opened after it). `InvalidArgumentError`."""
    prompts = list(prompts)
    longest = max(len(ids) for ids in prompts)
    if max_events is not None and longest >= max_events:
        raise InvalidArgumentError(spell("max_events"), max_events, f"the prompt alone has {longest} events")
    bar_id = tokenizer.convert_tokens_to_ids(BAR_TOKEN)
    prompt_bars = max(list(ids).count(bar_id) for ids in prompts)
    if bars is not None and prompt_bars > bars:
        raise InvalidArgumentError(spell("bars"), bars, f"the prompt already has {prompt_bars} bars")


def steering_strength(model: G2MForCausalLM, texture_steering: float | None) -> float:
    """The texture steering to sample with: ``texture_steering``, else the model's generation config's, else 0
    (`InvalidArgumentError` below 0)."""
    if texture_steering is None:
        texture_steering = getattr(model.generation_config, "texture_steering", None) or 0.0
    return validation.non_negative_float("texture_steering", texture_steering)


def _sampling_options(
    num_pieces: int,
    batch_size: int,
    temperature: float | None,
    top_p: float | None,
    style_guidance: float | None,
    style_guidance_warmup: int | None = None,
    style_guidance_rescale: float | None = None,
    style_guidance_kinds: Sequence[str] | None = None,
    style_guidance_contrast: str | None = None,
) -> dict[str, object]:
    """Check the counts and sampling settings shared by `generate_midi` and `infill_midi` (`InvalidArgumentError`);
    the sampling settings given, as `generate` keyword arguments."""
    for name, count in (("num_pieces", num_pieces), ("batch_size", batch_size)):
        validation.positive_int(name, count)
    if temperature is not None:
        validation.positive_float("temperature", temperature)
    if top_p is not None:
        validation.probability("top_p", top_p)
    if style_guidance is not None:
        validation.non_negative_float("style_guidance", style_guidance)
    if style_guidance_warmup is not None:
        validation.non_negative_int("style_guidance_warmup", style_guidance_warmup)
    if style_guidance_rescale is not None:
        validation.unit_interval("style_guidance_rescale", style_guidance_rescale)
    if style_guidance_contrast is not None and style_guidance_contrast not in CONTRASTS:
        raise InvalidArgumentError("style_guidance_contrast", style_guidance_contrast, f"one of {', '.join(CONTRASTS)}")
    settings = (
        ("temperature", temperature), ("top_p", top_p), ("style_guidance", style_guidance),
        ("style_guidance_warmup", style_guidance_warmup), ("style_guidance_rescale", style_guidance_rescale),
        ("style_guidance_kinds", style_guidance_kinds), ("style_guidance_contrast", style_guidance_contrast),
    )
    return {key: value for key, value in settings if value is not None}


class _ProgressStreamer(BaseStreamer):
    """Feeds a tqdm bar from `generate`: the events sampled for the current batch, as the bar's postfix."""

    def __init__(self, bar):
        self.bar, self.steps = bar, 0

    def put(self, value: torch.Tensor) -> None:
        if value.dim() > 1:  # the first call of every window carries its prompt
            return
        self.steps += 1
        if self.steps % 25 == 0:
            self.bar.set_postfix_str(f"event {self.steps}", refresh=True)

    def end(self) -> None:  # one window done; the batch may go on
        pass


def generate_midi(
    model: G2MForCausalLM,
    tokenizer: G2MTokenizer,
    composers: Sequence[str | None] = ("Bach",),
    num_pieces: int = 1,
    seed: int = 0,
    prompt_midi: str | os.PathLike | bytes | None = None,
    prompt_bars: int | None = None,
    max_bars: int = 128,
    max_events: int | None = None,
    batch_size: int = 4,
    temperature: float | None = None,
    top_p: float | None = None,
    style_guidance: float | None = None,
    progress: bool = False,
    *,
    bars: int | None = None,
    duration: float | None = None,
    tempo: int | None = None,
    time_signature: str | None = None,
    fixed_time_signature: bool = False,
    prompt_from: str = "end",
    on_bar: Callable[[int, list[str]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    style_guidance_warmup: int | None = None,
    style_guidance_rescale: float | None = None,
    style_guidance_kinds: Sequence[str] | None = None,
    style_guidance_contrast: str | None = None,
    density: str | float | None = None,
    polyphony: str | float | None = None,
    register: str | float | None = None,
    composer_texture: bool = True,
    texture_steering: float | None = None,
) -> list[GeneratedPiece]:
    """Generate ``num_pieces`` pieces per composer (in the order given), in batches of ``batch_size``.

    Every piece is a valid REMI sequence that ends with EOS; from a composer prompt it decodes to MIDI
    that re-encodes to the same events. Pieces may be longer than the model's training window: contexts
    slide over them bar by bar (`longform`), at a cost per event that does not grow.

    Length (prompt included; at most one of ``bars`` / ``duration``):

    - ``bars``: exactly this many bars (replaces ``max_bars``).
    - ``duration``: the piece ends at the first bar line at or after this many seconds (at its tempo
      class, with each bar's time signature); no bar limit.
    - otherwise the model ends the piece, after at most ``max_bars`` bars.
    - ``max_events``: at most this many events (``None``: no limit).

    ``tempo`` (one of 40, 80, 120, 160) and ``time_signature`` (the first bar's, or every bar's with
    ``fixed_time_signature``) fix what the model would otherwise choose.

    With ``prompt_midi`` each piece continues that file with the requested composer token (its tempo
    is the file's): after its end by default (``prompt_from="end"``: the piece holds the whole file,
    then new bars), or after its first ``prompt_bars`` bars (``prompt_from="start"``, default 4). The
    file's bars stay as the converter gave them, so a pickup bar, for one, does not read back the same.

    ``temperature`` / ``top_p`` default to the model's generation config (SPEC §5: 1.1 and 0.99), and
    so does ``style_guidance``, the scale of classifier-free guidance on the composer
    (`StyleGuidanceLogitsProcessor`; 1: none, the bundled model's default: 2), and so do the options that
    shape it: ``style_guidance_warmup`` (events over which the scale ramps up from 1),
    ``style_guidance_rescale`` (phi, 0..1: the guided distribution rescaled toward the conditional one's
    spread), ``style_guidance_kinds`` (event kinds whose values guidance chooses, e.g.
    ``["Note_Pitch"]``; the rest is the conditional model's) and ``style_guidance_contrast`` (what the composer
    is pushed away from: ``"none"``, the general corpus's ``Composer_None``, or ``"composers"``, the model's
    other trained composers). The
    same arguments and ``seed`` give the same pieces; the global torch random state is left untouched.

    Texture (a model trained with texture-control tokens, `control_tokens`): every bar is written under a
    density, polyphony and register level. By default each piece follows real pieces of its composer bar by
    bar (``config.composer_textures``), at the tempo class of the first of them unless ``tempo`` or
    ``prompt_midi`` sets it; ``density`` / ``polyphony`` / ``register`` fix one for every bar: a
    level (``"low"``, ``"mid"``, ``"high"``) or a number (notes per quarter note; notes per onset; mean MIDI
    pitch, 60 = middle C), classed by `vocab.BAR_CLASS_EDGES`; ``composer_texture=False`` leaves the bars
    without a knob to the model. ``texture_steering`` (default: the model's generation config, else 0) pulls
    each bar into its planned levels as it is written (`texture_steering.TextureSteering`: 1 is the tuned
    strength, 0 none). The returned pieces are plain REMI.
    ``progress`` shows a tqdm bar (pieces done, and the events of the current batch).

    Streaming and stopping (`longform.sample_long`): ``on_bar(index, events)`` is called as each bar is
    finished, with the piece's index in the returned list and its new events; the first call of a piece
    holds its prompt too, the last ends with EOS, and a piece's calls concatenate to exactly its
    ``events``. ``should_stop()`` is asked before every sampling step: True stops the generation
    with `GenerationCancelled` (so does ``on_bar`` raising it).

    Raises:
        VocabularyError: an unknown composer (the message lists the known ones).
        RemiError: ``prompt_midi`` cannot be read or converted.
        InvalidArgumentError: a bad count or option (`check_generation_options`), ``temperature`` <= 0,
            ``top_p`` outside (0, 1], a bad texture level, or a prompt that already reaches ``max_events``
            or ``bars`` (`check_prompt_room`).
        VocabularyError: a texture level asked of a model without texture-control tokens.
        GenerationCancelled: ``should_stop`` returned True before the last piece was finished.
    """
    check_generation_options(bars, duration, tempo, time_signature, fixed_time_signature, prompt_midi,
                             prompt_from, prompt_bars, max_bars, max_events)
    sampling = _sampling_options(num_pieces, batch_size, temperature, top_p, style_guidance, style_guidance_warmup,
                                 style_guidance_rescale, style_guidance_kinds, style_guidance_contrast)
    names = [split_event(tokenizer.composer_token(name))[1] for name in composers]  # validates every name
    prompts = {
        name: prompt_ids(tokenizer, name, prompt_midi, prompt_bars, prompt_from, tempo) for name in dict.fromkeys(names)
    }
    requests = [name for name in names for _ in range(num_pieces)]
    check_prompt_room(tokenizer, prompts.values(), bars, max_events)
    texture = texture_request(model, tokenizer, density, polyphony, register, composer_texture)
    texture_steering = steering_strength(model, texture_steering)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(requests), unit="piece", desc="generating")
    pieces: list[GeneratedPiece] = []
    plan_bars = bars or (max_bars if duration is None else DURATION_PLAN_BARS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(requests), batch_size):
            batch = requests[start : start + batch_size]
            batch_prompts, grammar = texture.batch(
                tokenizer, batch, [prompts[name] for name in batch],
                texture.plan(batch, plan_bars, seed + start),
                retempo=tempo is None and prompt_midi is None, texture_steering=texture_steering,
                max_bars=None if duration is not None else max_bars, max_events=max_events, bars=bars,
                duration=duration, time_signature=time_signature, fixed_time_signature=fixed_time_signature,
            )
            rows = sample_long(
                model,
                batch_prompts,
                grammar,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                bar_token_id=tokenizer.convert_tokens_to_ids(BAR_TOKEN),
                streamer=_ProgressStreamer(bar) if bar is not None else None,
                on_bar=None if on_bar is None else (
                    lambda row, ids, start=start: on_bar(start + row, tokenizer.ids_to_events(texture.strip(ids)))),
                should_stop=should_stop,
                do_sample=True,
                **sampling,
            )
            for name, ids, prompt in zip(batch, map(texture.strip, rows), batch_prompts):
                pieces.append(GeneratedPiece(name, tokenizer.ids_to_events(ids), tokenizer.decode_midi(ids), len(prompt)))
            if bar is not None:
                bar.update(len(batch))
    if bar is not None:
        bar.close()
    return pieces


# --- texture: the control tokens each bar is written under (layout: control_tokens.py) -------------------

DURATION_PLAN_BARS = 512
"""Bars of a texture plan for a piece of a given duration (a longer piece starts the plan over)."""


@dataclass(frozen=True)
class TextureRequest:
    """The texture a `generate_midi` call asks for (`texture_request`): the knobs' levels, the composers'
    real textures, and the tokens (``None``: a model without texture-control tokens, nothing to plan)."""

    knobs: dict[str, int | None]
    textures: texture_plan.ComposerTextures | None
    tokens: control_tokens.ControlTokens | None

    @property
    def fixed(self) -> tuple[str, ...]:
        """The knobs that are set (`texture_plan.fixed_knobs`)."""
        return texture_plan.fixed_knobs(self.knobs)

    def plan(self, composers: Sequence[str], bars: int, seed: int) -> texture_plan.TexturePlan | None:
        """The plan of a batch (`texture_plan.plan_batch`), or ``None`` (nothing planned)."""
        if self.tokens is None:
            return None
        plan = texture_plan.plan_batch(self.textures, composers, bars, seed, self.knobs)
        return None if plan.empty else plan

    def batch(
        self, tokenizer: G2MTokenizer, names: Sequence[str], prompts: Sequence[list[int]],
        plan: texture_plan.TexturePlan | None, retempo: bool, texture_steering: float, **grammar_options: Any,
    ) -> tuple[list[list[int]], RemiGrammarLogitsProcessor]:
        """The prompts and the grammar of one batch of pieces (composer ``names``): their ``plan`` (`plan`)
        written and steered by the grammar (``grammar_options``: its length and signature settings), and, with
        ``retempo``, each prompt at the tempo class of the real piece its plan follows."""
        prompts = list(prompts)
        if plan is not None and retempo:
            prompts = [prompt if planned is None else prompt_ids(tokenizer, name, tempo=planned)
                       for name, prompt, planned in zip(names, prompts, plan.tempi)]
        texture = {} if plan is None else plan.grammar_arguments(texture_steering, self.knobs)
        grammar = RemiGrammarLogitsProcessor(tokenizer.event_vocabulary, **texture, **grammar_options)
        return prompts, grammar

    def span_plan(self, tokenizer: G2MTokenizer, span: Sequence[int]) -> torch.Tensor | None:
        """The grammar's ``controls`` for rewriting the bars ``span`` (ids): the knobs that are set, and the
        replaced bars' own levels for the other kinds; ``None`` without a knob (the context decides)."""
        if self.tokens is None or all(level is None for level in self.knobs.values()):
            return None
        levels = control_tokens.bar_levels(tokenizer.ids_to_events(span))  # [span bars, kinds]
        return torch.from_numpy(texture_plan.with_knobs(levels, self.knobs)).unsqueeze(0)

    def strip(self, ids: Sequence[int]) -> list[int]:
        """A generated row without its control tokens: the plain REMI piece."""
        return list(ids) if self.tokens is None else control_tokens.strip(ids, self.tokens).tolist()


def texture_request(
    model: G2MForCausalLM,
    tokenizer: G2MTokenizer,
    density: str | float | None = None,
    polyphony: str | float | None = None,
    register: str | float | None = None,
    composer_texture: bool = True,
    spell: Callable[[str], str] = str,
) -> TextureRequest:
    """Check the texture knobs (`texture_plan.parse_level`) before any work: `InvalidArgumentError` for a bad
    level (``spell`` turns argument names into options), `VocabularyError` for a level asked of a model
    without texture-control tokens. ``composer_texture``: follow the composers' real textures where no knob
    is set (``config.composer_textures``)."""
    knobs = texture_plan.parse_knobs(density, polyphony, register, spell)
    vocabulary = model_vocabulary(model)
    if not texture_plan.plannable(vocabulary, knobs):
        return TextureRequest(knobs, None, None)
    textures = texture_plan.ComposerTextures.from_config(model.config) if composer_texture else None
    return TextureRequest(knobs, textures, control_tokens.ControlTokens.of(tokenizer))


# --- bar infilling: rewriting bars in the middle of a piece (layout: infill.py) ------------------------


@dataclass
class InfillRequest:
    """A checked request to rewrite bars of a piece (`prepare_infill`)."""

    composer: str  # the composer name without "Composer_"
    piece: np.ndarray  # the whole piece's token ids, with its composer token and EOS
    first: int  # the span: bars first..stop-1, counted from 0
    stop: int
    signatures: list[str]  # the time signature of each bar of the span
    tokens: infill.InfillTokens

    @property
    def bars(self) -> tuple[int, int]:
        """The span as a musician counts it: from 1, inclusive."""
        return self.first + 1, self.stop


def prepare_infill(
    tokenizer: G2MTokenizer,
    piece: str | os.PathLike | bytes,
    bars: tuple[int, int],
    composer: str | None,
    time_signature: str | Sequence[str] | None = None,
    spell: Callable[[str], str] = str,
) -> InfillRequest:
    """Check an infilling request without a model, before any work: the tokenizer has the infill tokens,
    the piece reads, ``bars`` (from 1, inclusive) is a range of its bars that is not all of them, and the
    span's signatures (``time_signature``: one for every bar of the span, or one per bar; default: those of
    the bars it replaces) keep the rest of the piece reading back the same (a new first bar may not make a
    pickup, a shorter span may not make a held note collide with a kept one).

    Raises:
        VocabularyError: no infill tokens, or an unknown composer.
        RemiError: the piece cannot be read or converted.
        InvalidArgumentError: a bad range or time signature (``spell`` turns argument names into options).
    """
    infill.InfillTokens.of(tokenizer)  # no infill tokens: refused before the file is read
    name = split_event(tokenizer.composer_token(composer))[1]
    ids = tokenizer.encode_midi(piece, composer=name)
    source = os.fspath(piece) if isinstance(piece, (str, os.PathLike)) else "the piece"
    return infill_request(tokenizer, ids, bars, time_signature, source, spell)


def infill_request(
    tokenizer: G2MTokenizer,
    ids: Sequence[int],
    bars: tuple[int, int],
    time_signature: str | Sequence[str] | None = None,
    source: str = "the piece",
    spell: Callable[[str], str] = str,
) -> InfillRequest:
    """`prepare_infill` for a piece already encoded (``ids``: a whole piece, its composer token first)."""
    tokens = infill.InfillTokens.of(tokenizer)
    ids = np.asarray(ids, dtype=np.int64)
    name = split_event(tokenizer.ids_to_events(ids[:1])[0])[1]
    bounds = infill.bar_bounds(ids, tokens)
    try:
        first, stop = infill.check_bars(bars, len(bounds) - 1, source)
    except InvalidArgumentError as error:
        raise InvalidArgumentError(spell(error.name), error.value, error.why) from None
    events = tokenizer.ids_to_events(ids)
    own = [split_event(events[bounds[bar] + 1])[1] for bar in range(first, stop)]
    if time_signature is None:
        signatures = own
    else:
        signatures = [time_signature] * len(own) if isinstance(time_signature, str) else list(time_signature)
        wrong = [s for s in signatures if s not in TIME_SIGNATURES]
        if len(signatures) != len(own) or wrong:
            raise InvalidArgumentError(spell("time_signature"), time_signature,
                                       f"one of {', '.join(TIME_SIGNATURES)}, or one per bar of the {len(own)}")
        empty = [token for s in signatures for token in (BAR_TOKEN, event("Time_Signature", s))]
        kept = events[: bounds[first]] + empty + events[bounds[stop] :]
        if _reads_back(events) and not _reads_back(kept):
            raise InvalidArgumentError(spell("time_signature"), time_signature,
                                       "the kept bars would not read back the same with it (a first bar that "
                                       "becomes a pickup, or a held note that now meets a kept one)")
    return InfillRequest(name, ids, first, stop, signatures, tokens)


def _reads_back(events: list[str]) -> bool:
    """Whether ``events`` decode to MIDI that re-encodes to them."""
    from .remi import events_to_midi, midi_to_events

    composer = split_event(events[0])[1]
    return midi_to_events(events_to_midi(events), composer=composer) == events


def infill_midi(
    model: G2MForCausalLM,
    tokenizer: G2MTokenizer,
    piece: str | os.PathLike | bytes,
    *,
    bars: tuple[int, int],
    composer: str | None,
    num_pieces: int = 1,
    seed: int = 0,
    time_signature: str | Sequence[str] | None = None,
    batch_size: int = 4,
    temperature: float | None = None,
    top_p: float | None = None,
    style_guidance: float | None = None,
    progress: bool = False,
    density: str | float | None = None,
    polyphony: str | float | None = None,
    register: str | float | None = None,
    style_guidance_contrast: str | None = None,
    texture_steering: float | None = None,
) -> list[GeneratedPiece]:
    """Rewrite bars ``bars`` (counted from 1, inclusive: ``(9, 12)``) of the MIDI file ``piece`` in the
    style of ``composer``, ``num_pieces`` times; every `GeneratedPiece` holds the whole spliced piece.

    The model reads the bars on both sides of the gap (`infill.infill_context`: those that fit half its
    training window, so a piece of any length works) and writes the span after them (bar infilling,
    `infill.py`); `InfillGrammarLogitsProcessor` makes the span exactly that many bars, in the time
    signatures of the bars it replaces (or ``time_signature``: one for all, or one per bar), valid in its
    piece. The kept bars are the file's events unchanged, event for event; when the file's events read back
    the same from MIDI (as a generated piece's do), so do the spliced piece's. ``prompt_length`` of a piece
    is the number of events before the span, ``infilled_bars`` the bars written.

    ``temperature``, ``top_p``, ``style_guidance``, ``style_guidance_contrast``, the texture knobs
    ``density``, ``polyphony`` and ``register`` and ``texture_steering`` are those of `generate_midi` (a knob fixes its level in every new bar, the others keep the
    levels of the bars replaced; without a knob the bars around the gap alone set the texture); the same
    arguments and ``seed`` give the same pieces; ``progress`` shows a tqdm bar.

    Raises:
        VocabularyError: the tokenizer or the model has no infill tokens (a model trained without
            infilling examples), or an unknown composer.
        RemiError: ``piece`` cannot be read.
        InvalidArgumentError: a bad range, time signature or sampling option (`prepare_infill`), or a span
            too long for the model's window.
    """
    _sampling_options(num_pieces, batch_size, temperature, top_p, style_guidance,  # before the file is read
                      style_guidance_contrast=style_guidance_contrast)
    texture_request(model, tokenizer, density, polyphony, register)
    steering_strength(model, texture_steering)
    request = prepare_infill(tokenizer, piece, bars, composer, time_signature)
    return sample_infills(model, tokenizer, request, num_pieces, seed, batch_size, temperature, top_p, style_guidance,
                          progress, density=density, polyphony=polyphony, register=register,
                          style_guidance_contrast=style_guidance_contrast, texture_steering=texture_steering)


def sample_infills(
    model: G2MForCausalLM,
    tokenizer: G2MTokenizer,
    request: InfillRequest,
    num_pieces: int = 1,
    seed: int = 0,
    batch_size: int = 4,
    temperature: float | None = None,
    top_p: float | None = None,
    style_guidance: float | None = None,
    progress: bool = False,
    should_stop: Callable[[], bool] | None = None,
    *,
    density: str | float | None = None,
    polyphony: str | float | None = None,
    register: str | float | None = None,
    style_guidance_contrast: str | None = None,
    texture_steering: float | None = None,
) -> list[GeneratedPiece]:
    """`infill_midi` for a checked request (a piece already encoded: evaluation, the app).

    ``should_stop()`` is asked before every sampling step: True stops the infilling with
    `GenerationCancelled` (a listener who left, a time limit), as in `generate_midi`."""
    sampling = _sampling_options(num_pieces, batch_size, temperature, top_p, style_guidance,
                                 style_guidance_contrast=style_guidance_contrast)
    infill.require_infill_tokens(model_vocabulary(model), "the model")
    texture = texture_request(model, tokenizer, density, polyphony, register)
    texture_steering = steering_strength(model, texture_steering)
    tokens, ids, first, stop = request.tokens, request.piece, request.first, request.stop
    window = training_window(model.config)
    prompt = infill.infill_context(ids, first, stop, int(window * CONTEXT_FRACTION), tokens)
    bounds = infill.bar_bounds(ids, tokens)
    before, after = ids[: bounds[first]], ids[bounds[stop] :]
    plan = texture.span_plan(tokenizer, ids[bounds[first] : bounds[stop]])
    per_bar = 2 + (0 if plan is None else plan.shape[-1])  # Bar, Time_Signature and the controls
    if len(prompt) + per_bar * (stop - first) + 1 > window:
        raise InvalidArgumentError("bars", f"{first + 1}-{stop}",
                                   f"too many bars to rewrite at once for the model's window of {window} events")

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_pieces, unit="piece", desc="infilling")
    pieces: list[GeneratedPiece] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, num_pieces, batch_size):
            rows = min(batch_size, num_pieces - start)
            grammar = InfillGrammarLogitsProcessor(tokenizer.event_vocabulary, before, request.signatures, after,
                                                   max_length=window, controls=plan, texture_steering=texture_steering,
                                                   knobs=texture.fixed)
            input_ids = torch.as_tensor(prompt).repeat(rows, 1).to(model.device)
            output = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_length=window,
                remi_grammar=False,
                logits_processor=[grammar],
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokens.end,
                do_sample=True,
                streamer=None if should_stop is None else StopWhenAsked(
                    should_stop, message="infilling stopped before the end of the span"),
                **sampling,
            )
            for row in output.cpu().numpy():
                _, span, _ = infill.unarrange(row[row != tokenizer.pad_token_id], tokens)
                whole = infill.splice(ids, first, stop, np.asarray(texture.strip(span)), tokens)
                pieces.append(GeneratedPiece(request.composer, tokenizer.ids_to_events(whole),
                                             tokenizer.decode_midi(whole), int(bounds[first]), request.bars))
            if bar is not None:
                bar.update(rows)
    if bar is not None:
        bar.close()
    return pieces


# --- writing pieces (shared by g2m-generate and g2m-demo) ---------------------------------------

PIECE_SUFFIXES = (".mid", ".txt", ".png", ".wav", ".musicxml")
"""The files written per piece: MIDI, the event list, a piano roll and (when asked for) its audio and its score."""


def output_stem(directory: Path, composer: str, taken: set[str], overwrite: bool) -> Path:
    """``<dir>/<composer>_<n>`` with the smallest n not used in this run, and (unless ``overwrite``)
    none of whose `PIECE_SUFFIXES` files exist already."""
    n = 0
    while True:
        stem = directory / f"{composer}_{n}"
        exists = any(stem.with_suffix(suffix).exists() for suffix in PIECE_SUFFIXES)
        if stem.name not in taken and (overwrite or not exists):
            taken.add(stem.name)
            return stem
        n += 1


def infilled_seconds(midi: pretty_midi.PrettyMIDI, first: int, last: int) -> tuple[float, float]:
    """Where bars ``first..last`` (from 1, inclusive) of a decoded piece start and end, in seconds (the
    REMI decoder writes a time-signature event at every bar line)."""
    lines = [change.time for change in midi.time_signature_changes] + [midi.get_end_time()]
    return lines[first - 1], lines[min(last, len(lines) - 1)]


def write_piece(
    piece: GeneratedPiece, stem: Path, audio: bool = False, piano_roll: bool = True, score: bool = False
) -> None:
    """The piece as MIDI, as its event list (one per line), with ``piano_roll`` as a piano-roll image
    (matplotlib: the ``notation`` extra; infilled bars shaded), with ``score`` as MusicXML
    (`g2m_hf.notation.write_score`: the ``notation`` extra) and, with ``audio``, as a WAV file rendered with
    the default SoundFont (`g2m_hf.audio.render_audio`: the ``audio`` extra); each file atomically, the WAV
    last (a piece without notes has none)."""
    with fileio.atomic_path(stem.with_suffix(".mid")) as partial:
        piece.midi.write(str(partial))
    fileio.write_text(stem.with_suffix(".txt"), "\n".join(piece.events) + "\n")
    if piano_roll:
        from .plotting import plot_piano_roll

        title = f"{piece.composer} ({stem.name})"
        marked = None
        if piece.infilled_bars is not None:
            first, last = piece.infilled_bars
            marked = infilled_seconds(piece.midi, first, last)
            title += f", bars {first}-{last} infilled"
        plot_piano_roll(piece.midi, stem.with_suffix(".png"), title=title, marked=marked)
    if score:
        from .notation import write_score

        write_score(piece, stem.with_suffix(".musicxml"))
    if audio:
        from .audio import render_audio

        render_audio(piece.midi, stem.with_suffix(".wav"))


__all__ = [
    "GeneratedPiece",
    "PROMPT_FROM",
    "check_generation_options",
    "check_prompt_room",
    "default_base_model_path",
    "default_model_path",
    "generate_midi",
    "InfillRequest",
    "infill_midi",
    "infill_request",
    "prepare_infill",
    "sample_infills",
    "load_model",
    "load_model_as",
    "load_tokenizer",
    "prompt_ids",
    "quantize_int8",
    "trained_composers",
    "WEIGHT_DTYPES",
    "output_stem",
    "write_piece",
]
