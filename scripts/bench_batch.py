"""What one learner costs in `kata grade-many`, measured against `python -c "import torch"`.

Builds a class of learners in a temporary folder (copies of the reference solutions, some with a
mistake, a stub or a missing file), then times fresh `kata grade-many` runs from a cold start (a new
process, no reports yet) and as many `python -c "import torch"`, alternating the two. Prints the raw
times, the medians, the cost per learner and its ratio to one torch import.

    .venv/bin/python scripts/bench_batch.py [--learners 40] [--runs 3]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graders import curriculum  # noqa: E402

KATA = Path(sys.executable).parent / "kata"
# A wrong answer per kata: appended to the reference, it replaces one function with a broken one.
MISTAKES = {
    "attention": "def softmax(x, dim=-1):\n    return x.exp() / x.exp().sum()\n",
    "causal_mask": "def causal_mask(q_len, kv_len=None, *, device=None):\n    raise NotImplementedError\n",
    "layer_norm": "def layer_norm(x, weight, bias, eps=1e-5):\n    return x\n",
}


def build_class(folder: Path, learners: int):
    """learner i: every kata from the reference, except that every 4th has one kata left as the
    template's stub, every 5th has one mistake, and every 7th has one kata file missing."""
    katas = [k.name for k in curriculum.katas()]
    for i in range(learners):
        katas_dir = folder / f"learner{i:03d}" / "katas"
        katas_dir.mkdir(parents=True)
        for name in katas:  # kata files import each other as katas.<name>, never the reference
            source = curriculum.as_learner_file((ROOT / "reference" / f"{name}.py").read_text())
            (katas_dir / f"{name}.py").write_text(source)
        if i % 4 == 1:
            stub = katas[i % len(katas)]
            shutil.copy(ROOT / "katas" / f"{stub}.py", katas_dir / f"{stub}.py")
        if i % 5 == 2:
            name = list(MISTAKES)[i % len(MISTAKES)]
            with open(katas_dir / f"{name}.py", "a") as f:
                f.write("\n\n" + MISTAKES[name])
        if i % 7 == 3:
            (katas_dir / f"{katas[(i + 3) % len(katas)]}.py").unlink()
        (folder / f"learner{i:03d}" / "README.md").write_text("not a kata file\n")


def timed(command: list, **kw) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--learners", type=int, default=40)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_class(tmp / "subs", args.learners)
        batch_times, torch_times = [], []
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
              f"{os.cpu_count()} CPUs; {args.learners} learners x {len(curriculum.katas())} katas", flush=True)
        for run in range(args.runs):
            torch_times.append(timed([sys.executable, "-c", "import torch"]))
            out = tmp / f"run{run}"
            out.mkdir()
            batch_times.append(timed([str(KATA), "grade-many", str(tmp / "subs"), "--out", str(out / "grades.csv")]))
            print(f"run {run + 1}: grade-many {batch_times[-1]:.2f} s, import torch {torch_times[-1]:.2f} s", flush=True)
        rows = (out / "grades.csv").read_text().splitlines()
        assert len(rows) == args.learners + 1, "the CSV should have one row per learner"

    batch_median, torch_median = statistics.median(batch_times), statistics.median(torch_times)
    per_learner = batch_median / args.learners
    print(f"grade-many, {args.learners} learners: {' '.join(f'{t:.2f}' for t in batch_times)} s "
          f"(median {batch_median:.2f} s, {per_learner:.3f} s per learner)")
    print(f'python -c "import torch": {" ".join(f"{t:.2f}" for t in torch_times)} s (median {torch_median:.2f} s)')
    print(f"per learner / torch import: {per_learner / torch_median:.2f}x")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
