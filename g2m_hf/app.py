"""The web app: choose a composer, generate, listen in the page, read the score, download MIDI and MusicXML (Gradio Blocks).

``build_app()`` returns the page; ``g2m-app`` (g2m_hf/cli/app.py) serves it. The form feeds
`generate_midi`; each piece is written with `write_piece` (MIDI, event list, piano roll, MusicXML score,
WAV rendered by `g2m_hf.audio`) and shown with an audio player, its engraved score (`g2m_hf.notation`),
its piano roll and downloads. The same generation, for one piece, is the API endpoint ``generate``::

    from gradio_client import Client
    wav, midi, piano_roll, events, score = Client("http://127.0.0.1:7860/").predict(
        composer="Bach", bars=8, temperature=1.0, top_p=0.95, seed=0, prompt_midi=None, prompt_bars=4,
        api_name="/generate")   # optional: style_guidance=2.0, tempo="120", time_signature="3/4", duration=30

Needs the ``app`` extra (``pip install "g2m_hf[app]"``).
"""

from __future__ import annotations

import html
import math
import numbers
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from .errors import G2MError
from .generation import WEIGHT_DTYPES, generate_midi, load_model_as, load_tokenizer, trained_composers, write_piece
from .notation import engrave_svg
from .vocab import TEMPO_CLASSES, TIME_SIGNATURES

MAX_PIECES = 4
"""Pieces per request in the page (each gets its own player, piano roll and downloads)."""

MAX_BARS = 32
"""Longest piece the form offers (pieces have exactly the bars asked for; 32 take about a minute on CPU)."""

MAX_SECONDS = 120
"""Longest duration the form offers (0 there: the length is the bars)."""

MODEL_CHOICE = "model's choice"
"""The tempo / time-signature choice that leaves it to the model."""

KEPT_REQUESTS = 16
"""Requests whose files the app keeps in its own folder (Gradio serves its copies, cleared after a day)."""


@dataclass
class PieceFiles:
    """One generated piece as files: what the page shows and the API returns."""

    wav: Path
    midi: Path
    piano_roll: Path
    events: Path
    score: Path  # MusicXML
    bars: int


class Generator:
    """The model behind the page: loaded once per weight dtype (float32 at start), used by one request at a time."""

    def __init__(self, model: str | os.PathLike | None = None):
        self.source = model
        self.tokenizer = load_tokenizer(model)
        self.composers = trained_composers(self.tokenizer, model)
        self.models = {"float32": load_model_as(model, "float32")}
        self.sampling = self.models["float32"].generation_config  # the model's temperature and top_p
        self.lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="g2m-app-"))
        self.requests = 0

    def write(self, composer: str, bars: int, temperature: float, top_p: float, seed: int, num_pieces: int = 1,
              dtype: str = "float32", prompt_midi: str | None = None, prompt_bars: int = 4,
              style_guidance: float | None = None, tempo: str = MODEL_CHOICE,
              time_signature: str = MODEL_CHOICE, duration: float = 0) -> list[PieceFiles]:
        """Generate ``num_pieces`` pieces and write each one's files.

        ``duration`` > 0 asks for that many seconds of music (ending at a bar line) instead of ``bars``.

        ``tempo`` and ``time_signature`` are the form's strings (`MODEL_CHOICE`: the model chooses).

        Raises `G2MError` for bad values before any work: here what the page limits (composer, bars,
        number of pieces, dtype), in `generate_midi` the sampling values and the prompt.
        """
        bars, seed, num_pieces, prompt_bars = (_whole(value, name) for value, name in (
            (bars, "bars"), (seed, "seed"), (num_pieces, "number of pieces"), (prompt_bars, "prompt bars")))
        if composer not in self.composers:
            raise G2MError(f"composer must be one of {', '.join(self.composers)}, got {composer!r}")
        if not 1 <= bars <= MAX_BARS:
            raise G2MError(f"bars must be from 1 to {MAX_BARS}, got {bars}")
        if not 1 <= num_pieces <= MAX_PIECES:
            raise G2MError(f"number of pieces must be from 1 to {MAX_PIECES}, got {num_pieces}")
        if dtype not in WEIGHT_DTYPES:
            raise G2MError(f"dtype must be one of {', '.join(WEIGHT_DTYPES)}, got {dtype!r}")
        if not (isinstance(duration, numbers.Real) and 0 <= duration <= MAX_SECONDS):
            raise G2MError(f"duration must be from 0 to {MAX_SECONDS} seconds, got {duration}")
        if tempo not in (MODEL_CHOICE, *map(str, TEMPO_CLASSES)):
            raise G2MError(f"tempo must be one of {', '.join(map(str, TEMPO_CLASSES))}, got {tempo!r}")
        if time_signature not in (MODEL_CHOICE, *TIME_SIGNATURES):
            raise G2MError(f"time signature must be one of {', '.join(TIME_SIGNATURES)}, got {time_signature!r}")
        with self.lock:
            if dtype not in self.models:
                self.models[dtype] = load_model_as(self.source, dtype)
            pieces = generate_midi(
                self.models[dtype], self.tokenizer, composers=[composer], num_pieces=num_pieces, seed=seed,
                bars=None if duration else bars, duration=duration or None, prompt_midi=prompt_midi, prompt_from="start",
                prompt_bars=prompt_bars if prompt_midi else None, batch_size=num_pieces,
                temperature=temperature, top_p=top_p, style_guidance=style_guidance, progress=True,
                tempo=None if tempo == MODEL_CHOICE else int(tempo),
                time_signature=None if time_signature == MODEL_CHOICE else time_signature,
            )
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
                                    stem.with_suffix(".txt"), stem.with_suffix(".musicxml"), piece.events.count("Bar_None")))
        return files


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


def build_app(model: str | os.PathLike | None = None) -> gr.Blocks:
    """The page (and its ``generate`` API endpoint) for a model folder or Hub id (default: the bundled model).

    The model is loaded here, once; raises `G2MError` (e.g. `ModelNotFoundError`) if it cannot be.
    """
    generator = Generator(model)

    def generate_pieces(name, bars, temperature, top_p, seed, num_pieces, dtype, prompt_midi, prompt_bars,
                        style_guidance, tempo, time_signature, duration, progress=gr.Progress(track_tqdm=True)):
        try:
            pieces = generator.write(name, bars, temperature, top_p, seed, num_pieces, dtype, prompt_midi, prompt_bars,
                                     style_guidance, tempo, time_signature, duration)
        except G2MError as error:
            raise _shown(error, prompt_midi) from None
        updates = []
        for number in range(MAX_PIECES):
            if number < len(pieces):
                piece = pieces[number]
                updates += [gr.Group(visible=True), gr.Audio(str(piece.wav), label=f"{name} {number + 1}: {piece.bars} bars"),
                            gr.HTML(_score_html(piece.score)), gr.Image(str(piece.piano_roll)),
                            gr.File([str(piece.midi), str(piece.score), str(piece.events)])]
            else:
                updates += [gr.Group(visible=False), None, None, None, None]
        return updates

    def generate(composer: str, bars: int, temperature: float, top_p: float, seed: int,
                 prompt_midi: str | None, prompt_bars: int, style_guidance: float, tempo: str, time_signature: str,
                 duration: float):
        """One piece: its WAV file, MIDI file, piano-roll PNG, event list (one event per line) and MusicXML score."""
        try:
            (piece,) = generator.write(composer, bars, temperature, top_p, seed, 1, "float32",
                                      prompt_midi, prompt_bars, style_guidance, tempo, time_signature, duration)
        except G2MError as error:
            raise _shown(error, prompt_midi) from None
        return (str(piece.wav), str(piece.midi), str(piece.piano_roll), piece.events.read_text(encoding="utf-8"),
                str(piece.score))

    with gr.Blocks(title="G2M: composer-style piano music", analytics_enabled=False,
                   delete_cache=(3600, 86400), css=SCORE_CSS) as demo:
        gr.Markdown(
            "# G2M: composer-style piano music\n"
            "Choose a composer and press **Generate**: each piece plays in the page, with its score and piano roll, "
            "and its MIDI file, MusicXML score (MuseScore, Finale, Dorico, Sibelius) and event list to download. Optionally continue the opening bars of your own MIDI file."
        )
        with gr.Row():
            with gr.Column(scale=1):
                name = gr.Dropdown(generator.composers, value=generator.composers[0], label="Composer")
                bars = gr.Slider(1, MAX_BARS, value=8, step=1, label="Bars")
                with gr.Row():
                    temperature = gr.Number(generator.sampling.temperature, minimum=0.05, step=0.05, label="Temperature")
                    top_p = gr.Number(generator.sampling.top_p, minimum=0.01, maximum=1.0, step=0.01, label="Top-p")
                with gr.Row():
                    seed = gr.Number(0, precision=0, label="Seed")
                    num_pieces = gr.Slider(1, MAX_PIECES, value=1, step=1, label="Pieces")
                dtype = gr.Radio(list(WEIGHT_DTYPES), value="float32", label="Weights (int8: fastest on CPU)")
                with gr.Accordion("Style and form", open=False):
                    style_guidance = gr.Number(getattr(generator.sampling, "style_guidance", None) or 1.0, minimum=0,
                                               step=0.5, label="Style guidance (1: none, larger: a stronger style)")
                    with gr.Row():
                        tempo = gr.Dropdown([MODEL_CHOICE, *map(str, TEMPO_CLASSES)], value=MODEL_CHOICE,
                                            label="Tempo (BPM)")
                        time_signature = gr.Dropdown([MODEL_CHOICE, *TIME_SIGNATURES], value=MODEL_CHOICE,
                                                     label="Time signature (first bar)")
                    duration = gr.Number(0, minimum=0, maximum=MAX_SECONDS, step=5,
                                         label="Duration in seconds (0: the Bars above; else ends at the first bar line after)")
                with gr.Accordion("Continue a MIDI file (optional)", open=False):
                    prompt_midi = gr.File(label="MIDI file", file_types=[".mid", ".midi"], type="filepath")
                    prompt_bars = gr.Slider(1, 16, value=4, step=1, label="Bars of it to keep")
                button = gr.Button("Generate", variant="primary")
            with gr.Column(scale=2):
                slots = []
                for number in range(MAX_PIECES):
                    with gr.Group(visible=number == 0) as group:
                        slots += [group, gr.Audio(label=f"Piece {number + 1}", type="filepath", interactive=False),
                                  gr.HTML(label="Score"),
                                  gr.Image(label="Piano roll", type="filepath", interactive=False),
                                  gr.File(label="MIDI file, MusicXML score and event list", interactive=False)]
        button.click(
            generate_pieces,
            inputs=[name, bars, temperature, top_p, seed, num_pieces, dtype, prompt_midi, prompt_bars,
                    style_guidance, tempo, time_signature, duration],
            outputs=slots, api_visibility="private", concurrency_id="model",
        )
        # The API endpoint: the same form values (minus dtype and count), one piece out, no page trigger.
        with gr.Column(visible=False):
            api_trigger = gr.Button()
            api_outputs = [gr.Audio(type="filepath"), gr.File(), gr.Image(type="filepath"), gr.Textbox(), gr.File()]
        api_trigger.click(
            generate,
            inputs=[name, bars, temperature, top_p, seed, prompt_midi, prompt_bars, style_guidance, tempo, time_signature,
                    duration],
            outputs=api_outputs, api_name="generate", concurrency_id="model",
        )
    return demo


__all__ = ["MAX_BARS", "MAX_PIECES", "MAX_SECONDS", "Generator", "PieceFiles", "build_app"]
