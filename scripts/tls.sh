#!/usr/bin/env bash
# A throwaway certificate authority for local TLS (the dev broker's listener, the tests' webhook
# receiver): never for a deployment, where Strimzi's cluster CA or your own issues certificates.
#
#   scripts/tls.sh DIR NAME SAN...    e.g. scripts/tls.sh /tmp/tls broker IP:127.0.0.1 DNS:localhost
#
# Makes DIR/ca.crt and DIR/ca.key once, then DIR/NAME.crt and DIR/NAME.key (PKCS#8, EC P-256)
# signed by it, for server and client use, valid for 30 days.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 DIR NAME SAN..." >&2
  exit 2
fi
dir=$1 name=$2
shift 2
mkdir -p "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
if [ ! -f "$dir/ca.crt" ]; then
  key "$dir/ca.key"
  openssl req -x509 -new -key "$dir/ca.key" -days 30 -subj "/CN=ordersaga local CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$dir/ca.crt"
fi
key "$dir/$name.key"
san=$(IFS=,; echo "$*")
openssl req -new -key "$dir/$name.key" -subj "/CN=$name" -out "$dir/$name.csr"
openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
  -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san") \
  -out "$dir/$name.crt" 2>/dev/null
rm -f "$dir/$name.csr"
