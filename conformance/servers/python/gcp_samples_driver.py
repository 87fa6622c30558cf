"""Runs Google's Cloud KMS Python samples against keyport's Cloud KMS test server (gRPC).

The samples (python-docs-samples kms/snippets, vendored unchanged in
test/fixtures/gcp-kms-python-samples) each build `kms.KeyManagementServiceClient()` with no
arguments. This driver redirects that one constructor: a client built without transport,
credentials or client options gets a gRPC transport on an insecure channel to the server
(anonymous: no call to google.auth.default()). Nothing else is changed. The driver then calls
each sample's function with the arguments Google's own snippets_test.py fixtures supply
(project, location, key ring, keys created in order), and checks what each returns and prints.

Usage: gcp_samples_driver.py <host:port> <samples dir> <phase>
  phase 1: everything except the deletions; schedules the destruction of one version.
  phase 2: run by the test after it advanced the server's clock past the destruction date:
           delete_key_version, delete_key, list_retired_resources, get_retired_resource.
The last line is "gcp samples phase N: K of K checks matched; ran: a,b,c" on success.
"""

import contextlib
import datetime
import hashlib
import io
import json
import sys
import time
import traceback

import grpc
from google.cloud import kms
from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcTransport

ADDRESS, SAMPLES, PHASE = sys.argv[1], sys.argv[2], sys.argv[3]
sys.path.insert(0, SAMPLES)

_original_init = kms.KeyManagementServiceClient.__init__


def _pointed_init(self, *args, **kwargs):
    if not args and not {"transport", "credentials", "client_options"} & kwargs.keys():
        kwargs["transport"] = KeyManagementServiceGrpcTransport(channel=grpc.insecure_channel(ADDRESS))
    _original_init(self, *args, **kwargs)


kms.KeyManagementServiceClient.__init__ = _pointed_init

P = "keyport-samples"
L = "us-east1"
R = "python-samples"
State = kms.CryptoKeyVersion.CryptoKeyVersionState
Alg = kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm
Purpose = kms.CryptoKey.CryptoKeyPurpose
THIRTY_DAYS = datetime.timedelta(days=30)

client = kms.KeyManagementServiceClient()
checks = 0
failures = []
ran = []


def check(name, condition):
    global checks
    checks += 1
    if not condition:
        failures.append(name)
        print(f"MISMATCH: {name}", file=sys.stderr)


def sample(module, *args):
    """Imports <module>.py from the samples, calls its function; returns (result, printed)."""
    fn = getattr(__import__(module), module)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            result = fn(*args)
    except Exception as e:  # noqa: BLE001 -- a sample that raises is a mismatch, reported
        failures.append(f"{module} raised {type(e).__name__}: {e}")
        print(f"MISMATCH: {module} raised", file=sys.stderr)
        traceback.print_exc()
        print(f"--- {module} printed:\n{out.getvalue()}", file=sys.stderr)
        return None, out.getvalue()
    ran.append(module)
    printed = out.getvalue()
    print(f"--- {module}\n{printed}", end="" if printed.endswith("\n") else "\n")
    return result, printed


def key_name(key_id):
    return client.crypto_key_path(P, L, R, key_id)


def version_name(key_id, version_id):
    return client.crypto_key_version_path(P, L, R, key_id, version_id)


def phase1():
    ring, out = sample("create_key_ring", P, L, R)
    check("create_key_ring name", ring is not None and ring.name == client.key_ring_path(P, L, R))
    check("create_key_ring printed", f"Created key ring: {client.key_ring_path(P, L, R)}" in out)

    key, out = sample("create_key_symmetric_encrypt_decrypt", P, L, R, "symmetric")
    check("symmetric purpose", key is not None and key.purpose == Purpose.ENCRYPT_DECRYPT)
    check("symmetric algorithm", key is not None and key.version_template.algorithm == Alg.GOOGLE_SYMMETRIC_ENCRYPTION)
    check("symmetric printed", f"Created symmetric key: {key_name('symmetric')}" in out)

    key, _ = sample("create_key_labels", P, L, R, "labeled")
    check("labels", key is not None and dict(key.labels) == {"team": "alpha", "cost_center": "cc1234"})

    key, _ = sample("create_key_hsm", P, L, R, "hsm")
    check("hsm protection level", key is not None and key.version_template.protection_level == kms.ProtectionLevel.HSM)
    check("hsm algorithm", key is not None and key.version_template.algorithm == Alg.GOOGLE_SYMMETRIC_ENCRYPTION)

    key, _ = sample("create_key_mac", P, L, R, "mac")
    check("mac purpose", key is not None and key.purpose == Purpose.MAC)
    check("mac algorithm", key is not None and key.version_template.algorithm == Alg.HMAC_SHA256)

    key, _ = sample("create_key_asymmetric_decrypt", P, L, R, "asymmetric-decrypt")
    check("asymmetric decrypt purpose", key is not None and key.purpose == Purpose.ASYMMETRIC_DECRYPT)
    check(
        "asymmetric decrypt algorithm",
        key is not None and key.version_template.algorithm == Alg.RSA_DECRYPT_OAEP_2048_SHA256,
    )

    key, _ = sample("create_key_asymmetric_sign", P, L, R, "asymmetric-sign")
    check("asymmetric sign purpose", key is not None and key.purpose == Purpose.ASYMMETRIC_SIGN)
    check("asymmetric sign algorithm", key is not None and key.version_template.algorithm == Alg.RSA_SIGN_PKCS1_2048_SHA256)

    key, _ = sample("create_key_rotation_schedule", P, L, R, "rotating")
    check("rotation period 30 days", key is not None and key.rotation_period == THIRTY_DAYS)
    check("next rotation time set", key is not None and bool(key.next_rotation_time))

    # The EC signing key of Google's asymmetric_sign_ec_key_id fixture (no sample creates one).
    client.create_crypto_key(
        request={
            "parent": client.key_ring_path(P, L, R),
            "crypto_key_id": "asymmetric-sign-ec",
            "crypto_key": {
                "purpose": Purpose.ASYMMETRIC_SIGN,
                "version_template": {"algorithm": Alg.EC_SIGN_P256_SHA256},
            },
        }
    )

    version, out = sample("create_key_version", P, L, R, "symmetric")
    check("create_key_version is version 2", version is not None and version.name == version_name("symmetric", "2"))
    check("create_key_version printed", f"Created key version: {version_name('symmetric', '2')}" in out)

    # Symmetric encryption, both directions through the samples (each checks the CRC32Cs).
    response, out = sample("encrypt_symmetric", P, L, R, "symmetric", "my message")
    check("encrypt_symmetric ciphertext", response is not None and len(response.ciphertext) > 0)
    check("encrypt_symmetric printed", "Ciphertext: b'" in out)
    if response is not None:
        plain = client.decrypt(request={"name": key_name("symmetric"), "ciphertext": response.ciphertext})
        check("encrypt_symmetric round trip", plain.plaintext == b"my message")
        decrypted, out = sample("decrypt_symmetric", P, L, R, "symmetric", response.ciphertext)
        check("decrypt_symmetric plaintext", decrypted is not None and decrypted.plaintext == b"my message")
        check("decrypt_symmetric printed", "Plaintext: b'my message'" in out)

    # RSA-OAEP: the sample encrypts locally under the public key, the other decrypts on the server.
    ciphertext, _ = sample("encrypt_asymmetric", P, L, R, "asymmetric-decrypt", "1", "my message")
    if ciphertext is not None:
        plain = client.asymmetric_decrypt(
            request={"name": version_name("asymmetric-decrypt", "1"), "ciphertext": ciphertext}
        )
        check("encrypt_asymmetric round trip", plain.plaintext == b"my message")
        decrypted, out = sample("decrypt_asymmetric", P, L, R, "asymmetric-decrypt", "1", ciphertext)
        check("decrypt_asymmetric plaintext", decrypted is not None and decrypted.plaintext == b"my message")
        check("decrypt_asymmetric printed", "Plaintext: b'my message'" in out)

    signed, _ = sample("sign_asymmetric", P, L, R, "asymmetric-sign", "1", "my message")
    check("sign_asymmetric signature", signed is not None and len(signed.signature) > 0)
    if signed is not None:
        ok, out = sample("verify_asymmetric_rsa", P, L, R, "asymmetric-sign", "1", "my message", signed.signature)
        check("verify_asymmetric_rsa verifies", ok is True and "Signature verified" in out)
        bad, out = sample("verify_asymmetric_rsa", P, L, R, "asymmetric-sign", "1", "other message", signed.signature)
        check("verify_asymmetric_rsa rejects another message", bad is False and "Signature failed to verify" in out)

    digest = hashlib.sha256(b"my message").digest()
    ec_signature = client.asymmetric_sign(
        request={"name": version_name("asymmetric-sign-ec", "1"), "digest": {"sha256": digest}}
    ).signature
    ok, out = sample("verify_asymmetric_ec", P, L, R, "asymmetric-sign-ec", "1", "my message", ec_signature)
    check("verify_asymmetric_ec verifies", ok is True and "Signature verified" in out)

    mac, _ = sample("sign_mac", P, L, R, "mac", "1", "my data")
    check("sign_mac mac", mac is not None and len(mac.mac) == 32)
    if mac is not None:
        verified, out = sample("verify_mac", P, L, R, "mac", "1", "my data", mac.mac)
        check("verify_mac success", verified is not None and verified.success is True)
        check("verify_mac printed", "Verified: True" in out)
        verified, out = sample("verify_mac", P, L, R, "mac", "1", "other data", mac.mac)
        check("verify_mac rejects other data", verified is not None and verified.success is False)
        check("verify_mac printed False", "Verified: False" in out)

    public_key, out = sample("get_public_key", P, L, R, "asymmetric-decrypt", "1")
    check("get_public_key pem", public_key is not None and public_key.pem.startswith("-----BEGIN PUBLIC KEY-----"))
    check("get_public_key algorithm", public_key is not None and public_key.algorithm == Alg.RSA_DECRYPT_OAEP_2048_SHA256)

    jwk_json, _ = sample("get_public_key_jwk", P, L, R, "asymmetric-decrypt", "1")
    jwk = json.loads(jwk_json) if isinstance(jwk_json, str) else {}
    check("get_public_key_jwk is an RSA JWK", jwk.get("kty") == "RSA" and jwk.get("e") == "AQAB" and "d" not in jwk)

    attestation, out = sample("get_key_version_attestation", P, L, R, "hsm", "1")
    check("attestation format", attestation is not None and bool(attestation.format))
    check("attestation content", attestation is not None and len(attestation.content) > 0)
    check("attestation printed", "Got key attestation: b'" in out)

    key, out = sample("get_key_labels", P, L, R, "labeled")
    check("get_key_labels", key is not None and dict(key.labels) == {"team": "alpha", "cost_center": "cc1234"})
    check("get_key_labels printed", "team = alpha" in out and "cost_center = cc1234" in out)

    key, _ = sample("update_key_update_labels", P, L, R, "labeled")
    check("update_key_update_labels", key is not None and dict(key.labels) == {"new_label": "new_value"})
    key, _ = sample("update_key_remove_labels", P, L, R, "labeled")
    check("update_key_remove_labels", key is not None and dict(key.labels) == {})
    check("labels removed on the server", dict(client.get_crypto_key(name=key_name("labeled")).labels) == {})

    key, _ = sample("update_key_add_rotation", P, L, R, "symmetric")
    check("update_key_add_rotation period", key is not None and key.rotation_period == THIRTY_DAYS)
    check("update_key_add_rotation next", key is not None and bool(key.next_rotation_time))
    key, _ = sample("update_key_remove_rotation", P, L, R, "symmetric")
    check("update_key_remove_rotation period", key is not None and not key.rotation_period)
    check("update_key_remove_rotation next", key is not None and not key.next_rotation_time)

    key, out = sample("update_key_set_primary", P, L, R, "symmetric", "2")
    check("update_key_set_primary", key is not None and key.primary.name == version_name("symmetric", "2"))
    check("update_key_set_primary printed", f"Updated {key_name('symmetric')} primary to 2" in out)
    key, _ = sample("update_key_set_primary", P, L, R, "symmetric", "1")
    check("update_key_set_primary back to 1", key is not None and key.primary.name == version_name("symmetric", "1"))

    # A second version of the asymmetric key for the version lifecycle samples.
    version, _ = sample("create_key_version", P, L, R, "asymmetric-decrypt")
    check("asymmetric version 2", version is not None and version.name == version_name("asymmetric-decrypt", "2"))
    version, _ = sample("disable_key_version", P, L, R, "asymmetric-decrypt", "2")
    check("disable_key_version", version is not None and version.state == State.DISABLED)
    version, _ = sample("enable_key_version", P, L, R, "asymmetric-decrypt", "2")
    check("enable_key_version", version is not None and version.state == State.ENABLED)
    version, _ = sample("destroy_key_version", P, L, R, "asymmetric-decrypt", "2")
    check("destroy_key_version", version is not None and version.state == State.DESTROY_SCHEDULED)
    version, _ = sample("restore_key_version", P, L, R, "asymmetric-decrypt", "2")
    check("restore_key_version", version is not None and version.state == State.DISABLED)
    # Destroyed for good in phase 2, after the clock moved: then delete_key_version may delete it.
    version, _ = sample("destroy_key_version", P, L, R, "asymmetric-decrypt", "2")
    check("destroy_key_version again", version is not None and version.state == State.DESTROY_SCHEDULED)

    policy, out = sample("iam_get_policy", P, L, R, "symmetric")
    check("iam_get_policy", policy is not None and list(policy.bindings) == [])
    check("iam_get_policy printed", f"IAM policy for {key_name('symmetric')}" in out)
    member = "group:test@google.com"
    policy, out = sample("iam_add_member", P, L, R, "symmetric", member)
    check("iam_add_member", policy is not None and any(member in b.members for b in policy.bindings))
    check("iam_add_member printed", f"Added {member} to {key_name('symmetric')}" in out)
    policy, out = sample("iam_get_policy", P, L, R, "symmetric")
    check(
        "iam_get_policy after add",
        "roles/cloudkms.cryptoKeyEncrypterDecrypter" in out and f"- {member}" in out,
    )
    # iam_remove_member, as Google's test: two members bound, one removed.
    resource = key_name("asymmetric-sign")
    policy = client.get_iam_policy(request={"resource": resource})
    policy.bindings.add(
        role="roles/cloudkms.cryptoKeyEncrypterDecrypter",
        members=["group:test@google.com", "group:tester@google.com"],
    )
    client.set_iam_policy(request={"resource": resource, "policy": policy})
    policy, _ = sample("iam_remove_member", P, L, R, "asymmetric-sign", "group:test@google.com")
    check("iam_remove_member removed", policy is not None and not any(member in b.members for b in policy.bindings))
    check(
        "iam_remove_member kept the other",
        policy is not None and any("group:tester@google.com" in b.members for b in policy.bindings),
    )

    random, out = sample("generate_random_bytes", P, L, 256)
    check("generate_random_bytes", random is not None and len(random.data) == 256)
    check("generate_random_bytes printed", "Random bytes: b'" in out)

    # Key import: job, target key, the manually wrapped EC key, the states around it.
    job_name = client.import_job_path(P, L, R, "my-import-job")
    _, out = sample("create_import_job", P, L, R, "my-import-job")
    check("create_import_job printed", f"Created import job: {job_name}" in out)
    _, out = sample("check_state_import_job", P, L, R, "my-import-job")
    check("check_state_import_job printed", f"Current state of import job {job_name}: " in out)
    # The job is PENDING_GENERATION until its RSA-3072 wrapping key exists, as with the service.
    for _ in range(600):
        job = client.get_import_job(name=job_name)
        if job.state != kms.ImportJob.ImportJobState.PENDING_GENERATION:
            break
        time.sleep(0.1)
    check("import job becomes ACTIVE", job.state == kms.ImportJob.ImportJobState.ACTIVE)
    check("import job public key", job.public_key.pem.startswith("-----BEGIN PUBLIC KEY-----"))
    _, out = sample("create_key_for_import", P, L, R, "my-import-job-ec-key")
    check("create_key_for_import printed", f"Created hsm key: {key_name('my-import-job-ec-key')}" in out)
    check(
        "key for import has no version",
        list(client.list_crypto_key_versions(request={"parent": key_name("my-import-job-ec-key")})) == [],
    )
    # Excluded (SOURCE.md): the sample passes the class ec.SECP256R1 where the cryptography
    # package wants an instance, and fails before it calls the service with every cryptography
    # release from 48.0.1 (the version its requirements.txt pins) on. Checked here so that the
    # day the sample is fixed upstream, this test says so.
    import_manually_wrapped_key = __import__("import_manually_wrapped_key").import_manually_wrapped_key
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            import_manually_wrapped_key(P, L, R, "my-import-job-ec-key", "my-import-job")
        check("import_manually_wrapped_key still fails locally (see SOURCE.md)", False)
    except TypeError as e:
        check("import_manually_wrapped_key fails in cryptography", str(e) == "curve must be an EllipticCurve instance")
        check("import_manually_wrapped_key printed nothing", printed.getvalue() == "")
    _, out = sample("check_state_imported_key", P, L, R, "my-import-job")
    check("check_state_imported_key printed", f"Current state of import job {job_name}: 2" in out)

    rings, out = sample("quickstart", P, L)
    check("quickstart lists the key ring", rings is not None and client.key_ring_path(P, L, R) in [r.name for r in rings])
    check("quickstart printed", client.key_ring_path(P, L, R) in out)

    # For phase 2's delete_key (Google's test creates it this way).
    client.create_crypto_key(
        request={
            "parent": client.key_ring_path(P, L, R),
            "crypto_key_id": "delete-key",
            "crypto_key": {"purpose": Purpose.ENCRYPT_DECRYPT},
            "skip_initial_version_creation": True,
        }
    )


def phase2():
    check(
        "version 2 is DESTROYED",
        client.get_crypto_key_version(name=version_name("asymmetric-decrypt", "2")).state == State.DESTROYED,
    )
    _, out = sample("delete_key_version", P, L, R, "asymmetric-decrypt", "2")
    check("delete_key_version printed", f"Deleted key version: {version_name('asymmetric-decrypt', '2')}" in out)
    remaining = [v.name for v in client.list_crypto_key_versions(request={"parent": key_name("asymmetric-decrypt")})]
    check("delete_key_version deleted it", remaining == [version_name("asymmetric-decrypt", "1")])

    _, out = sample("delete_key", P, L, R, "delete-key")
    check("delete_key printed", f"Deleted key: {key_name('delete-key')}" in out)
    retired, out = sample("list_retired_resources", P, L)
    ours = [r for r in (retired or []) if r.original_resource == key_name("delete-key")]
    check("list_retired_resources has the deleted key once", len(ours) == 1)
    if len(ours) == 1:
        check("list_retired_resources printed", f"Retired resource: {ours[0].name}" in out)
        got, out = sample("get_retired_resource", P, L, ours[0].name.split("/")[-1])
        check("get_retired_resource name", got is not None and got.name == ours[0].name)
        check("get_retired_resource printed", f"Got retired resource: {ours[0].name}" in out)


{"1": phase1, "2": phase2}[PHASE]()
if failures:
    print(f"gcp samples phase {PHASE}: {len(failures)} mismatches: {failures}", file=sys.stderr)
    sys.exit(1)
print(f"gcp samples phase {PHASE}: {checks} of {checks} checks matched; ran: {','.join(sorted(set(ran)))}")
