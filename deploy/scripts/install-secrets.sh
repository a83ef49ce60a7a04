#!/bin/sh
# Install the secrets the compose stack mounts, owned by the user each container runs as.
#
# usage: sudo deploy/scripts/install-secrets.sh [-o SECRETS_DIR] PROVISION_DIR [CERTS_DIR]
#   PROVISION_DIR  output of `pantau provision` (broker/passwd, broker/acl, and NAME/password per
#                  collector identity: collector/password, or collector-west/, collector-east/...)
#   CERTS_DIR      output of deploy/scripts/make-certs.sh (default deploy/certs)
#   SECRETS_DIR    default deploy/secrets (what deploy/compose.yaml mounts read-only)
#
# Result (directories 0700, files 0600 except certificates 0644):
#   SECRETS_DIR/broker/{passwd,acl,ca.crt,server.crt,server.key}  owner MOSQUITTO_UID (1883, the
#                                                                  eclipse-mosquitto image's user)
#   SECRETS_DIR/NAME/{password,ca.crt}  for each collector identity NAME (collector, or the
#                                       cluster's collector-west, collector-east), owner
#                                       COLLECTOR_UID (10001, the user of deploy/Dockerfile)
#   SECRETS_DIR/alertmanager/[smtp_password]                       owner ALERTMANAGER_UID (65534,
#                                                                  nobody in prom/alertmanager);
#                                  the SMTP password is copied from $SMTP_PASSWORD_SRC if set
# Override the owners with MOSQUITTO_UID / COLLECTOR_UID / ALERTMANAGER_UID (numbers or user
# names) for other images or rootless engines. Needs root to chown (or owners = yourself).
# Re-run after every `pantau provision`, then `docker compose kill -s HUP mosquitto` (passwd and
# acl are re-read) or `docker compose restart mosquitto collector` (new certificates).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
secrets="$here/secrets"
if [ "${1:-}" = "-o" ]; then
    [ $# -ge 2 ] || { echo "install-secrets.sh: -o needs a directory" >&2; exit 2; }
    secrets=$2
    shift 2
fi
[ $# -ge 1 ] || { sed -n '4,7p' "$0" | sed 's/^# //' >&2; exit 2; }
prov=$1
certs=${2:-$here/certs}
mosq=${MOSQUITTO_UID:-1883}
coll=${COLLECTOR_UID:-10001}
alrt=${ALERTMANAGER_UID:-65534}

for f in "$prov/broker/passwd" "$prov/broker/acl"; do
    [ -s "$f" ] || { echo "install-secrets.sh: $f missing: run pantau provision first" >&2; exit 2; }
done
# Collector identities: every PROVISION_DIR/NAME/password one level down (stations are two down).
collectors=""
for f in "$prov"/*/password; do
    [ -s "$f" ] || continue
    collectors="$collectors $(basename "$(dirname "$f")")"
done
[ -n "$collectors" ] || { echo "install-secrets.sh: no $prov/collector/password: run pantau provision first" >&2; exit 2; }
for f in "$certs/ca.crt" "$certs/server.crt" "$certs/server.key"; do
    [ -s "$f" ] || { echo "install-secrets.sh: $f missing: run deploy/scripts/make-certs.sh first" >&2; exit 2; }
done

umask 077
put() { # put SRC DEST OWNER MODE: copy to a temp name, set owner and mode, then rename (atomic)
    cp "$1" "$2.tmp"
    chown "$3" "$2.tmp"
    chmod "$4" "$2.tmp"
    mv -f "$2.tmp" "$2"
}
mkdir -p "$secrets/broker" "$secrets/alertmanager"
chmod 0755 "$secrets"
chown "$mosq" "$secrets/broker"
chown "$alrt" "$secrets/alertmanager"
chmod 0700 "$secrets/broker" "$secrets/alertmanager"
put "$prov/broker/passwd" "$secrets/broker/passwd" "$mosq" 0600
put "$prov/broker/acl" "$secrets/broker/acl" "$mosq" 0600
put "$certs/server.key" "$secrets/broker/server.key" "$mosq" 0600
put "$certs/server.crt" "$secrets/broker/server.crt" "$mosq" 0644
put "$certs/ca.crt" "$secrets/broker/ca.crt" "$mosq" 0644
for name in $collectors; do
    mkdir -p "$secrets/$name"
    chown "$coll" "$secrets/$name"
    chmod 0700 "$secrets/$name"
    put "$prov/$name/password" "$secrets/$name/password" "$coll" 0600
    put "$certs/ca.crt" "$secrets/$name/ca.crt" "$coll" 0644
done
if [ -n "${SMTP_PASSWORD_SRC:-}" ]; then
    [ -s "$SMTP_PASSWORD_SRC" ] || { echo "install-secrets.sh: SMTP_PASSWORD_SRC=$SMTP_PASSWORD_SRC is missing or empty" >&2; exit 2; }
    put "$SMTP_PASSWORD_SRC" "$secrets/alertmanager/smtp_password" "$alrt" 0600
fi
echo "installed $secrets/broker (owner $mosq), collector identities$collectors (owner $coll), $secrets/alertmanager (owner $alrt)"
