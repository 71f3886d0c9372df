"""Time from starting a command to the first byte on its stdout (medians of several runs).

    python benchmarks/first_output.py [--runs N] -- kindling run ../shared/bench/wasm/fib.wasm 25

Measures what a user waits for: interpreter start, host start-up, guest spawn, module decode,
validation and compilation of the functions that run before the first write, and the write.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time


def measure(command: list[str], runs: int) -> tuple[list[float], list[float]]:
    firsts, totals = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdout is not None
        first = process.stdout.read(1)
        firsts.append(time.perf_counter() - started)
        process.stdout.read()
        process.stdout.close()
        process.wait()
        totals.append(time.perf_counter() - started)
        if not first:
            raise SystemExit(f"{' '.join(command)} printed nothing")
    return firsts, totals


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    firsts, totals = measure(command, options.runs)
    ms = [round(x * 1000) for x in sorted(firsts)]
    print(
        f"first output: median {statistics.median(firsts) * 1000:.0f} ms, "
        f"min {ms[0]} ms, max {ms[-1]} ms over {len(ms)} runs; "
        f"whole command median {statistics.median(totals) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
