#!/usr/bin/env bash
# Gradescope runs this once, when the autograder image is built. AUTOGRADER_ROOT (default /autograder)
# lets it be tried elsewhere; PIP_EXTRA_INDEX_URL chooses where the CPU build of torch comes from.
set -euo pipefail
root="${AUTOGRADER_ROOT:-/autograder}"
export PIP_EXTRA_INDEX_URL="${PIP_EXTRA_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
cd "$root/source"
if ! python3 -m venv "$root/venv" >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv (ensurepip) as a package of its own.
    apt-get update -qq && apt-get install -y -qq python3-venv
    python3 -m venv --clear "$root/venv"
fi
"$root/venv/bin/pip" install --quiet "$root/source"
