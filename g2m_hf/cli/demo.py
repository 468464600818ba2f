"""`g2m-demo`: a music21 corpus piece through the REMI codec and back, written to a folder.

Writes ``<work>.source.mid`` (the score as music21 writes it), ``<work>.events.txt`` (one event
per line, SPEC §1) and ``<work>.decoded.mid`` (the events decoded as the original decoder does),
with a numbered name when one of them exists already.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ..errors import G2MError
from ..remi import events_to_midi, midi_to_events

PROG = "g2m-demo"
_SUFFIXES = (".source.mid", ".events.txt", ".decoded.mid")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].strip("`"))
    parser.add_argument("--output-dir", default="demo_output", help="where to write the files (default ./demo_output)")
    parser.add_argument("--work", default="bach/bwv66.6", help="music21 corpus work (default bach/bwv66.6)")
    parser.add_argument("--composer", default=None,
                        help="composer label of the events (default: the work's folder, e.g. Bach)")
    return parser


def free_stem(directory: Path, name: str) -> Path:
    """``directory/name``, or ``name_1``, ``name_2``... so that no output file exists yet."""
    stem, n = directory / name, 0
    while any(Path(f"{stem}{suffix}").exists() for suffix in _SUFFIXES):
        n += 1
        stem = directory / f"{name}_{n}"
    return stem


def corpus_work_midi(work: str) -> bytes:
    """The MIDI file music21 writes for a corpus work."""
    from music21 import corpus

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "work.mid"
        try:
            corpus.parse(work).write("midi", fp=str(path))
        except Exception as err:  # music21 raises its own error types for unknown or unreadable works
            raise G2MError(f"music21 cannot read corpus work {work!r}: {err}") from err
        return path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folder = args.work.split("/")[0]
    composer = args.composer or folder[:1].upper() + folder[1:]
    try:
        source = corpus_work_midi(args.work)
        events = midi_to_events(source, composer=composer)
        decoded = events_to_midi(events)
    except G2MError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    stem = free_stem(output, args.work.replace("/", "_"))
    Path(f"{stem}.source.mid").write_bytes(source)
    Path(f"{stem}.events.txt").write_text("\n".join(events) + "\n", encoding="utf-8")
    decoded.write(f"{stem}.decoded.mid")
    again = midi_to_events(Path(f"{stem}.decoded.mid"), composer=composer)
    print(f"{args.work}: {len(events)} events, {events.count('Bar_None')} bars, "
          f"{sum(e.startswith('Note_Pitch') for e in events)} notes; re-encoding the decoded MIDI gives "
          + ("the same events" if again == events else "other events (voices in unison merge in one piano track)"))
    for suffix in _SUFFIXES:
        print(f"wrote {stem}{suffix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
