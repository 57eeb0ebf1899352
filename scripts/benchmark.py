"""How much a grading run costs, against what it cannot avoid: importing torch.

Runs each command several times in a fresh interpreter, taking the commands in turn so that a change
in the machine's speed touches them all alike, and prints the medians and their ratios to
`python -c "import torch"`. Targets: a whole grade <= 1.5x the import, one kata <= 1.2x.

    .venv/bin/python scripts/benchmark.py [--runs N]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KATA = str(Path(sys.executable).parent / "kata")
REFERENCE = str(ROOT / "reference")


def timed(command: list) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    commands = [
        ("import torch", [sys.executable, "-c", "import torch"], None),
        ("grade all katas (reference)", [KATA, "grade", "--solutions", REFERENCE], 1.5),
        ("grade one kata (attention)", [KATA, "grade", "--kata", "attention", "--solutions", REFERENCE], 1.2),
        ("grade all katas (stubs)", [KATA, "grade"], 1.5),
    ]
    times = [[] for _ in commands]
    for _ in range(runs):
        for spent, (_, command, _) in zip(times, commands):
            spent.append(timed(command))
    medians = [statistics.median(t) for t in times]
    baseline = medians[0]
    print(f"median of {runs} runs")
    for (name, _, target), median in zip(commands, medians):
        ratio = median / baseline
        verdict = "" if target is None else f"  (target <= {target}x: {'met' if ratio <= target else 'NOT met'})"
        print(f"{name:<30} {median:6.2f} s  {ratio:5.2f}x{verdict}")


if __name__ == "__main__":
    main()
