"""Atomic writes (g2m_hf.fileio): an output appears complete or not at all."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from g2m_hf import fileio


def listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial(tmp_path):
    target = tmp_path / "report.json"
    fileio.write_text(target, "old\n")
    with pytest.raises(RuntimeError), fileio.atomic_path(target) as partial:
        partial.write_text("half of the new")
        raise RuntimeError("killed by a bug")
    assert target.read_text() == "old\n" and listing(tmp_path) == ["report.json"]
    assert fileio.write_bytes(target, b"new\n").read_bytes() == b"new\n"
    assert listing(tmp_path) == ["report.json"]


def test_partial_names_are_hidden_and_never_end_with_the_real_suffix(tmp_path):
    partial = fileio.partial_path(tmp_path / "Bach_0.mid")
    assert partial.parent == tmp_path and partial.name.startswith(".") and not partial.name.endswith(".mid")


def test_partials_left_by_killed_processes_are_removed_by_the_next_write_in_the_folder(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for name in ("piece.mid", "another_piece.txt"):  # the same name, and one never written again
        (tmp_path / f".{name}.{int(dead.stdout)}{fileio.PARTIAL_SUFFIX}").write_bytes(b"truncated")
    live = tmp_path / f".report.json.{os.getpid()}{fileio.PARTIAL_SUFFIX}"  # a writer still at work: kept
    live.write_bytes(b"{")
    fileio.write_bytes(tmp_path / "piece.mid", b"complete")
    assert listing(tmp_path) == [live.name, "piece.mid"]


def test_atomic_directory_publishes_a_new_folder_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt), fileio.atomic_directory(target) as staging:
        (staging / "config.json").write_text("{}")
        raise KeyboardInterrupt
    assert listing(tmp_path) == []
    with fileio.atomic_directory(target) as staging:
        (staging / "config.json").write_text("{}")
        (staging / "sub").mkdir()
        (staging / "sub" / "a.txt").write_text("a")
    assert listing(tmp_path) == ["model", "model/config.json", "model/sub", "model/sub/a.txt"]


def test_atomic_directory_replaces_files_or_swaps_the_whole_folder(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "config.json").write_text("old")
    (target / "keep.txt").write_text("the user's")
    with fileio.atomic_directory(target) as staging:  # per file: the user's other files stay
        (staging / "config.json").write_text("new")
    assert (target / "config.json").read_text() == "new" and (target / "keep.txt").exists()
    with fileio.atomic_directory(target, replace=True) as staging:  # whole folder (a dataset)
        (staging / "dataset_dict.json").write_text("{}")
    assert listing(tmp_path) == ["out", "out/dataset_dict.json"]
