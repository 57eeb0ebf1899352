"""Grade a whole class: one folder per learner in, one CSV row and one JSON report per learner out.

From each learner's folder only the kata files (katas/<name>.py for the katas in the curriculum,
plain files only) are taken: they are copied into a staging folder and graded from there, so that
nothing else in a learner's repository (a conftest.py, a graders/ folder, katas/__init__.py) is ever
imported. All learners go to the runner's pool at once: a judge grades one kata for a few learners in
turn (each learner's code in sandboxes of its own), forked like them from the zygote that imports
torch once for the whole batch.

Each learner's report is written the moment its last kata is graded (write to a temporary file, then
rename), together with a hash of what was graded; the CSV is rewritten after each learner too. A
re-run skips every learner whose hash is unchanged, so an interrupted batch resumes where it stopped.

A class too big for one machine is graded in shards (`--shard K/N` on each of N machines) whose
outputs `--merge` joins into the CSV and reports folder that one run would have written.
"""

import csv
import hashlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from graders import curriculum
from graders.curriculum import UsageError

HASHES = ".hashes"  # inside the reports folder: <learner>.sha256, the hash its report was made from
STAGING = ".staging-"  # prefix of the per-run staging folder inside the reports folder
GRADING_MODULES = ("curriculum", "harness", "runner", "sandbox")  # with the graders, what decides a grade
SHARD = ".shard"  # inside the reports folder of a shard that finished: which shard, graded by what


@dataclass
class Learner:
    name: str
    folder: Path
    files: dict = field(default_factory=dict)  # kata name -> bytes of katas/<name>.py, as graded
    notes: list = field(default_factory=list)  # problems found in the folder itself, for the flag
    digest: str = ""

    @property
    def katas_dir(self) -> Path:
        return self.folder / "katas"


@dataclass
class Summary:
    learners: list  # every learner's name, in CSV order
    graded: list  # the ones graded this run
    skipped: list  # the ones whose report was up to date
    rows: list  # the CSV's rows (dicts), one per learner with a report
    csv: Path
    reports: Path
    shard: tuple = None  # (K, N) when this was the K-th of N shards


def reports_dir(out: Path) -> Path:
    """Where the JSON reports go: grades.csv -> grades/ next to it."""
    out = Path(out)
    return out.with_suffix("") if out.suffix else out.with_name(out.name + ".reports")


def modified_graders(root: Path) -> list:
    """The files that decide a grade (graders, reference, manifest) with uncommitted changes, in a git
    checkout; none elsewhere (an installed copy)."""
    if not (root / ".git").exists():
        return []
    try:
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "graders", "reference",
                                 "katas/curriculum.toml"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line[3:] for line in status.stdout.splitlines()] if status.returncode == 0 else []


def check_paths(submissions, out, reports=None) -> tuple[Path, Path, Path]:
    """The three paths, checked; a UsageError says what is wrong with the first bad one."""
    submissions = Path(submissions)
    if not submissions.is_dir():
        raise UsageError(f"{submissions}: no such folder; give the folder that holds one folder per learner")
    out, reports = check_out(out, reports)
    if reports.resolve() == submissions.resolve():
        raise UsageError(f"the reports cannot go in {submissions} itself; pass another --reports DIR")
    if (curriculum.ROOT / "graders" / "snapshots").is_dir():
        raise UsageError("graders/snapshots/ marks a learner's copy of the katas, where hidden checks do not run; "
                         "grade the class from the instructor's repository")
    return submissions, out, reports


def check_out(out, reports=None) -> tuple[Path, Path]:
    """The CSV to write and the reports folder, checked."""
    out = Path(out)
    reports = Path(reports) if reports else reports_dir(out)
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the path of the CSV file to write, e.g. {out / 'grades.csv'}")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist; create it first")
    if reports.exists() and not reports.is_dir():
        raise UsageError(f"{reports} is a file, but the JSON reports go in a folder there; move it or pass --reports DIR")
    return out, reports


def parse_shard(text: str) -> tuple[int, int]:
    """'2/4' -> (2, 4): the second of four shards."""
    match = re.fullmatch(r"([0-9]+)/([0-9]+)", text)
    k, n = map(int, match.groups()) if match else (None, None)
    if match is None or n < 1 or not 1 <= k <= n:
        raise UsageError(f"--shard {text}: give K/N, the K-th of N shards, with 1 <= K <= N (e.g. --shard 2/4)")
    return k, n


def shard_name(shard: tuple) -> str:
    return f"{shard[0]}/{shard[1]}"


def in_shard(name: str, shard: tuple) -> bool:
    """Whether the learner of that name is in shard (K, N). Decided by a hash of the name alone, so
    that every machine puts a learner in the same shard whichever other learners' folders it holds (a
    clone that failed there, a repository created between two machines' fetches): with positions in
    sorted order, one missing folder would shift the rest, grading some learners twice and some never."""
    k, n = shard
    return int.from_bytes(hashlib.sha256(os.fsencode(name)).digest()[:8], "big") % n == k - 1


def find_learners(submissions: Path, reports: Path, names: list, shard=None) -> list:
    """One Learner per folder in submissions (hidden ones and the reports folder left out), only those
    of the shard (K, N) when one is given."""
    skip = {reports.resolve()}
    folders = [folder for folder in sorted(submissions.iterdir(), key=lambda p: p.name)
               if not folder.name.startswith(".") and folder.is_dir() and folder.resolve() not in skip]
    if not folders:
        raise UsageError(f"{submissions} holds no learner folders; give the folder that holds one folder per learner")
    return [_collect_or_flag(Learner(folder.name, folder), names) for folder in folders
            if shard is None or in_shard(folder.name, shard)]


def _collect_or_flag(learner: Learner, names: list) -> Learner:
    """A folder that cannot be read costs its learner, with a flag, never the batch."""
    try:
        return _collect(learner, names)
    except OSError as e:
        learner.files.clear()
        learner.notes.append(f"unreadable: {e.strerror}")
        return learner


def _collect(learner: Learner, names: list) -> Learner:
    """Read the learner's kata files: plain files only, so that a symlink cannot pull in other files."""
    katas_dir = learner.katas_dir
    if katas_dir.is_symlink():
        learner.notes.append("ignored: katas/ (a symlink)")
        return learner
    if not katas_dir.is_dir():
        learner.notes.append("missing: katas/")
        return learner
    for name in names:
        path = katas_dir / curriculum.kata(name).file
        if path.is_symlink() or (path.exists() and not path.is_file()):
            learner.notes.append(f"ignored: katas/{path.name} (not a plain file)")
        elif path.is_file():
            try:
                learner.files[name] = path.read_bytes()
            except OSError as e:
                learner.notes.append(f"unreadable: katas/{path.name} ({e.strerror})")
    return learner


def graders_identity(names: list, device: str) -> bytes:
    """What, besides the learner's files, decides a grade: the graders and the modules they run on,
    the references, the config, the seed, torch's version, the device. A change to any of them
    regrades everyone; a change elsewhere (the CLI, this module) does not."""
    settings = curriculum.settings()
    h = hashlib.sha256()
    parts = [f"seed={settings.seed}", f"device={device}", f"katas={','.join(names)}"]
    parts += [f"{package}={_version(package)}" for package in ("torch", "numpy")]
    for part in parts:
        _feed(h, part.encode())
    # Files found beside the packages, so that a plain (non-editable) install works too.
    files = [curriculum.config_path(), curriculum.MANIFEST]
    files += [curriculum.GRADERS / f"{module}.py" for module in GRADING_MODULES]
    files += sorted(curriculum.GRADERS.glob("test_*.py"))
    files += sorted(p for p in (curriculum.ROOT / "reference").glob("*.py") if not p.name.endswith("_catalogue.py"))
    for path in files:
        _feed(h, str(path.name).encode())
        _feed(h, path.read_bytes())
    return h.digest()


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def _feed(h, data: bytes):
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def learner_digest(learner: Learner, identity: bytes, names: list) -> str:
    h = hashlib.sha256(identity)
    for name in sorted(names):
        _feed(h, name.encode())
        data = learner.files.get(name)
        _feed(h, b"absent" if data is None else b"present")
        _feed(h, data or b"")
    _feed(h, "\n".join(learner.notes).encode())
    return h.hexdigest()


# ------------------------------------------------------------------------------------------ files


def write_atomic(path: Path, text: str):
    """Write text to path so that a reader (or an interruption) sees the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; give it a plain file's mode
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _hash_path(reports: Path, learner: str) -> Path:
    return reports / HASHES / f"{learner}.sha256"


def up_to_date(reports: Path, learner: Learner):
    """The learner's stored report if it was made from exactly these files and graders, else None."""
    try:
        if _hash_path(reports, learner.name).read_text().strip() != learner.digest:
            return None
        report = json.loads((reports / f"{learner.name}.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or not {"total", "max_score", "katas"} <= set(report):
        return None
    return report


def save_report(reports: Path, learner: Learner, report: dict):
    """The report first, then its hash: an interruption in between only costs a regrade."""
    write_atomic(reports / f"{learner.name}.json", json.dumps(report, indent=2) + "\n")
    write_atomic(_hash_path(reports, learner.name), learner.digest + "\n")


# ------------------------------------------------------------------------------------- the table


# What the runner and the sandbox write when a kata's grading was cut short, and the word for it.
_CAUSES = [
    ("ran past the time limit", "timeout"),
    ("took too long and was stopped", "timeout"),
    ("used up its time limit", "timeout"),
    ("crashed", "crashed"),
    ("ran out of memory", "memory"),
    ("exited", "exited"),
    ("grader could not run", "grader error"),
]
_CUT_SHORT = ("not run: ", "this check was running when ")  # the runner's words, at the start of a message
_ENDED = ("ended its process: ", "took too long and was stopped")  # the sandbox's, after what was running
_FOLLOW_ON = "failed to import (see "  # a check that points at the one that says why
_MEMORY = ("MemoryError", "can't allocate memory", "out of memory")


def problems(report: dict) -> list:
    """(word, kata) for each kata whose grading was cut short, hung, or ran out of memory."""
    found = []
    for kata in report["katas"]:
        words = []
        for check in kata["checks"]:
            message = check["message"]
            if _FOLLOW_ON in message:
                continue
            if message.startswith(_CUT_SHORT) or any(m in message for m in _ENDED):
                word = next((w for phrase, w in _CAUSES if phrase in message), "incomplete")
            elif not check["passed"] and any(m in message for m in _MEMORY):
                word = "memory"
            else:
                continue
            if word not in words:
                words.append(word)
        found += [(w, kata["name"]) for w in words]
    return found


def flag(learner: Learner, report: dict) -> str:
    """'ok', or what went wrong: e.g. 'timeout: lora; crashed: attention, kv_cache'."""
    grouped = {}
    for word, kata in problems(report):
        grouped.setdefault(word, []).append(kata)
    parts = list(learner.notes) + [f"{word}: {', '.join(katas)}" for word, katas in grouped.items()]
    return "; ".join(parts) or "ok"


def _points(x: float) -> str:
    return f"{x:g}"


def row(learner: Learner, report: dict, names: list) -> dict:
    scores = {k["name"]: k["score"] for k in report["katas"]}
    return {"learner": learner.name, **{n: _points(scores.get(n, 0.0)) for n in names},
            "total": _points(report["total"]), "flag": flag(learner, report)}


def write_csv(path: Path, rows: list, names: list):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["learner", *names, "total", "flag"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


# -------------------------------------------------------------------------------------- progress


class Progress:
    """'[#####.....] 12/40 learners, ~35 s left' on a stream: redrawn in place on a terminal, one line
    per learner otherwise. stream=None keeps quiet."""

    def __init__(self, stream, total: int, done: int, width: int = 30):
        self.stream, self.total, self.done, self.width = stream, total, done, width
        self.start, self.graded, self.to_grade = time.monotonic(), 0, total - done
        self.tty = bool(stream) and hasattr(stream, "isatty") and stream.isatty()
        self.draw()

    def step(self):
        self.done += 1
        self.graded += 1
        self.draw()

    def line(self) -> str:
        filled = round(self.width * self.done / self.total) if self.total else self.width
        text = f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} learners"
        left = self.to_grade - self.graded
        if left and self.graded:
            text += f", ~{_duration((time.monotonic() - self.start) / self.graded * left)} left"
        elif left:
            text += ", estimating the time left"
        else:
            text += f", done in {_duration(time.monotonic() - self.start)}"
        return text

    def draw(self):
        if not self.stream:
            return
        if self.tty:
            self.stream.write("\r" + self.line() + "\033[K")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def close(self):
        if self.stream and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60} min"


# ---------------------------------------------------------------------------------------- grading


def grade_batch(submissions, out, reports=None, force=False, device="cpu", names=None, progress=None,
                shard=None) -> Summary:
    """Grade every learner folder in submissions, or only those of shard (K, N); write the CSV at out
    and one JSON report per learner in reports (default: next to the CSV, grades.csv -> grades/).
    Learners whose kata files, graders and seed are unchanged since their last report are skipped
    unless force. progress: a stream for the progress bar (None: quiet)."""
    submissions, out, reports = check_paths(submissions, out, reports)
    names = list(names) if names else [k.name for k in curriculum.katas()]
    for name in names:
        curriculum.kata(name)
    learners = find_learners(submissions, reports, names, shard)
    identity = graders_identity(names, device)
    for learner in learners:
        learner.digest = learner_digest(learner, identity, names)
    (reports / HASHES).mkdir(parents=True, exist_ok=True)
    (reports / SHARD).unlink(missing_ok=True)  # the CSV is about to change: until it is whole, no shard is here

    done, todo = {}, []
    for learner in learners:
        report = None if force else up_to_date(reports, learner)
        if report is None:
            todo.append(learner)
        else:
            done[learner.name] = row(learner, report, names)
    skipped = list(done)

    def rows():
        return [done[learner.name] for learner in learners if learner.name in done]

    bar = Progress(progress if todo else None, len(learners), len(done))
    graded = []
    try:
        if todo:
            staging = Path(tempfile.mkdtemp(dir=reports, prefix=STAGING))
            try:
                folders = [_stage(staging, learner) for learner in todo]

                def on_report(i, report):
                    learner = todo[i]
                    report = _unstage(report, folders[i], learner)
                    save_report(reports, learner, report)
                    done[learner.name] = row(learner, report, names)
                    graded.append(learner.name)
                    write_csv(out, rows(), names)
                    bar.step()

                _grade(folders, names, device, on_report)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    finally:
        bar.close()
        write_csv(out, rows(), names)  # whatever is done is kept, even when interrupted
    if shard:
        write_atomic(reports / SHARD, json.dumps({"shard": shard_name(shard), "graders": identity.hex()}) + "\n")
    return Summary([learner.name for learner in learners], graded, skipped, rows(), out, reports, shard)


def _stage(staging: Path, learner: Learner) -> Path:
    """A fresh folder holding exactly the learner's kata files, as they were hashed."""
    folder = (staging / learner.name).resolve()
    folder.mkdir()
    for name, data in learner.files.items():
        (folder / curriculum.kata(name).file).write_bytes(data)
    return folder


def _unstage(report: dict, folder: Path, learner: Learner) -> dict:
    """Messages name the learner's own katas/ folder, not the staging copy that was graded."""
    staged, shown = str(folder), str(learner.katas_dir)
    for kata in report["katas"]:
        for check in kata["checks"]:
            check["message"] = check["message"].replace(staged, shown)
    return report


def _grade(folders: list, names: list, device: str, on_report):
    from graders import runner  # starts the zygote: only when there is something to grade

    with _terminate_as_interrupt():  # the runner stops its workers however the grading ends
        runner.grade_many(folders, names, device, on_report=on_report)


class _terminate_as_interrupt:
    """While grading, SIGTERM is handled as Ctrl-C: the workers are stopped and what is done is kept."""

    def __enter__(self):
        self.previous = None
        try:
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        except ValueError:  # not the main thread
            pass

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt


# ------------------------------------------------------------------------------------- merging


@dataclass
class ShardOutput:
    folder: Path  # as given to --merge
    csv: Path
    reports: Path
    shard: tuple  # (K, N)
    graders: str  # the hex of graders_identity: what graded it
    fields: list  # the CSV's header
    rows: list


def read_shard(folder) -> ShardOutput:
    """The shard output in folder: one CSV, and its reports folder beside it with the mark of a
    shard that finished (what `--shard K/N --out folder/NAME.csv` writes)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"--merge {folder}: no such folder")
    found = [p for p in sorted(folder.glob("*.csv")) if (reports_dir(p) / SHARD).is_file()]
    if len(found) > 1:
        raise UsageError(f"--merge {folder} holds more than one shard output ({', '.join(p.name for p in found)}); "
                         "give one folder per shard")
    try:
        (path,) = found
        mark = json.loads((reports_dir(path) / SHARD).read_text())
        shard, graders = parse_shard(mark["shard"]), str(mark["graders"])
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        fields = reader.fieldnames or []
        if fields[:1] != ["learner"] or fields[-2:] != ["total", "flag"]:
            raise ValueError("not a grades CSV")
    except (ValueError, KeyError, TypeError, OSError, UsageError):
        raise UsageError(f"--merge {folder} is not a shard output: what `kata grade-many --shard K/N --out "
                         f"{folder / 'grades.csv'}` writes when it finishes (a CSV, its reports folder beside it)") from None
    return ShardOutput(folder, path, reports_dir(path), shard, graders, fields, rows)


def merge_shards(folders: list, out, reports=None) -> Summary:
    """Join the outputs of every shard of a class into the CSV at out and one reports folder (default:
    next to the CSV), as one run over the whole class would have written them."""
    out, reports = check_out(out, reports)
    shards = [read_shard(folder) for folder in folders]
    if {out.resolve(), reports.resolve()} & {p.resolve() for s in shards for p in (s.csv, s.reports)}:
        raise UsageError(f"--out {out} would overwrite a shard's own output; write the merged grades elsewhere")
    owners = {}
    for s in shards:
        for r in s.rows:
            owners.setdefault(r["learner"], []).append(str(s.folder))
    twice = sorted((name, where) for name, where in owners.items() if len(where) > 1)
    if twice:
        raise UsageError("graded in more than one shard: " + "; ".join(f"{name} (in {' and '.join(where)})"
                                                                     for name, where in twice))
    first = shards[0]
    for s in shards[1:]:
        if s.fields != first.fields:
            raise UsageError(f"{first.folder} and {s.folder} graded different katas; grade every shard with the same repository")
        if s.graders != first.graders:
            raise UsageError(f"{first.folder} and {s.folder} were graded with different graders, config, seed or device; "
                             "grade every shard from the same commit and config")
        if s.shard[1] != first.shard[1]:
            raise UsageError(f"{first.folder} is shard {shard_name(first.shard)} but {s.folder} is shard "
                             f"{shard_name(s.shard)}; merge the shards of one split")
    n = first.shard[1]
    given = [s.shard[0] for s in shards]
    repeated = [k for k in range(1, n + 1) if given.count(k) > 1]
    missing = [k for k in range(1, n + 1) if k not in given]
    if repeated:
        raise UsageError(f"shard {repeated[0]}/{n} is given twice; give each shard's folder once")
    if missing:
        raise UsageError(f"shard {', '.join(f'{k}/{n}' for k in missing)} missing; merge all {n} shards at once")

    files = {}  # path in the merged reports folder -> its text; all read before anything is written
    for s in shards:
        for r in s.rows:
            for part in (Path(f"{r['learner']}.json"), Path(HASHES, f"{r['learner']}.sha256")):
                try:
                    files[part] = (s.reports / part).read_text()
                except OSError:
                    raise UsageError(f"{s.reports / part} is missing; grade shard {shard_name(s.shard)} again") from None
    (reports / HASHES).mkdir(parents=True, exist_ok=True)
    for part, text in files.items():
        write_atomic(reports / part, text)
    rows = sorted((r for s in shards for r in s.rows), key=lambda r: r["learner"])
    names = first.fields[1:-2]
    write_csv(out, rows, names)
    return Summary([r["learner"] for r in rows], [], [], rows, out, reports)


# ------------------------------------------------------------------------------------------- CLI


def summary_lines(summary: Summary) -> list:
    """What `kata grade-many` prints when it is done."""
    shard = f"shard {shard_name(summary.shard)}: " if summary.shard else ""
    lines = [f"{shard}{len(summary.learners)} learners: {len(summary.graded)} graded, "
             f"{len(summary.skipped)} unchanged since their last report (--force regrades them)"]
    return lines + _outcome_lines(summary)


def _outcome_lines(summary: Summary) -> list:
    lines = [f"Grades: {summary.csv}; one JSON report per learner in {summary.reports}{os.sep}"]
    flagged = [r for r in summary.rows if r["flag"] != "ok"]
    if flagged:
        lines.append(f"{len(flagged)} flagged:")
        lines += [f"  {r['learner']}: {r['flag']}" for r in flagged]
    return lines


def run(args):
    """`kata grade-many SUBMISSIONS_DIR --out CSV [--reports DIR] [--force] [--device D] [--shard K/N]`,
    or `kata grade-many --merge DIR ... --out CSV [--reports DIR]`."""
    if args.merge:
        if args.submissions or args.shard or args.force:
            raise UsageError("--merge joins the outputs of finished shards; give it no SUBMISSIONS_DIR, --shard or --force")
        summary = merge_shards(args.merge, args.out, args.reports)
        print("\n".join([f"{len(summary.learners)} learners from {len(args.merge)} shards"] + _outcome_lines(summary)))
        return
    if not args.submissions:
        raise UsageError("give SUBMISSIONS_DIR, the folder that holds one folder per learner, "
                         "or --merge DIR ... to join the outputs of shards")
    shard = parse_shard(args.shard) if args.shard else None
    check_paths(args.submissions, args.out, args.reports)  # what is wrong with the command is told first
    changed = [] if args.allow_modified else modified_graders(curriculum.ROOT)
    if changed:
        raise UsageError(f"the graders have uncommitted changes ({', '.join(changed[:3])}{', ...' if len(changed) > 3 else ''}): "
                         "commit them so that the grades can be traced to a commit, or pass --allow-modified")
    try:
        summary = grade_batch(args.submissions, args.out, args.reports, force=args.force, device=args.device,
                              progress=sys.stderr, shard=shard)
    except KeyboardInterrupt:
        print("kata: interrupted; every report written so far is kept, and the same command resumes "
              "where this one stopped", file=sys.stderr)
        raise SystemExit(130) from None
    print("\n".join(summary_lines(summary)))
