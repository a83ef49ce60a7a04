#!/bin/sh
# Create the broker's TLS material with openssl:
#   a private CA (ca.key, ca.crt; 10 years) and a server certificate signed by it (server.key,
#   server.crt; 825 days) whose subjectAltName lists every name the agents and collectors use.
#
# usage: deploy/scripts/make-certs.sh [-o OUTDIR] [NAME ...]
#   OUTDIR defaults to deploy/certs (next to compose.yaml, which mounts it).
#   NAMEs default to "mosquitto localhost 127.0.0.1": add the broker's public DNS name (the
#   --broker-host given to `pantau provision`), e.g.
#       deploy/scripts/make-certs.sh mqtt.disdukcapil.klatenkab.go.id mosquitto localhost
#   An entry that looks like an IPv4/IPv6 address becomes IP:..., anything else DNS:...
#
# An existing CA in OUTDIR is reused (agents trust the CA, so re-issuing the server certificate,
# e.g. to add a name or before it expires, needs no change on the stations). Keys are 0600.
# Keep ca.key off the broker host once the server certificate is issued.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
out="$here/certs"
if [ "${1:-}" = "-o" ]; then
    [ $# -ge 2 ] || { echo "make-certs.sh: -o needs a directory" >&2; exit 2; }
    out=$2
    shift 2
fi
[ $# -gt 0 ] || set -- mosquitto localhost 127.0.0.1
command -v openssl >/dev/null 2>&1 || { echo "make-certs.sh: openssl not found" >&2; exit 2; }

san=""
for name in "$@"; do
    case $name in
        *[!0-9.]*) case $name in *:*) kind=IP ;; *) kind=DNS ;; esac ;;
        *) kind=IP ;;
    esac
    san="${san:+$san,}$kind:$name"
done

umask 077
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if [ ! -s "$out/ca.key" ] || [ ! -s "$out/ca.crt" ]; then
    openssl req -x509 -new -nodes -newkey rsa:3072 -sha256 -days 3650 \
        -subj "/O=pantau/CN=pantau broker CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$out/ca.key" -out "$out/ca.crt" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
    echo "created CA $out/ca.crt"
else
    echo "reusing CA $out/ca.crt"
fi

openssl req -new -nodes -newkey rsa:2048 -sha256 -subj "/O=pantau/CN=$1" \
    -keyout "$tmp/server.key" -out "$tmp/server.csr" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
# clientAuth too: the nodes of a NATS cluster present this certificate to each other on their
# TLS routes (deploy/nats/nats.conf)
cat >"$tmp/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$san
EXT
openssl x509 -req -in "$tmp/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" \
    -CAcreateserial -CAserial "$tmp/ca.srl" -days 825 -sha256 -extfile "$tmp/ext.cnf" \
    -out "$tmp/server.crt" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
mv "$tmp/server.key" "$out/server.key"
mv "$tmp/server.crt" "$out/server.crt"
chmod 0600 "$out/ca.key" "$out/server.key"
chmod 0644 "$out/ca.crt" "$out/server.crt"
echo "issued $out/server.crt for $san"
