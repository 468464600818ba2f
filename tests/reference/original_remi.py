"""Faithful re-implementation of the ORIGINAL REMI converter and decoder (reference only).

This mirrors ``representations/midi2events_score.py`` (``midi_to_sequence``) and
``events2score.py`` (``convert_sequence_to_midi`` with ``is_token=True``) of
AndyWeasley2004/Generality-to-Mastery, quirks included, and keeps their cost profile:
a mido parse, pure-Python loops over messages, and bars filled by scanning every note
for every bar. The parity tests compare ``g2m_hf.remi`` against it and
``benchmarks/remi_speed.py`` times it as the baseline.

Differences from the original, all outside its successful output:
- events are returned as ``Name_Value`` strings (what the dictionary and the data loader
  build from the original's ``{'name', 'value'}`` dicts);
- the decoder returns plain tick lists instead of writing a miditoolkit file;
- a zero-length pickup bar that would make the original loop forever raises instead.
"""

from __future__ import annotations

import io

import mido

ALLOWED = [(2, 4), (3, 4), (4, 4), (3, 8), (6, 8)]
SPLITS = {(5, 4): [(2, 4), (3, 4)], (6, 4): [(3, 4), (3, 4)], (12, 8): [(6, 8), (6, 8)]}
PICKUP_MAP = {(5, 4): (3, 4), (6, 4): (3, 4), (12, 8): (6, 8)}


def _open(midi) -> mido.MidiFile:
    if isinstance(midi, (bytes, bytearray)):
        return mido.MidiFile(file=io.BytesIO(midi))
    if hasattr(midi, "read"):
        return mido.MidiFile(file=midi)
    return mido.MidiFile(str(midi))


def _ticks_and_grids(num: int, den: int) -> tuple[int, int]:
    if den == 8:
        return num * 240, num * 6
    return num * 480, num * 12


def _snap_tempo(bpm: float) -> int:
    return min([40, 80, 120, 160], key=lambda t: abs(t - bpm))


def midi_to_events(midi, composer: str = "None") -> list[str] | None:
    """The original ``midi_to_sequence``; None when a pitch is outside 21..108."""
    mid = _open(midi)
    tpq = mid.ticks_per_beat
    factor = 480 / tpq if tpq != 480 else 1.0

    messages = []
    for track in mid.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            messages.append((tick * factor, msg))
    messages.sort(key=lambda m: m[0])

    # time-weighted mean BPM
    tempo, last, weighted, total = 500000, 0, 0.0, 0.0
    for tick, msg in messages:
        if msg.type == "set_tempo":
            span = tick - last
            weighted += 60000000 / tempo * span
            total += span
            tempo = msg.tempo
            last = tick
    max_tick = messages[-1][0] if messages else 0
    if max_tick > last:
        span = max_tick - last
        weighted += 60000000 / tempo * span
        total += span
    global_tempo = _snap_tempo(weighted / total if total > 0 else 120)

    notes, open_notes = [], {}
    for tick, msg in messages:
        if msg.type == "note_on" and msg.velocity > 0:
            open_notes[(msg.channel, msg.note)] = tick
        elif msg.type == "note_off" or (msg.type == "note_on" and msg.velocity == 0):
            start = open_notes.pop((msg.channel, msg.note), None)
            if start is not None:
                notes.append({"start": start, "duration": tick - start, "pitch": msg.note})
    notes.sort(key=lambda n: n["start"])

    sigs = [(t, m.numerator, m.denominator) for t, m in messages if m.type == "time_signature"]
    if not sigs or sigs[0][0] != 0:
        sigs.insert(0, (0, 4, 4))

    bars = []
    cur, idx = 0, 0
    while cur < max_tick:
        if idx < len(sigs) and cur >= sigs[idx][0]:
            sig = sigs[idx]
            idx += 1
        else:
            sig = sigs[idx - 1] if idx > 0 else (0, 4, 4)
        num, den = sig[1], sig[2]
        effective = [(num, den)] if (num, den) in ALLOWED else SPLITS.get((num, den), [(4, 4)])
        progressed = False
        for eff_num, eff_den in effective:
            measure, grids = _ticks_and_grids(eff_num, eff_den)
            orig_ticks, orig_grids = _ticks_and_grids(num, den)
            pickup, offset = False, 0
            end = cur + measure
            if cur == 0 and orig_ticks < 1920:
                nxt_num, nxt_den = (sigs[idx][1], sigs[idx][2]) if idx < len(sigs) else (4, 4)
                full_next = nxt_num * 480 if nxt_den == 4 else nxt_num * 240 if nxt_den == 8 else 1920
                if orig_ticks < full_next:
                    pickup = True
                    eff_num, eff_den = (nxt_num, nxt_den) if (nxt_num, nxt_den) in ALLOWED \
                        else PICKUP_MAP.get((nxt_num, nxt_den), (4, 4))
                    measure, grids = _ticks_and_grids(eff_num, eff_den)
                    offset = grids - orig_grids
                    end = cur + orig_ticks
            bars.append({"start": cur, "end": end, "num": eff_num, "den": eff_den, "measure": measure,
                         "grids": grids, "pickup": pickup, "offset": offset})
            progressed = progressed or end > cur
            cur = end
            if cur >= max_tick:
                break
        if not progressed and not (idx < len(sigs) and cur >= sigs[idx][0]):
            raise RuntimeError("zero-length pickup bar: the original converter never terminates")

    out = [f"Composer_{composer}", f"Tempo_{global_tempo}", "BOS_None"]
    for bar in bars:
        in_bar = []
        for note in notes:  # the original's scan of every note for every bar
            if bar["start"] <= note["start"] < bar["end"]:
                local = note["start"] - bar["start"]
                if bar["pickup"]:
                    length = bar["end"] - bar["start"]
                    grid = int(local / length * (bar["grids"] - bar["offset"])) + bar["offset"]
                    allowed = length
                else:
                    grid = int(local / bar["measure"] * bar["grids"])
                    allowed = bar["measure"]
                grid = min(grid, bar["grids"] - 1)
                unit = 40 if bar["den"] == 4 else 80
                duration = max(round(note["duration"] / unit) * unit, unit)
                in_bar.append((grid, note["pitch"], min(duration, int(allowed))))
        by_grid: dict[int, list] = {}
        for item in in_bar:
            by_grid.setdefault(item[0], []).append(item)
        out += ["Bar_None", f"Time_Signature_{bar['num']}/{bar['den']}"]
        for grid in sorted(by_grid):
            out.append(f"Beat_{grid}")
            for _, pitch, duration in sorted(by_grid[grid], key=lambda n: n[1], reverse=True):
                if pitch > 108 or pitch < 21:
                    return None
                out += [f"Note_Pitch_{pitch}", f"Note_Duration_{int(duration)}"]
    out.append("EOS_None")
    return out


def _bar_parameters(sig: str) -> tuple[int, int]:
    num, den = (int(x) for x in sig.split("/"))
    length = int(num * 480 * (4 / den))
    count = {(6, 8): 36, (3, 8): 18}.get((num, den), num * 12)
    return length, length // count


def _parse(token: str) -> tuple[str, object]:
    parts = token.split("_", 2)
    if len(parts) == 3 and parts[0] in ("Note", "Time", "Chord"):
        name, value = f"{parts[0]}_{parts[1]}", parts[2]
        return name, int(value) if parts[0] == "Note" else value
    if len(parts) == 2:
        return parts[0], int(parts[1]) if parts[0] in ("Beat", "Tempo") else parts[1]
    return parts[0], "_".join(parts[1:])


def events_to_midi(tokens: list[str]) -> dict:
    """The original ``convert_sequence_to_midi(..., is_token=True)``, as tick lists.

    Returns ``{"notes": [(pitch, start, end)], "tempos": [(bpm, tick)],
    "time_signatures": [(num, den, tick)]}`` in the order the original writes them.
    """
    seq = [_parse(t) for t in tokens]
    sig_value = "4/4"
    bar_length, per_grid = _bar_parameters(sig_value)
    tempos, sigs, notes = [], [], []
    tick, grid, i = 0, 0, 0
    while i < len(seq):
        name, value = seq[i]
        if name == "Tempo":
            tempos.append((value, tick))
            i += 1
        elif name == "Bar":
            start = tick
            i += 1
            if i < len(seq) and seq[i][0] == "Time_Signature":
                sig_value = seq[i][1]
                num, den = sig_value.split("/")
                sigs.append((int(num), int(den), start))
                bar_length, per_grid = _bar_parameters(sig_value)
                i += 1
            while i < len(seq) and seq[i][0] not in ("Bar", "EOS"):
                name, value = seq[i]
                i += 1
                if name == "Beat":
                    grid = value
                elif name == "Note_Pitch":
                    duration = per_grid
                    if i < len(seq) and seq[i][0] == "Note_Duration":
                        duration = seq[i][1]
                        i += 1
                    onset = start + grid * per_grid
                    notes.append((value, onset, onset + duration))
            tick += bar_length
        elif name == "EOS":
            break
        else:
            i += 1
    if not tempos:
        tempos.append((120, 0))
    if not sigs or sigs[0][2] != 0:
        num, den = sig_value.split("/")
        sigs.insert(0, (int(num), int(den), 0))
    notes.sort(key=lambda n: n[1])
    sigs.sort(key=lambda s: s[2])
    tempos.sort(key=lambda t: t[1])
    return {"notes": notes, "tempos": tempos, "time_signatures": sigs}
