"""The web app: choose a composer, generate, listen in the page, read the score, download MIDI and MusicXML (Gradio Blocks).

``build_app()`` returns the page; ``g2m-app`` (g2m_hf/cli/app.py) serves it. The form feeds
`generate_midi`; each piece is written with `write_piece` (MIDI, event list, piano roll, MusicXML score,
WAV rendered by `g2m_hf.audio`) and shown with an audio player, its engraved score (`g2m_hf.notation`),
its piano roll and downloads. The same generation, for one piece, is the API endpoint ``generate``::

    from gradio_client import Client
    wav, midi, piano_roll, events, score = Client("http://127.0.0.1:7860/").predict(
        composer="Bach", bars=8, temperature=1.0, top_p=0.95, seed=0, prompt_midi=None, prompt_bars=4,
        api_name="/generate")   # optional: style_guidance=1.5, tempo="120", time_signature="3/4", duration=30,
                                # density="high", polyphony="low", register="mid" (default "composer's")

The **Infill** tab rewrites bars of an uploaded MIDI file (or of the last piece made in the page) in a
composer's style (`generation.sample_infills`; a model trained with infilling examples: others are refused in
one line), its piano roll shading the rewritten bars; one piece of it is the API endpoint ``infill``::

    wav, midi, piano_roll, events, score = client.predict(
        midi=handle_file("piece.mid"), first_bar=9, last_bar=12, composer="Mozart", seed=0, temperature=1.0,
        top_p=0.95, style_guidance=1.0, api_name="/infill")

Both use int8 weights (`DEFAULT_DTYPE`; the page also offers float32 and bfloat16).

Serving many listeners (`ServingLimits`, docs/serving.md; the same for both tabs): requests wait in Gradio's queue (bounded: past
``max_queue`` a request is refused at once as busy), ``concurrency`` of them are served at a time, each
generation stops after ``time_limit`` seconds or as soon as its listener leaves or presses Stop, and an
upload past the size or MIDI limits (`midi_reader.SAFE_MIDI_LIMITS`) is refused before it is decoded. The
page plays the first piece while it is written (`audio.AudioStream`, a bar at a time).

Needs the ``app`` extra (``pip install "g2m_hf[app]"``).
"""

from __future__ import annotations

import html
import math
import numbers
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr

from . import infill
from .audio import AudioStream, wav_bytes
from .errors import G2MError, GenerationCancelled, TimeLimitError, VocabularyError
from .generation import (
    WEIGHT_DTYPES,
    GeneratedPiece,
    generate_midi,
    load_model_as,
    load_tokenizer,
    model_vocabulary,
    prepare_infill,
    sample_infills,
    texture_request,
    trained_composers,
    write_piece,
)
from .midi_reader import SAFE_MIDI_LIMITS, MidiLimits
from .notation import engrave_svg
from .remi import events_to_midi, midi_to_events
from .texture_plan import has_control_tokens
from .vocab import CONTROL_LEVELS, EOS_TOKEN, TEMPO_CLASSES, TICKS_PER_BEAT, TIME_SIGNATURES, bar_geometry, split_event

MAX_PIECES = 4
"""Pieces per request in the page (each gets its own player, piano roll and downloads)."""

MAX_BARS = 32
"""Longest piece the form offers (pieces have exactly the bars asked for; 32 take about a minute on CPU)."""

MAX_SECONDS = 120
"""Longest duration the form offers (0 there: the length is the bars)."""

MODEL_CHOICE = "model's choice"
"""The tempo / time-signature choice that leaves it to the model."""

COMPOSER_TEXTURE = "composer's"
"""The density / polyphony / register choice that follows the composer's real pieces bar by bar."""

TEXTURE_CHOICES = (COMPOSER_TEXTURE, *CONTROL_LEVELS)
"""What the form offers for each texture control (a model trained with texture-control tokens)."""

KEPT_REQUESTS = 16
"""Requests whose files the app keeps in its own folder (Gradio serves its copies, cleared after an hour)."""

DEFAULT_DTYPE = "int8"
"""The weights the app loads at start and the API uses, as ``g2m-generate``'s: about 1.4x float32's speed per
step on CPU, next-token distributions within 0.03 of float32's, the same style figures (docs/speed.md).
float32 and bfloat16 stay a choice of the form (loaded at their first use)."""

HEARTBEAT_SECONDS = 0.5
"""Longest a request's handler waits without yielding: Gradio can only stop a handler (Stop, a closed tab)
when it yields, and stopping it is what stops its generation."""


@dataclass(frozen=True)
class ServingLimits:
    """What one server lets its listeners ask for (``g2m-app``'s options; docs/serving.md).

    The model generates for one request at a time (a lock in `Generator`); a second worker writes one
    request's files (piano roll, WAV) while the next one is generated. Measured on 2 shared cores
    (benchmarks/app_load.py, 8 clients x 3 two-bar pieces): ``concurrency`` 2 served 32.0 requests a
    minute against 28.5 for 1 (p50 14.1 against 15.1 s; an earlier, noisier run: 19.5 against 20.5), hence
    the default.
    """

    concurrency: int = 2
    """Requests served at once (the others wait in the queue, in order)."""

    max_queue: int = 32
    """Requests waiting at most; past it a request is refused at once ("busy"). 32 fit a class of 16
    listeners pressing Generate twice."""

    time_limit: float = 300.0
    """Seconds of generation per request (waiting in the queue not counted); past it the generation stops
    and the request ends with a message. Four 32-bar pieces take about two minutes on 2 cores."""

    max_upload_mb: float = 2.0
    """Largest uploaded file, in MiB (piano MIDI files are some tens of kilobytes)."""

    def midi_limits(self) -> MidiLimits:
        """The MIDI limits uploads are checked against: `SAFE_MIDI_LIMITS` with this upload size."""
        return replace(SAFE_MIDI_LIMITS, max_bytes=int(self.max_upload_mb * 2**20))


@dataclass
class PieceFiles:
    """One generated piece as files: what the page shows and the API returns."""

    wav: Path
    midi: Path
    piano_roll: Path
    events: Path
    score: Path  # MusicXML
    bars: int
    music_seconds: float  # how long it plays (its bars at its tempo)
    generation_seconds: float  # how long its batch took to generate (loading not counted)
    infilled_bars: tuple[int, int] | None = None  # the bars rewritten (from 1, inclusive), for an infilled piece

    @property
    def real_time_factor(self) -> float:
        """Seconds of music per second of generation."""
        return self.music_seconds / max(self.generation_seconds, 1e-9)


def music_seconds(events: list[str]) -> float:
    """How long the bars of ``events`` (a piece or its opening) play at the piece's tempo class."""
    tempo = int(split_event(events[1])[1])
    ticks = sum(bar_geometry(split_event(e)[1])[0] for e in events if e.startswith("Time_Signature_"))
    return ticks / TICKS_PER_BEAT * 60 / tempo


class Generator:
    """The model behind the page: loaded once per weight dtype (`DEFAULT_DTYPE` at start), generating or
    infilling for one request at a time (a lock: sampling draws from torch's one random generator, so that a
    seed gives its piece), while other requests write their files. Its files live in one folder, `close`
    removes it."""

    def __init__(self, model: str | os.PathLike | None = None, limits: ServingLimits | None = None):
        self.source = model
        self.limits = limits or ServingLimits()
        self.tokenizer = load_tokenizer(model)
        self.composers = trained_composers(self.tokenizer, model)
        self.models = {DEFAULT_DTYPE: load_model_as(model, DEFAULT_DTYPE)}
        self.sampling = self.models[DEFAULT_DTYPE].generation_config  # the model's temperature and top_p
        self.infill_refusal = _infill_refusal(self.tokenizer, self.models[DEFAULT_DTYPE])
        self.texture_controls = has_control_tokens(self.tokenizer.event_vocabulary)  # the form offers the knobs
        self.lock = threading.Lock()  # the model: one generation at a time
        self.counting = threading.Lock()  # the request numbers and folders
        self.folder = Path(tempfile.mkdtemp(prefix="g2m-app-"))
        self.requests = 0

    def close(self) -> None:
        """Remove the app's folder (at shutdown)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def write(self, composer: str, bars: int, temperature: float, top_p: float, seed: int, num_pieces: int = 1,
              dtype: str = DEFAULT_DTYPE, prompt_midi: str | None = None, prompt_bars: int = 4,
              style_guidance: float | None = None, tempo: str = MODEL_CHOICE,
              time_signature: str = MODEL_CHOICE, duration: float = 0, density: str = COMPOSER_TEXTURE,
              polyphony: str = COMPOSER_TEXTURE, register: str = COMPOSER_TEXTURE,
              on_bar: Callable[[int, list[str]], None] | None = None,
              cancel: threading.Event | None = None) -> list[PieceFiles]:
        """Generate ``num_pieces`` pieces and write each one's files.

        ``duration`` > 0 asks for that many seconds of music (ending at a bar line) instead of ``bars``.

        ``tempo`` and ``time_signature`` are the form's strings (`MODEL_CHOICE`: the model chooses), and so are
        ``density``, ``polyphony`` and ``register`` (`TEXTURE_CHOICES`; `COMPOSER_TEXTURE`: the composer's own).

        ``on_bar`` gets each finished bar (`generate_midi`); setting ``cancel`` stops the request (waiting
        for the model or generating) with `GenerationCancelled`; the time limit with `TimeLimitError`.

        Raises `G2MError` for bad values before any work: here what the page limits (composer, bars,
        number of pieces, dtype, an upload past the MIDI limits), in `generate_midi` the sampling values
        and the prompt.
        """
        bars, seed, num_pieces, prompt_bars = (_whole(value, name) for value, name in (
            (bars, "bars"), (seed, "seed"), (num_pieces, "number of pieces"), (prompt_bars, "prompt bars")))
        self._check_request(composer, num_pieces, dtype)
        if not 1 <= bars <= MAX_BARS:
            raise G2MError(f"bars must be from 1 to {MAX_BARS}, got {bars}")
        if not (isinstance(duration, numbers.Real) and 0 <= duration <= MAX_SECONDS):
            raise G2MError(f"duration must be from 0 to {MAX_SECONDS} seconds, got {duration}")
        if tempo not in (MODEL_CHOICE, *map(str, TEMPO_CLASSES)):
            raise G2MError(f"tempo must be one of {', '.join(map(str, TEMPO_CLASSES))}, got {tempo!r}")
        if time_signature not in (MODEL_CHOICE, *TIME_SIGNATURES):
            raise G2MError(f"time signature must be one of {', '.join(TIME_SIGNATURES)}, got {time_signature!r}")
        texture = {kind: None if value == COMPOSER_TEXTURE else value
                   for kind, value in (("density", density), ("polyphony", polyphony), ("register", register))}
        texture_request(self.models[DEFAULT_DTYPE], self.tokenizer, **texture)  # a bad level, or no such tokens
        if prompt_midi is not None:
            self._check_upload(prompt_midi)

        def sample(model, should_stop):
            return generate_midi(
                model, self.tokenizer, composers=[composer], num_pieces=num_pieces, seed=seed,
                bars=None if duration else bars, duration=duration or None, prompt_midi=prompt_midi, prompt_from="start",
                prompt_bars=prompt_bars if prompt_midi else None, batch_size=num_pieces,
                temperature=temperature, top_p=top_p, style_guidance=style_guidance, progress=True,
                tempo=None if tempo == MODEL_CHOICE else int(tempo),
                time_signature=None if time_signature == MODEL_CHOICE else time_signature,
                on_bar=on_bar, should_stop=should_stop, **texture,
            )

        return self._write_files(*self._sample(dtype, sample, cancel))

    def infill(self, midi: str | None, first_bar: int, last_bar: int, composer: str, temperature: float,
               top_p: float, seed: int, num_pieces: int = 1, dtype: str = DEFAULT_DTYPE,
               style_guidance: float | None = None, cancel: threading.Event | None = None) -> list[PieceFiles]:
        """Rewrite bars ``first_bar``..``last_bar`` (from 1, inclusive) of the MIDI file ``midi`` in the style of
        ``composer``, ``num_pieces`` times (`generation.sample_infills`), and write each whole piece's files
        (its piano roll shades the rewritten bars).

        Raises `G2MError` before any work: a model without infill tokens (`infill_refusal`), no file, what the
        page limits, an upload past the MIDI limits, a bad range (`generation.prepare_infill`); while
        sampling, as `write`.
        """
        if self.infill_refusal is not None:
            raise G2MError(self.infill_refusal)
        first_bar, last_bar, seed, num_pieces = (_whole(value, name) for value, name in (
            (first_bar, "first bar"), (last_bar, "last bar"), (seed, "seed"), (num_pieces, "number of pieces")))
        self._check_request(composer, num_pieces, dtype)
        if midi is None:
            raise G2MError("no MIDI file to infill: upload one (or take the last generated piece)")
        self._check_upload(midi)
        request = prepare_infill(self.tokenizer, midi, (first_bar, last_bar), composer)

        def sample(model, should_stop):
            return sample_infills(model, self.tokenizer, request, num_pieces, seed, batch_size=num_pieces,
                                  temperature=temperature, top_p=top_p, style_guidance=style_guidance,
                                  should_stop=should_stop)

        return self._write_files(*self._sample(dtype, sample, cancel))

    def _check_request(self, composer: str, num_pieces: int, dtype: str) -> None:
        """What every request of the page limits (`G2MError`)."""
        if composer not in self.composers:
            raise G2MError(f"composer must be one of {', '.join(self.composers)}, got {composer!r}")
        if not 1 <= num_pieces <= MAX_PIECES:
            raise G2MError(f"number of pieces must be from 1 to {MAX_PIECES}, got {num_pieces}")
        if dtype not in WEIGHT_DTYPES:
            raise G2MError(f"dtype must be one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")

    def _check_upload(self, midi: str) -> None:
        """A hostile upload is refused here (`RemiError`), before it is decoded in full."""
        midi_to_events(midi, limits=self.limits.midi_limits())

    def _sample(self, dtype: str, sample: Callable[[object, Callable[[], bool]], list[GeneratedPiece]],
                cancel: threading.Event | None) -> tuple[list[GeneratedPiece], float]:
        """``sample(model, should_stop)`` with the model in ``dtype`` (loaded at its first use), holding the
        model's lock, within the time limit; the pieces and the seconds they took (waiting not counted)."""
        cancel = cancel or threading.Event()
        while not self.lock.acquire(timeout=0.1):
            if cancel.is_set():
                raise GenerationCancelled("cancelled while waiting for the model")
        try:
            start = time.monotonic()
            deadline = start + self.limits.time_limit
            if dtype not in self.models:
                self.models[dtype] = load_model_as(self.source, dtype)
            pieces = sample(self.models[dtype], lambda: cancel.is_set() or time.monotonic() > deadline)
            return pieces, time.monotonic() - start
        except GenerationCancelled:
            if cancel.is_set():
                raise
            raise TimeLimitError(f"stopped after the time limit of {self.limits.time_limit:g} s per request; "
                                 "ask for fewer bars or pieces") from None
        finally:
            self.lock.release()

    def _write_files(self, pieces: list[GeneratedPiece], seconds: float) -> list[PieceFiles]:
        """Each piece's files, in a new request folder (the oldest beyond `KEPT_REQUESTS` removed)."""
        with self.counting:
            self.requests += 1
            folder = self.folder / f"request_{self.requests}"
            # Gradio copies each answer's files into its own cache, so only recent folders are kept
            shutil.rmtree(self.folder / f"request_{self.requests - KEPT_REQUESTS}", ignore_errors=True)
            folder.mkdir()
        files = []
        for number, piece in enumerate(pieces, 1):
            stem = folder / f"{piece.composer}_{number}"
            write_piece(piece, stem, audio=True, score=True)  # AudioError for a piece without notes
            files.append(PieceFiles(stem.with_suffix(".wav"), stem.with_suffix(".mid"), stem.with_suffix(".png"),
                                    stem.with_suffix(".txt"), stem.with_suffix(".musicxml"),
                                    piece.events.count("Bar_None"), music_seconds(piece.events), seconds,
                                    piece.infilled_bars))
        return files

    def stream(self, work: Callable[..., list[PieceFiles]], *form, audio: bool = True,
               **options) -> Iterator[bytes | None | list[PieceFiles]]:
        """``work`` (`write` or `infill`, with ``form`` and ``options``) in a thread of its own, as a stream: with
        ``audio`` (`write` only) the first piece's audio a few bars at a time (WAV bytes, as each bar is
        finished), None when nothing came for `HEARTBEAT_SECONDS`, and the files at the end.

        Closing the stream (Gradio does, on Stop or a closed tab) stops the generation within a step.
        Raises what ``work`` raises.
        """
        updates: queue.Queue = queue.Queue()  # ("bar", events) of the first piece, then ("done", files)
        cancel = threading.Event()

        def on_bar(index: int, events: list[str]) -> None:
            if index == 0:
                updates.put(("bar", events))

        def run() -> None:
            try:
                updates.put(("done", work(*form, **options, **({"on_bar": on_bar} if audio else {}), cancel=cancel)))
            except BaseException as error:  # raised in the stream
                updates.put(("error", error))

        threading.Thread(target=run, name="g2m-generation", daemon=True).start()
        player, opening = AudioStream(), []
        try:
            while True:
                try:
                    kind, value = updates.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    yield None
                    continue
                if kind == "error":
                    raise value
                if kind == "done":
                    yield value
                    return
                opening += value
                piece = events_to_midi(opening if opening[-1] == EOS_TOKEN else opening + [EOS_TOKEN])
                yield wav_bytes(player.until(piece, music_seconds(opening)), player.sample_rate)
        finally:
            cancel.set()


def _infill_refusal(tokenizer, model) -> str | None:
    """None when the model can infill; else the one line the Infill tab and the ``infill`` endpoint answer
    with (a model trained without infilling examples, as a converted original checkpoint)."""
    try:
        infill.InfillTokens.of(tokenizer)
        infill.require_infill_tokens(model_vocabulary(model), "the model")
    except VocabularyError:
        return ("This model was not trained for infilling (it has no infill tokens); a model fine-tuned with "
                "infilling examples can (docs/infilling.md).")
    return None


def _whole(value: float | None, name: str) -> int:
    """A whole number from the form (Gradio's sliders and number boxes send floats)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value % 1:
        raise G2MError(f"{name} must be a whole number, got {value}")
    return int(value)


SCORE_PAGES = 2
"""Pages of each piece's score engraved in the page (the MusicXML download has all of it)."""


def _score_html(score: Path) -> str:
    """The first `SCORE_PAGES` pages of a score, engraved by Verovio, as inline SVG on white paper."""
    pages = "".join(f'<div class="g2m-score-page">{svg}</div>' for svg in engrave_svg(score, pages=SCORE_PAGES))
    return f'<div class="g2m-score" aria-label="Score of {html.escape(score.stem)}">{pages}</div>'


SCORE_CSS = """
.g2m-score { background: white; border-radius: 6px; padding: 4px 0; }
.g2m-score-page svg { width: 100%; height: auto; display: block; }
"""


def _shown(error: G2MError, upload: str | None) -> gr.Error:
    """Our error as the page's error message: one line, no traceback, an upload named as the user named it
    (not by its path in Gradio's cache)."""
    message = " ".join(str(error).split())
    if upload is not None:
        message = message.replace(f"'{upload}'", Path(upload).name).replace(upload, Path(upload).name)
    return gr.Error(html.escape(message), print_exception=False)


def _streamed(generator: Generator, work: Callable[..., list[PieceFiles]], form: tuple, upload: str | None,
              audio: bool = False) -> Iterator[bytes | None | list[PieceFiles]]:
    """`Generator.stream` with our errors as the page's messages (a stop asked by the listener ends quietly)."""
    stream = generator.stream(work, *form, audio=audio)
    try:
        yield from stream
    except GenerationCancelled as error:
        if isinstance(error, TimeLimitError):
            raise _shown(error, upload) from None
    except G2MError as error:
        raise _shown(error, upload) from None
    finally:
        stream.close()  # stops the generation when Gradio closes this handler (Stop, a closed tab)


def can_stream_audio() -> bool:
    """Whether the page can play a piece while it is written: Gradio encodes streamed audio with ffmpeg
    (without it, each piece plays when it is finished)."""
    return shutil.which("ffmpeg") is not None


def _piece_label(name: str, number: int, piece: PieceFiles) -> str:
    if piece.infilled_bars is not None:  # the whole piece's music was not all made here: no real-time factor
        first, last = piece.infilled_bars
        return (f"{name} {number}: bars {first}-{last} of {piece.bars} rewritten in {piece.generation_seconds:.1f} s "
                "(shaded on the piano roll)")
    return (f"{name} {number}: {piece.bars} bars, {piece.music_seconds:.0f} s of music made in "
            f"{piece.generation_seconds:.1f} s ({piece.real_time_factor:.1f}x real time)")


def _piece_slots() -> list:
    """`MAX_PIECES` groups of what the page shows of a piece (player, score, piano roll, files), flat: 5 each."""
    slots = []
    for number in range(MAX_PIECES):
        with gr.Group(visible=number == 0) as group:
            slots += [group, gr.Audio(label=f"Piece {number + 1}", type="filepath", interactive=False),
                      gr.HTML(label="Score"),
                      gr.Image(label="Piano roll", type="filepath", interactive=False),
                      gr.File(label="MIDI file, MusicXML score and event list", interactive=False)]
    return slots


def _slot_updates(slots: list, name: str, pieces: list[PieceFiles]) -> dict:
    """`_piece_slots` showing ``pieces`` (the slots beyond them hidden)."""
    updates = {}
    for number in range(MAX_PIECES):
        group, audio, score, image, files = slots[5 * number: 5 * number + 5]
        if number < len(pieces):
            piece = pieces[number]
            updates |= {group: gr.Group(visible=True),
                        audio: gr.Audio(str(piece.wav), label=_piece_label(name, number + 1, piece)),
                        score: gr.HTML(_score_html(piece.score)), image: gr.Image(str(piece.piano_roll)),
                        files: gr.File([str(piece.midi), str(piece.score), str(piece.events)])}
        else:
            updates |= {group: gr.Group(visible=False), audio: None, score: None, image: None, files: None}
    return updates


def _api_answer(update: bytes | None | list[PieceFiles]) -> tuple:
    """A stream's update as the API endpoints' five outputs: the piece's WAV, MIDI, piano roll, event list and
    MusicXML score at the end; before it nothing new (a chance for Gradio to stop the handler)."""
    if isinstance(update, list):
        (piece,) = update
        return (str(piece.wav), str(piece.midi), str(piece.piano_roll), piece.events.read_text(encoding="utf-8"),
                str(piece.score))
    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()


def build_app(model: str | os.PathLike | None = None, limits: ServingLimits | None = None) -> gr.Blocks:
    """The page (and its ``generate`` and ``infill`` API endpoints) for a model folder or Hub id (default: the
    bundled model), with its queue set to ``limits`` (default `ServingLimits()`); launch it with
    `launch_options`.

    The model is loaded here, once; raises `G2MError` (e.g. `ModelNotFoundError`) if it cannot be. The
    returned Blocks holds the `Generator` as ``demo.generator`` (``demo.generator.close()`` at shutdown).
    """
    limits = limits or ServingLimits()
    generator = Generator(model, limits)
    streaming = can_stream_audio()

    def generate_pieces(name, bars, temperature, top_p, seed, num_pieces, dtype, prompt_midi, prompt_bars,
                        style_guidance, tempo, time_signature, duration, density, polyphony, register):
        form = (name, bars, temperature, top_p, seed, num_pieces, dtype, prompt_midi, prompt_bars,
                style_guidance, tempo, time_signature, duration, density, polyphony, register)
        for update in _streamed(generator, generator.write, form, prompt_midi, audio=streaming):
            if update is None:  # nothing new: a chance for Gradio to stop this handler
                yield {live: gr.skip()}
            elif isinstance(update, bytes):
                yield {live: update}
            else:
                yield _slot_updates(slots, name, update) | {last_piece: str(update[0].midi)}

    def infill_pieces(midi, first_bar, last_bar, name, seed, num_pieces, dtype, temperature, top_p, style_guidance):
        form = (midi, first_bar, last_bar, name, temperature, top_p, seed, num_pieces, dtype, style_guidance)
        for update in _streamed(generator, generator.infill, form, midi):
            if update is None:
                yield {infill_status: gr.skip()}
            else:
                yield _slot_updates(infill_slots, name, update) | {last_piece: str(update[0].midi)}

    def take_last_piece(path: str | None) -> str:
        if path is None:
            raise gr.Error("No piece generated yet in this page: generate one first (or upload a MIDI file).",
                           print_exception=False)
        if not Path(path).is_file():  # the app keeps the files of its last KEPT_REQUESTS requests only
            raise gr.Error("The last piece's files are gone (the server keeps its latest requests' only): "
                           "download it and upload it here.", print_exception=False)
        return path

    def generate(composer: str, bars: int, temperature: float, top_p: float, seed: int,
                 prompt_midi: str | None, prompt_bars: int, style_guidance: float, tempo: str, time_signature: str,
                 duration: float, density: str, polyphony: str, register: str):
        """One piece: its WAV file, MIDI file, piano-roll PNG, event list (one event per line) and MusicXML score."""
        form = (composer, bars, temperature, top_p, seed, 1, DEFAULT_DTYPE, prompt_midi, prompt_bars, style_guidance,
                tempo, time_signature, duration, density, polyphony, register)
        for update in _streamed(generator, generator.write, form, prompt_midi):
            yield _api_answer(update)

    def infill_api(midi: str, first_bar: int, last_bar: int, composer: str, seed: int, temperature: float,
                   top_p: float, style_guidance: float):
        """Bars first_bar..last_bar (from 1, inclusive) of a MIDI file rewritten, one piece: the whole piece's WAV
        file, MIDI file, piano-roll PNG (the bars shaded), event list and MusicXML score."""
        form = (midi, first_bar, last_bar, composer, temperature, top_p, seed, 1, DEFAULT_DTYPE, style_guidance)
        for update in _streamed(generator, generator.infill, form, midi):
            yield _api_answer(update)

    guidance_default = getattr(generator.sampling, "style_guidance", None) or 1.0
    with gr.Blocks(title="G2M: composer-style piano music", analytics_enabled=False,
                   delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# G2M: composer-style piano music\n"
            "Choose a composer and press **Generate**: each piece plays in the page, with its score and piano roll, "
            "and its MIDI file, MusicXML score (MuseScore, Finale, Dorico, Sibelius) and event list to download. "
            "Optionally continue the opening bars of your own MIDI file, or rewrite bars of it under **Infill**."
        )
        last_piece = gr.State(None)  # the MIDI file of the last piece made in this page, for the Infill tab
        with gr.Tabs():
            with gr.Tab("Generate"):
                with gr.Row():
                    with gr.Column(scale=1):
                        name = gr.Dropdown(generator.composers, value=generator.composers[0], label="Composer")
                        bars = gr.Slider(1, MAX_BARS, value=8, step=1, label="Bars")
                        with gr.Row():
                            temperature = gr.Number(generator.sampling.temperature, minimum=0.05, step=0.05,
                                                    label="Temperature")
                            top_p = gr.Number(generator.sampling.top_p, minimum=0.01, maximum=1.0, step=0.01,
                                              label="Top-p")
                        with gr.Row():
                            seed = gr.Number(0, precision=0, label="Seed")
                            num_pieces = gr.Slider(1, MAX_PIECES, value=1, step=1, label="Pieces")
                        dtype = gr.Radio(list(WEIGHT_DTYPES), value=DEFAULT_DTYPE, label="Weights (int8: fastest on CPU)")
                        with gr.Accordion("Style and form", open=False):
                            style_guidance = gr.Number(guidance_default, minimum=0, step=0.5,
                                                       label="Style guidance (1: the model's own, larger: a stronger style)")
                            with gr.Row():
                                tempo = gr.Dropdown([MODEL_CHOICE, *map(str, TEMPO_CLASSES)], value=MODEL_CHOICE,
                                                    label="Tempo (BPM)")
                                time_signature = gr.Dropdown([MODEL_CHOICE, *TIME_SIGNATURES], value=MODEL_CHOICE,
                                                             label="Time signature (first bar)")
                            duration = gr.Number(0, minimum=0, maximum=MAX_SECONDS, step=5,
                                                 label="Duration in seconds (0: the Bars above; else ends at the first bar line after)")
                            with gr.Row(visible=generator.texture_controls):  # a model trained with them
                                density = gr.Dropdown(list(TEXTURE_CHOICES), value=COMPOSER_TEXTURE,
                                                      label="Density (notes per beat)")
                                polyphony = gr.Dropdown(list(TEXTURE_CHOICES), value=COMPOSER_TEXTURE,
                                                        label="Polyphony (notes per onset)")
                                register = gr.Dropdown(list(TEXTURE_CHOICES), value=COMPOSER_TEXTURE,
                                                       label="Register (how high)")
                        with gr.Accordion("Continue a MIDI file (optional)", open=False):
                            prompt_midi = gr.File(label="MIDI file", file_types=[".mid", ".midi"], type="filepath")
                            prompt_bars = gr.Slider(1, 16, value=4, step=1, label="Bars of it to keep")
                        with gr.Row():
                            button = gr.Button("Generate", variant="primary")
                            stop = gr.Button("Stop", variant="stop")
                    with gr.Column(scale=2):
                        live = gr.Audio(label="Now playing: the first piece while it is written", streaming=True,
                                        autoplay=True, interactive=False, elem_id="live", visible=streaming)
                        slots = _piece_slots()
            with gr.Tab("Infill"):
                infill_status = gr.Markdown(
                    generator.infill_refusal or "Rewrite bars in the middle of a piece in a composer's style: the bars "
                    "before and after them stay as they are, event for event.", elem_id="infill-status")
                with gr.Row():
                    with gr.Column(scale=1):
                        infill_midi_file = gr.File(label="MIDI file", file_types=[".mid", ".midi"], type="filepath",
                                                   elem_id="infill-midi")
                        take = gr.Button("Take the last generated piece", size="sm")
                        with gr.Row():
                            first_bar = gr.Number(2, precision=0, minimum=1, label="First bar to rewrite")
                            last_bar = gr.Number(3, precision=0, minimum=1, label="Last bar to rewrite")
                        infill_name = gr.Dropdown(generator.composers, value=generator.composers[0],
                                                  label="In the style of")
                        with gr.Row():
                            infill_seed = gr.Number(0, precision=0, label="Seed")
                            infill_count = gr.Slider(1, MAX_PIECES, value=1, step=1, label="Versions")
                        infill_dtype = gr.Radio(list(WEIGHT_DTYPES), value=DEFAULT_DTYPE,
                                                label="Weights (int8: fastest on CPU)")
                        with gr.Accordion("Sampling", open=False):
                            with gr.Row():
                                infill_temperature = gr.Number(generator.sampling.temperature, minimum=0.05, step=0.05,
                                                               label="Temperature")
                                infill_top_p = gr.Number(generator.sampling.top_p, minimum=0.01, maximum=1.0, step=0.01,
                                                         label="Top-p")
                            infill_guidance = gr.Number(guidance_default, minimum=0, step=0.5,
                                                        label="Style guidance (1: the model's own, larger: a stronger style)")
                        with gr.Row():
                            infill_button = gr.Button("Infill", variant="primary")
                            infill_stop = gr.Button("Stop", variant="stop")
                    with gr.Column(scale=2):
                        infill_slots = _piece_slots()
        generating = button.click(
            generate_pieces,
            inputs=[name, bars, temperature, top_p, seed, num_pieces, dtype, prompt_midi, prompt_bars,
                    style_guidance, tempo, time_signature, duration, density, polyphony, register],
            outputs=[live, *slots, last_piece], api_visibility="private", concurrency_id="model",
            concurrency_limit=limits.concurrency,
        )
        stop.click(None, cancels=[generating])
        take.click(take_last_piece, inputs=[last_piece], outputs=[infill_midi_file], api_visibility="private",
                   queue=False)
        infilling = infill_button.click(
            infill_pieces,
            inputs=[infill_midi_file, first_bar, last_bar, infill_name, infill_seed, infill_count, infill_dtype,
                    infill_temperature, infill_top_p, infill_guidance],
            outputs=[infill_status, *infill_slots, last_piece], api_visibility="private", concurrency_id="model",
            concurrency_limit=limits.concurrency,
        )
        infill_stop.click(None, cancels=[infilling])
        # The API endpoints: the forms' values (minus dtype and count), one piece out, no page trigger.
        with gr.Column(visible=False):
            api_trigger, infill_trigger = gr.Button(), gr.Button()
            api_outputs = [gr.Audio(type="filepath"), gr.File(), gr.Image(type="filepath"), gr.Textbox(), gr.File()]
        api_trigger.click(
            generate,
            inputs=[name, bars, temperature, top_p, seed, prompt_midi, prompt_bars, style_guidance, tempo, time_signature,
                    duration, density, polyphony, register],
            outputs=api_outputs, api_name="generate", concurrency_id="model", concurrency_limit=limits.concurrency,
        )
        infill_trigger.click(
            infill_api,
            inputs=[infill_midi_file, first_bar, last_bar, infill_name, infill_seed, infill_temperature, infill_top_p,
                    infill_guidance],
            outputs=api_outputs, api_name="infill", concurrency_id="model", concurrency_limit=limits.concurrency,
        )
    demo.queue(max_size=limits.max_queue, default_concurrency_limit=limits.concurrency)
    demo.generator = generator
    return demo


def launch_options(limits: ServingLimits, host: str = "127.0.0.1", port: int = 7860,
                   auth: tuple[str, str] | None = None) -> dict:
    """`gr.Blocks.launch` arguments for serving: the address, the upload limit, a login with ``auth``
    (user, password), no share link, no tracebacks in the page, and the page's style (Gradio 6 takes it
    at launch)."""
    return dict(server_name=host, server_port=port, max_file_size=int(limits.max_upload_mb * 2**20), auth=auth,
                share=False, show_error=False, quiet=True, css=SCORE_CSS)


__all__ = ["DEFAULT_DTYPE", "MAX_BARS", "MAX_PIECES", "MAX_SECONDS", "Generator", "PieceFiles", "ServingLimits", "build_app",
           "can_stream_audio", "launch_options", "music_seconds"]
