"""Audio rendering (g2m_hf.audio) and the commands that write WAV files: g2m-render, g2m-generate --audio."""

from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

import g2m_hf
from g2m_hf.audio import PEAK, RELEASE_SECONDS, default_soundfont, render_audio
from g2m_hf.cli import generate as generate_cli
from g2m_hf.cli import render as render_cli
from g2m_hf.errors import AudioError

RATE = 22050  # half the default: the same code path (resampling from the renderer's 48 kHz), less work


def piece(pitches=(69,), seconds=1.0, program=0) -> pretty_midi.PrettyMIDI:
    """One instrument playing ``pitches`` one after the other, ``seconds`` each."""
    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=program)
    for i, pitch in enumerate(pitches):
        instrument.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=i * seconds, end=(i + 1) * seconds))
    midi.instruments.append(instrument)
    return midi


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as reader:
        assert reader.getsampwidth() == 2
        frames = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
        return frames.reshape(-1, reader.getnchannels()).T / 32767, reader.getframerate()


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def test_default_soundfont_is_the_one_pretty_midi_installs_not_a_copy_in_the_repository():
    font = default_soundfont()
    assert font.name == "TimGM6mb.sf2" and font.is_file()
    assert font.parent == Path(pretty_midi.__file__).parent
    repository = Path(g2m_hf.__file__).parent.parent
    # what the repository holds (a virtual environment inside the checkout has pretty_midi's own copy)
    tracked = subprocess.run(["git", "ls-files", "*.sf2", "*.sf3", "*.SF2", "*.SF3"], cwd=repository,
                             capture_output=True, text=True, check=True).stdout.split()
    assert not tracked


def test_render_plays_the_notes_at_their_pitch_and_writes_the_same_samples_as_wav(tmp_path):
    midi = piece(pitches=(69, 81), seconds=1.0)  # A4 (440 Hz) then A5 (880 Hz)
    audio = render_audio(midi, tmp_path / "a.wav", sample_rate=RATE)
    assert audio.dtype == np.float32 and audio.shape == (2, round((2.0 + RELEASE_SECONDS) * RATE))
    assert np.abs(audio).max() == pytest.approx(PEAK, abs=1e-6)
    first, second = audio[0, int(0.2 * RATE) : int(0.9 * RATE)], audio[0, int(1.2 * RATE) : int(1.9 * RATE)]
    assert dominant_frequency(first, RATE) == pytest.approx(440, rel=0.03)
    assert dominant_frequency(second, RATE) == pytest.approx(880, rel=0.03)
    assert np.abs(audio[:, -10:]).max() < 1e-3  # faded out: no click at the end
    written, rate = read_wav(tmp_path / "a.wav")
    assert rate == RATE and np.abs(written - audio).max() < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temporary left behind


def test_a_path_bytes_and_pretty_midi_render_the_same(tmp_path):
    midi = piece(pitches=(60, 64, 67), seconds=0.4)
    midi.write(str(tmp_path / "p.mid"))
    from_object = render_audio(midi, sample_rate=RATE)
    assert np.array_equal(render_audio(tmp_path / "p.mid", sample_rate=RATE), from_object)
    assert np.array_equal(render_audio((tmp_path / "p.mid").read_bytes(), sample_rate=RATE), from_object)
    default_rate = render_audio(midi)
    assert default_rate.shape[1] == round((1.2 + RELEASE_SECONDS) * 44100)


def test_a_user_soundfont_is_used(tmp_path):
    copy = tmp_path / "mine.sf2"
    copy.write_bytes(default_soundfont().read_bytes())
    midi = piece(seconds=0.3)
    assert np.array_equal(render_audio(midi, soundfont=copy, sample_rate=RATE), render_audio(midi, sample_rate=RATE))


def test_errors_name_the_problem_and_write_nothing(tmp_path):
    good = piece(seconds=0.3)
    (tmp_path / "not.sf2").write_bytes(b"RIFF\0\0\0\0sfbk" + b"\0" * 64)  # an SF2 header, no content
    (tmp_path / "text.sf2").write_text("hello")
    (tmp_path / "bad.mid").write_bytes(b"MThd this is no MIDI file")
    empty = pretty_midi.PrettyMIDI()
    empty.instruments.append(pretty_midi.Instrument(0))
    cases = [
        (dict(midi=good, soundfont=tmp_path / "missing.sf2"), "missing.sf2: cannot read the soundfont"),
        (dict(midi=good, soundfont=tmp_path / "text.sf2"), "text.sf2: not a SoundFont"),
        (dict(midi=good, soundfont=tmp_path / "not.sf2"), "cannot render"),
        (dict(midi=tmp_path / "bad.mid"), "bad.mid: not a readable MIDI file"),
        (dict(midi=tmp_path / "nothing.mid"), "nothing.mid: cannot read the MIDI file"),
        (dict(midi=b"\0\1\2"), "the MIDI data: not a readable MIDI file"),
        (dict(midi=empty), "no notes"),
        (dict(midi=good, sample_rate=1000), "sample_rate"),
    ]
    for kwargs, message in cases:
        with pytest.raises(AudioError, match=message):
            render_audio(path=tmp_path / "out.wav", **kwargs)
    assert not (tmp_path / "out.wav").exists() and not list(tmp_path.glob(".*"))


def test_g2m_render_writes_wavs_and_skips_what_it_cannot_read(tmp_path, capsys):
    folder = tmp_path / "pieces"
    (folder / "sub").mkdir(parents=True)
    piece(seconds=0.3).write(str(folder / "a.mid"))
    piece(pitches=(48,), seconds=0.3).write(str(folder / "sub" / "b.midi"))
    (folder / "broken.mid").write_bytes(b"not midi")
    single = tmp_path / "single.mid"
    piece(seconds=0.2).write(str(single))

    assert render_cli.main([str(single)]) == 0
    assert read_wav(tmp_path / "single.wav")[1] == 44100
    out = tmp_path / "wavs"
    code = render_cli.main([str(folder), str(tmp_path / "nowhere.mid"), "--output-dir", str(out), "--sample-rate", "22050"])
    assert code == 2
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav")) == ["a.wav", "sub/b.wav"]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("g2m-render: skipped ") for line in err)
    assert "broken.mid: not a readable MIDI file" in err[0] and "nowhere.mid: no such file or folder" in err[1]
    # existing WAVs are the user's: skipped unless --overwrite
    before = (out / "a.wav").read_bytes()
    assert render_cli.main([str(folder / "a.mid"), "--output-dir", str(out)]) == 2
    assert "a.wav: exists (pass --overwrite" in capsys.readouterr().err
    assert render_cli.main([str(folder / "a.mid"), "--output-dir", str(out), "--overwrite"]) == 0
    assert (out / "a.wav").read_bytes() != before  # 44.1 kHz now


def test_g2m_render_refuses_a_bad_soundfont_before_any_work(tmp_path):
    piece(seconds=0.2).write(str(tmp_path / "a.mid"))
    (tmp_path / "text.sf2").write_text("not a soundfont")
    for soundfont, reason in [("no.sf2", "no.sf2 (no such file)"), ("text.sf2", "text.sf2: not a SoundFont (SF2) file")]:
        done = subprocess.run(
            [sys.executable, "-m", "g2m_hf.cli.render", str(tmp_path / "a.mid"), "--soundfont", str(tmp_path / soundfont)],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.startswith("g2m-render: error: argument --soundfont: ") and reason in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "a.wav").exists()


@pytest.mark.skipif(not (Path(g2m_hf.__file__).parent / "default_model" / "model.safetensors").is_file(),
                    reason="no bundled model in this checkout")
def test_g2m_generate_audio_writes_a_wav_beside_each_midi(tmp_path):
    args = ["--composer", "Bach", "--max-bars", "2", "--max-events", "100", "--output-dir", str(tmp_path), "--audio"]
    assert generate_cli.main(args) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Bach_0.mid", "Bach_0.png", "Bach_0.txt", "Bach_0.wav"]
    samples, rate = read_wav(tmp_path / "Bach_0.wav")
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "Bach_0.mid"))
    assert rate == 44100 and samples.shape[1] == round((midi.get_end_time() + RELEASE_SECONDS) * rate)
    assert np.abs(samples).max() == pytest.approx(PEAK, abs=1e-3)
