# Sourced by scripts/kata and scripts/test: makes sure the project's virtual environment exists and is
# up to date with pyproject.toml, then leaves its path in $venv.
venv="${KATA_VENV:-$root/.venv}"
stamp="$venv/.installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    py="${PYTHON:-}"
    if [ -z "$py" ]; then
        for candidate in python3 python3.13 python3.12 python3.11 python3.10 python; do
            if command -v "$candidate" >/dev/null 2>&1 &&
                "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
                py="$candidate"
                break
            fi
        done
    fi
    if [ -z "$py" ]; then
        echo "kata: Python 3.10 or newer is needed and none was found; install it, or set PYTHON=/path/to/python3" >&2
        exit 2
    fi
    echo "Setting up $venv (first run only; torch is a large download)..." >&2
    if ! "$py" -m venv "$venv" >/dev/null; then
        echo "kata: '$py -m venv' failed; on Debian/Ubuntu install the python3-venv package, then run again" >&2
        exit 2
    fi
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[dev]"; then
        echo "kata: installing the dependencies failed (see pip's message above); fix that, then run again" >&2
        exit 2
    fi
    touch "$stamp"
fi
