"""What the tools that sample pieces (``g2m-generate``, ``g2m-infill``) share: their output options, the
extras those need, and writing the pieces (`generation.write_piece`) one line each."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from .. import extras
from ..errors import AudioError
from ..generation import WEIGHT_DTYPES, GeneratedPiece, output_stem, write_piece
from . import arguments


def add_piece_output_options(parser: argparse.ArgumentParser) -> None:
    """``--output-dir``, ``--audio``, ``--score``, ``--overwrite`` and ``--dtype``: where and how the tools
    that sample pieces write them (`generation.write_piece`), and the weights they sample with."""
    parser.add_argument("--output-dir", type=arguments.output_dir, default="generated",
                        help="where to write the files (default ./generated)")
    parser.add_argument("--audio", action="store_true",
                        help="also write <composer>_<n>.wav, rendered with the General MIDI SoundFont of pretty_midi")
    parser.add_argument("--score", action="store_true",
                        help="also write <composer>_<n>.musicxml, a two-staff piano score (MuseScore, Finale, Dorico, Sibelius)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files instead of picking new names")
    parser.add_argument(
        "--dtype", choices=WEIGHT_DTYPES, default="int8",
        help="weights: int8 (default: dynamic quantization, about 1.4x float32's speed per step on CPU, next-token "
             "distributions within 0.03 of float32's, the same style figures; docs/speed.md), float32, or bfloat16",
    )


def require_output_extras(args: argparse.Namespace) -> None:
    """Refuse ``--audio`` / ``--score`` without the extra they need, in one line, before any work
    (`MissingExtraError`)."""
    if args.audio:
        for module in extras.AUDIO_MODULES:
            extras.require(module, "audio", "--audio")
    if args.score:
        extras.require("music21", "notation", "--score")



def piano_rolls_available(prog: str) -> bool:
    """Whether piano rolls (.png) can be drawn: matplotlib is there (the ``notation`` extra); says so once
    when it is not (the other files are still written)."""
    if extras.available("matplotlib"):
        return True
    print(f"{prog}: no piano rolls (.png) without matplotlib: pip install \"g2m_hf[notation]\"", file=sys.stderr)
    return False


def write_pieces(prog: str, pieces: Iterable[GeneratedPiece], args: argparse.Namespace) -> None:
    """Write every piece into ``args.output_dir`` as `<composer>_<n>` (never over existing files without
    ``--overwrite``), with a piano roll when matplotlib is there, and print a line per piece."""
    directory = args.output_dir
    directory.mkdir(parents=True, exist_ok=True)
    piano_roll = piano_rolls_available(prog)
    taken: set[str] = set()
    for piece in pieces:
        stem = output_stem(directory, piece.composer, taken, args.overwrite)
        try:
            write_piece(piece, stem, audio=args.audio, piano_roll=piano_roll, score=args.score)
        except AudioError as error:  # a piece without notes: its other files are written, it has no sound
            print(f"{prog}: no WAV for {stem}.mid: {error}", file=sys.stderr)
        line = f"{stem}.mid  {len(piece.events)} events, {piece.events.count('Bar_None')} bars"
        if piece.infilled_bars is not None:
            line += ", bars {}-{} rewritten".format(*piece.infilled_bars)
        print(line)


__all__ = ["add_piece_output_options", "piano_rolls_available", "require_output_extras", "write_pieces"]
