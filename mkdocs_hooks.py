"""MkDocs hook: the nav names pages that other branches are writing; a page not there yet is left out.

mkdocs.yml lists every planned page (texture, infilling, notation, serving, speed...). With
``mkdocs build --strict`` a nav entry for a missing file fails the build, so this hook drops such
entries (and a section left empty) before the build, and logs which; when a page lands in docs/,
it appears in the nav without another edit.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("mkdocs.hooks.optional_pages")


def _present(entries: list, docs: Path) -> list:
    kept = []
    for entry in entries:
        (title, target), = entry.items() if isinstance(entry, dict) else ((None, entry),)
        if isinstance(target, list):
            target = _present(target, docs)
            if not target:
                continue
        elif not target.startswith(("http://", "https://")) and not (docs / target).is_file():
            log.info("nav: %s is not written yet, left out", target)
            continue
        kept.append({title: target} if title is not None else target)
    return kept


def on_config(config):
    config["nav"] = _present(config["nav"], Path(config["docs_dir"]))
    return config
