"""The web app under load: throughput and latency of many clients at once against one client alone.

``g2m-app`` runs as a real server on 127.0.0.1 (tests/app_server.py) with the bundled model; clients are
gradio_client threads calling the ``generate`` API (short pieces, seeds and composers varied). For each
``--concurrency`` asked, in the same run: one client alone sends ``--requests`` requests one after another
(the baseline), then ``--clients`` clients send ``--requests`` each, all at once. Reported: requests per
minute, median and 95th-percentile latency (submit to answer, queueing included), refusals ("busy"), and
the ratios against the client alone.

    python benchmarks/app_load.py [--clients 8] [--requests 3] [--bars 2] [--concurrency 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.app_server

from tests.app_server import AppServer

COMPOSERS = ("Bach", "Beethoven", "Mozart")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_clients(url: str, clients: int, requests: int, bars: int, folder: Path) -> tuple[list[float], int, float]:
    """``clients`` threads sending ``requests`` each at once: (latencies of answered requests, refused, seconds)."""
    from gradio_client import Client

    latencies, refused, lock = [], [0], threading.Lock()

    def client(number: int) -> None:
        session = Client(url, verbose=False, download_files=str(folder / f"client_{number}"))
        for request in range(requests):
            start = time.perf_counter()
            try:
                session.predict(composer=COMPOSERS[number % 3], bars=bars, temperature=1.1, top_p=0.99,
                                seed=number * requests + request, prompt_midi=None, prompt_bars=4,
                                api_name="/generate")
            except Exception:  # noqa: BLE001 (a busy refusal, counted)
                with lock:
                    refused[0] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(number,)) for number in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, refused[0], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=3, help="requests per client")
    parser.add_argument("--bars", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for concurrency in args.concurrency:
            run = Path(folder) / f"concurrency_{concurrency}"
            run.mkdir()
            server = AppServer.start(run, options=("--concurrency", str(concurrency)))
            try:
                run_clients(server.url, 1, 1, 1, run)  # warm-up, untimed
                memory = server.memory_mb()
                alone, _, alone_seconds = run_clients(server.url, 1, args.requests, args.bars, run)
                loaded, refused, loaded_seconds = run_clients(server.url, args.clients, args.requests, args.bars, run)
                growth = server.memory_mb() - memory
            finally:
                server.stop()
            alone_rate, loaded_rate = 60 * len(alone) / alone_seconds, 60 * len(loaded) / loaded_seconds
            rows.append((concurrency, alone_rate, statistics.median(alone), loaded_rate, statistics.median(loaded),
                         percentile(loaded, 0.95), refused, growth))
            print(f"concurrency {concurrency}: alone {alone_rate:.1f} requests/min, median {statistics.median(alone):.1f} s; "
                  f"{args.clients} clients: {loaded_rate:.1f} requests/min ({loaded_rate / alone_rate:.2f}x alone), "
                  f"median {statistics.median(loaded):.1f} s ({statistics.median(loaded) / statistics.median(alone):.1f}x "
                  f"alone), p95 {percentile(loaded, 0.95):.1f} s, {refused} refused, memory +{growth:.0f} MB", flush=True)
    print(f"\n{args.clients} clients x {args.requests} requests of {args.bars}-bar pieces (load average "
          f"{os.getloadavg()[0]:.1f}; measured on a shared machine):")
    print("| concurrency | alone: requests/min | alone: median s | load: requests/min | x alone | load: p50 s | "
          "load: p95 s | refused | memory growth MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for concurrency, alone_rate, alone_p50, rate, p50, p95, refused, growth in rows:
        print(f"| {concurrency} | {alone_rate:.1f} | {alone_p50:.1f} | {rate:.1f} | {rate / alone_rate:.2f} | {p50:.1f} | "
              f"{p95:.1f} | {refused} | {growth:.0f} |")


if __name__ == "__main__":
    main()
