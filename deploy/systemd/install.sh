#!/bin/sh
# Install or upgrade pantau-agent on a Linux recording PC from an offline bundle (made by
# scripts/release in the repository). Nothing is downloaded: pip runs from the bundle's own
# wheel with --no-index and installs only the hash-pinned wheels in wheels/.
#
# usage: sudo ./install.sh [--station DIR] [--python PYTHON] [--no-start]
#   --station DIR   the station's folder from `pantau provision` (agent-systemd.toml, password,
#                   ca.crt unless provisioned --no-tls); needed the first time, optional on an upgrade (then the installed
#                   config and password are kept; given, they are replaced)
#   --python PY     the Python to build the agent's environment with (default python3)
#   --no-start      install and enable the service, but do not (re)start it
#
# Result: /opt/pantau/venv-VERSION-TIME (the agent's own environment; the previous one is kept
# for a rollback, older ones removed), /opt/pantau/venv -> it (what the unit runs),
# /etc/pantau/{agent.toml 0644, ca.crt 0644, password 0600 root}, the systemd unit, enabled and
# (re)started. The spool (/var/lib/private/pantau-agent, the unit's StateDirectory) is never
# touched: events queued while the link was down survive an upgrade.
# Tests and unusual layouts override the paths with PANTAU_PREFIX, PANTAU_ETC, PANTAU_UNIT_DIR.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
prefix=${PANTAU_PREFIX:-/opt/pantau}
etc=${PANTAU_ETC:-/etc/pantau}
unit_dir=${PANTAU_UNIT_DIR:-/etc/systemd/system}
python=python3
station=""
start=1

die() { echo "install.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --station) [ $# -ge 2 ] || die "--station needs a directory"; station=$2; shift 2 ;;
        --python) [ $# -ge 2 ] || die "--python needs a program"; python=$2; shift 2 ;;
        --no-start) start=0; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

[ -n "${PANTAU_PREFIX:-}" ] || [ "$(id -u)" -eq 0 ] || die "run as root (sudo ./install.sh ...)"
command -v "$python" >/dev/null 2>&1 || die "$python not found: install Python 3 (3.11 or newer)"
tag=$("$python" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
lock="$here/requirements-$tag.txt"
if [ ! -f "$lock" ]; then
    have=$(cd "$here" && ls requirements-cp*.txt | sed 's/requirements-cp3\([0-9]*\)\.txt/3.\1/' | tr '\n' ' ' | sed 's/ $//')
    die "$python is $tag; this bundle has wheels for CPython $have only (use --python)"
fi
set -- "$here"/tools/pip-*.whl
[ -f "$1" ] || die "tools/pip-*.whl missing: is this a complete bundle?"
pip_wheel=$1
version=$(sed -n 's/^pantau\[agent\]==\([^ ]*\) .*/\1/p' "$lock")
[ -n "$version" ] || die "$lock names no pantau version"

if [ -n "$station" ]; then
    for f in agent-systemd.toml password; do
        [ -s "$station/$f" ] || die "$station/$f missing: give the station's folder from pantau provision"
    done
elif [ ! -f "$etc/agent.toml" ]; then
    die "first install: give --station DIR (the station's folder from pantau provision)"
fi
ldconfig=$(command -v ldconfig || echo /sbin/ldconfig)
if ! "$ldconfig" -p 2>/dev/null | grep -q 'libusb-1\.0\.so\.0'; then
    echo "install.sh: warning: libusb-1.0 not found; the USB check will report libusb_unavailable" \
        "(Debian/Ubuntu: apt-get install libusb-1.0-0)" >&2
fi

# 1. the agent's environment, next to the running one (which keeps running meanwhile)
umask 022
mkdir -p "$prefix"
new="$prefix/venv-$version-$(date +%Y%m%d%H%M%S)"
[ ! -e "$new" ] || die "$new exists: wait a second and run again"
echo "installing pantau-agent $version ($tag) into $new"
"$python" -m venv --without-pip "$new"
# The bundle alone: no index, no pip configuration or environment of this PC, hash-checked.
if ! PIP_CONFIG_FILE=/dev/null "$new/bin/python" "$pip_wheel/pip" install --isolated \
    --no-index --find-links "$here/wheels" --only-binary=:all: --require-hashes \
    --no-cache-dir --disable-pip-version-check --no-warn-script-location --quiet -r "$lock"; then
    rm -rf "$new"
    die "pip could not install from the bundle (nothing was changed)"
fi
"$new/bin/pantau-agent" --version >/dev/null || { rm -rf "$new"; die "the new environment does not run"; }

# 2. the station's files (only with --station: an upgrade keeps what is installed)
if [ -n "$station" ]; then
    install -d -m 0755 "$etc"
    # via a temporary name and rename: never a half-written or briefly world-readable file
    put() { install -m "$3" "$1" "$2.new" && mv -f "$2.new" "$2"; }
    put "$station/agent-systemd.toml" "$etc/agent.toml" 0644
    put "$station/password" "$etc/password" 0600
    # no ca.crt only for a lab broker without TLS (pantau provision --no-tls)
    [ ! -f "$station/ca.crt" ] || put "$station/ca.crt" "$etc/ca.crt" 0644
    echo "placed $etc/agent.toml (0644), $etc/password (0600)$([ ! -f "$etc/ca.crt" ] || echo ", $etc/ca.crt (0644)")"
fi
set +e
"$new/bin/pantau-agent" check --config "$etc/agent.toml"
rc=$?
set -e
case $rc in
    0) ;;
    1) echo "install.sh: note: 'check' found a problem above (a peripheral or the login);" \
           "the service is installed anyway and reports it" >&2 ;;
    *) rm -rf "$new"; die "$etc/agent.toml is not usable (above); nothing was changed" ;;
esac

# 3. switch: the unit runs $prefix/venv, a symlink replaced in one rename
previous=$(readlink "$prefix/venv" 2>/dev/null || true)
if [ -d "$prefix/venv" ] && [ ! -L "$prefix/venv" ]; then
    mv "$prefix/venv" "$prefix/old-venv-$(date +%Y%m%d%H%M%S)"  # an earlier hand-made venv: kept
fi
ln -sfn "$(basename "$new")" "$prefix/venv.tmp"
mv -T "$prefix/venv.tmp" "$prefix/venv"

# 4. the service
install -d -m 0755 "$unit_dir"
sed -e "s#/opt/pantau/venv#$prefix/venv#g" -e "s#/etc/pantau/#$etc/#g" \
    "$here/pantau-agent.service" >"$unit_dir/pantau-agent.service.new"
chmod 0644 "$unit_dir/pantau-agent.service.new"
mv -f "$unit_dir/pantau-agent.service.new" "$unit_dir/pantau-agent.service"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && [ -z "${PANTAU_PREFIX:-}" ]; then
    systemctl daemon-reload
    systemctl enable pantau-agent.service
    if [ "$start" -eq 1 ]; then
        systemctl restart pantau-agent.service
        echo "pantau-agent $version running: journalctl -u pantau-agent -f"
    fi
else
    echo "systemd is not managing this system (or PANTAU_PREFIX is set): the unit is in" \
        "$unit_dir; start it with systemctl enable --now pantau-agent"
fi

# 5. keep the previous environment for a rollback (ln -sfn it), remove older ones
for old in "$prefix"/venv-*; do
    [ -d "$old" ] || continue
    case $(basename "$old") in
        "$(basename "$new")" | "$(basename "${previous:-none}")") ;;
        *) rm -rf "$old" ;;
    esac
done
echo "pantau-agent $version installed ($prefix/venv -> $(basename "$new"))"
