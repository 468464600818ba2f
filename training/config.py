"""Training recipes: YAML files in ``configs/`` plus command-line overrides.

A recipe is a nested mapping with these sections (each script documents the keys it reads)::

    output_dir: outputs/pretrain      # the finished model folder (checkpoints go in checkpoint-*/ inside)
    seed: 42
    data:      {...}                  # where the dataset comes from and how windows are cut (training.common)
    model:     {...}                  # G2MConfig keyword arguments (pretraining / classifier)
    finetune:  {...}                  # fine-tuning only: pretrained folder, mode, PEFT settings
    classifier: {...}                 # classifier only
    training:  {...}                  # transformers.TrainingArguments keyword arguments, verbatim

Overrides come in two spellings, applied in this order:

* ``--set dotted.key=value`` (any section; the value is parsed as YAML, so ``1e-4``, ``true``,
  ``[q_proj, v_proj]`` and ``null`` get their natural types);
* any ``TrainingArguments`` flag, as in ``run_clm.py`` (``--push_to_hub --hub_model_id me/g2m``,
  ``--max-steps 10``), which lands in the ``training`` section.

The ``data`` and ``finetune`` sections are read into dataclasses (`DataSection`, `BuildSpec`,
`FinetuneSection`) whose fields are the keys they accept: a misspelt key is refused with the key and
the recipe file named, instead of silently falling back to a default. A ``null`` value means the
field's default.

Relative paths in a recipe are relative to the working directory; the shipped recipes are written
to be run from the repository root (``outputs/smoke_pretrain``, ``data/general``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

import yaml

from training.errors import ConfigError

Recipe = dict[str, Any]
"""A loaded recipe: plain nested dicts / lists / scalars, exactly what YAML gives."""


class _RecipeLoader(yaml.SafeLoader):
    """YAML with two YAML 1.1 surprises removed: ``1e-4`` is a number (not a string), and ``no`` /
    ``yes`` / ``on`` / ``off`` stay strings (``eval_strategy: no`` means the strategy "no"); booleans
    are ``true`` / ``false``."""


_RecipeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def _parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_RecipeLoader)  # a SafeLoader subclass: no arbitrary objects


def load_recipe(path: str | Path) -> Recipe:
    """Read one YAML recipe; a missing file or a non-mapping document is a :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the recipe ({err.strerror or err})") from None
    try:
        recipe = _parse_yaml(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if recipe is None:
        recipe = {}
    if not isinstance(recipe, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of sections, got {type(recipe).__name__}")
    return recipe


def apply_overrides(recipe: Recipe, assignments: Sequence[str]) -> Recipe:
    """Return a copy of ``recipe`` with every ``dotted.key=value`` assignment applied.

    Intermediate mappings are created as needed; assigning below a non-mapping value is an error
    (``training.learning_rate.x=1`` when ``learning_rate`` is a number).
    """
    recipe = copy.deepcopy(recipe)
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {assignment!r}: expected dotted.key=value")
        try:
            value = _parse_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {assignment!r}: the value is not valid YAML ({err})") from None
        set_dotted(recipe, key.strip(), value)
    return recipe


def set_dotted(recipe: Recipe, key: str, value: Any) -> None:
    """Set ``recipe["a"]["b"]["c"] = value`` for ``key == "a.b.c"``, creating mappings on the way."""
    *parents, leaf = key.split(".")
    node = recipe
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parents[: i + 1])
            raise ConfigError(f"--set {key}: {where} is a {type(child).__name__}, not a section")
        node = child
    node[leaf] = value


def section(recipe: Recipe, name: str, source: str = "recipe") -> dict[str, Any]:
    """The mapping ``recipe[name]`` (empty when absent); anything else is a :class:`ConfigError`."""
    value = recipe.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: section {name!r} must be a mapping, got {type(value).__name__}")
    return value


@dataclass
class BuildSpec:
    """``data.build``: a corpus encoded on first use and cached (``training/datasource.py``)."""

    source: str | None = None
    """``music21``, or a folder of MIDI files whose sub-folders name the composers."""
    composers: list[str] = field(default_factory=list)
    """music21 collections labelled with their composer."""
    general: bool | list[str] = False
    """music21: general collections (true: all others); a MIDI folder: whether its top-level files count."""
    composer_map: str | None = None
    """MIDI folder only: a ``path,composer[,category]`` CSV file."""
    limit: int | None = None
    """At most this many works per collection / category."""
    validation_fraction: float = 0.03
    seed: int = 42
    num_proc: int | None = None
    cache_dir: str | None = None
    remi_options: dict[str, Any] = field(default_factory=dict)
    """``g2m_hf.remi.midi_to_events`` options."""


@dataclass
class DataSection:
    """``data``: exactly one of ``dataset`` (a built folder) and ``build`` (a spec), and the windows."""

    dataset: str | None = None
    build: BuildSpec | None = None
    max_length: int = 2400
    """Window length in tokens (the paper's tgt_len)."""
    collator: dict[str, Any] = field(default_factory=dict)
    """More ``G2MDataCollator`` arguments (``transpose_range``, ``include_piece_end``)."""


@dataclass
class FinetuneSection:
    """``finetune``: the pretrained model and how it is fine-tuned (``training/finetune.py``)."""

    pretrained: str | None = None
    mode: str = "full"
    style_adapter_layers: list[int] | None = None
    """None: the checkpoint's own (to go on from a fine-tuned model)."""
    adapter_max_grad_norm: float = 2.5
    balanced: bool = True
    samples_per_epoch: int | None = None
    peft: dict[str, Any] = field(default_factory=dict)
    """``peft.LoraConfig`` arguments (``--mode peft``)."""
    general_dataset: str | None = None
    """A dataset folder whose general (``Composer_None``) pieces are mixed into fine-tuning."""
    general_share: float = 0.25
    """With ``general_dataset``: the share of training draws taken from its pieces."""


Section = TypeVar("Section")

_NESTED: dict[tuple[type, str], type] = {(DataSection, "build"): BuildSpec}
"""Fields that hold a section of their own."""


def typed_section(recipe: Recipe, name: str, section_class: type[Section], source: str) -> Section:
    """``recipe[name]`` as a ``section_class`` (defaults when absent); ``source`` (the recipe file)
    names where an unknown key or a non-mapping came from in the :class:`ConfigError`."""
    return _from_mapping(section(recipe, name, source), section_class, name, source)


def _from_mapping(values: dict[str, Any], section_class: type[Section], where: str, source: str) -> Section:
    known = {item.name: item for item in dataclasses.fields(section_class)}
    for key in values:
        if key not in known:
            raise ConfigError(f"{source}: unknown key {where}.{key} (known: {', '.join(known)})")
    kwargs = {}
    for key, value in values.items():
        if value is None:
            continue  # null: the field's default
        nested = _NESTED.get((section_class, key))
        if nested is not None:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {where}.{key} must be a mapping, got {type(value).__name__}")
            value = _from_mapping(value, nested, f"{where}.{key}", source)
        kwargs[key] = value
    return section_class(**kwargs)


def training_argument_overrides(argv: Sequence[str]) -> dict[str, Any]:
    """Parse ``TrainingArguments`` flags (``--push_to_hub``, ``--hub-model-id x``) given on the command line.

    Only the flags actually given are returned, so they override the recipe and nothing else.
    Unknown flags are a :class:`ConfigError` naming them.
    """
    if not argv:
        return {}
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(TrainingArguments, allow_abbrev=False)
    for action in parser._actions:  # only explicitly given flags should reach the namespace
        action.default = argparse.SUPPRESS
        action.required = False
    namespace, unknown = parser.parse_known_args(list(argv))
    if unknown:
        raise ConfigError(
            f"unknown command-line arguments {unknown}: use --set section.key=value for recipe keys "
            "or a transformers.TrainingArguments flag"
        )
    return vars(namespace)


def dump_recipe(recipe: Recipe) -> str:
    """The recipe as YAML text (what ``training_record.json`` and the output folder keep)."""
    return yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True)
