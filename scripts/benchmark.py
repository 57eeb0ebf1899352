"""How much a grading run costs, against what it cannot avoid: importing torch.

Runs each command several times in a fresh interpreter and prints the medians and their ratios to
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


def median_seconds(command: list, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    baseline = median_seconds([sys.executable, "-c", "import torch"], runs)
    rows = [
        ("import torch", baseline, None),
        ("grade all katas (reference)", median_seconds([KATA, "grade", "--solutions", REFERENCE], runs), 1.5),
        ("grade one kata (attention)", median_seconds([KATA, "grade", "--kata", "attention", "--solutions", REFERENCE], runs), 1.2),
        ("grade all katas (stubs)", median_seconds([KATA, "grade"], runs), 1.5),
    ]
    print(f"median of {runs} runs")
    for name, seconds, target in rows:
        ratio = seconds / baseline
        verdict = "" if target is None else f"  (target <= {target}x: {'met' if ratio <= target else 'NOT met'})"
        print(f"{name:<30} {seconds:6.2f} s  {ratio:5.2f}x{verdict}")


if __name__ == "__main__":
    main()
