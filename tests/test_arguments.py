"""Every console script refuses bad options in one line, exit code 2, before any work, writing nothing;
the Python API raises `InvalidArgumentError` with the same reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from g2m_hf.cli import app, convert, demo, evaluate, generate, render
from g2m_hf.convert_original import convert_original_checkpoint
from g2m_hf.data import split_dataset
from g2m_hf.errors import InvalidArgumentError
from g2m_hf.evaluation import evaluate_folders, write_report
from g2m_hf.generation import generate_midi
from hub_upload import cli as push
from tests.cli import exit_code
from training import build_dataset, finetune, pretrain, train_classifier

REPO = Path(__file__).resolve().parents[1]
SMOKE_PRETRAIN = str(REPO / "configs" / "smoke_pretrain.yaml")


@pytest.fixture
def place(tmp_path):
    """A work folder with a file named like an output folder, a folder without a model, and a MIDI folder."""
    (tmp_path / "a_file").write_text("mine\n")
    (tmp_path / "no_model").mkdir()
    (tmp_path / "midi").mkdir()
    return tmp_path


def files_under(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# (script, its main, arguments with {tmp} for the work folder, the option named, the reason given)
REFUSALS = [
    ("g2m-generate", generate.main, ["--temperature", "0"], "--temperature", "0 (must be greater than 0)"),
    ("g2m-generate", generate.main, ["--temperature", "nan"], "--temperature", "nan (not a finite number)"),
    ("g2m-generate", generate.main, ["--top-p", "1.5"], "--top-p", "1.5 (must be greater than 0 and at most 1)"),
    ("g2m-generate", generate.main, ["--top-p", "0"], "--top-p", "0 (must be greater than 0 and at most 1)"),
    ("g2m-generate", generate.main, ["--max-bars", "0"], "--max-bars", "0 (must be at least 1)"),
    ("g2m-generate", generate.main, ["--max-events", "-5"], "--max-events", "-5 (must be at least 1)"),
    ("g2m-generate", generate.main, ["--num-pieces", "two"], "--num-pieces", "two (not an integer)"),
    ("g2m-generate", generate.main, ["--batch-size", "0"], "--batch-size", "0 (must be at least 1)"),
    ("g2m-generate", generate.main, ["--prompt-bars", "0"], "--prompt-bars", "0 (must be at least 1)"),
    ("g2m-generate", generate.main, ["--prompt-midi", "{tmp}/none.mid"], "--prompt-midi", "none.mid (no such file)"),
    ("g2m-generate", generate.main, ["--output-dir", "{tmp}/a_file"], "--output-dir", "(is a file; name a folder)"),
    ("g2m-generate", generate.main, ["--output-dir", "{tmp}/a_file/x"], "--output-dir", "is a file, not a folder"),
    ("g2m-demo", demo.main, ["--max-bars", "0"], "--max-bars", "0 (must be at least 1)"),
    ("g2m-demo", demo.main, ["--output-dir", "{tmp}/a_file"], "--output-dir", "a_file (is a file; name a folder)"),
    ("g2m-evaluate", evaluate.main, ["--output-dir", "{tmp}/a_file"], "--output-dir", "(is a file; name a folder)"),
    ("g2m-evaluate", evaluate.main, ["--generated", "{tmp}/none"], "--generated", "none (no such folder)"),
    ("g2m-evaluate", evaluate.main, ["--reference", "{tmp}/a_file"], "--reference", "a_file (not a folder)"),
    ("g2m-evaluate", evaluate.main, ["--si-max-seconds", "-1"], "--si-max-seconds", "-1 (must be at least 0)"),
    ("g2m-evaluate", evaluate.main, ["--batch-size", "0"], "--batch-size", "0 (must be at least 1)"),
    ("g2m-convert-original", convert.main, ["--checkpoint", "{tmp}/none.pt"], "--checkpoint", "(no such file)"),
    ("g2m-convert-original", convert.main, ["--output", "{tmp}/a_file"], "--output", "(is a file; name a folder)"),
    ("g2m-convert-original", convert.main, ["--num-heads", "0"], "--num-heads", "0 (must be at least 1)"),
    ("build_dataset.py", build_dataset.main, ["--validation-fraction", "1"], "--validation-fraction",
     "1 (must be at least 0 and less than 1)"),
    ("build_dataset.py", build_dataset.main, ["--num-proc", "0"], "--num-proc", "0 (must be at least 1)"),
    ("build_dataset.py", build_dataset.main, ["--limit", "0"], "--limit", "0 (must be at least 1)"),
    ("build_dataset.py", build_dataset.main, ["--output", "{tmp}/a_file"], "--output", "(is a file; name a folder)"),
    ("build_dataset.py", build_dataset.main, ["--composer-map", "{tmp}/none.csv"], "--composer-map", "(no such file)"),
    ("g2m-app", app.main, ["--port", "70000"], "--port", "70000 (must be a port number, 1 to 65535)"),
    ("g2m-render", render.main, ["--sample-rate", "0"], "--sample-rate", "0 (must be at least 1)"),
    ("g2m-push", push.main, ["{tmp}/no_model", "--model-card", "{tmp}/none.md"], "--model-card", "(no such file)"),
    ("g2m-push", push.main, ["{tmp}/none"], "MODEL_DIR", "none (no such folder)"),
]

# the arguments that make each command line otherwise complete (the folder without weights makes a
# command that got past its parser fail differently: the refusal must come before any loading)
VALID = {
    "g2m-generate": ["--model", "{tmp}/no_model", "--output-dir", "{tmp}/out"],
    "g2m-demo": ["--output-dir", "{tmp}/out"],
    "g2m-evaluate": ["--generated", "{tmp}/midi", "--output-dir", "{tmp}/out"],
    "g2m-convert-original": ["--checkpoint", "{tmp}/a_file", "--dictionary", "{tmp}/a_file", "--output", "{tmp}/out"],
    "build_dataset.py": ["--midi-dir", "{tmp}/midi", "--output", "{tmp}/out"],
    "g2m-push": ["--repo-id", "alice/x", "--dry-run"],
    "g2m-app": ["--model", "{tmp}/no_model"],
    "g2m-render": ["{tmp}/midi", "--output-dir", "{tmp}/out"],
}


@pytest.mark.parametrize(("prog", "main", "bad", "option", "reason"), REFUSALS, ids=[str(r[2]) for r in REFUSALS])
def test_bad_options_are_refused_in_one_line_before_any_work(place, capsys, prog, main, bad, option, reason):
    argv = [part.format(tmp=place) for part in VALID[prog] + bad]
    before = files_under(place)
    assert exit_code(main, argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{prog}: error: argument {option}: ") and captured.err.count("\n") == 1
    assert reason in captured.err
    assert files_under(place) == before  # nothing written, no output folder created


def test_training_scripts_check_the_recipe_file_and_output_folder(place, capsys):
    for script in (pretrain, finetune, train_classifier):
        assert exit_code(script.main, ["--config", place / "none.yaml"]) == 2
        assert "error: argument --config: " in capsys.readouterr().err
    # output_dir naming a file: refused before the tokenizer, data or model are touched
    code = pretrain.main_guard(pretrain.main, ["--config", SMOKE_PRETRAIN, "--set", f"output_dir={place / 'a_file'}"])
    assert code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "output_dir: " in error and "(is a file; name a folder)" in error
    assert (place / "a_file").read_text() == "mine\n"


# --- the Python API: the same checks, our own error class ------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"temperature": 0}, "temperature: 0 (must be greater than 0)"),
        ({"top_p": 1.5}, "top_p: 1.5 (must be greater than 0 and at most 1)"),
        ({"max_bars": 0}, "max_bars: 0 (must be at least 1)"),
        ({"max_events": 2.5}, "max_events: 2.5 (not an integer)"),
        ({"num_pieces": True}, "num_pieces: True (not an integer)"),
        ({"batch_size": -1}, "batch_size: -1 (must be at least 1)"),
    ],
)
def test_generate_midi_checks_its_arguments_before_touching_the_model(arguments, message):
    with pytest.raises(InvalidArgumentError) as error:
        generate_midi(None, None, **arguments)  # no model needed: the checks come first
    assert str(error.value) == message


def test_library_writers_refuse_bad_paths_and_numbers(place):
    with pytest.raises(InvalidArgumentError, match=r"output_dir: .*a_file \(is a file; name a folder\)"):
        write_report({}, place / "a_file")
    with pytest.raises(InvalidArgumentError, match=r"output_dir: .*a_file \(is a file; name a folder\)"):
        convert_original_checkpoint(place / "x.pt", place / "d.pkl", place / "a_file")
    with pytest.raises(InvalidArgumentError, match=r"batch_size: 0 \(must be at least 1\)"):
        evaluate_folders(place / "midi", batch_size=0)
    with pytest.raises(InvalidArgumentError, match=r"si_max_seconds: -2 \(must be greater than 0\)"):
        evaluate_folders(place / "midi", si_max_seconds=-2)
    with pytest.raises(InvalidArgumentError, match=r"validation_fraction: 1.0 \(must be at least 0 and less than 1\)"):
        split_dataset(None, validation_fraction=1.0)
    assert (place / "a_file").read_text() == "mine\n"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.learning_rate=-0.001", "training.learning_rate: -0.001 (must be greater than 0)"),
        ("training.per_device_train_batch_size=0", "training.per_device_train_batch_size: 0 (must be at least 1)"),
        ("training.max_steps=0", "training.max_steps: 0 (must be at least 1)"),
        ("model.num_attention_heads=0", "num_attention_heads: 0 (must be at least 1)"),
        ("model.hidden_dropout_prob=1.5", "hidden_dropout_prob: 1.5 (must be at least 0 and less than 1)"),
    ],
)
def test_recipe_values_out_of_range_are_refused_before_the_data_is_built(tmp_path, capsys, override, message):
    cache = tmp_path / "never_built"
    argv = ["--config", SMOKE_PRETRAIN, "--set", f"output_dir={tmp_path / 'out'}", "--set", override,
            "--set", f"data.build.cache_dir={cache}"]
    assert pretrain.main_guard(pretrain.main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.endswith(f": error: {message}\n")
    assert not cache.exists() and not (tmp_path / "out").exists()
