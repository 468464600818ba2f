"""What a saved g2m folder declares about its code: remote code files, or the installed package.

A folder loads in one of two ways, and its ``config.json`` / ``tokenizer_config.json`` say which:

- **remote code** (a Hub repository): ``auto_map`` entries name the flat module files beside them
  (``configuration_g2m.py``, ``modeling_g2m.py``, ``tokenization_g2m.py`` and what they import), so
  ``trust_remote_code=True`` works where g2m_hf is not installed; ``tokenizer_class`` stays the
  generic fast class `G2MTokenizer.save_pretrained` writes, so a plain load works too.
- **the installed package** (the bundled default model, which lives inside g2m_hf and ships no
  ``.py`` files): no ``auto_map`` (it would point at files that are not there), and
  ``tokenizer_class`` names ``G2MTokenizer``, registered with AutoTokenizer when g2m_hf is imported,
  so the Auto classes give the package's classes with or without ``trust_remote_code``.

`declared_config` is that rule, for one file; `declared_files` applies it to a folder without
touching it (what a Hub push uploads, with the installed package's code files) and `declare_code`
writes it into the folder (the bundled default model).
`save_pretrained` itself writes ``auto_map`` entries for the classes it saves (they are registered
with `register_for_auto_class`); the rule completes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"

AUTO_MAPS: dict[str, dict[str, Any]] = {
    CONFIG_NAME: {
        "AutoConfig": "configuration_g2m.G2MConfig",
        "AutoModel": "modeling_g2m.G2MModel",
        "AutoModelForCausalLM": "modeling_g2m.G2MForCausalLM",
        "AutoModelForSequenceClassification": "modeling_g2m.G2MForSequenceClassification",
    },
    # (slow, fast) pair as transformers writes it for a class whose name does not end in "Fast";
    # transformers 5 loads the first non-empty entry
    TOKENIZER_CONFIG_NAME: {"AutoTokenizer": ["tokenization_g2m.G2MTokenizer", None]},
}
"""The ``auto_map`` of each file: Auto class -> ``module.Class`` of the flat remote-code files."""

PACKAGE_TOKENIZER_CLASS = "G2MTokenizer"
"""``tokenizer_class`` of a folder loaded with the installed package."""


def declared_config(file_name: str, config: dict[str, Any], remote_code: bool) -> dict[str, Any]:
    """``config`` (the content of ``file_name``, config.json or tokenizer_config.json) as a folder
    with (``remote_code``) or without remote-code files declares it."""
    config = dict(config)
    if remote_code:
        config["auto_map"] = {**config.get("auto_map", {}), **AUTO_MAPS[file_name]}
    else:
        config.pop("auto_map", None)
        if file_name == TOKENIZER_CONFIG_NAME:
            config["tokenizer_class"] = PACKAGE_TOKENIZER_CLASS
    return config


def declared_files(folder: str | os.PathLike, remote_code: bool) -> dict[str, Path | bytes]:
    """The folder's config.json / tokenizer_config.json (those it has) as `declared_config` wants them:
    the file itself when it already says so, else the new content, laid out as transformers saves it."""
    files: dict[str, Path | bytes] = {}
    for name in AUTO_MAPS:
        path = Path(folder) / name
        if not path.is_file():
            continue
        config = json.loads(path.read_text(encoding="utf-8"))
        declared = declared_config(name, config, remote_code)
        if declared == config:
            files[name] = path
        else:
            files[name] = (json.dumps(declared, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    return files


def declare_code(folder: str | os.PathLike, remote_code: bool) -> None:
    """Rewrite the folder's config.json / tokenizer_config.json to declare (or not) remote code."""
    for name, content in declared_files(folder, remote_code).items():
        if isinstance(content, bytes):
            path = Path(folder) / name
            temporary = path.with_name(f".{name}.tmp")
            temporary.write_bytes(content)
            temporary.replace(path)  # a half-written config never replaces a whole one


def auto_map_modules() -> list[str]:
    """The module files that the ``auto_map`` entries name (``modeling_g2m.py``...), sorted."""
    names = {reference for auto_map in AUTO_MAPS.values() for value in auto_map.values()
             for reference in (value if isinstance(value, list) else [value]) if reference}
    return sorted({reference.split(".")[0] + ".py" for reference in names})


__all__ = ["AUTO_MAPS", "auto_map_modules", "declare_code", "declared_config", "declared_files"]
