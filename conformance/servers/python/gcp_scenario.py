"""Second opinion on keyport's Cloud KMS test server, through Google's official Python client.

Usage: python gcp_scenario.py 127.0.0.1:<port> [http://127.0.0.1:<rest port>]

With a REST URL, the same client also runs over its REST transport (HTTP/JSON) against the
server's transcoded REST surface.

Creates keys, round-trips every operation the server emulates and checks the negative cases.
Exits non-zero (with the failing check) when the server disagrees with what the client expects.
"""

import hashlib
import os
import sys
import time

import google_crc32c
import grpc
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding
from google.api_core import exceptions
from google.cloud import kms
from google.cloud.kms_v1.services.key_management_service.transports import (
    KeyManagementServiceGrpcTransport,
)
from google.iam.v1 import policy_pb2

PROJECT_LOCATION = "projects/keyport-py/locations/europe-west1"
PRINCIPAL_HEADER = "x-keyport-principal"
REST_URL = None
PQC = False


def crc(data: bytes) -> int:
    return google_crc32c.value(data)


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def expect_error(kind, fn, what: str) -> None:
    try:
        fn()
    except kind:
        return
    except exceptions.GoogleAPICallError as err:
        raise AssertionError(f"{what}: expected {kind.__name__}, got {type(err).__name__}: {err.message}")
    raise AssertionError(f"{what}: expected {kind.__name__}, call succeeded")


def issue_25_checks(client, ring: str, label: str) -> None:
    """What issue #25 found diverging, through this client: public key name, filters, deletes."""
    # Over REST both FAILED_PRECONDITION and INVALID_ARGUMENT are HTTP 400, which google-api-core
    # raises as BadRequest (their common base class), exactly as with the real service.
    precondition = exceptions.FailedPrecondition if label == "grpc" else exceptions.BadRequest
    invalid = exceptions.InvalidArgument if label == "grpc" else exceptions.BadRequest
    signer = client.create_crypto_key(request={
        "parent": ring, "crypto_key_id": "i25-signer",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN, "labels": {"team": "x"},
                       "version_template": {"algorithm": kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm.EC_SIGN_P256_SHA256}}})
    version = f"{signer.name}/cryptoKeyVersions/1"
    expect(client.get_public_key(name=version).name == version, f"{label}: public key names the version")
    doomed = client.create_crypto_key(request={
        "parent": ring, "crypto_key_id": "i25-doomed",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT}})
    listed = client.list_crypto_keys(request={"parent": ring, "filter": "labels.team=x", "order_by": "name desc"})
    expect([k.name for k in listed] == [signer.name], f"{label}: filtered list")
    expect_error(precondition, lambda: client.delete_crypto_key(name=doomed.name).result(),
                 f"{label}: delete a key with versions")
    client.destroy_crypto_key_version(name=f"{doomed.name}/cryptoKeyVersions/1")
    expect_error(precondition,
                 lambda: client.delete_crypto_key_version(name=f"{doomed.name}/cryptoKeyVersions/1").result(),
                 f"{label}: delete a version not yet destroyed")
    expect_error(invalid,
                 lambda: list(client.list_crypto_keys(request={"parent": ring, "filter": "nosuch=1"})),
                 f"{label}: unknown filter field")


def pqc_checks(client, ring: str, label: str) -> None:
    """Post-quantum keys (the server offers them on Node 24.7+; the test says so with KEYPORT_PQC=1):
    encapsulate to the NIST_PQC public key with pyca/cryptography, Decapsulate, ML-DSA-65 over data."""
    from cryptography.hazmat.primitives.asymmetric import mldsa, mlkem

    invalid = exceptions.InvalidArgument if label == "grpc" else exceptions.BadRequest
    kem = client.create_crypto_key(request={
        "parent": ring, "crypto_key_id": "pqc-kem",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.KEY_ENCAPSULATION,
                       "version_template": {"algorithm": kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm.ML_KEM_768}}})
    name = f"{kem.name}/cryptoKeyVersions/1"
    pub = client.get_public_key(request={"name": name, "public_key_format": kms.PublicKey.PublicKeyFormat.NIST_PQC})
    expect(pub.name == name and pub.public_key.crc32c_checksum == crc(pub.public_key.data), f"{label}: NIST_PQC public key")
    expect_error(invalid, lambda: client.get_public_key(request={"name": name}), f"{label}: ML-KEM key without a format")
    shared, ciphertext = mlkem.MLKEM768PublicKey.from_public_bytes(pub.public_key.data).encapsulate()
    out = client.decapsulate(request={"name": name, "ciphertext": ciphertext, "ciphertext_crc32c": crc(ciphertext)})
    expect(out.shared_secret == shared, f"{label}: decapsulated the secret pyca encapsulated")
    expect(out.verified_ciphertext_crc32c and out.shared_secret_crc32c == crc(shared) and out.name == name,
           f"{label}: decapsulate integrity fields")
    expect_error(invalid, lambda: client.decapsulate(request={"name": name, "ciphertext": ciphertext[1:]}),
                 f"{label}: short ciphertext")
    dsa = client.create_crypto_key(request={
        "parent": ring, "crypto_key_id": "pqc-dsa",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN,
                       "version_template": {"algorithm": kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm.PQ_SIGN_ML_DSA_65}}})
    signer = f"{dsa.name}/cryptoKeyVersions/1"
    raw = client.get_public_key(request={"name": signer, "public_key_format": kms.PublicKey.PublicKeyFormat.NIST_PQC})
    data = b"signed by the test server, checked by pyca"
    sig = client.asymmetric_sign(request={"name": signer, "data": data, "data_crc32c": crc(data)})
    expect(sig.verified_data_crc32c and sig.signature_crc32c == crc(sig.signature), f"{label}: ML-DSA sign checksums")
    mldsa.MLDSA65PublicKey.from_public_bytes(raw.public_key.data).verify(sig.signature, data)


def rest_scenario(rest_url: str) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    client = kms.KeyManagementServiceClient(
        transport="rest", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=rest_url))
    ring_id = f"py-rest-{os.getpid()}-{int(time.time())}"
    ring = client.create_key_ring(request={"parent": PROJECT_LOCATION, "key_ring_id": ring_id, "key_ring": {}})
    expect(ring.name == f"{PROJECT_LOCATION}/keyRings/{ring_id}", "rest: key ring name")
    sym = client.create_crypto_key(request={
        "parent": ring.name, "crypto_key_id": "sym",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT}})
    enc = client.encrypt(request={"name": sym.name, "plaintext": b"over rest", "additional_authenticated_data": b"aad",
                                  "plaintext_crc32c": crc(b"over rest")})
    expect(enc.verified_plaintext_crc32c and enc.ciphertext_crc32c == crc(enc.ciphertext), "rest: encrypt checksums")
    dec = client.decrypt(request={"name": sym.name, "ciphertext": enc.ciphertext, "additional_authenticated_data": b"aad"})
    expect(dec.plaintext == b"over rest", "rest: decrypt")
    expect_error(exceptions.NotFound, lambda: client.get_crypto_key(name=f"{ring.name}/cryptoKeys/absent"), "rest: missing key")
    issue_25_checks(client, ring.name, "rest")
    if PQC:
        pqc_checks(client, ring.name, "rest")


def main(address: str) -> None:
    channel = grpc.insecure_channel(address)
    client = kms.KeyManagementServiceClient(transport=KeyManagementServiceGrpcTransport(channel=channel))
    ring_id = f"py-{os.getpid()}-{int(time.time())}"

    # Key rings.
    ring = client.create_key_ring(request={"parent": PROJECT_LOCATION, "key_ring_id": ring_id, "key_ring": {}})
    expect(ring.name == f"{PROJECT_LOCATION}/keyRings/{ring_id}", "key ring name")
    expect_error(exceptions.AlreadyExists,
                 lambda: client.create_key_ring(request={"parent": PROJECT_LOCATION, "key_ring_id": ring_id, "key_ring": {}}),
                 "duplicate key ring")
    expect_error(exceptions.NotFound, lambda: client.get_key_ring(name=f"{PROJECT_LOCATION}/keyRings/absent"), "missing ring")
    expect_error(exceptions.InvalidArgument,
                 lambda: client.create_key_ring(request={"parent": PROJECT_LOCATION, "key_ring_id": "no spaces", "key_ring": {}}),
                 "bad key ring id")

    # Symmetric key: encrypt/decrypt with AAD and checksums.
    sym = client.create_crypto_key(request={
        "parent": ring.name, "crypto_key_id": "sym",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT, "labels": {"env": "test"}},
    })
    expect(sym.primary.state == kms.CryptoKeyVersion.CryptoKeyVersionState.ENABLED, "primary enabled")
    plaintext, aad = b"python says hello", b"ctx"
    enc = client.encrypt(request={
        "name": sym.name, "plaintext": plaintext, "additional_authenticated_data": aad,
        "plaintext_crc32c": crc(plaintext), "additional_authenticated_data_crc32c": crc(aad),
    })
    expect(enc.verified_plaintext_crc32c and enc.verified_additional_authenticated_data_crc32c, "verified flags")
    expect(enc.ciphertext_crc32c == crc(enc.ciphertext), "ciphertext crc")
    expect(enc.name == f"{sym.name}/cryptoKeyVersions/1", "encrypt names the version")
    dec = client.decrypt(request={"name": sym.name, "ciphertext": enc.ciphertext, "additional_authenticated_data": aad,
                                  "ciphertext_crc32c": crc(enc.ciphertext)})
    expect(dec.plaintext == plaintext and dec.plaintext_crc32c == crc(plaintext), "decrypt round trip")
    expect_error(exceptions.InvalidArgument,
                 lambda: client.decrypt(request={"name": sym.name, "ciphertext": enc.ciphertext, "additional_authenticated_data": b"x"}),
                 "AAD mismatch")
    expect_error(exceptions.InvalidArgument,
                 lambda: client.encrypt(request={"name": sym.name, "plaintext": plaintext, "plaintext_crc32c": crc(plaintext) ^ 1}),
                 "bad plaintext crc")

    # Versions: rotate, disable, destroy, restore.
    v2 = client.create_crypto_key_version(request={"parent": sym.name, "crypto_key_version": {}})
    expect(v2.name.endswith("/cryptoKeyVersions/2"), "second version id")
    key = client.update_crypto_key_primary_version(request={"name": sym.name, "crypto_key_version_id": "2"})
    expect(key.primary.name == v2.name, "primary moved")
    v1 = f"{sym.name}/cryptoKeyVersions/1"
    disabled = client.update_crypto_key_version(request={
        "crypto_key_version": {"name": v1, "state": kms.CryptoKeyVersion.CryptoKeyVersionState.DISABLED},
        "update_mask": {"paths": ["state"]},
    })
    expect(disabled.state == kms.CryptoKeyVersion.CryptoKeyVersionState.DISABLED, "disabled")
    expect_error(exceptions.FailedPrecondition,
                 lambda: client.decrypt(request={"name": sym.name, "ciphertext": enc.ciphertext, "additional_authenticated_data": aad}),
                 "decrypt with a disabled version")
    scheduled = client.destroy_crypto_key_version(request={"name": v1})
    expect(scheduled.state == kms.CryptoKeyVersion.CryptoKeyVersionState.DESTROY_SCHEDULED, "destroy scheduled")
    restored = client.restore_crypto_key_version(request={"name": v1})
    expect(restored.state == kms.CryptoKeyVersion.CryptoKeyVersionState.DISABLED, "restored to disabled")
    expect_error(exceptions.FailedPrecondition, lambda: client.restore_crypto_key_version(request={"name": v1}), "restore twice")
    versions = list(client.list_crypto_key_versions(request={"parent": sym.name, "page_size": 1}))
    expect([v.name for v in versions] == [v1, v2.name], "paged version listing")

    updated = client.update_crypto_key(request={"crypto_key": {"name": sym.name, "labels": {"env": "prod"}},
                                                "update_mask": {"paths": ["labels"]}})
    expect(dict(updated.labels) == {"env": "prod"}, "labels updated")

    # Asymmetric signing over a digest, verified with the public key.
    signer = client.create_crypto_key(request={
        "parent": ring.name, "crypto_key_id": "signer",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN,
                       "version_template": {"algorithm": kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm.EC_SIGN_P256_SHA256}},
    })
    sv = f"{signer.name}/cryptoKeyVersions/1"
    pub = client.get_public_key(request={"name": sv})
    expect(pub.pem_crc32c == crc(pub.pem.encode()), "pem crc")
    message = b"sign me"
    digest = hashlib.sha256(message).digest()
    sig = client.asymmetric_sign(request={"name": sv, "digest": {"sha256": digest}, "digest_crc32c": crc(digest)})
    expect(sig.verified_digest_crc32c and sig.signature_crc32c == crc(sig.signature), "sign checksums")
    serialization.load_pem_public_key(pub.pem.encode()).verify(sig.signature, message, ec.ECDSA(hashes.SHA256()))
    expect_error(exceptions.InvalidArgument,
                 lambda: client.asymmetric_sign(request={"name": sv, "digest": {"sha384": b"\0" * 48}}), "wrong digest")
    expect_error(exceptions.FailedPrecondition,
                 lambda: client.encrypt(request={"name": signer.name, "plaintext": b"x"}), "encrypt with a signing key")

    # Asymmetric decryption (RSA-OAEP-SHA256).
    decrypter = client.create_crypto_key(request={
        "parent": ring.name, "crypto_key_id": "decrypter",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_DECRYPT,
                       "version_template": {"algorithm": kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm.RSA_DECRYPT_OAEP_2048_SHA256}},
    })
    dv = f"{decrypter.name}/cryptoKeyVersions/1"
    rsa_pub = serialization.load_pem_public_key(client.get_public_key(request={"name": dv}).pem.encode())
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    out = client.asymmetric_decrypt(request={"name": dv, "ciphertext": rsa_pub.encrypt(b"oaep", oaep)})
    expect(out.plaintext == b"oaep", "asymmetric decrypt")

    # MAC.
    mac_key = client.create_crypto_key(request={
        "parent": ring.name, "crypto_key_id": "mac",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.MAC,
                       "version_template": {"algorithm": kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm.HMAC_SHA256}},
    })
    mv = f"{mac_key.name}/cryptoKeyVersions/1"
    tag = client.mac_sign(request={"name": mv, "data": b"data", "data_crc32c": crc(b"data")})
    expect(tag.verified_data_crc32c and len(tag.mac) == 32, "mac sign")
    expect(client.mac_verify(request={"name": mv, "data": b"data", "mac": tag.mac}).success, "mac verifies")
    expect(not client.mac_verify(request={"name": mv, "data": b"other", "mac": tag.mac}).success, "mac rejects other data")

    # Random bytes.
    rnd = client.generate_random_bytes(request={"location": PROJECT_LOCATION, "length_bytes": 64,
                                                "protection_level": kms.ProtectionLevel.HSM})
    expect(len(rnd.data) == 64 and rnd.data_crc32c == crc(rnd.data), "random bytes")
    expect_error(exceptions.InvalidArgument,
                 lambda: client.generate_random_bytes(request={"location": PROJECT_LOCATION, "length_bytes": 2,
                                                               "protection_level": kms.ProtectionLevel.HSM}), "too few random bytes")

    # Import: RSA_OAEP_3072_SHA256_AES_256, polling the job until ACTIVE.
    job = client.create_import_job(request={"parent": ring.name, "import_job_id": "job", "import_job": {
        "import_method": kms.ImportJob.ImportMethod.RSA_OAEP_3072_SHA256_AES_256,
        "protection_level": kms.ProtectionLevel.SOFTWARE}})
    for _ in range(200):
        job = client.get_import_job(name=job.name)
        if job.state == kms.ImportJob.ImportJobState.ACTIVE:
            break
        time.sleep(0.05)
    expect(job.state == kms.ImportJob.ImportJobState.ACTIVE, "import job active")
    wrapping = serialization.load_pem_public_key(job.public_key.pem.encode())
    ephemeral, material = os.urandom(32), os.urandom(32)
    wrapped = wrapping.encrypt(ephemeral, oaep) + aes_key_wrap_with_padding(ephemeral, material)
    target = client.create_crypto_key(request={
        "parent": ring.name, "crypto_key_id": "imported", "skip_initial_version_creation": True,
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT, "import_only": True}})
    imported = client.import_crypto_key_version(request={
        "parent": target.name, "import_job": job.name, "wrapped_key": wrapped,
        "algorithm": kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm.GOOGLE_SYMMETRIC_ENCRYPTION})
    expect(imported.import_job == job.name, "imported version names its job")
    ct = client.encrypt(request={"name": target.name, "plaintext": b"byok"}).ciphertext
    expect(client.decrypt(request={"name": target.name, "ciphertext": ct}).plaintext == b"byok", "imported key works")
    expect_error(exceptions.InvalidArgument,
                 lambda: client.import_crypto_key_version(request={
                     "parent": target.name, "import_job": job.name, "wrapped_key": os.urandom(400),
                     "algorithm": kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm.GOOGLE_SYMMETRIC_ENCRYPTION}),
                 "garbage wrapped key")

    # IAM: a binding with a request.time condition, enforced for a named principal.
    policy = client.get_iam_policy(request={"resource": sym.name, "options": {"requested_policy_version": 3}})
    policy.version = 3
    policy.bindings.append(policy_pb2.Binding(
        role="roles/cloudkms.cryptoKeyEncrypterDecrypter", members=["user:py@example.com"],
        condition={"expression": 'request.time < timestamp("2999-01-01T00:00:00Z")', "title": "until 2999"}))
    stored = client.set_iam_policy(request={"resource": sym.name, "policy": policy})
    expect(stored.etag != policy.etag, "etag changes on write")
    as_py = [(PRINCIPAL_HEADER, "user:py@example.com")]
    ct2 = client.encrypt(request={"name": sym.name, "plaintext": b"iam"}, metadata=as_py).ciphertext
    expect(client.decrypt(request={"name": sym.name, "ciphertext": ct2}, metadata=as_py).plaintext == b"iam", "iam allows")
    expect_error(exceptions.PermissionDenied,
                 lambda: client.encrypt(request={"name": sym.name, "plaintext": b"x"}, metadata=[(PRINCIPAL_HEADER, "user:eve@example.com")]),
                 "iam denies another principal")
    expect_error(exceptions.PermissionDenied,
                 lambda: client.get_crypto_key(name=sym.name, metadata=as_py), "encrypter cannot read key metadata")
    allowed = client.test_iam_permissions(request={"resource": sym.name, "permissions": [
        "cloudkms.cryptoKeyVersions.useToEncrypt", "cloudkms.cryptoKeys.update"]}, metadata=as_py)
    expect(list(allowed.permissions) == ["cloudkms.cryptoKeyVersions.useToEncrypt"], "test permissions")
    stale = policy_pb2.Policy(version=3, etag=policy.etag)
    expect_error(exceptions.Aborted, lambda: client.set_iam_policy(request={"resource": sym.name, "policy": stale}), "stale etag")

    issue_25_checks(client, ring.name, "grpc")
    if PQC:
        pqc_checks(client, ring.name, "grpc")
    if REST_URL:
        rest_scenario(REST_URL)
    print("gcp scenario: all checks passed")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.stderr.write("usage: gcp_scenario.py <host:port> [<rest url>]\n")
        sys.exit(2)
    REST_URL = sys.argv[2] if len(sys.argv) == 3 else None
    PQC = os.environ.get("KEYPORT_PQC") == "1"
    try:
        main(sys.argv[1])
    except AssertionError as err:
        sys.stderr.write(f"gcp scenario FAILED: {err}\n")
        sys.exit(1)
