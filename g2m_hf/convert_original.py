"""Convert an original Generality-to-Mastery checkpoint and its dictionary into a transformers model folder.

The original training scripts save `torch.save(model.state_dict())` (SPEC §3): a decoder (pretraining
checkpoints without style adapters, fine-tuned ones with them) or, from `train_classifier.py`, the composer
classifier. The folder written here holds the config, safetensors weights, the tokenizer (ids equal to the
dictionary's), a generation config with the original sampling defaults (SPEC §5), the remote-code files and a
short model card; it loads with `AutoModelForCausalLM` / `AutoModelForSequenceClassification`.

Command line: `g2m-convert-original --checkpoint ep022.pt --dictionary dictionary.pkl --output DIR`
(also `python -m g2m_hf.cli.convert ...`; the command line lives in `cli/convert.py`).

Pre-LN or post-LN: the original layer normalises before attention and feed-forward when its config says
``pre_lnorm: True`` (every published config: pretraining, fine-tuning, classifier) and after the residual
sums otherwise (``pre_lnorm=False``, the default of its code). The parameters and their names are the same
either way, so nothing in a checkpoint tells which: the converter assumes pre-LN, the published setting,
and ``pre_layer_norm=False`` (``--layer-norm post``) converts a checkpoint trained with ``pre_lnorm: False``.
A wrong choice gives a model that loads but computes something else; the choice is recorded in the
folder's config (``pre_layer_norm``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from huggingface_hub import ModelCardData
from transformers import GenerationConfig

from . import fileio, validation
from .configuration_g2m import G2MConfig
from .errors import CheckpointError, OutputExistsError
from .grammar import SPEC_GENERATION_DEFAULTS
from .model_card import TAGS, build_card
from .modeling_g2m import G2MForCausalLM, G2MForSequenceClassification, G2MPreTrainedModel
from .tokenization_g2m import G2MTokenizer

ORIGINAL_CLASSIFIER_LABELS = ("Bach", "Chopin", "Mozart", "Beethoven")
"""Class order of the original classifier (`used_categories` in its train_classifier.py)."""

ORIGINAL_NUM_HEADS = 8
"""Head count of every original model; a state dict cannot reveal it (q, k and v are stacked whole)."""

ORIGINAL_TRAINING_WINDOW = 2400
"""The original trains on 2400-event windows (its tgt_len): the converted config's ``training_window``."""

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_LAYER_KEY = re.compile(r"^(decoder|encoder)\.layers\.(\d+)\.(.+)$")
_ADAPTER_KEY = re.compile(r"^decoder\.adapters\.(\d+)\.(linear[12]\.(?:weight|bias))$")
_LAYER_PARTS = {
    "self_attn.out_proj.weight": "self_attn.o_proj.weight",
    "ffn.0.weight": "mlp.fc1.weight",
    "ffn.0.bias": "mlp.fc1.bias",
    "ffn.3.weight": "mlp.fc2.weight",
    "ffn.3.bias": "mlp.fc2.bias",
    "layernorm1.weight": "input_layernorm.weight",
    "layernorm1.bias": "input_layernorm.bias",
    "layernorm2.weight": "post_attention_layernorm.weight",
    "layernorm2.bias": "post_attention_layernorm.bias",
}
_HEADS = {
    "word_emb.emb_lookup.weight": "model.embed_tokens.weight",
    "dec_out_proj.weight": "lm_head.weight",
    "dec_out_proj.bias": "lm_head.bias",
    "cls_head.weight": "score.weight",
    "cls_head.bias": "score.bias",
}
_SINUSOID_BUFFERS = ("decoder.pos_emb.inv_freq", "encoder.pos_emb.inv_freq")


def load_original_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an original checkpoint safely (`weights_only=True`) and return its state dict.

    A dict wrapping the state dict under "state_dict" / "model_state_dict" / "model" is unwrapped too.
    Raises `CheckpointError` (naming the file and the reason) for anything else.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise CheckpointError(f"{source}: no such checkpoint file")
    try:
        content = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load fails in many ways (pickle, zip, struct...): all mean "not readable"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"{source}: not a readable PyTorch checkpoint ({reason})") from None
    for key in _WRAPPER_KEYS:
        if isinstance(content, Mapping) and isinstance(content.get(key), Mapping):
            content = content[key]
            break
    if not isinstance(content, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in content.items()
    ):
        raise CheckpointError(f"{source}: not a state dict (a mapping of parameter names to tensors)")
    if "word_emb.emb_lookup.weight" not in content:
        raise CheckpointError(
            f"{source}: not an original Generality-to-Mastery checkpoint (no word_emb.emb_lookup.weight; "
            f"keys start with {sorted(content)[:3]})"
        )
    return dict(content)


def is_classifier(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """Whether a state dict is the original composer classifier rather than the decoder."""
    return "cls_head.weight" in state_dict


def config_from_original(
    state_dict: Mapping[str, torch.Tensor],
    source: str = "checkpoint",
    num_attention_heads: int = ORIGINAL_NUM_HEADS,
    **config_kwargs,
) -> G2MConfig:
    """The G2MConfig of an original state dict: sizes, layer count and adapter layers read from the shapes."""
    vocab_size, hidden_size = state_dict["word_emb.emb_lookup.weight"].shape
    layers = sorted({int(m.group(2)) for m in map(_LAYER_KEY.match, state_dict) if m})
    if not layers or layers != list(range(len(layers))):
        raise CheckpointError(f"{source}: layer indices {layers} are not 0..n-1")
    prefix = "encoder" if is_classifier(state_dict) else "decoder"
    fc1 = state_dict.get(f"{prefix}.layers.0.ffn.0.weight")
    if fc1 is None:
        raise CheckpointError(f"{source}: missing {prefix}.layers.0.ffn.0.weight (not an original G2M layer)")
    adapters = sorted({int(m.group(1)) for m in map(_ADAPTER_KEY.match, state_dict) if m})
    return G2MConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=len(layers),
        num_attention_heads=num_attention_heads,
        intermediate_size=fc1.shape[0],
        style_adapter_layers=adapters,
        **({} if is_classifier(state_dict) else {"training_window": ORIGINAL_TRAINING_WINDOW}),
        **config_kwargs,
    )


def rename_original_state_dict(state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint") -> dict:
    """Original parameter names -> G2M names; the stacked q/k/v projection is split in three.

    The sinusoid buffer is dropped (recomputed on the fly) after checking it is the standard one.
    Unknown keys raise `CheckpointError`.
    """
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in state_dict.items():
        layer, adapter = _LAYER_KEY.match(key), _ADAPTER_KEY.match(key)
        if key in _SINUSOID_BUFFERS:
            _check_sinusoid_buffer(tensor, source)
        elif key in _HEADS:
            renamed[_HEADS[key]] = tensor
        elif adapter:
            renamed[f"model.style_adapters.{adapter.group(1)}.{adapter.group(2)}"] = tensor
        elif layer and layer.group(3) == "self_attn.in_proj_weight":
            for name, part in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0), strict=True):
                renamed[f"model.layers.{layer.group(2)}.self_attn.{name}.weight"] = part.clone()
        elif layer and layer.group(3) in _LAYER_PARTS:
            renamed[f"model.layers.{layer.group(2)}.{_LAYER_PARTS[layer.group(3)]}"] = tensor
        else:
            raise CheckpointError(f"{source}: unexpected parameter {key!r} for an original G2M model")
    return renamed


def _check_sinusoid_buffer(inv_freq: torch.Tensor, source: str) -> None:
    dim = 2 * inv_freq.numel()
    expected = 1 / (10000 ** (torch.arange(0.0, dim, 2.0) / dim))
    if not torch.allclose(inv_freq.float(), expected):
        raise CheckpointError(f"{source}: pos_emb.inv_freq is not the standard sinusoid frequency table")


def model_from_original(
    state_dict: Mapping[str, torch.Tensor],
    vocabulary: list[str],
    source: str = "checkpoint",
    num_attention_heads: int = ORIGINAL_NUM_HEADS,
    pre_layer_norm: bool = True,
) -> G2MPreTrainedModel:
    """Build the G2M model of an original state dict (decoder or classifier) with its weights loaded.

    `vocabulary` is the event list in id order (from the checkpoint's dictionary); its length must
    equal the checkpoint's vocabulary size. `pre_layer_norm`: the original's ``pre_lnorm`` setting (see
    the module docstring: the checkpoint cannot tell).
    """
    vocab_size = state_dict["word_emb.emb_lookup.weight"].shape[0]
    if vocab_size != len(vocabulary):
        raise CheckpointError(
            f"{source}: the checkpoint has {vocab_size} token ids but the dictionary has {len(vocabulary)} "
            "(with PAD_None); they do not belong together"
        )
    special = dict(pad_token_id="PAD_None", bos_token_id="BOS_None", eos_token_id="EOS_None")
    ids = {name: vocabulary.index(token) for name, token in special.items() if token in vocabulary}
    if is_classifier(state_dict):
        labels = _classifier_labels(state_dict["cls_head.weight"].shape[0])
        extra = dict(id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
        model_class = G2MForSequenceClassification
    else:
        extra, model_class = {}, G2MForCausalLM
    config = config_from_original(
        state_dict, source, num_attention_heads, event_vocabulary=vocabulary, pre_layer_norm=pre_layer_norm,
        **ids, **extra,
    )
    weights = rename_original_state_dict(state_dict, source)
    with torch.device("meta"):  # no random init: every parameter comes from the checkpoint
        model = model_class(config)
    try:
        model.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as error:
        raise CheckpointError(f"{source}: does not fit a G2M model of its own sizes ({error})") from None
    return model.eval()


def _classifier_labels(num_classes: int) -> tuple[str, ...]:
    if num_classes == len(ORIGINAL_CLASSIFIER_LABELS):
        return ORIGINAL_CLASSIFIER_LABELS
    return tuple(f"LABEL_{i}" for i in range(num_classes))


def convert_original_checkpoint(
    checkpoint: str | os.PathLike,
    dictionary: str | os.PathLike,
    output_dir: str | os.PathLike,
    overwrite: bool = False,
    num_attention_heads: int = ORIGINAL_NUM_HEADS,
    pre_layer_norm: bool = True,
) -> Path:
    """Convert `checkpoint` (+ its `dictionary.pkl`) into a model folder at `output_dir`; returns the folder.

    Everything is read and checked before anything is written, and the folder is written atomically
    (`fileio.atomic_directory`): a new folder appears complete or not at all. An existing non-empty
    `output_dir` is refused (`OutputExistsError`) unless `overwrite`, which replaces the files of the
    same names, each in one rename. `pre_layer_norm`: the original's ``pre_lnorm`` (see the module docstring).
    """
    output = validation.output_dir("output_dir", output_dir)
    validation.positive_int("num_attention_heads", num_attention_heads)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise OutputExistsError(f"{output}: exists and is not an empty folder; pass overwrite to replace its files")
    state_dict = load_original_state_dict(checkpoint)
    tokenizer = G2MTokenizer.from_original_dictionary(dictionary)
    source = f"{os.fspath(checkpoint)} (dictionary {os.fspath(dictionary)})"
    model = model_from_original(state_dict, tokenizer.event_vocabulary, source, num_attention_heads, pre_layer_norm)

    if isinstance(model, G2MForCausalLM):
        model.generation_config = GenerationConfig(
            **SPEC_GENERATION_DEFAULTS,
            pad_token_id=model.config.pad_token_id,
            bos_token_id=model.config.bos_token_id,
            eos_token_id=model.config.eos_token_id,
        )
    with fileio.atomic_directory(output) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "README.md").write_text(model_card(model, Path(checkpoint).name), encoding="utf-8")
    return output


def model_card(model: G2MPreTrainedModel, checkpoint_name: str) -> str:
    """A short README for a converted folder: what it is, its sizes, how to load it."""
    config = model.config
    is_decoder = isinstance(model, G2MForCausalLM)
    auto_class = "AutoModelForCausalLM" if is_decoder else "AutoModelForSequenceClassification"
    if is_decoder:
        kind = "fine-tuned (mastery) decoder" if config.style_adapter_layers else "pretrained (generality) decoder"
    else:
        kind = "composer classifier (" + ", ".join(config.id2label.values()) + ")"
    adapters = config.style_adapter_layers or "none"
    summary = f"""Converted with `g2m-convert-original` from the original checkpoint `{checkpoint_name}`
(Generality-to-Mastery, AIMC 2025, arXiv 2506.17497). Token ids equal those of the original dictionary.

- {config.num_hidden_layers} layers, width {config.hidden_size}, {config.num_attention_heads} heads, \
feed-forward {config.intermediate_size}, vocabulary {config.vocab_size} REMI events
- style adapters after layers: {adapters}
- {model.num_parameters() / 1e6:.1f}M parameters

```python
from transformers import AutoTokenizer, {auto_class}

tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder", trust_remote_code=True)
model = {auto_class}.from_pretrained("path/to/this/folder", trust_remote_code=True)
```"""
    metadata = ModelCardData(library_name="transformers", tags=["music", *TAGS])
    return str(build_card(metadata, f"Generality-to-Mastery {kind}", summary))
