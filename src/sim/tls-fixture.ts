/**
 * TEST-ONLY TLS material for the simulated API server (HTTPS, as EKS serves it, with the cluster's own CA in
 * the kubeconfig). Fixed and committed rather than generated at start-up: Node has no API to issue an X.509
 * certificate and `openssl` is not on every machine. The CA's private key is NOT here (nothing can be signed
 * with this file); the server key only protects a loopback simulator. Never use any of it outside the
 * simulator. Valid until 2126; regenerate with scripts/gen-sim-tls.sh.
 *
 *   SIM_TLS_CA          "gpu-medic simulator test-only CA" (the kubeconfig's certificate-authority-data)
 *   SIM_TLS_SERVER_*    CN sim-apiserver, SAN IP:127.0.0.1, IP:::1, DNS:localhost, signed by the CA above
 *   SIM_TLS_OTHER_CA    an unrelated CA: a kubeconfig trusting it must fail to verify the server
 */

export const SIM_TLS_CA = `-----BEGIN CERTIFICATE-----
MIIBvTCCAWOgAwIBAgIUPZPw2HMqxLPRuTK8khOyIeR78b0wCgYIKoZIzj0EAwIw
KzEpMCcGA1UEAwwgZ3B1LW1lZGljIHNpbXVsYXRvciB0ZXN0LW9ubHkgQ0EwIBcN
MjYxMjAzMDk1NzE2WhgPMjEyNjExMDkwOTU3MTZaMCsxKTAnBgNVBAMMIGdwdS1t
ZWRpYyBzaW11bGF0b3IgdGVzdC1vbmx5IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0D
AQcDQgAEQwofz/vQNt4sFTVKa2XaltNfwnC1sx2b9G3HNJ6uHCfyGj9+HvqKiqNm
gJhY3LMW4zgBoha1p0uZz9keU9Y0cKNjMGEwHQYDVR0OBBYEFISMM+PyOoOLJDHv
ZtJVN9tmL5b+MB8GA1UdIwQYMBaAFISMM+PyOoOLJDHvZtJVN9tmL5b+MA8GA1Ud
EwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49BAMCA0gAMEUCICVL
XpT3IRnHi83jdBIkNVWTbSJVqm65/uxVyFNRwQX1AiEArs0IdoeQIy1ua4G4EYJA
EHoLCuMxGr1PfIH/rgAJxXk=
-----END CERTIFICATE-----
`;

export const SIM_TLS_SERVER_CERT = `-----BEGIN CERTIFICATE-----
MIIB6DCCAY+gAwIBAgIUFN74V+qu22Oy8fURiInz2CbrpeQwCgYIKoZIzj0EAwIw
KzEpMCcGA1UEAwwgZ3B1LW1lZGljIHNpbXVsYXRvciB0ZXN0LW9ubHkgQ0EwIBcN
MjYxMjAzMDk1NzE2WhgPMjEyNjExMDkwOTU3MTZaMBgxFjAUBgNVBAMMDXNpbS1h
cGlzZXJ2ZXIwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATflsEgiTv3sGc2WTvb
eXFIyzHbDnmbV7ZHbh9yefhmisw7O+tOF+sTzTX2gDtYXrrrOygdEJ4b8lWEl4+u
uDhwo4GhMIGeMAkGA1UdEwQCMAAwDgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoG
CCsGAQUFBwMBMCwGA1UdEQQlMCOHBH8AAAGHEAAAAAAAAAAAAAAAAAAAAAGCCWxv
Y2FsaG9zdDAdBgNVHQ4EFgQUYmusuUMUMPuw7OSWT7G/mHlhq30wHwYDVR0jBBgw
FoAUhIwz4/I6g4skMe9m0lU322Yvlv4wCgYIKoZIzj0EAwIDRwAwRAIgFrbvBArm
U7buRi/MAeXxQludAPds2oJNJmfXeuHJjncCIBqEwl5NQNQYEfbtyZJTbpxmhczy
QzUIf8orhIh8oA+T
-----END CERTIFICATE-----
`;

export const SIM_TLS_SERVER_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxhsAcGa9HTocgnto
GoNp6yZ7Mduukf6oeGvHkG0GLOyhRANCAATflsEgiTv3sGc2WTvbeXFIyzHbDnmb
V7ZHbh9yefhmisw7O+tOF+sTzTX2gDtYXrrrOygdEJ4b8lWEl4+uuDhw
-----END PRIVATE KEY-----
`;

export const SIM_TLS_OTHER_CA = `-----BEGIN CERTIFICATE-----
MIIByTCCAW+gAwIBAgIUPHEt/BEw9QKy6DG3/PYaFlnFuAUwCgYIKoZIzj0EAwIw
MTEvMC0GA1UEAwwmZ3B1LW1lZGljIHNpbXVsYXRvciB0ZXN0LW9ubHkgT1RIRVIg
Q0EwIBcNMjYxMjAzMDk1NzE2WhgPMjEyNjExMDkwOTU3MTZaMDExLzAtBgNVBAMM
JmdwdS1tZWRpYyBzaW11bGF0b3IgdGVzdC1vbmx5IE9USEVSIENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEBn9J8l8UHQ3SPcLCxUui62LNm2nx5OkxOneYPlFN
/3/VjnelnwvW0TAUJgdh0UITHVZ3Cf8lLvNmo47Kdh9zf6NjMGEwHQYDVR0OBBYE
FD7Gu2a6FrlKn9MkBvtGXUSiJy/JMB8GA1UdIwQYMBaAFD7Gu2a6FrlKn9MkBvtG
XUSiJy/JMA8GA1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgEGMAoGCCqGSM49
BAMCA0gAMEUCIB9GYC63YG7yWM7vU+nyhu/qz3whV1iadKmJF9bNr9feAiEA9bnY
Nw7Y7zDhIdxhOtBDGbOt4BqlLd/edva3Q4YZ61E=
-----END CERTIFICATE-----
`;
