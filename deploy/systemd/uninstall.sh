#!/bin/sh
# Remove pantau-agent installed by install.sh: stop and disable the service, delete the unit
# and the agent's environments (/opt/pantau). The station's config and password (/etc/pantau)
# and the spool (/var/lib/private/pantau-agent) are kept, so a reinstall picks up where it was,
# unless --purge is given.
#
# usage: sudo ./uninstall.sh [--purge]
# Tests and unusual layouts override the paths with PANTAU_PREFIX, PANTAU_ETC, PANTAU_UNIT_DIR,
# PANTAU_STATE_DIR.
set -eu

prefix=${PANTAU_PREFIX:-/opt/pantau}
etc=${PANTAU_ETC:-/etc/pantau}
unit_dir=${PANTAU_UNIT_DIR:-/etc/systemd/system}
state=${PANTAU_STATE_DIR:-/var/lib/private/pantau-agent}
purge=0

die() { echo "uninstall.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --purge) purge=1; shift ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "${PANTAU_PREFIX:-}" ] || [ "$(id -u)" -eq 0 ] || die "run as root (sudo ./uninstall.sh)"

if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && [ -z "${PANTAU_PREFIX:-}" ]; then
    # stop: the agent publishes an orderly "offline" first
    systemctl disable --now pantau-agent.service 2>/dev/null || true
fi
rm -f "$unit_dir/pantau-agent.service"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 && [ -z "${PANTAU_PREFIX:-}" ]; then
    systemctl daemon-reload
fi
rm -rf "$prefix"/venv-* "$prefix/venv"
rmdir "$prefix" 2>/dev/null || true
if [ "$purge" -eq 1 ]; then
    rm -rf "$etc" "$state"
    [ -L "${state%/private/*}/pantau-agent" ] && rm -f "${state%/private/*}/pantau-agent"
    echo "pantau-agent removed, with its config, password and spool"
else
    echo "pantau-agent removed; kept $etc (config, password) and $state (spool): --purge deletes them"
fi
