# Shared set-up for scripts/test and scripts/demo (sourced, not run).
# Installs what is missing, idempotently and quickly when everything is present:
#   - Debian packages (only when running as root on a Debian/Ubuntu machine),
#   - a virtual environment in .venv with pantau installed in editable mode.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

pantau_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "pantau: missing system packages: ${missing[*]} (install them as root with apt-get)" >&2
    return 1
  fi
  echo "pantau: installing system packages: ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pantau_venv() {  # $1: extras, e.g. "dev"
  local extras="$1" py="${PYTHON:-python3}"
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  local stamp=".venv/.pantau-${extras}.stamp"
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "pantau: installing .[${extras}] into .venv" >&2
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null || true
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
    echo "$want" > "$stamp"
  fi
}

pantau_grafana_types() {  # Grafana's TypeScript types (npm), installed once per lock into a cache
  command -v npm >/dev/null || pantau_apt nodejs npm
  "$ROOT/scripts/grafana-types" install >/dev/null
}
