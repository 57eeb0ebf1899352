"""Start a process that outlives the check (setsid, double fork) to rewrite results later."""
import os
import subprocess

attempts = []
for start in (lambda: subprocess.Popen(["setsid", "sh", "-c", "sleep 30 # kata-hostile-daemon"]),
              lambda: os.posix_spawn("/bin/sh", ["sh", "-c", "sleep 30 # kata-hostile-daemon"], {}),
              os.fork):
    try:
        pid = start()
        if pid == 0:
            os.setsid()
            os.execv("/bin/sh", ["sh", "-c", "sleep 30 # kata-hostile-daemon"])
        attempts.append("started")
    except OSError as e:
        attempts.append(type(e).__name__)


def softmax(x, dim=-1):
    raise RuntimeError(f"process creation: {attempts}")


def scaled_dot_product_attention(q, k, v, mask=None):
    raise RuntimeError(f"process creation: {attempts}")
