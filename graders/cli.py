"""The `kata` command: status, check, hint, watch and grade, over the graders and the runner."""

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from graders import curriculum, formats
from graders.curriculum import UsageError

HINTS_STATE = Path(os.environ.get("KATA_STATE", curriculum.ROOT / ".kata")) / "hints.json"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def path(text: str) -> Path:
    """A path argument, resolved against the folder the command was run from."""
    return Path(os.path.abspath(text))


def _color(text: str, code: str) -> str:
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() and not os.environ.get("NO_COLOR") else text


def _points(x: float) -> str:
    return f"{x:g}"


def _bar(done: float, total: float, width: int = 30) -> str:
    filled = round(width * done / total) if total else 0
    return "[" + "#" * filled + "." * (width - filled) + "]"


STATE_COLORS = {"passing": "32", "failing": "31", "not started": "2"}


def print_table(report: dict):
    rows = report["katas"]
    width, names = max(len(k["title"]) for k in rows), max(len(k["name"]) for k in rows)
    for i, k in enumerate(rows, 1):
        state = _color(f"{k['status']:<11}", STATE_COLORS[k["status"]])
        print(f"{i:>2}  {k['name']:<{names}}  {k['title']:<{width}}  {state}  {_points(k['score']):>5} / {_points(k['max_score'])}")
    passing = sum(k["status"] == "passing" for k in rows)
    print(f"\n{_bar(report['total'], report['max_score'])} {_points(report['total'])} / {_points(report['max_score'])} points, "
          f"{passing} of {len(rows)} katas passing")


def print_checks(kata: dict):
    print(f"{kata['title']} ({kata['name']}): {_points(kata['score'])} / {_points(kata['max_score'])} points")
    for c in kata["checks"]:
        mark = _color("PASS", "32") if c["passed"] else _color("FAIL", "31")
        line = f"  {mark} {c['name']} ({_points(c['score'])}/{_points(c['max_score'])})"
        print(line if c["passed"] else f"{line}: " + c["message"].replace("\n", "\n      "))


def require_confinement(args, platform: bool):
    """Platform and class grading refuse to run learner code unconfined unless told to; a learner's own
    runs go on, with one line saying so."""
    from graders import sandbox

    reason = sandbox.confinement()
    if reason is None:
        return
    if platform and not args.unconfined:
        raise UsageError(f"{reason}; grading for a course needs it: grade on Linux (GitHub's and Gradescope's "
                         f"runners have it), or pass --unconfined to grade without it")
    print(f"kata: note: {reason}; your code runs in separate processes, unconfined", file=sys.stderr)


def _grade(args, names=None) -> dict:
    require_confinement(args, getattr(args, "format", None) in ("classroom", "gradescope"))
    from graders import runner  # starts the zygote, which imports torch: only for the commands that grade

    solutions = getattr(args, "solutions", None)
    # A platform's grading step always reports a score: a missing folder grades as nothing started.
    platform = getattr(args, "format", None) in ("classroom", "gradescope")
    if solutions and not solutions.is_dir() and not platform:
        raise UsageError(f"--solutions {solutions}: no such folder; give the folder that holds your kata files")
    for name in names or ():
        curriculum.kata(name)
    return runner.grade(names, solutions=solutions, device=args.device)


def cmd_grade(args):
    start = time.monotonic()
    report = _grade(args, args.kata)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    elif args.format == "classroom":
        # The log shows learner-chosen text (exception messages): no line of it may act as a workflow command.
        token = secrets.token_hex(16)
        print(f"::stop-commands::{token}")
        for kata in formats.for_learners(report)["katas"]:  # the log is the learner's: hidden checks say little
            print_checks(kata)
        print(f"::{token}::")
        result = formats.classroom(report)
        if os.environ.get("GITHUB_OUTPUT"):
            with open(os.environ["GITHUB_OUTPUT"], "a") as out:
                out.write(f"result={result}\n")
        else:
            print(f"result={result}")
    elif args.format == "gradescope":
        print(formats.gradescope(report, time.monotonic() - start))
    else:
        print_table(report)


def cmd_export_template(args):
    from graders import export

    out = export.export_template(args.dir, with_hidden=args.with_hidden)
    print(f"Wrote the student template to {out}: push it as the assignment's template repository, then set "
          f"GRADERS_REPOSITORY and GRADERS_REF in .github/workflows/classroom.yml (see the README).")


def cmd_export_gradescope(args):
    from graders import export

    out = export.export_gradescope(args.dir)
    print(f"Wrote the autograder to {out}: zip its contents (cd {out} && zip -r ../autograder.zip .) and "
          f"upload the zip as the assignment's autograder.")


def cmd_status(args):
    print_table(_grade(args))


def cmd_check(args):
    print_checks(_grade(args, [args.name])["katas"][0])


def cmd_hint(args):
    kata = curriculum.lesson(args.name)
    if not kata.hints:
        print(f"{kata.name} has no hints.")
        return
    if args.all:
        for i, hint in enumerate(kata.hints, 1):
            print(f"Hint {i}/{len(kata.hints)}: {hint}")
        return
    seen = _hints_seen()
    shown = min(seen.get(kata.name, 0), len(kata.hints) - 1)
    print(f"Hint {shown + 1}/{len(kata.hints)}: {kata.hints[shown]}")
    if shown + 1 == len(kata.hints):
        print("That was the last hint; `kata hint --all` shows them all again.")
    seen[kata.name] = shown + 1
    HINTS_STATE.parent.mkdir(exist_ok=True)
    HINTS_STATE.write_text(json.dumps(seen))


def _hints_seen() -> dict:
    """How many hints of each kata were shown; a damaged record starts over rather than failing."""
    try:
        seen = json.loads(HINTS_STATE.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(seen, dict):
        return {}
    return {k: v for k, v in seen.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}


def cmd_reset(args):
    """Put back the kata's stub (as the repository first had it), keeping the learner's file in .kata/."""
    kata = curriculum.lesson(args.name)
    path = curriculum.STUBS / kata.file
    rel = f"katas/{kata.file}"
    git = ["git", "-C", str(curriculum.ROOT)]
    try:
        first = subprocess.run(git + ["log", "--diff-filter=A", "--format=%H", "--", rel],
                               capture_output=True, text=True, check=True).stdout.split()
        stub = subprocess.run(git + ["show", f"{first[-1]}:{rel}"], capture_output=True, check=True).stdout
    except (OSError, IndexError, subprocess.CalledProcessError):
        raise UsageError(f"kata reset takes the stub from the repository's git history, and {curriculum.ROOT} has "
                         f"none for {rel}; copy the stub from the assignment's template instead") from None
    if path.exists() and path.read_bytes() == stub:
        print(f"{rel} is already the stub.")
        return
    if path.exists():
        kept = HINTS_STATE.parent / "reset" / f"{kata.name}-{time.strftime('%Y%m%d-%H%M%S')}.py"
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, kept)
        print(f"Your {rel} is kept as {kept}.")
    path.write_bytes(stub)
    print(f"{rel} is the stub again: `kata check {kata.name}` starts from zero.")


def _watched(name: str, solutions) -> list:
    """The kata's file and those of the katas its checks build on."""
    from graders import harness

    uses = {dep for case in harness.kata_cases(name) for dep in case.uses} - {name}
    folder = solutions or curriculum.STUBS
    return [folder / curriculum.kata(n).file for n in [name, *sorted(uses)]]


def _stamps(paths: list) -> tuple:
    return tuple(p.stat().st_mtime_ns if p.exists() else None for p in paths)


def cmd_watch(args):
    name = args.name
    if name is None:
        report = _grade(args)
        name = next((k["name"] for k in report["katas"] if k["status"] != "passing"), None)
        if name is None:
            print("Every kata passes. Well done!")
            return
    paths = _watched(name, args.solutions)
    print(f"Watching {', '.join(str(p) for p in paths)}; save to re-run the checks of {name}, Ctrl-C to stop.")
    last = None
    try:
        while True:
            stamps = _stamps(paths)
            if stamps != last:
                time.sleep(0.3)  # an editor's save can come as several writes: wait until they settle
                if _stamps(paths) != stamps:
                    continue
                last = stamps
                print(f"\n--- {time.strftime('%H:%M:%S')} ---")
                print_checks(_grade(args, [name])["katas"][0])
            time.sleep(0.5)
    except KeyboardInterrupt:
        print()


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kata", description="Build the Transformer and the LLM stack, one kata at a time.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name, fn, help, grades=True):
        c = sub.add_parser(name, help=help, description=help)
        c.set_defaults(fn=fn)
        if grades:
            c.add_argument("--solutions", type=path, metavar="DIR", help="grade the kata files in DIR instead of katas/")
            c.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the checks run (default cpu)")
            c.add_argument("--unconfined", action="store_true",
                           help="grade for a course even where learner code cannot be confined (see the README's Limits)")
        return c

    command("status", cmd_status, "every kata in order, with its state and points")
    c = command("check", cmd_check, "run one kata's checks and show each failure")
    c.add_argument("name")
    c = command("hint", cmd_hint, "the next hint for a kata", grades=False)
    c.add_argument("name")
    c.add_argument("--all", action="store_true", help="every hint at once")
    c = command("reset", cmd_reset, "put back a kata's stub, keeping your file under .kata/reset/", grades=False)
    c.add_argument("name")
    c = command("watch", cmd_watch, "re-run a kata's checks each time its file is saved")
    c.add_argument("name", nargs="?", help="default: the first kata not yet passing")
    c = command("grade", cmd_grade, "the full score")
    c.add_argument("--kata", nargs="+", metavar="NAME", help="only these katas")
    c.add_argument("--format", default="table", choices=["table", "json", "classroom", "gradescope"])
    if (curriculum.ROOT / "reference").is_dir():  # these need the reference: not in a student template
        c = command("export-template", cmd_export_template, "write the repository learners receive", grades=False)
        c.add_argument("dir", type=path)
        c.add_argument("--with-hidden", action="store_true", help="also record the hidden checks (for a private copy)")
        c = command("export-gradescope", cmd_export_gradescope, "write Gradescope's autograder files", grades=False)
        c.add_argument("dir", type=path)
        c = command("calibrate", cmd_calibrate, "each check's tolerance against the catalogue's variants and "
                    "mistakes: errors, margins and flags (on CUDA too when there is one)", grades=False)
        c.add_argument("name", nargs="*", metavar="NAME", help="default: every kata")
        c.add_argument("--seeds", type=int, default=20, metavar="N", help="seeds per check (default 20)")
        c.add_argument("--suggest", action="store_true", help="also propose a value per tolerance key; nothing is written")
        from graders import mutate  # light: it imports torch only to grade

        c = command("mutate", mutate.command, "the reference with one small change at a time (mutants), each graded "
                    "by the kata's checks: the survivors with their diffs, and the mutation score", grades=False)
        c.add_argument("name", nargs="*", metavar="NAME", help="default: every kata")
        c = command("grade-many", cmd_grade_many, "grade a whole class: one folder per learner in; a CSV of points "
                    "and one JSON report per learner out", grades=False)
        c.add_argument("submissions", metavar="SUBMISSIONS_DIR", nargs="?",
                       help="one folder per learner (e.g. GitHub Classroom's clones); only katas/<kata>.py is taken")
        c.add_argument("--shard", metavar="K/N", help="grade only the K-th of N slices of the class (by a hash of "
                       "each learner's folder name), for N machines; --merge joins their outputs")
        c.add_argument("--merge", nargs="+", metavar="DIR",
                       help="instead of grading, join the outputs of all N shards (each DIR: one shard's CSV and reports)")
        c.add_argument("--out", required=True, metavar="CSV", help="the CSV to write, e.g. grades.csv")
        c.add_argument("--reports", metavar="DIR",
                       help="where the JSON reports go (default: next to the CSV, grades.csv -> grades/)")
        c.add_argument("--force", action="store_true", help="regrade everyone, also learners unchanged since their last report")
        c.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="where the checks run (default cpu)")
        c.add_argument("--unconfined", action="store_true",
                       help="grade even where learner code cannot be confined (see the README's Limits)")
        c.add_argument("--allow-modified", action="store_true",
                       help="grade with graders that have uncommitted changes (refused by default)")
        c = command("bench", cmd_bench, "why a kata's technique exists, measured on your code beside the "
                    "reference (kv_cache, quantization)")
        c.add_argument("name")
        c.add_argument("--quick", action="store_true", help="the two smallest sizes only")
    return p


def cmd_bench(args):
    from graders import bench  # imports torch: only for this command

    bench.run(args.name, args.solutions, args.device, args.quick)


def cmd_grade_many(args):
    from graders import batch  # imports torch only when there is something to grade

    if not args.merge:
        require_confinement(args, platform=True)
    batch.run(args)


def cmd_calibrate(args):
    from graders import calibrate  # imports torch and every grader: only for this command

    for text in calibrate.run(args.name, args.seeds, args.suggest):
        print(text + "\n", flush=True)


def main(argv=None) -> int:
    try:
        args = parser().parse_args(argv)
        if getattr(args, "device", "cpu") == "cuda":
            _require_cuda()
        args.fn(args)
    except UsageError as e:
        print(f"kata: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        pass
    except OSError as e:
        if e.filename is None:
            print(f"kata: internal error, please report it: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        print(f"kata: {e.filename}: {e.strerror}; check that path and its permissions, then run again", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"kata: internal error, please report it: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def _require_cuda():
    import torch

    if not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here; leave out --device to run on the CPU")


if __name__ == "__main__":
    sys.exit(main())
