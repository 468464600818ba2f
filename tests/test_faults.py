"""Killed runs leave no truncated output, and running them again completes the work.

Each command runs in a subprocess that is sent SIGKILL at a chosen moment - as soon as it starts,
while a file is being written (a hidden ``.partial`` exists), or between two outputs - and the
output folder is then checked file by file: every file under its final name must be whole (MIDI
that reads back, JSON that parses, PNG that decodes, a dataset that loads). A second run must then
finish and write everything.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from datasets import load_from_disk
from PIL import Image

from g2m_hf import G2MConfig, G2MForCausalLM, G2MTokenizer
from g2m_hf.fileio import PARTIAL_SUFFIX
from g2m_hf.remi import midi_to_events

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def kill_when(command: list[str], ready: Callable[[], bool], timeout: float = 300) -> None:
    """Run ``command`` and SIGKILL it as soon as ``ready()`` holds (polled every millisecond).

    Fails if the command ends first: the moment was never reached, and the test would prove nothing.
    """
    process = subprocess.Popen(command, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.001)
    stderr = process.stderr.read().decode(errors="replace")[-2000:] if process.poll() is not None else ""
    process.kill()
    pytest.fail(f"{command[2:4]} ended (or timed out) before the moment to kill it came: {stderr}")


def run(command: list[str]) -> None:
    done = subprocess.run(command, env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def partials(folder: Path) -> list[Path]:
    return list(folder.rglob(f"*{PARTIAL_SUFFIX}")) if folder.exists() else []


def outputs(folder: Path) -> list[Path]:
    """The files under their final names (temporaries of a killed process are hidden and excluded)."""
    if not folder.exists():
        return []
    hidden = lambda path: any(part.startswith(".") for part in path.relative_to(folder).parts)  # noqa: E731
    return [path for path in folder.rglob("*") if path.is_file() and not hidden(path)]


def assert_whole(folder: Path) -> int:
    """Every output file reads back completely; returns how many there are."""
    files = outputs(folder)
    for path in files:
        if path.suffix == ".mid":
            assert midi_to_events(path)[-1] == "EOS_None", path
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix in (".txt", ".md"):
            assert path.read_text(encoding="utf-8").endswith("\n"), path
    return len(files)


# --- generation ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    tokenizer = G2MTokenizer()
    config = G2MConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64, style_adapter_layers=[1], pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       event_vocabulary=tokenizer.event_vocabulary)
    folder = tmp_path_factory.mktemp("faults_model")
    G2MForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("moment", ["at-start", "mid-write", "between-pieces"])
def test_killed_generation_leaves_whole_files_and_a_rerun_completes(tiny_model, tmp_path, moment):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "g2m_hf.cli.generate", "--model", str(tiny_model), "--composer", "bach",
               "--num-pieces", "4", "--batch-size", "1", "--max-bars", "4", "--max-events", "150",
               "--output-dir", str(out)]
    ready = {
        "at-start": lambda: True,
        "mid-write": lambda: bool(partials(out)),
        "between-pieces": lambda: (out / "Bach_0.png").exists(),
    }[moment]
    kill_when(command, ready)
    before = assert_whole(out)
    run(command)
    after = assert_whole(out)
    assert sum(p.suffix == ".png" for p in outputs(out)) >= 4 and after >= before + 12
    assert not partials(out)  # the rerun removed what the killed process left


# --- evaluation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["mid-write", "after-the-first-file"])
def test_killed_evaluation_leaves_whole_reports_and_a_rerun_completes(corpus_midi, tmp_path, moment):
    generated, out = tmp_path / "generated", tmp_path / "report"
    generated.mkdir()
    bach = [path for work, path in corpus_midi.items() if work.startswith("bach/")][:6]
    for n, path in enumerate(bach):
        shutil.copy(path, generated / f"Bach_{n}.mid")
    command = [sys.executable, "-m", "g2m_hf.cli.evaluate", "--generated", str(generated), "--output-dir", str(out)]
    ready = {
        "mid-write": lambda: bool(partials(out)),
        "after-the-first-file": lambda: bool(outputs(out)),
    }[moment]
    kill_when(command, ready)
    assert_whole(out)
    run([*command, "--overwrite"])
    assert assert_whole(out) == 3  # report.json, report.md, metric_distributions.png
    assert json.loads((out / "report.json").read_text())["summary"]["generated"]["count"] == 6


# --- conversion ---------------------------------------------------------------------------------


def test_killed_conversion_leaves_no_folder_and_a_rerun_completes(tmp_path):
    from tests.reference.original_model import OriginalDecoderModel, randomise
    from tests.test_convert_original import VOCAB_SIZE, save_original, write_dictionary

    # wide enough (about 60 MB of weights) that writing the folder takes a while
    original = randomise(OriginalDecoderModel(VOCAB_SIZE, n_layer=6, n_head=8, d_model=512, d_ff=2048)).eval()
    checkpoint = save_original(original, tmp_path / "original.pt")
    dictionary = write_dictionary(tmp_path / "dictionary.pkl")
    out = tmp_path / "converted"
    command = [sys.executable, "-m", "g2m_hf.cli.convert", "--checkpoint", str(checkpoint), "--dictionary",
               str(dictionary), "--output", str(out)]
    staging = tmp_path / f".converted.*{PARTIAL_SUFFIX}"
    writing = lambda: any(any(folder.iterdir()) for folder in tmp_path.glob(staging.name))  # noqa: E731
    kill_when(command, writing)  # as soon as the first file of the folder is being written
    assert not out.exists()  # the folder appears whole or not at all
    run(command)
    expected = {"config.json", "model.safetensors", "tokenizer_config.json", "README.md"}
    assert expected <= {path.name for path in out.iterdir()}
    assert not list(tmp_path.glob(staging.name))  # the killed run's staging folder is gone


# --- dataset build --------------------------------------------------------------------------------


def test_killed_dataset_build_keeps_its_cache_and_a_rerun_gives_the_same_dataset(tmp_path):
    from g2m_hf.corpus import corpus_sources
    from g2m_hf.data import build_dataset

    cache, out = tmp_path / "cache", tmp_path / "dataset"
    selection = ["--music21", "--composers", "bach", "--limit", "16", "--num-proc", "1"]
    command = [sys.executable, str(REPO / "training" / "build_dataset.py"), *selection, "--cache-dir", str(cache),
               "--output", str(out)]
    converted = lambda: list((cache / "midi").glob("*.mid"))  # noqa: E731
    kill_when(command, lambda: len(converted()) >= 6)  # halfway through the music21 conversions
    kept = {p.name: p.read_bytes() for p in converted()}
    assert len(kept) >= 6 and not out.exists()
    for path in converted():
        midi_to_events(path)  # every cached conversion is whole
    run(command)
    assert all((cache / "midi" / name).read_bytes() == data for name, data in kept.items())  # reused, not redone

    # the same selection built without interruption, in a fresh cache
    reference, _ = build_dataset(corpus_sources(["bach"], limit=16), G2MTokenizer(), tmp_path / "reference",
                                 num_proc=1, cache_dir=tmp_path / "fresh_cache")
    rebuilt = load_from_disk(str(out))
    for split in ("train", "validation"):
        assert rebuilt[split].to_list() == reference[split].to_list()
    assert json.loads((out / "build_report.json").read_text())["encoded"] == len(rebuilt["train"]) + len(
        rebuilt["validation"]
    )
