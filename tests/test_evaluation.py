"""g2m-evaluate end to end on MIDI files written here, and the classifier path with a tiny random model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mido
import numpy as np
import pytest
import torch
from PIL import Image

from g2m_hf import G2MConfig, G2MForSequenceClassification, G2MTokenizer
from g2m_hf.cli.evaluate import main
from g2m_hf.errors import EvaluationError
from g2m_hf.evaluation import (
    ComposerClassifier,
    classifier_input_events,
    convergence,
    evaluate_folders,
    folder_sanity,
    mean_metrics,
    prompted_composer,
    round_trips,
    sanity_measures,
    summarise_sanity,
)
from g2m_hf.metrics import METRIC_NAMES
from g2m_hf.remi import events_to_midi, midi_to_events
from tests.cli import exit_code

LABELS = ["Bach", "Beethoven", "Chopin", "Mozart"]


def write_midi(path: Path, bars, tempo=120) -> None:
    """A piano MIDI file in 4/4 from bars of ``(onset in beats, pitch, length in beats)``, exact ticks."""
    ticks_per_beat = 480
    timed = []  # (tick, order, message): note-offs before note-ons at the same tick
    for index, bar in enumerate(bars):
        for onset, pitch, length in bar:
            start = round((4 * index + onset) * ticks_per_beat)
            timed.append((start, 1, mido.Message("note_on", note=pitch, velocity=80)))
            timed.append((start + round(length * ticks_per_beat), 0, mido.Message("note_off", note=pitch)))
    track = mido.MidiTrack(
        [
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo)),
            mido.MetaMessage("time_signature", numerator=4, denominator=4),
        ]
    )
    now = 0
    for tick, _, message in sorted(timed, key=lambda item: item[:2]):
        track.append(message.copy(time=tick - now))
        now = tick
    path.parent.mkdir(parents=True, exist_ok=True)
    mido.MidiFile(ticks_per_beat=ticks_per_beat, tracks=[track]).save(str(path))


def random_bar(rng) -> list[tuple[float, int, float]]:
    onsets = sorted(rng.choice(np.arange(0, 4, 0.25), size=8, replace=False))
    return [(float(onset), int(rng.integers(40, 90)), 0.5) for onset in onsets]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """generated/: four readable pieces (one in a sub-folder, one named only by its event list) and a
    corrupt file; reference/: one piece in a composer folder."""
    root = tmp_path_factory.mktemp("pieces")
    rng = np.random.default_rng(0)
    section = [random_bar(rng) for _ in range(8)]
    generated, reference = root / "generated", root / "reference"
    write_midi(generated / "bach_0.mid", section * 2)
    write_midi(generated / "Mozart_1.mid", [random_bar(rng) for _ in range(16)])
    write_midi(generated / "sub" / "chopin_2.mid", [[(0.0, 60, 1.0), (1.0, 72, 1.0), (2.0, 48, 2.0)]] * 4)
    write_midi(generated / "piece_3.mid", section)
    (generated / "piece_3.txt").write_text("Composer_Beethoven\nTempo_120\nBOS_None\n", encoding="utf-8")
    (generated / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06not a midi file")
    (generated / "notes.txt").write_text("not a piece\n", encoding="utf-8")
    write_midi(reference / "bach" / "chorale.mid", section * 3)
    return generated, reference


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    """A tiny random G2MForSequenceClassification saved with its tokenizer, as train_classifier.py would."""
    folder = tmp_path_factory.mktemp("classifier")
    tokenizer = G2MTokenizer()
    config = G2MConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        style_adapter_layers=[],
        id2label=dict(enumerate(LABELS)),
        label2id={label: index for index, label in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    model = G2MForSequenceClassification(config)
    with torch.no_grad():  # weights of a trained scale, so that pieces get different predictions
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_cli_writes_report_plots_and_skips_a_corrupt_file(folders, tmp_path, capsys):
    generated, reference = folders
    out = tmp_path / "out"
    assert main(["--generated", str(generated), "--reference", str(reference), "--output-dir", str(out)]) == 0
    assert "skipped 1" in capsys.readouterr().out

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(report) == {"pieces", "skipped", "summary"}
    pieces = {(piece["set"], piece["file"]): piece for piece in report["pieces"]}
    assert set(pieces) == {
        ("generated", "Mozart_1.mid"),
        ("generated", "bach_0.mid"),
        ("generated", "piece_3.mid"),
        ("generated", "sub/chopin_2.mid"),
        ("reference", "bach/chorale.mid"),
    }
    for piece in pieces.values():
        assert all(isinstance(piece[name], float) for name in METRIC_NAMES)
    composers = {key: piece["composer"] for key, piece in pieces.items()}
    assert composers[("generated", "piece_3.mid")] == "Beethoven"  # from the event list beside it
    assert composers[("reference", "bach/chorale.mid")] == "Bach"  # from its folder
    assert composers[("generated", "Mozart_1.mid")] == "Mozart"
    chopin = pieces[("generated", "sub/chopin_2.mid")]
    assert chopin["H"] == 0.0 and chopin["GS"] == 1.0  # one pitch class, four identical bars
    assert pieces[("generated", "bach_0.mid")]["SI_mid"] > pieces[("generated", "Mozart_1.mid")]["SI_mid"] + 0.3

    [skipped] = report["skipped"]
    assert skipped["file"] == "broken.mid" and skipped["set"] == "generated" and "broken.mid" in skipped["reason"]

    summary = report["summary"]
    assert summary["generated"]["count"] == 4 and summary["reference"]["count"] == 1
    for name in METRIC_NAMES:
        values = [piece[name] for (set_name, _), piece in pieces.items() if set_name == "generated"]
        assert summary["generated"]["metrics"][name]["mean"] == pytest.approx(np.mean(values))
        assert summary["generated"]["metrics"][name]["std"] == pytest.approx(np.std(values))
    assert set(summary["generated"]["composers"]) == {"Bach", "Beethoven", "Chopin", "Mozart"}
    assert summary["generated"]["composers"]["Chopin"]["metrics"]["H"]["mean"] == 0.0

    for name in ("metric_distributions.png",):
        with Image.open(out / name) as image:
            image.verify()
            assert image.format == "PNG"
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "broken.mid" in markdown and "Generality-to-Mastery" in markdown and "(metric_distributions.png)" in markdown


def test_cli_refuses_to_overwrite_a_report(folders, tmp_path, capsys):
    generated, _ = folders
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("mine\n", encoding="utf-8")
    (out / "keep.txt").write_text("also mine\n", encoding="utf-8")
    assert main(["--generated", str(generated), "--output-dir", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "report.json" in error and "--overwrite" in error
    assert (out / "report.json").read_text(encoding="utf-8") == "mine\n"

    assert main(["--generated", str(generated), "--output-dir", str(out), "--overwrite"]) == 0
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["summary"]["generated"]["count"] == 4
    assert (out / "keep.txt").read_text(encoding="utf-8") == "also mine\n"


@pytest.mark.parametrize("argument", ["--generated", "--reference", "--classifier"])
def test_cli_bad_paths_exit_2_with_one_line(folders, tmp_path, capsys, argument):
    generated, _ = folders
    missing = tmp_path / "missing"
    args = {"--generated": str(generated), "--output-dir": str(tmp_path / "out"), argument: str(missing)}
    if argument == "--classifier":
        missing.mkdir()  # a folder without a model
    assert exit_code(main, [part for pair in args.items() for part in pair]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("g2m-evaluate: error:") and str(missing) in error
    assert not (tmp_path / "out" / "report.json").exists()


def test_classifier_scores_pieces_like_a_direct_forward_pass(folders, classifier_dir, tmp_path):
    generated, reference = folders
    out = tmp_path / "out"
    assert (
        main(
            [
                "--generated",
                str(generated),
                "--reference",
                str(reference),
                "--classifier",
                str(classifier_dir),
                "--output-dir",
                str(out),
                "--batch-size",
                "3",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))

    # the same prediction, one piece at a time, without g2m-evaluate
    tokenizer = G2MTokenizer.from_pretrained(classifier_dir)
    model = G2MForSequenceClassification.from_pretrained(classifier_dir).eval()
    expected = {}
    for piece in report["pieces"]:
        folder = generated if piece["set"] == "generated" else reference
        events = midi_to_events(folder / piece["file"], composer=piece["composer"])
        ids = tokenizer.events_to_ids([token for token in events if not token.startswith("Composer_")][:1200])
        with torch.no_grad():
            expected[piece["file"]] = LABELS[int(model(torch.tensor([ids])).logits.argmax())]
    assert {piece["file"]: piece["predicted"] for piece in report["pieces"]} == expected
    assert len(set(expected.values())) > 1  # the check means something only if predictions differ

    result = report["summary"]["generated"]["classifier"]
    matrix = np.zeros((4, 4), dtype=int)
    for piece in report["pieces"]:
        if piece["set"] == "generated":
            matrix[LABELS.index(piece["composer"]), LABELS.index(piece["predicted"])] += 1
    assert result["labels"] == LABELS and result["confusion_matrix"] == matrix.tolist()
    assert result["accuracy"] == pytest.approx(np.trace(matrix) / 4)
    for name in ("confusion_matrix_generated.png", "confusion_matrix_reference.png"):
        with Image.open(out / name) as image:
            image.verify()
    assert "Composer recognition (generated pieces)" in (out / "report.md").read_text(encoding="utf-8")


def test_confusion_matrix_rows_are_prompted_and_columns_predicted(folders, classifier_dir):
    generated, _ = folders
    classifier = ComposerClassifier.from_pretrained(classifier_dir)
    with torch.no_grad():  # a classifier that answers "Chopin" whatever it reads
        classifier.model.score.weight.zero_()
        classifier.model.score.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 0.0]))
    report = evaluate_folders(generated, classifier=classifier, progress=False)
    result = report["summary"]["generated"]["classifier"]
    assert result["confusion_matrix"] == [[0, 0, 1, 0]] * 4  # one piece per prompted composer
    assert result["accuracy"] == 0.25 and result["recognition"] == {
        "Bach": 0.0,
        "Beethoven": 0.0,
        "Chopin": 1.0,
        "Mozart": 0.0,
    }
    assert result["predicted_counts"] == {"Bach": 0, "Beethoven": 0, "Chopin": 4, "Mozart": 0}


def test_classifier_reads_the_piece_without_its_composer_token():
    events = ["Composer_Bach", "Tempo_120", "BOS_None"] + ["Bar_None", "Time_Signature_4/4"] * 700 + ["EOS_None"]
    view = classifier_input_events(events)
    assert view[:3] == ["Tempo_120", "BOS_None", "Bar_None"] and len(view) == 1200
    assert classifier_input_events(events[:10], max_events=1200) == events[1:10]


def test_prompted_composer_from_event_list_file_name_or_folder(tmp_path):
    known = ["Bach", "Chopin"]
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "take_1.txt").write_text("Composer_Haydn\n", encoding="utf-8")
    assert prompted_composer(tmp_path / "x" / "take_1.mid", tmp_path, known) == "Haydn"
    assert prompted_composer(tmp_path / "bach_3.mid", tmp_path, known) == "Bach"
    assert prompted_composer(tmp_path / "CHOPIN-0.mid", tmp_path, known) == "Chopin"
    assert prompted_composer(tmp_path / "chopin" / "op10" / "etude.mid", tmp_path, known) == "Chopin"
    assert prompted_composer(tmp_path / "sample_3.mid", tmp_path, known) is None


def test_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(EvaluationError, match="no .mid files"):
        evaluate_folders(tmp_path, progress=False)


def test_undefined_metrics_are_null_in_the_report(tmp_path):
    write_midi(tmp_path / "one_bar.mid", [[(0.0, 60, 1.0)]])
    [piece] = evaluate_folders(tmp_path, progress=False)["pieces"]
    assert piece["GS"] is None and not math.isnan(piece["H"])  # GS needs two bars


def test_mean_metrics_per_set_and_composer_are_the_pieces_means(folders):
    generated, reference = folders
    report = evaluate_folders(generated, reference, progress=False)
    means = mean_metrics(report)
    assert list(means) == sorted(means) and {"generated all", "reference all", "reference Bach"} <= set(means)
    for name, row in means.items():
        set_name, composer = name.split(" ", 1)
        pieces = [p for p in report["pieces"] if p["set"] == set_name and composer in ("all", p["composer"])]
        assert row["pieces"] == len(pieces) > 0, name
        for metric in METRIC_NAMES:
            values = [p[metric] for p in pieces if p[metric] is not None]
            assert row[metric] == (pytest.approx(np.mean(values)) if values else None), (name, metric)


PIECE = ["Composer_Bach", "Tempo_120", "BOS_None"]
PIECE += ["Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_60", "Note_Duration_480", "Beat_12",
          "Note_Pitch_60", "Note_Duration_480"]  # bar 1: two notes on one pitch
PIECE += ["Bar_None", "Time_Signature_4/4"]  # bar 2: empty
PIECE += ["Bar_None", "Time_Signature_4/4", "Beat_0", "Note_Pitch_64", "Note_Duration_240", "Beat_6",
          "Note_Pitch_64", "Note_Duration_240", "Beat_12", "Note_Pitch_64", "Note_Duration_240", "Beat_24",
          "Note_Pitch_67", "Note_Duration_480", "EOS_None"]  # bar 3: three E4 in a row, then G4


def test_sanity_measures_count_bars_notes_and_repeated_pitches():
    measures = sanity_measures(PIECE)
    assert measures["bars"] == 3 and measures["longest_same_pitch_run"] == 3
    assert measures["notes_per_bar"] == pytest.approx(6 / 3) and measures["empty_bar_fraction"] == pytest.approx(1 / 3)
    other = sanity_measures(PIECE[:3] + PIECE[3:11] + ["EOS_None"])  # bar 1 only
    summary = summarise_sanity({"Bach": [{**measures, "round_trip": True}, {**other, "round_trip": False}]})
    assert summary["Bach"]["pieces"] == 2 and summary["Bach"]["round_trip"] == 1
    assert summary["Bach"]["bars"] == pytest.approx(2.0) and summary["Bach"]["longest_same_pitch_run"] == 3
    assert "round_trip" not in summarise_sanity({"Bach": [measures]})["Bach"]


def test_reference_folder_sanity_and_round_trip_read_the_written_midi(tmp_path):
    path = tmp_path / "Bach_0.mid"
    events_to_midi(PIECE).write(str(path))
    assert round_trips(G2MTokenizer(), PIECE, path, "Bach")
    assert not round_trips(G2MTokenizer(), PIECE[:-4] + ["EOS_None"], path, "Bach")
    assert folder_sanity(tmp_path) == summarise_sanity({"Bach": [sanity_measures(PIECE)]})


def test_convergence_reads_the_periodic_evaluations_of_a_record():
    losses = {100: 2.0, 200: 1.5, 400: 1.2, 600: 1.1, 700: 1.05, 800: 1.04}
    history = [{"step": step, "loss": loss + 0.1} for step, loss in losses.items()]
    history += [{"step": step, "eval_loss": loss} for step, loss in losses.items()]
    history += [{"step": 800, "train_loss": 1.3}, {"step": 800, "eval_loss": 0.5}]  # final re-measure: not a step
    measured = convergence({"log_history": history})
    assert measured["evaluations"] == 6 and (measured["from_step"], measured["to_step"]) == (600, 800)
    assert measured["relative_change"] == pytest.approx((1.1 - 1.04) / 1.1)
    assert measured["share_of_improvement"] == pytest.approx((1.1 - 1.04) / (2.0 - 1.04))
    assert measured["last_interval_change"] == pytest.approx((1.05 - 1.04) / 1.05)
    assert convergence({"log_history": history[6:8]})["relative_change"] is None
