#!/usr/bin/env bash
# Throwaway certificates for TLS tests and `TLS=1 scripts/demo.sh`, made with openssl at test
# time (nothing private is committed):
#
#   scripts/certs.sh DIR     writes into DIR (created, mode 700; default .run/certs):
#     ca.pem              the CA every server and client certificate below is signed by
#     server.pem/.key     server certificate for localhost and 127.0.0.1
#     client.pem/.key     client certificate (mutual TLS)
#     wrong-ca.pem        another CA: trusting it must fail every handshake
#     wrong-client.pem/.key  a client certificate signed by the wrong CA
#
# Keys are EC P-256 in PKCS#8 PEM (what rustls, OpenSSL, librdkafka, native-tls and stunnel
# all read). Certificates are valid for 2 days.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/.run/certs}"
command -v openssl >/dev/null || { echo "certs: openssl is not installed" >&2; exit 1; }
mkdir -p "$DIR"
chmod 700 "$DIR"
cd "$DIR"
umask 077

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# ca NAME CN
ca() {
    key "$1.key"
    openssl req -x509 -new -key "$1.key" -sha256 -days 2 -subj "/CN=$2" -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# leaf NAME CA CN EXTENSIONS
leaf() {
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$3" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 -sha256 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

ca ca "switchboard test CA"
ca wrong-ca "switchboard wrong CA"
leaf server ca localhost "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1"
leaf client ca "switchboard client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
leaf wrong-client wrong-ca "switchboard wrong client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
# The CAs' keys are not needed once everything is signed.
rm -f ca.key wrong-ca.key ./*.srl
chmod 644 ./*.pem
echo "certs: CA, server, client and wrong-CA certificates in $DIR" >&2
