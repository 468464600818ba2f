"""Listening to pieces: MIDI rendered to audio with a SoundFont, offline, from pip-installed wheels only.

`render_audio` plays a piece through a General MIDI SoundFont with ``midirenderer`` (a Rust build of
RustySynth shipped as a wheel: no FluidSynth, no system library) and returns float32 samples, channels
first; with ``path`` it also writes a 16-bit PCM WAV file (stdlib ``wave``, atomically).

The default SoundFont is ``TimGM6mb.sf2``, which the ``pretty_midi`` wheel installs inside its package:
every machine with g2m_hf has it, nothing is downloaded, and it is not copied into this repository (its
licence differs from ours). Why this renderer: benchmarks/audio_speed.py and docs/benchmarks.md.
"""

from __future__ import annotations

import importlib.resources
import io
import os
import wave
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import AudioError
from .extras import require
from .fileio import write_bytes

if TYPE_CHECKING:
    import pretty_midi

RELEASE_SECONDS = 1.0
"""Audio kept after the last note ends, so its release rings out instead of being cut."""

FADE_SECONDS = 0.05
"""Fade-out at the very end: a note still sounding there (a long release) stops without a click."""

PEAK = 10 ** (-1 / 20)
"""Peak level after normalisation: -1 dBFS, loud enough to hear and clear of clipping."""

_SILENT = 1e-4  # a peak below this (about -80 dBFS) is no audible sound at all


def default_soundfont() -> Path:
    """``TimGM6mb.sf2``, the General MIDI SoundFont inside the installed ``pretty_midi`` package."""
    return Path(str(importlib.resources.files("pretty_midi").joinpath("TimGM6mb.sf2")))


def read_soundfont(soundfont: str | os.PathLike | None = None) -> bytes:
    """The bytes of an SF2 file (default: `default_soundfont`); `AudioError` if missing or not an SF2."""
    path = default_soundfont() if soundfont is None else Path(soundfont)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise AudioError(f"{path}: cannot read the soundfont ({error.strerror or error})") from None
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise AudioError(f"{path}: not a SoundFont (SF2) file")
    return data


def _read_midi(midi: pretty_midi.PrettyMIDI | str | os.PathLike | bytes) -> tuple[bytes, pretty_midi.PrettyMIDI, str]:
    """The piece as Standard MIDI File bytes, as parsed by pretty_midi, and a name for messages."""
    import pretty_midi

    if isinstance(midi, pretty_midi.PrettyMIDI):
        buffer = io.BytesIO()
        midi.write(buffer)
        return buffer.getvalue(), midi, "the piece"
    if isinstance(midi, (bytes, bytearray)):
        data, name = bytes(midi), "the MIDI data"
    else:
        name = os.fspath(midi)
        try:
            data = Path(midi).read_bytes()
        except OSError as error:
            raise AudioError(f"{name}: cannot read the MIDI file ({error.strerror or error})") from None
    try:
        parsed = pretty_midi.PrettyMIDI(io.BytesIO(data))
    except Exception as error:  # pretty_midi / mido raise many types (OSError, EOFError, KeyError, ...)
        raise AudioError(f"{name}: not a readable MIDI file ({error or type(error).__name__})") from None
    return data, parsed, name


def render_audio(
    midi: pretty_midi.PrettyMIDI | str | os.PathLike | bytes,
    path: str | os.PathLike | None = None,
    *,
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = 44100,
) -> np.ndarray:
    """Render a piece to stereo audio; with ``path``, also write it as a 16-bit PCM WAV file.

    Args:
        midi: a ``PrettyMIDI``, a MIDI file path, or the bytes of a MIDI file.
        path: where to write the WAV file (atomically: complete or not at all).
        soundfont: an SF2 file (default: ``TimGM6mb.sf2`` from the ``pretty_midi`` package).
        sample_rate: samples per second of the result (the renderer's 48 kHz output is resampled).

    Returns:
        float32 samples ``[2, n]`` (channels first), peak-normalised to -1 dBFS, lasting until
        `RELEASE_SECONDS` after the last note ends.

    Raises:
        AudioError: a missing or unreadable soundfont (SF3 compressed soundfonts included: the
            renderer reads SF2 only), an unreadable MIDI, a piece without notes, or a bad sample rate.
    """
    if not isinstance(sample_rate, int) or not 8000 <= sample_rate <= 192000:
        raise AudioError(f"sample_rate must be a whole number of Hz from 8000 to 192000, got {sample_rate!r}")
    data, parsed, name = _read_midi(midi)
    if not any(instrument.notes for instrument in parsed.instruments):
        raise AudioError(f"{name}: the piece has no notes, nothing to render")
    samples = _synthesize(read_soundfont(soundfont), data, sample_rate, f"{soundfont or default_soundfont()} / {name}")
    samples = _fit_length(samples, round((parsed.get_end_time() + RELEASE_SECONDS) * sample_rate), sample_rate)
    peak = float(np.abs(samples).max())
    if peak < _SILENT:
        raise AudioError(f"{name}: the piece renders silent (no audible notes with this soundfont)")
    audio = np.ascontiguousarray((samples * (PEAK / peak)).T, dtype=np.float32)
    if path is not None:
        write_wav(path, audio, sample_rate)
    return audio


def render_stretch(
    midi: pretty_midi.PrettyMIDI,
    start: float,
    end: float,
    *,
    soundfont: str | os.PathLike | None = None,
    sample_rate: int = 44100,
    gain: float = 1.0,
    font: bytes | None = None,
) -> np.ndarray:
    """The audio of seconds ``start`` to ``end`` of a piece, as float32 samples ``[2, n]``: what a player
    streaming the piece as it is written plays next.

    Only the notes sounding in the stretch are rendered (its cost does not grow with the piece); a note
    that began before ``start`` is rendered from its onset and cut, so consecutive stretches join up.
    The level is the SoundFont's own times ``gain`` (no normalisation, no fade: every stretch of a piece
    at one level), peaks past full scale softly limited (tanh). ``font``: the SoundFont's bytes when the
    caller already read them (`read_soundfont`).
    """
    import pretty_midi

    length = max(0, round((end - start) * sample_rate))
    notes = [note for instrument in midi.instruments for note in instrument.notes
             if note.end + RELEASE_SECONDS > start and note.start < end]
    if not notes or not length:
        return np.zeros((2, length), np.float32)
    onset = min(note.start for note in notes)  # a note's onset: the piece's tempo and resolution keep it exact
    stretch = pretty_midi.PrettyMIDI(resolution=midi.resolution, initial_tempo=float(midi.get_tempo_changes()[1][0]))
    piano = pretty_midi.Instrument(0)
    piano.notes = [pretty_midi.Note(note.velocity, note.pitch, note.start - onset, note.end - onset) for note in notes]
    stretch.instruments.append(piano)
    buffer = io.BytesIO()
    stretch.write(buffer)
    samples = _synthesize(font or read_soundfont(soundfont), buffer.getvalue(), sample_rate,
                          str(soundfont or default_soundfont()))
    first = round((start - onset) * sample_rate)
    samples = samples[max(0, first) : first + length]
    if first < 0:  # the stretch starts before its first note
        samples = np.concatenate([np.zeros((-first, samples.shape[1]), samples.dtype), samples])
    if len(samples) < length:
        samples = np.concatenate([samples, np.zeros((length - len(samples), samples.shape[1]), samples.dtype)])
    if gain != 1.0:
        samples = np.tanh(samples * gain)
    return np.ascontiguousarray(samples.T, dtype=np.float32)


STREAM_GAIN = 8.0
"""Gain of a streamed piece over the SoundFont's own level (TimGM6mb's piano peaks near -27 dBFS on a busy
piece: about the level of `render_audio`'s normalised files)."""

CROSSFADE_SECONDS = 0.02
"""Overlap of two consecutive streamed stretches: renderings that start at different notes differ in
phase (chorus, reverb), and a crossfade joins them without a click."""


class AudioStream:
    """A piece's audio while it is written, in consecutive stretches: `until` gives the samples from where
    the previous stretch ended to a later time of the (longer) piece, joined by a short crossfade."""

    def __init__(self, sample_rate: int = 44100, gain: float = STREAM_GAIN, soundfont: str | os.PathLike | None = None):
        self.sample_rate, self.gain = sample_rate, gain
        self.font = read_soundfont(soundfont)
        self.done = 0.0  # seconds streamed so far
        self.tail = np.zeros((2, 0), np.float32)  # the previous stretch rendered past its end, to fade out

    def until(self, midi: pretty_midi.PrettyMIDI, end: float) -> np.ndarray:
        """Samples ``[2, n]`` from the end of the previous stretch to ``end`` seconds of ``midi``, the piece so
        far (nothing in it may change before ``end``)."""
        overlap = CROSSFADE_SECONDS
        audio = render_stretch(midi, self.done, end + overlap, sample_rate=self.sample_rate, gain=self.gain,
                               font=self.font)
        fade = min(self.tail.shape[1], audio.shape[1])
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        audio[:, :fade] = audio[:, :fade] * ramp + self.tail[:, :fade] * (1 - ramp)
        keep = max(0, audio.shape[1] - round(overlap * self.sample_rate))
        audio, self.tail = audio[:, :keep], audio[:, keep:]
        self.done = end
        return audio


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Float samples ``[channels, n]`` in [-1, 1] as the bytes of a 16-bit PCM WAV file."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(audio.shape[0])
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.T.tobytes())
    return buffer.getvalue()


def _synthesize(font: bytes, midi: bytes, sample_rate: int, label: str) -> np.ndarray:
    """A MIDI file's bytes rendered with a SoundFont's bytes, as float32 samples ``[n, channels]`` at
    ``sample_rate``; `AudioError` naming ``label`` when the renderer refuses them."""
    midirenderer = require("midirenderer", "audio", "rendering audio")
    try:
        rendered = midirenderer.render_wave_from(font, midi)
    except (RuntimeError, ValueError) as error:  # e.g. "SoundFont3 is not yet supported"
        raise AudioError(f"{label}: cannot render ({error})") from None
    samples, rate = _decode_wav(rendered)
    if rate != sample_rate:
        samples = require("soxr", "audio", "rendering audio").resample(samples, rate, sample_rate)
    return samples


def _decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV bytes -> float32 samples ``[n, channels]`` in [-1, 1] and the sample rate."""
    with wave.open(io.BytesIO(data)) as reader:
        channels, rate = reader.getnchannels(), reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)
    return samples.astype(np.float32) / 32768.0, rate


def _fit_length(samples: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """``samples [n, channels]`` cut or padded with silence to ``length`` frames, faded out at the end."""
    if len(samples) < length:
        samples = np.concatenate([samples, np.zeros((length - len(samples), samples.shape[1]), samples.dtype)])
    samples = samples[:length].copy()
    fade = min(length, round(FADE_SECONDS * sample_rate))
    samples[length - fade :] *= np.linspace(1.0, 0.0, fade, dtype=samples.dtype)[:, None]
    return samples


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> Path:
    """Write float samples ``[channels, n]`` in [-1, 1] as a 16-bit PCM WAV file, atomically."""
    return write_bytes(path, wav_bytes(audio, sample_rate))


__all__ = ["FADE_SECONDS", "PEAK", "RELEASE_SECONDS", "default_soundfont", "read_soundfont", "render_audio",
           "render_stretch", "wav_bytes", "write_wav", "AudioStream", "STREAM_GAIN"]
