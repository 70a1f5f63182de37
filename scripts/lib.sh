# Shared by scripts/setup and scripts/test: find Python 3.11+ and make ./.venv.
ensure_venv() {
  local python="${PYTHON:-}"
  if [ -z "$python" ]; then
    for candidate in python3.13 python3.12 python3.11 python3; do
      if command -v "$candidate" >/dev/null 2>&1 &&
         "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        python="$candidate"; break
      fi
    done
  fi
  if [ -z "$python" ]; then
    echo "backline: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
    exit 1
  fi
  # A half-made venv (e.g. python3-venv missing on Debian) is rebuilt, not reused.
  if [ -x .venv/bin/python ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    rm -rf .venv
  fi
  if [ ! -x .venv/bin/python ]; then
    if ! "$python" -m venv .venv; then
      rm -rf .venv
      echo "backline: '$python -m venv' failed; on Debian/Ubuntu install python3-venv (apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
}

# pip install -e "$1" (`.` or `.[dev]`) unless this very pyproject.toml was installed with it
# already (stamp in .venv): saves every scripts/test run the 10-20 s pip needs to find nothing to do.
install_backline() {
  local spec="$1" stamp=".venv/.backline-installed" want
  want="$spec $(.venv/bin/python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
  if [ -f "$stamp" ] && grep -qxF -- "$want" "$stamp" && .venv/bin/backline --version >/dev/null 2>&1; then
    return 0
  fi
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
  echo "$want" >>"$stamp"
}

# The test suite's own embedded server (tests/conftest.py starts it in BACKLINE_TEST_DATA_DIR,
# default ./.backline-test). `suite_server status` prints running|stopped; `suite_server stop`.
suite_server_dir() {
  echo "${BACKLINE_TEST_DATA_DIR:-$PWD/.backline-test}"
}
suite_server() {
  .venv/bin/python - "$1" "$(suite_server_dir)" <<'PY'
import sys
from pathlib import Path

from workers.db.embedded import EmbeddedServer

server = EmbeddedServer(Path(sys.argv[2]))
if sys.argv[1] == "stop":
    print("stopped" if server.stop() else "not running")
else:
    print("running" if server.running_state() is not None else "stopped")
PY
}

# The upload-scan tests start their own ClamAV daemon (tests/files/clamd.py).
# Install Debian's clamav-daemon when clamd is missing and we are root or have
# passwordless sudo; otherwise leave it to the tests, which fail saying how to
# install it. Idempotent: does nothing once /usr/sbin/clamd exists. Never runs
# freshclam: the tests ship their own signature database.
ensure_clamd() {
  if command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ]; then
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else return 0; fi
  fi
  echo "backline: installing clamav-daemon (the upload-scan tests start their own clamd)" >&2
  # policy-rc.d exit 101: do not start the packaged clamd/freshclam services.
  local policy=/usr/sbin/policy-rc.d created_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && created_policy=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clamav-daemon >/dev/null \
    || { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clamav-daemon >/dev/null; } \
    || echo "backline: could not install clamav-daemon; the upload-scan tests will fail" >&2
  [ -z "$created_policy" ] || $sudo rm -f "$policy"
}
