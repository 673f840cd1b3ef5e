# Sourced by bin/run and bin/test: a virtualenv in .venv with requirements.txt installed.
# Reinstalls only when requirements.txt changed (its hash is kept in the venv).
VENV="${POSTURE_VENV:-.venv}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "posture needs Python 3.11 or newer as $PY (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating virtualenv $VENV" >&2
  "$PY" -m venv "$VENV" || { echo "python3 -m venv failed: apt-get install python3-venv" >&2; exit 2; }
fi
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  echo "installing requirements into $VENV" >&2
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.txt
  echo "$want" > "$VENV/.requirements.sha256"
fi
