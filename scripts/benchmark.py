"""How much a grading run costs, against what it cannot avoid: importing torch.

Runs each command several times in a fresh interpreter, taking the commands in turn so that a change
in the machine's speed touches them all alike, and prints the medians and their ratios to
`python -c "import torch"`. Targets: a whole grade <= 1.5x the import, one kata <= 1.2x. A whole
grade is timed twice: as it usually runs, with the reference's outcomes that earlier runs left in
.kata/cache, and cold, with that cache removed first (the first run after any change to the code).

    .venv/bin/python scripts/benchmark.py [--runs N]
"""

import argparse
import shutil
import statistics
import sys
from pathlib import Path

from bench_batch import timed

from graders import curriculum

KATA = str(Path(sys.executable).parent / "kata")
REFERENCE = str(curriculum.ROOT / "reference")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    cold = lambda: shutil.rmtree(curriculum.CACHE, ignore_errors=True)  # noqa: E731
    commands = [  # name, command, target, what to do before each run
        ("import torch", [sys.executable, "-c", "import torch"], None, None),
        ("grade all katas (reference)", [KATA, "grade", "--solutions", REFERENCE], 1.5, None),
        ("  the same, cache removed", [KATA, "grade", "--solutions", REFERENCE], None, cold),
        ("grade one kata (attention)", [KATA, "grade", "--kata", "attention", "--solutions", REFERENCE], 1.2, None),
        ("grade all katas (stubs)", [KATA, "grade"], 1.5, None),
    ]
    times = [[] for _ in commands]
    for _ in range(runs):
        for spent, (_, command, _, before) in zip(times, commands):
            if before:
                before()
            spent.append(timed(command, cwd=curriculum.ROOT))
    medians = [statistics.median(t) for t in times]
    baseline = medians[0]
    print(f"median of {runs} runs")
    for (name, _, target, _), median in zip(commands, medians):
        ratio = median / baseline
        verdict = "" if target is None else f"  (target <= {target}x: {'met' if ratio <= target else 'NOT met'})"
        print(f"{name:<30} {median:6.2f} s  {ratio:5.2f}x{verdict}")


if __name__ == "__main__":
    main()
