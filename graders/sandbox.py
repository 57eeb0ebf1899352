"""The boundary between the judge and learner code.

The judge (pytest, the harness, the reference, the catalogue, the config and its seed, snapshots,
comparisons, diagnosis, reports, GITHUB_OUTPUT) never imports or runs learner code. Learner code runs
only in sandbox processes forked from a zygote: a separate Python started from a clean environment,
which imports torch and the public check code (graders/test_*.py, the harness) and nothing secret, so
no sandbox ever had a secret in memory and none pays a fresh torch import. The zygote forks the
judges too; each loads the secrets only after its fork, and learns its kata and the KATA_* settings
through a pipe the zygote passes on unread, so that the grading process itself imports neither torch
nor the graders and the machine pays for one torch import.

What a sandbox guarantees on Linux (Landlock ABI >= 1 and seccomp; `confinement()` says whether this
machine has them), each proven by tests/hostile/:
  * it reads only the Python installation (minus this project's graders and reference packages and
    the cache of the reference's outcomes), the system's shared libraries and the one learner's kata
    files, and writes no file at all (its working folder, HOME and TMPDIR are an empty private folder
    that the judge removes), so it cannot fill a disk; /proc, the graders' config and snapshots, the
    reference, the judge's files and every other learner's files are out of reach;
  * its environment is empty but for PATH, HOME, TMPDIR and LANG (no GITHUB_*, no tokens, no KATA_*);
    every file descriptor but its own channel to the judge is closed;
  * it cannot create processes (so nothing it starts can outlive it), open sockets (no network),
    signal, trace or read the memory of any other process, or enter namespaces;
  * it is bounded in memory, file size and open files, and the judge bounds every request by the
    wall clock and kills the sandbox when it runs over; it dies with the zygote, which dies with the
    grading process that started it.
The protocol: one request, one reply, in the frames of graders/wire.py. The judge's request may hold
any object (judge to sandbox is trusted); the sandbox replies with plain data, which the judge reads
from a bounded number of bytes, unpickling it only once every opcode is one of plain data
(wire.decode_plain), and accepts only with the request's nonce. Forbidden-API, in-place and monkeypatch detection run inside
the sandbox: they are teaching guards, not part of the boundary.

Where Landlock or seccomp is missing (macOS, old kernels) sandboxes still run learner code in
separate processes, unconfined; `confinement()` says why, and platform grading refuses to run so
unless asked to.
"""

import ctypes
import json
import os
import pickle
import platform
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRADERS = Path(__file__).resolve().parent
MAX_REPLY = 256 * 2**20  # bytes: a reply larger than this is refused unread
OUTPUT_LIMIT = 64 * 2**20  # bytes: the largest file an unconfined sandbox may write
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}  # plus HOME and TMPDIR, its own folder


# ------------------------------------------------------------------------------------ confinement

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_ARCH = platform.machine()
# Landlock's syscalls and the seccomp numbers of what a sandbox may not do, per architecture.
_SYSCALLS = {
    "x86_64": dict(audit=0xC000003E, landlock=(444, 445, 446), clone=56, clone3=435, kill=62, tkill=200,
                   tgkill=234, deny=[41, 57, 58, 101, 310, 311, 129, 297, 434, 424, 438, 272, 308, 165, 425,
                                     321, 298, 250, 248, 249, 59, 322]),
    "aarch64": dict(audit=0xC00000B7, landlock=(444, 445, 446), clone=220, clone3=435, kill=129, tkill=130,
                    tgkill=131, deny=[198, 117, 270, 271, 138, 240, 434, 424, 438, 97, 268, 40, 425, 280, 241,
                                      219, 217, 218, 221, 281]),
}
# deny: socket, fork, vfork, ptrace, process_vm_readv/writev, rt_sigqueueinfo, rt_tgsigqueueinfo,
# pidfd_open, pidfd_send_signal, pidfd_getfd, unshare, setns, mount, io_uring_setup, bpf,
# perf_event_open, keyctl, add_key, request_key, execve, execveat (aarch64 has no fork or vfork).

_READ = (1 << 2) | (1 << 3)  # READ_FILE, READ_DIR
_FILE_READ = 1 << 2
_DEV = (1 << 1) | (1 << 2)


def _landlock_abi() -> int:
    if _libc is None or _ARCH not in _SYSCALLS:
        return 0
    abi = _libc.syscall(_SYSCALLS[_ARCH]["landlock"][0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(abi, 0)


def confinement() -> str | None:
    """None when sandboxes are confined here; otherwise why not, in a few words."""
    if not sys.platform.startswith("linux"):
        return f"learner code cannot be confined on {platform.system()} (that needs Linux's Landlock and seccomp)"
    if _ARCH not in _SYSCALLS:
        return f"learner code cannot be confined on {_ARCH} (supported: x86_64, aarch64)"
    if not _landlock_abi():
        return "learner code cannot be confined: this kernel has no Landlock (Linux 5.13+ with Landlock enabled)"
    return None


def _handled_fs(abi: int) -> int:
    bits = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        bits |= 1 << 13  # REFER
    if abi >= 3:
        bits |= 1 << 14  # TRUNCATE
    if abi >= 5:
        bits |= 1 << 15  # IOCTL_DEV
    return bits


def _landlock(read: list, devices: list):
    """Allow reading beneath `read` and reading and writing `devices`; deny every other filesystem
    access, TCP, abstract UNIX sockets and signals out of the domain."""
    abi = _landlock_abi()
    create, add, restrict = _SYSCALLS[_ARCH]["landlock"]
    handled = _handled_fs(abi)
    attr = struct.pack("QQQ", handled, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    buf = ctypes.create_string_buffer(attr[:size], size)
    ruleset = _libc.syscall(create, buf, ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    extra = handled & ((1 << 14) | (1 << 15))  # TRUNCATE and IOCTL_DEV go with writing a device
    for paths, dir_access, file_access in ((read, _READ, _FILE_READ), (devices, _DEV | extra, _DEV | extra)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            access = dir_access if os.path.isdir(path) else file_access
            rule = ctypes.create_string_buffer(struct.pack("=Qi", access & handled, fd), 12)
            if _libc.syscall(add, ctypes.c_int(ruleset), ctypes.c_int(1), rule, ctypes.c_uint32(0)) < 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
            os.close(fd)
    if _libc.prctl(38, 1, 0, 0, 0) < 0:  # PR_SET_NO_NEW_PRIVS, which Landlock and seccomp require
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if _libc.syscall(restrict, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    os.close(ruleset)


def _seccomp(pid: int):
    """A filter that refuses process creation, sockets, signals to anyone else, tracing and
    namespaces; threads (clone with CLONE_THREAD) stay allowed."""
    s = _SYSCALLS[_ARCH]
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    ld_nr, ld_arch, ld_arg0 = (0x20, 0, 0, 0), (0x20, 0, 0, 4), (0x20, 0, 0, 16)
    prog = [ld_arch, (0x15, 1, 0, s["audit"]), (0x06, 0, 0, 0x80000000), ld_nr]
    if _ARCH == "x86_64":
        prog += [(0x35, 0, 1, 0x40000000), (0x06, 0, 0, eperm)]  # the x32 ABI
    for nr in s["deny"]:
        prog += [(0x15, 0, 1, nr), (0x06, 0, 0, eperm)]
    prog += [(0x15, 0, 1, s["clone3"]), (0x06, 0, 0, enosys)]  # glibc then falls back to clone
    prog += [(0x15, 0, 4, s["clone"]), ld_arg0, (0x45, 0, 1, 0x10000), (0x06, 0, 0, allow), (0x06, 0, 0, eperm)]
    for nr in (s["kill"], s["tkill"], s["tgkill"]):  # only to itself
        prog += [(0x15, 0, 5, nr), ld_arg0, (0x15, 1, 0, pid), (0x06, 0, 0, eperm), (0x06, 0, 0, allow), ld_nr]
    prog += [(0x06, 0, 0, allow)]
    filters = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(filters, len(filters))
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    fbuf = ctypes.create_string_buffer(fprog, len(fprog))
    if _libc.prctl(22, 2, fbuf, 0, 0) < 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "seccomp")


def _python_roots() -> list:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots |= {p for p in sys.path if ("site-packages" in p or "dist-packages" in p) and os.path.isdir(p)}
    return sorted(r for r in roots if os.path.isdir(r))


def _beneath(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _allow_except(roots: list, secret: list) -> list:
    """The paths to grant so that everything beneath roots is readable except the secret paths."""
    out = []
    for root in roots:
        root = os.path.realpath(root)
        if any(_beneath(root, s) for s in secret):
            continue
        if not any(_beneath(s, root) for s in secret):
            out.append(root)
            continue
        try:
            children = [os.path.join(root, c) for c in os.listdir(root)]
        except OSError:
            continue
        out += _allow_except(children, secret)
    return out


def _secret_paths() -> list:
    """This project's packages outside the learner's own kata files: graders (config, snapshots), the
    reference and its cached outcomes. The public check code they hold is already in the zygote's memory."""
    import importlib.util

    from graders import curriculum

    found = [str(GRADERS)]
    spec = importlib.util.find_spec("reference")
    if spec and spec.submodule_search_locations:
        found += [os.path.realpath(p) for p in spec.submodule_search_locations]
    found.append(os.path.realpath(GRADERS.parent / "reference"))
    found.append(os.path.realpath(curriculum.CACHE))
    return found


def _confine(tmp: str, readable: list, device: str):
    os.environ.clear()
    os.environ.update(ENV, HOME=tmp, TMPDIR=tmp)
    os.chdir(tmp)
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_LIMIT, OUTPUT_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if confinement() is not None:
        return
    system = ["/usr/lib", "/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache", "/dev/urandom",
              "/proc/cpuinfo", "/sys/devices/system/cpu"]  # what torch reads of the CPU on its first op
    read = _allow_except(_python_roots() + system, _secret_paths()) + readable
    devices = ["/dev/null"]
    if device == "cuda":
        read += ["/proc", "/sys", "/etc"]
        devices += [f"/dev/{d}" for d in os.listdir("/dev") if d.startswith("nvidia")]
    _landlock(read, devices)
    _seccomp(os.getpid())


# --------------------------------------------------------------------------------------- framing


def _send(sock: socket.socket, data: bytes):
    sock.sendall(struct.pack(">Q", len(data)) + data)


def _recv_exactly(sock: socket.socket, n: int, deadline: float | None) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise TimeoutError
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket, deadline: float | None = None, limit: int = MAX_REPLY) -> bytes | None:
    """One frame, or None when the peer is gone; TimeoutError past the deadline; ValueError when the
    frame would be larger than limit (it is never read)."""
    header = _recv_exactly(sock, 8, deadline)
    if header is None:
        return None
    (size,) = struct.unpack(">Q", header)
    if size > limit:
        raise ValueError(f"a reply of {size} bytes")
    return _recv_exactly(sock, size, deadline)


# ---------------------------------------------------------------------------- the zygote's side


def _zygote_main(fd: int):
    """Import torch and the public check code, then fork judges and sandboxes on request until the
    grading process goes."""
    import importlib

    import torch  # noqa: F401  once, here, for every judge and sandbox

    from graders import curriculum, harness, wire  # noqa: F401

    for name in curriculum.names():
        try:
            importlib.import_module(f"graders.test_{name}")
        except Exception:
            pass  # grader_facts says why, and the config check stops the grading
    requests = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    parent = os.getppid()
    controls = [requests]  # the grading process's socket, then each judge's
    children = {}  # pid -> the status socket of whoever asked for it
    while os.getppid() == parent:
        ready = select.select([*controls, wake_r, *children.values()], [], [], 1.0)[0]
        for control in [c for c in controls if c in ready]:
            try:
                message, fds, _, _ = socket.recv_fds(control, 1 << 16, 3)
            except OSError:
                message = b""
            if not message:
                if control is not requests:  # a judge is gone
                    controls.remove(control)
                    control.close()
                continue
            request = pickle.loads(message)
            if request["op"] == "sync":  # kill every child and say when all are gone
                for pid in children:
                    _kill(pid)
                for pid, status in list(children.items()):
                    _, code = os.waitpid(pid, 0)
                    _report(status, code)
                children.clear()
                os.write(fds[0], b"done")
                os.close(fds[0])
                continue
            if request["op"] == "facts":
                with os.fdopen(fds[0], "wb") as reply:
                    reply.write(json.dumps(harness.grader_facts(request["katas"], request["forbidden"])).encode())
                continue
            judge = request["op"] == "judge"  # else "spawn": a sandbox
            if judge:
                ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            pid = os.fork()
            if pid == 0:
                if judge:
                    _judge_main(fds[0], fds[1], theirs.detach())
                _sandbox_main(request, fds[0], keep=fds[0])
            if judge:
                theirs.close()
                controls.append(ours)
            for fd in fds[:-1]:
                os.close(fd)
            status = socket.socket(fileno=fds[-1])
            try:
                status.sendall(struct.pack(">i", pid))
            except OSError:
                pass  # its requester is already gone: the loop below sees that and kills it
            children[pid] = status
        for status in [s for s in children.values() if s in ready]:
            pid = next(p for p, s in children.items() if s is status)
            try:
                done = not status.recv(16)
            except OSError:
                done = True
            if done:  # its requester is done with it, or gone
                _kill(pid)
        if wake_r in ready:
            os.read(wake_r, 4096)
        while children:
            pid, code = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if pid in children:
                _report(children.pop(pid), code)
    for pid in children:
        _kill(pid)


def _judge_main(events_fd: int, setup_fd: int, control_fd: int):
    """A forked judge. It learns its kata and the grading process's KATA_* settings through a pipe
    the zygote never reads, so no secret passes through the memory that sandboxes are forked from;
    then it grades the kata, streaming events, and asks the zygote for its sandboxes. Never returns."""
    global _zygote
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _die_with_parent()
        _close_fds_except({events_fd, setup_fd, control_fd})
        with os.fdopen(setup_fd, "rb") as f:
            setup = json.loads(f.read())
        os.environ.update(setup["env"])
        _zygote = (None, socket.socket(fileno=control_fd), os.getpid())
        from graders import curriculum, harness

        import torch

        torch.set_num_threads(1)  # judges run side by side; tiny matmuls only stall on more threads
        limit_memory(curriculum.settings().memory_mb)
        harness.judge(setup["kata"], events_fd, setup["submissions"])
    finally:
        os._exit(0)


def _close_fds_except(keep: set):
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def limit_memory(memory_mb: int):
    """Allow memory_mb more than is in use now. The data limit counts memory actually allocated, not
    address space merely reserved, which CUDA reserves by the terabyte."""
    if sys.platform.startswith("linux"):
        import resource

        with open("/proc/self/status") as f:
            current = next(int(line.split()[1]) for line in f if line.startswith("VmData:")) * 1024
        limit = current + memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _kill(pid: int):
    for kill in (os.killpg, os.kill):  # its group too: where nothing stops it forking, the children die
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _report(status: socket.socket, code: int):
    try:
        status.sendall(struct.pack(">i", code))
    except OSError:
        pass
    status.close()


_OUT_OF_MEMORY = 113  # the sandbox's exit status when memory ran out outside the learner's own code


def _sandbox_main(request: dict, channel_fd: int, keep: int):
    """The forked sandbox: confine, import the learner's kata, answer requests. Never returns."""
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if _libc is not None:
            _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the zygote
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        # What the learner's code prints, shown with a failing check: in memory, not in a file.
        if hasattr(os, "memfd_create"):
            output = os.memfd_create("output")
        else:
            output = os.open(os.path.join(request["tmp"], "output"), os.O_RDWR | os.O_CREAT, 0o600)
        os.dup2(output, 1)
        os.dup2(output, 2)
        _close_fds_except({keep})
        import torch

        from graders import harness, wire

        torch.set_num_threads(1)
        limit_memory(request["memory_mb"])
        _confine(request["tmp"], request["readable"], request["device"])
        channel = socket.socket(fileno=channel_fd)
        submission = harness.Submission(request["kata"], request["folder"], request["device"], request["entry"])
        _send(channel, _encode({"nonce": request["nonce"], **submission.load(), "output": _printed()}))
        while (frame := _recv(channel, limit=1 << 40)) is not None:
            message = wire.decode_trusted(frame)
            reply = submission.run(message["case"], message["args"])
            _send(channel, _encode({"nonce": message["nonce"], **reply, "output": _printed()}))
    except MemoryError:
        # The learner's code left too little memory to even write a reply: only the exit status can say so.
        os._exit(_OUT_OF_MEMORY)
    finally:
        os._exit(0)


def _printed(limit: int = 2000) -> str:
    """The end of what was printed since the last call, which is then forgotten."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    size = os.lseek(1, 0, os.SEEK_END)
    text = os.pread(1, limit, max(0, size - limit)).decode(errors="replace")
    os.ftruncate(1, 0)
    os.lseek(1, 0, os.SEEK_SET)
    return text


def _encode(message: dict) -> bytes:
    from graders import wire

    return wire.encode(message)


# ------------------------------------------------------------------------------ the judge's side

_zygote = None  # (process, socket, the pid that started it) of this process's zygote; in a judge, (None, socket, pid)


def start():
    """Start this process's zygote (once); processes forked from this one share it."""
    global _zygote
    if _zygote is not None and (_zygote[0] is None or _zygote[2] != os.getpid() or _zygote[0].poll() is None):
        return
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    code = (f"import sys; sys.path.insert(0, {str(GRADERS.parent)!r}); "
            f"from graders import sandbox; sandbox._zygote_main({theirs.fileno()})")
    process = subprocess.Popen([sys.executable, "-I", "-c", code], pass_fds=[theirs.fileno()], env=ENV,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, preexec_fn=_die_with_parent)  # Ctrl-C is the judge's to handle
    theirs.close()
    _zygote = (process, ours, os.getpid())


def _die_with_parent():
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def sync():
    """Kill every sandbox of this process's zygote and return once they are all gone."""
    if _zygote is None:
        return
    done_r, done_w = os.pipe()
    try:
        socket.send_fds(_zygote[1], [pickle.dumps({"op": "sync"})], [done_w])
    except OSError:  # the zygote is gone, and its sandboxes with it (they die with it)
        return
    finally:
        os.close(done_w)
    os.read(done_r, 4)
    os.close(done_r)


def start_judge(setup: dict) -> tuple[int, socket.socket]:
    """Fork a judge from the zygote for setup {"kata": name, "env": the KATA_* settings, "submissions":
    [{"folder": ..., "entry": ...}, ...]}: (the read end
    of its event stream, its status socket). Shut the socket's writing side to stop the judge; the
    socket then gives its pid and how it ended, as `ended` reads them."""
    start()
    events_r, events_w = os.pipe()
    setup_r, setup_w = os.pipe()
    os.write(setup_w, json.dumps(setup).encode())  # a few kilobytes at most: the pipe's buffer holds them
    os.close(setup_w)
    status, theirs = socket.socketpair()
    try:
        socket.send_fds(_zygote[1], [pickle.dumps({"op": "judge"})], [events_w, setup_r, theirs.fileno()])
    finally:
        os.close(events_w)
        os.close(setup_r)
        theirs.close()
    return events_r, status


def ended(status: socket.socket, timeout: float = 10) -> int | None:
    """Stop the zygote's child behind status (if it still runs); its wait status, None if lost."""
    try:
        status.shutdown(socket.SHUT_WR)  # the zygote kills it, reaps it, and says how it ended
        status.settimeout(timeout)
        data = b""
        while len(data) < 8 and (chunk := status.recv(8 - len(data))):
            data += chunk
        code = struct.unpack(">i", data[4:8])[0] if len(data) == 8 else None
    except OSError:
        code = None
    status.close()
    return code


def grader_facts(katas: list, forbidden: list) -> dict:
    """harness.grader_facts(...), from the zygote, which has imported the graders: so that a process
    that only starts judges never imports torch or the graders itself."""
    start()
    reply_r, reply_w = os.pipe()
    request = {"op": "facts", "katas": katas, "forbidden": forbidden}
    try:
        socket.send_fds(_zygote[1], [pickle.dumps(request)], [reply_w])
        sent = True
    except OSError:
        sent = False
    finally:
        os.close(reply_w)
    with os.fdopen(reply_r, "rb") as reply:
        data = reply.read() if sent else b""
    if not data:
        from graders.curriculum import UsageError

        raise UsageError(f"the graders' Python could not start; `{sys.executable} -c \"import graders.harness\"` "
                         f"shows why")
    return json.loads(data)


class Died(Exception):
    """The sandbox ended or was stopped before it replied; the message says how, in words."""


class Sandbox:
    """One sandbox process serving one learner's kata: run(case, args) -> the reply's plain data."""

    def __init__(self, kata: str, folder: str | None, device: str, entry: str | None, readable: list,
                 memory_mb: int, timeout: float):
        start()
        self.tmp = tempfile.mkdtemp(prefix="kata-sandbox-")
        self.channel, theirs = socket.socketpair()
        self.status, status_theirs = socket.socketpair()
        nonce = secrets.token_hex(16)
        request = {"op": "spawn", "kata": kata, "folder": folder, "device": device, "entry": entry,
                   "readable": readable, "memory_mb": memory_mb, "tmp": self.tmp, "nonce": nonce}
        socket.send_fds(_zygote[1], [pickle.dumps(request)], [theirs.fileno(), status_theirs.fileno()])
        theirs.close()
        status_theirs.close()
        self.alive = True
        self.hello = self._reply(nonce, timeout, "importing it")

    def run(self, case: str, args, timeout: float) -> dict:
        nonce = secrets.token_hex(16)
        _send(self.channel, _encode({"nonce": nonce, "case": case, "args": args}))
        return self._reply(nonce, timeout, "this check")

    def _reply(self, nonce: str, timeout: float, what: str) -> dict:
        from graders import wire

        try:
            frame = _recv(self.channel, time.monotonic() + timeout)
        except TimeoutError:
            self.close()
            raise Died(f"{what} took too long and was stopped: is there an endless loop?") from None
        except ValueError as e:
            self.close()
            raise Died(f"{what} sent the grader {e}, more than it accepts") from None
        if frame is None:
            raise Died(f"{what} ended its process: {self.close()}")
        try:
            reply = wire.decode_plain(frame)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or reply.get("nonce") != nonce:
            self.close()
            raise Died(f"{what} sent the grader something that is not its reply")
        return reply

    def close(self) -> str:
        """Stop the sandbox, remove its folder; how it ended, in words."""
        if not self.alive:
            return ""
        self.alive = False
        self.channel.close()
        code = ended(self.status)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return _ending(code)


def _ending(code: int | None) -> str:
    if code is None:
        return "its process was lost"
    if os.WIFEXITED(code) and os.WEXITSTATUS(code) == _OUT_OF_MEMORY:
        return "it ran out of memory: does the code keep allocating, or build something far too large?"
    if os.WIFSIGNALED(code):
        sig = signal.Signals(os.WTERMSIG(code))
        return "it was stopped" if sig == signal.SIGKILL else f"it crashed ({sig.name})"
    return f"it exited with status {os.WEXITSTATUS(code)}: does the code call sys.exit() or os._exit()?"
