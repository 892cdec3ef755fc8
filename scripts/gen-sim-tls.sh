#!/bin/sh
# Regenerates the simulator's TEST-ONLY TLS material (src/sim/tls-fixture.ts). Never use it anywhere else.
set -eu
cd "$(mktemp -d)"
echo "writing into $PWD"
days=36500
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days $days -subj "/CN=gpu-medic simulator test-only CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
openssl ecparam -name prime256v1 -genkey -noout -out server.key.ec
openssl pkcs8 -topk8 -nocrypt -in server.key.ec -out server.key
openssl req -new -key server.key -subj "/CN=sim-apiserver" -out server.csr
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days $days -extfile server.ext -out server.pem
openssl ecparam -name prime256v1 -genkey -noout -out other.key
openssl req -x509 -new -key other.key -sha256 -days $days -subj "/CN=gpu-medic simulator test-only OTHER CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out other-ca.pem
# Paste ca.pem, server.pem, server.key and other-ca.pem into src/sim/tls-fixture.ts (the CA keys are thrown away).
