"""Guidance distillation (training/distill_guidance.py): the student learns the guided teacher, its folder loads
and samples without guidance, bad options are refused before any work.

A tiny random model (tests/test_generation.py) and a few music21 works (three Bach chorales, three Mozart
movements), every output and cache in temporary folders. The guided distribution the student is measured
against is restated here from two separate forwards (the composer as first token; ``Composer_None``), not
taken from the script.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
import torch

from g2m_hf import G2MForCausalLM, G2MTokenizer, generate_midi
from g2m_hf.data import G2MDataCollator
from g2m_hf.style_guidance import StyleGuidanceLogitsProcessor
from tests.cli import exit_code
from tests.test_generation import (  # noqa: F401 (one_thread: the autouse fixture, for this module too)
    ID,
    PAD,
    check_piece,
    one_thread,
    round_trips,
    tiny_model,
)
from training import distill_guidance
from training.common import spec_generation_config

GUIDANCE = 2.5
WINDOW = 96
STEPS, BATCH = 12, 4


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory) -> Path:
    """A tiny random composer model (style adapters after layer 1) whose generation config guides at `GUIDANCE`."""
    folder = tmp_path_factory.mktemp("teacher")
    model = tiny_model(3)
    model.config.training_window = WINDOW
    model.generation_config = spec_generation_config(model.config)  # a folder's own, as a trained model has
    model.generation_config.style_guidance = GUIDANCE
    model.save_pretrained(folder)
    G2MTokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def dataset_folder(tmp_path_factory) -> Path:
    """Three Bach chorales and three Mozart movements, one of each held out for validation (cached per module)."""
    from g2m_hf.corpus import corpus_sources
    from g2m_hf.data import build_dataset

    folder = tmp_path_factory.mktemp("data") / "mastery"
    sources = corpus_sources(["bach", "mozart"], limit=3)
    cache = tmp_path_factory.mktemp("g2m_data_cache")
    build_dataset(sources, G2MTokenizer(), folder, cache_dir=cache, num_proc=1, validation_fraction=0.34)
    return folder


@pytest.fixture(scope="module")
def distilled(teacher_folder, dataset_folder, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("distilled") / "model"
    argv = ["--model", teacher_folder, "--dataset", dataset_folder, "--output", output, "--steps", STEPS,
            "--batch-size", BATCH, "--learning-rate", 3e-3, "--logging-steps", 4, "--seed", 1]
    assert exit_code(distill_guidance.main, argv) == 0
    return output


def held_out_windows(dataset_folder: Path) -> dict:
    """The validation pieces' first windows, untransposed: music the student never trained on."""
    validation = datasets.load_from_disk(str(dataset_folder))["validation"]
    assert sorted(validation["composer"]) == ["Bach", "Mozart"]
    collator = G2MDataCollator(G2MTokenizer(), max_length=WINDOW, augment=False, random_windows=False)
    return collator([validation[row] for row in range(len(validation))])


@torch.no_grad()
def kl_from_guided_teacher(student, teacher, batch: dict) -> float:
    """Mean over real positions of KL(guided teacher || student), the teacher's guidance from two full forwards."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    unstyled_ids = ids.clone()
    unstyled_ids[:, 0] = ID["Composer_None"]  # the model reads the style from the first token

    def log_probs(model, input_ids):
        return torch.log_softmax(model(input_ids=input_ids, attention_mask=mask).logits, dim=-1)

    styled, unstyled = log_probs(teacher, ids), log_probs(teacher, unstyled_ids)
    guided = torch.log_softmax(unstyled + GUIDANCE * (styled - unstyled), dim=-1)
    kl = (guided.exp() * (guided - log_probs(student, ids))).sum(dim=-1)
    return float((kl * mask).sum() / mask.sum())


def test_distillation_brings_the_plain_prediction_to_the_guided_one(teacher_folder, dataset_folder, distilled):
    teacher = G2MForCausalLM.from_pretrained(teacher_folder).eval()
    student = G2MForCausalLM.from_pretrained(distilled).eval()
    batch = held_out_windows(dataset_folder)
    before, after = kl_from_guided_teacher(teacher, teacher, batch), kl_from_guided_teacher(student, teacher, batch)
    assert before > 0.05  # guidance at 2.5 really moves this model's predictions
    assert after < 0.8 * before, (before, after)

    record = json.loads((distilled / distill_guidance.RECORD_NAME).read_text())
    assert record["style_guidance"] == GUIDANCE  # the teacher's scale: its generation config's
    assert record["style_guidance_contrast"] == "none"  # and its contrast (the config names none: Composer_None)
    assert record["dataset"] == str(dataset_folder) and record["max_length"] == WINDOW  # the model's window
    assert [entry["step"] for entry in record["log"]] == [4, 8, 12] and record["steps"] == STEPS
    held_out = record["held_out_kl"]  # the script's own measure, on the same validation windows
    assert held_out["windows"] == 2 and held_out["after"] < held_out["before"]
    assert held_out["before"] == pytest.approx(before, rel=1e-3)
    assert held_out["after"] == pytest.approx(after, rel=1e-3)


def test_the_target_is_what_generation_samples_from_under_the_configs_guidance_options(teacher_folder):
    teacher = G2MForCausalLM.from_pretrained(teacher_folder).eval()
    config = teacher.generation_config
    config.style_guidance_warmup, config.style_guidance_rescale = 6, 0.5
    config.style_guidance_kinds = ["Note_Pitch", "Beat"]
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(len(ID), (2, 10), generator=generator)  # the arithmetic does not need a valid piece
    ids[:, 0] = torch.tensor([ID["Composer_Bach"], ID["Composer_Mozart"]])
    ids[1, 7:] = PAD  # right padding, as the collator pads
    batch = {"input_ids": ids, "attention_mask": (ids != PAD).long()}
    target = distill_guidance.guided_log_probs(teacher, distill_guidance.guidance_of(teacher, None), batch)  # [2, 10, V]
    for row, length in ((0, 10), (1, 7)):
        for t in (0, 3, 5, length - 1):  # inside and after the warm-up
            # a generation step that has read ids[row, :t + 1]: the paired forward, then the processor
            processor = StyleGuidanceLogitsProcessor(teacher, GUIDANCE, ID["Composer_None"], PAD, warmup=6, rescale=0.5,
                                                     guided_kinds=["Note_Pitch", "Beat"])
            prefix = ids[row : row + 1, : t + 1]
            unstyled = torch.cat([torch.tensor([[ID["Composer_None"]]]), prefix[:, 1:]], dim=1)
            with torch.no_grad():
                paired = torch.cat([teacher(prefix).logits, teacher(unstyled).logits])  # [2, t + 1, V]
                scores = processor(prefix, processor.keep_styled(paired)[:, -1])  # [1, V]
            expected = torch.log_softmax(scores, dim=-1)[0]
            assert torch.allclose(target[row, t], expected, atol=1e-4), (row, t)


def test_a_named_contrast_replaces_the_teachers_own(teacher_folder, dataset_folder, tmp_path):
    # the build script distils the fine-tuned folder, whose generation config has no contrast, against the composers
    teacher = G2MForCausalLM.from_pretrained(teacher_folder).eval()
    assert distill_guidance.guidance_of(teacher, None).copies == 2  # the styled row and Composer_None's
    composers = [token for token in ID if token.startswith("Composer_") and token != "Composer_None"]
    against = distill_guidance.guidance_of(teacher, None, "composers")
    assert against.copies == len(composers) and against.guidance == GUIDANCE  # the styled row and the others'
    output = tmp_path / "out"
    argv = ["--model", teacher_folder, "--dataset", dataset_folder, "--output", output, "--steps", 1,
            "--batch-size", 1, "--style-guidance-contrast", "composers"]
    assert exit_code(distill_guidance.main, argv) == 0
    record = json.loads((output / distill_guidance.RECORD_NAME).read_text())
    assert record["style_guidance_contrast"] == "composers" and record["style_guidance"] == GUIDANCE


def test_the_distilled_folder_loads_and_samples_valid_pieces_without_guidance(distilled):
    assert (distilled / "model.safetensors").is_file() and not list(distilled.glob("*.bin"))
    assert not list(distilled.parent.glob(".*.partial"))  # published whole
    model = G2MForCausalLM.from_pretrained(distilled).eval()
    tokenizer = G2MTokenizer.from_pretrained(distilled)
    assert model.generation_config.style_guidance == 1.0
    (piece,) = generate_midi(model, tokenizer, composers=["Bach"], bars=2, seed=0)
    assert check_piece(piece.events, max_bars=2) is None and round_trips(piece.events)
    assert piece.events.count("Bar_None") == 2
    (plain,) = generate_midi(model, tokenizer, composers=["Bach"], bars=2, seed=0, style_guidance=1.0)
    assert plain.events == piece.events  # its default is plain sampling


@pytest.mark.parametrize(
    "options, message",
    [
        (["--steps", "0"], "--steps: 0 (must be at least 1)"),
        (["--batch-size", "two"], "--batch-size: two (not an integer)"),
        (["--learning-rate", "0"], "--learning-rate: 0 (must be greater than 0)"),
        (["--style-guidance", "-1"], "--style-guidance: -1 (must be at least 0)"),
        (["--style-guidance", "1"], "nothing to distil"),
        (["--max-length", "4"], "--max-length 4: must be at least 8"),
        (["--dataset", "{model}"], "not a dataset folder"),
        (["--model", "{data}"], "not a model folder"),
        (["--model", "{missing}"], "no such folder"),
        (["--output", "{model}"], "the teacher's own folder"),
        (["--style-guidance-contrast", "mozart"], "--style-guidance-contrast: invalid choice: 'mozart'"),
    ],
)
def test_bad_options_are_refused_in_one_line_before_any_work(
    options, message, teacher_folder, tmp_path, capsys, monkeypatch
):
    def no_work(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(distill_guidance, "load_model", no_work)
    (tmp_path / "dataset_dict.json").write_text("{}")  # a dataset folder, as far as the options can tell
    folders = {"model": teacher_folder, "data": tmp_path, "missing": tmp_path / "missing"}
    given = {"--model": teacher_folder, "--dataset": tmp_path, "--output": tmp_path / "out"}
    given.update(zip(options[::2], (value.format(**folders) for value in options[1::2])))
    argv = [part for pair in given.items() for part in pair]
    assert exit_code(distill_guidance.main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("distill_guidance.py: error:") and message in error, error
    assert not (tmp_path / "out").exists()


def test_an_existing_output_folder_is_replaced_only_with_overwrite(teacher_folder, dataset_folder, tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "mine.txt").write_text("a user's file")
    argv = ["--model", teacher_folder, "--dataset", dataset_folder, "--output", output, "--steps", 1, "--batch-size", 1]
    assert exit_code(distill_guidance.main, argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--overwrite" in error
    assert [path.name for path in output.iterdir()] == ["mine.txt"]
    assert exit_code(distill_guidance.main, [*argv, "--overwrite"]) == 0
    names = {path.name for path in output.iterdir()}
    assert "mine.txt" not in names and {"model.safetensors", "config.json", distill_guidance.RECORD_NAME} <= names
