"""`g2m-demo`: short pieces from the bundled model, written like g2m-generate writes them."""

from __future__ import annotations

import pytest

from g2m_hf import default_model_path
from g2m_hf.cli.demo import main
from g2m_hf.errors import ModelNotFoundError
from g2m_hf.notation import read_score_notes, score_notes_of_events
from g2m_hf.remi import midi_to_events

try:
    default_model_path()
    HAS_MODEL = True
except ModelNotFoundError:
    HAS_MODEL = False


@pytest.mark.skipif(not HAS_MODEL, reason="no bundled model in this checkout")
def test_demo_writes_one_piece_per_composer_without_overwriting(tmp_path, capsys):
    args = ["--output-dir", str(tmp_path), "--composer", "Bach", "Beethoven", "--max-bars", "2", "--max-events", "120"]
    assert main(args) == 0
    assert f"listen: {tmp_path / 'Bach_0'}.wav" in capsys.readouterr().out
    assert main(args[:-4] + ["--max-bars", "2", "--max-events", "120", "--seed", "1", "--no-audio", "--no-score"]) == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    first = (".mid", ".txt", ".png", ".wav", ".musicxml")
    assert names == sorted([f"{c}_0{suffix}" for c in ("Bach", "Beethoven") for suffix in first]
                           + [f"{c}_1{suffix}" for c in ("Bach", "Beethoven") for suffix in (".mid", ".txt", ".png")])
    events = (tmp_path / "Beethoven_1.txt").read_text().split()
    assert midi_to_events(tmp_path / "Beethoven_1.mid", "Beethoven") == events
    score = read_score_notes(tmp_path / "Bach_0.musicxml")  # the demo's score holds the piece's notes
    assert score == score_notes_of_events((tmp_path / "Bach_0.txt").read_text().split()) and score
    assert "Bach: " in capsys.readouterr().out


def test_demo_reports_an_unknown_composer(tmp_path, capsys):
    if HAS_MODEL:
        assert main(["--output-dir", str(tmp_path), "--composer", "Hildegard"]) == 2
        assert "Hildegard" in capsys.readouterr().err
    else:
        assert main(["--output-dir", str(tmp_path)]) == 2
        assert "no bundled model" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
