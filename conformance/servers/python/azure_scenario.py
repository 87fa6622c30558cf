"""Second opinion on keyport's Key Vault test server, through Microsoft's Python SDK.

Run by test/azure-python.test.ts against a vault and a Managed HSM started by the test:
creates keys, round-trips every operation, checks the negative cases, and exits non-zero on
any mismatch. Environment: KEYPORT_AZUREKV_URL, KEYPORT_AZUREKV_HSM_URL, the three tokens,
and REQUESTS_CA_BUNDLE / SSL_CERT_FILE naming the servers' certificates.
"""

import datetime
import hashlib
import os
import sys
import time

import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.keys import (
    JsonWebKey,
    KeyClient,
    KeyRotationLifetimeAction,
    KeyRotationPolicy,
    KeyRotationPolicyAction,
)
from azure.keyvault.keys.crypto import (
    CryptographyClient,
    EncryptionAlgorithm,
    KeyWrapAlgorithm,
    SignatureAlgorithm,
)
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VAULT = os.environ["KEYPORT_AZUREKV_URL"]
HSM = os.environ["KEYPORT_AZUREKV_HSM_URL"]
ADMIN = os.environ["KEYPORT_AZUREKV_TOKEN_ADMIN"]
CRYPTO = os.environ["KEYPORT_AZUREKV_TOKEN_CRYPTO"]
READER = os.environ["KEYPORT_AZUREKV_TOKEN_READER"]

checks = 0
failures = []


class StaticToken:
    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)


def keys(url, token):
    # The challenge names vault.azure.net while the server is 127.0.0.1.
    return KeyClient(url, StaticToken(token), verify_challenge_resource=False, retry_total=0)


def crypto(key_id, token):
    # Without keys/get the client cannot fetch the key, so every operation goes to the server.
    return CryptographyClient(key_id, StaticToken(token), verify_challenge_resource=False, retry_total=0)


def check(name, condition):
    global checks
    checks += 1
    if not condition:
        failures.append(name)
        print(f"MISMATCH: {name}", file=sys.stderr)


def expect_error(name, fn, status, code=None):
    try:
        fn()
    except HttpResponseError as e:
        got_code = e.error.code if e.error else None
        check(f"{name}: status {e.status_code} == {status}", e.status_code == status)
        if code:
            check(f"{name}: code {got_code} == {code}", got_code == code)
        return
    check(f"{name}: expected HTTP {status}, call succeeded", False)


def public_rsa(key):
    n = int.from_bytes(key.key.n, "big")
    e = int.from_bytes(key.key.e, "big")
    return rsa.RSAPublicNumbers(e, n).public_key()


def public_ec(key, curve):
    x = int.from_bytes(key.key.x, "big")
    y = int.from_bytes(key.key.y, "big")
    return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()


def vault_scenario():
    admin = keys(VAULT, ADMIN)
    # Whatever the installed client defaults to (2026-01-01-preview for 4.12.0b3) must be served.
    sent = []

    # create / get / versions
    rsa_key = admin.create_rsa_key("py-rsa", size=2048, raw_request_hook=lambda r: sent.append(r.http_request.url))
    from importlib.metadata import version as installed_version
    from azure.keyvault.keys._shared.client_base import DEFAULT_VERSION
    print(f"azure-keyvault-keys {installed_version('azure-keyvault-keys')} default api-version: {DEFAULT_VERSION.value}")
    print(f"api-version sent by azure-keyvault-keys: {sent[-1].split('api-version=')[1].split('&')[0]}")
    check("default api-version served", rsa_key.name == "py-rsa")
    check("RSA kty", rsa_key.key_type == "RSA")
    check("RSA modulus length", len(rsa_key.key.n) == 256)
    second = admin.create_rsa_key("py-rsa", size=3072)
    check("latest version", admin.get_key("py-rsa").properties.version == second.properties.version)
    check("named version", admin.get_key("py-rsa", rsa_key.properties.version).key.n == rsa_key.key.n)
    versions = list(admin.list_properties_of_key_versions("py-rsa", max_page_size=1))
    check("two versions listed one per page", len(versions) == 2)
    expect_error("missing key", lambda: admin.get_key("py-missing"), 404, "KeyNotFound")
    expect_error("bad RSA size", lambda: admin.create_rsa_key("py-bad", size=1024), 400, "BadParameter")
    expect_error("oct in a vault", lambda: admin.create_oct_key("py-oct", hardware_protected=True), 400)
    expect_error("reader cannot create", lambda: keys(VAULT, READER).create_rsa_key("py-r"), 403, "Forbidden")
    expect_error("unknown principal", lambda: keys(VAULT, "py-nobody").get_key("py-rsa"), 403, "Forbidden")

    # RSA encrypt/decrypt, wrap/unwrap: server round trip and standard ciphertext from here
    pub = public_rsa(rsa_key)
    c = crypto(rsa_key.id, CRYPTO)
    local_pad = {
        EncryptionAlgorithm.rsa_oaep: padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None),
        EncryptionAlgorithm.rsa_oaep_256: padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
        EncryptionAlgorithm.rsa1_5: padding.PKCS1v15(),
    }
    for alg, pad in local_pad.items():
        enc = c.encrypt(alg, b"python secret")
        check(f"{alg} round trip", c.decrypt(alg, enc.ciphertext).plaintext == b"python secret")
        check(f"{alg} standard ciphertext", c.decrypt(alg, pub.encrypt(b"from python", pad)).plaintext == b"from python")
        wrapped = c.wrap_key(KeyWrapAlgorithm(alg.value), b"k" * 32)
        check(f"{alg} wrap round trip", c.unwrap_key(KeyWrapAlgorithm(alg.value), wrapped.encrypted_key).key == b"k" * 32)
    expect_error("bad ciphertext", lambda: c.decrypt(EncryptionAlgorithm.rsa_oaep, b"\x01" * 256), 400, "BadParameter")

    # RS/PS signatures over digests, checked with the cryptography package
    for bits, h in ((256, hashes.SHA256), (384, hashes.SHA384), (512, hashes.SHA512)):
        digest = hashlib.new(f"sha{bits}", b"py message").digest()
        for fam in ("RS", "PS"):
            alg = SignatureAlgorithm(f"{fam}{bits}")
            sig = c.sign(alg, digest).signature
            pad = padding.PKCS1v15() if fam == "RS" else padding.PSS(padding.MGF1(h()), h().digest_size)
            try:
                pub.verify(sig, digest, pad, utils.Prehashed(h()))
                ok = True
            except Exception:
                ok = False
            check(f"{alg} verifies locally", ok)
            check(f"{alg} verifies on server", c.verify(alg, digest, sig).is_valid)
            check(f"{alg} wrong digest fails", not c.verify(alg, hashlib.new(f"sha{bits}", b"x").digest(), sig).is_valid)
        expect_error(f"digest length {bits}", lambda: c.sign(SignatureAlgorithm(f"RS{bits}"), b"\x00" * 20), 400)

    # ES signatures: raw r||s
    for crv, alg, h, curve in (("P-256", "ES256", hashes.SHA256, ec.SECP256R1()),
                               ("P-384", "ES384", hashes.SHA384, ec.SECP384R1()),
                               ("P-521", "ES512", hashes.SHA512, ec.SECP521R1())):
        k = admin.create_ec_key(f"py-ec-{crv}", curve=crv)
        ec_pub = public_ec(k, curve)
        ccl = crypto(k.id, CRYPTO)
        hh = hashlib.new(h().name)
        hh.update(b"ec message")
        digest = hh.digest()
        sig = ccl.sign(SignatureAlgorithm(alg), digest).signature
        size = len(sig) // 2
        der = utils.encode_dss_signature(int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big"))
        try:
            ec_pub.verify(der, digest, ec.ECDSA(utils.Prehashed(h())))
            ok = True
        except Exception:
            ok = False
        check(f"{alg} verifies locally", ok)
        check(f"{alg} verifies on server", ccl.verify(SignatureAlgorithm(alg), digest, sig).is_valid)
        expect_error(f"{alg} cannot encrypt", lambda: ccl.encrypt(EncryptionAlgorithm.rsa_oaep, b"x"), 403, "Forbidden")

    # import a JWK generated here
    priv = ec.generate_private_key(ec.SECP256R1())
    nums = priv.private_numbers()
    b = lambda i, n=32: i.to_bytes(n, "big")
    imported = admin.import_key("py-imported", JsonWebKey(kty="EC", crv="P-256", x=b(nums.public_numbers.x), y=b(nums.public_numbers.y), d=b(nums.private_value)))
    digest = hashlib.sha256(b"imported").digest()
    sig = crypto(imported.id, CRYPTO).sign(SignatureAlgorithm.es256, digest).signature
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        priv.public_key().verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        ok = True
    except Exception:
        ok = False
    check("imported key signs with the imported private key", ok)

    # update: disable, key_ops, tags
    upd = admin.update_key_properties("py-rsa", enabled=False, tags={"env": "py"})
    check("disabled", upd.properties.enabled is False and upd.properties.tags == {"env": "py"})
    expect_error("disabled key encrypt", lambda: crypto(upd.id, CRYPTO).encrypt(EncryptionAlgorithm.rsa_oaep, b"x"), 403, "Forbidden")
    admin.update_key_properties("py-rsa", enabled=True, key_operations=["sign", "verify"])
    expect_error("key_ops forbid encrypt", lambda: crypto(upd.id, CRYPTO).encrypt(EncryptionAlgorithm.rsa_oaep, b"x"), 403, "Forbidden")

    # past exp: no new encryption, old ciphertext still decrypts
    admin.update_key_properties("py-rsa", key_operations=["encrypt", "decrypt"])
    live = crypto(upd.id, CRYPTO)
    old = live.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"before expiry").ciphertext
    admin.update_key_properties("py-rsa", expires_on=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1))
    expect_error("expired key encrypt", lambda: live.encrypt(EncryptionAlgorithm.rsa_oaep_256, b"x"), 403, "Forbidden")
    check("expired key decrypts", live.decrypt(EncryptionAlgorithm.rsa_oaep_256, old).plaintext == b"before expiry")

    # injected throttling through the admin route
    requests.post(f"{VAULT}/_keyport/faults", json={"throttle": {"requests": 1, "retryAfterSeconds": 7}}, timeout=10)
    try:
        admin.get_key("py-rsa")
        check("throttled", False)
    except HttpResponseError as e:
        check("throttled 429", e.status_code == 429 and e.error.code == "Throttled")
        check("Retry-After", e.response.headers.get("Retry-After") == "7")
    check("served after throttling", admin.get_key("py-rsa").name == "py-rsa")

    # list keys paged
    names = [k.name for k in admin.list_properties_of_keys(max_page_size=2)]
    check("list keys sees all", {"py-rsa", "py-imported", "py-ec-P-256"} <= set(names))

    # soft delete / deleted / conflict / recover / purge
    admin.create_ec_key("py-del")
    deleted = admin.begin_delete_key("py-del", _polling_interval=0).result()
    check("recovery id", deleted.recovery_id.endswith("/deletedkeys/py-del"))
    check("get deleted", admin.get_deleted_key("py-del").name == "py-del")
    check("list deleted", "py-del" in [d.name for d in admin.list_deleted_keys()])
    try:
        admin.create_ec_key("py-del")
        check("create over deleted name is 409", False)
    except ResourceExistsError as e:
        check("create over deleted name is 409", e.status_code == 409)
        inner = (e.error.innererror or {}).get("code") if e.error else None
        check("409 innererror ObjectIsDeletedButRecoverable", inner == "ObjectIsDeletedButRecoverable")
    admin.begin_recover_deleted_key("py-del", _polling_interval=0).result()
    check("recovered", admin.get_key("py-del").name == "py-del")
    admin.begin_delete_key("py-del", _polling_interval=0).result()
    admin.purge_deleted_key("py-del")
    try:
        admin.get_deleted_key("py-del")
        check("purged", False)
    except ResourceNotFoundError:
        check("purged", True)

    # rotate and rotation policy
    before = admin.get_key("py-imported").properties.version
    rotated = admin.rotate_key("py-imported")
    check("rotate adds a version", rotated.properties.version != before)
    policy = admin.update_key_rotation_policy(
        "py-imported",
        KeyRotationPolicy(),
        lifetime_actions=[KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create="P30D")],
        expires_in="P90D",
    )
    check("policy expiry", policy.expires_in == "P90D")
    got = admin.get_key_rotation_policy("py-imported")
    check("policy read back", got.lifetime_actions[0].action == KeyRotationPolicyAction.rotate and got.lifetime_actions[0].time_after_create == "P30D")
    expect_error("policy too short", lambda: admin.update_key_rotation_policy("py-imported", KeyRotationPolicy(), expires_in="P1D"), 400, "BadParameter")

    # backup / restore
    blob = admin.backup_key("py-imported")
    expect_error("restore over a live key", lambda: admin.restore_key_backup(blob), 409, "Conflict")
    admin.begin_delete_key("py-imported", _polling_interval=0).result()
    admin.purge_deleted_key("py-imported")
    restored = admin.restore_key_backup(blob)
    check("restored old version", admin.get_key("py-imported", imported.properties.version).key.x == imported.key.x)
    check("restored", restored.name == "py-imported" and restored.key.x == rotated.key.x)
    expect_error("garbage backup", lambda: admin.restore_key_backup(b"garbage"), 400, "BadParameter")
    expect_error("random bytes in a vault", lambda: admin.get_random_bytes(8), 400, "BadParameter")


def hsm_scenario():
    admin = keys(HSM, ADMIN)
    oct_key = admin.create_oct_key("py-aes", size=256, hardware_protected=True)
    check("oct-HSM kty", oct_key.key_type == "oct-HSM")
    c = crypto(oct_key.id, CRYPTO)
    enc = c.encrypt(EncryptionAlgorithm.a256_gcm, b"hsm data", additional_authenticated_data=b"aad")
    check("GCM iv and tag", len(enc.iv) == 12 and len(enc.tag) == 16)
    dec = c.decrypt(EncryptionAlgorithm.a256_gcm, enc.ciphertext, iv=enc.iv, authentication_tag=enc.tag, additional_authenticated_data=b"aad")
    check("GCM round trip", dec.plaintext == b"hsm data")
    expect_error("GCM wrong aad", lambda: c.decrypt(EncryptionAlgorithm.a256_gcm, enc.ciphertext, iv=enc.iv, authentication_tag=enc.tag, additional_authenticated_data=b"other"), 400)
    wrapped = c.wrap_key(KeyWrapAlgorithm.aes_256, b"d" * 32)
    check("A256KW round trip", c.unwrap_key(KeyWrapAlgorithm.aes_256, wrapped.encrypted_key).key == b"d" * 32)

    k = b"\x02" * 16
    known = admin.import_key("py-aes-known", JsonWebKey(kty="oct-HSM", k=k))
    kc = crypto(known.id, CRYPTO)
    e2 = kc.encrypt(EncryptionAlgorithm.a128_gcm, b"standard gcm", additional_authenticated_data=b"ctx")
    check("GCM is standard AES-GCM", AESGCM(k).decrypt(e2.iv, e2.ciphertext + e2.tag, b"ctx") == b"standard gcm")
    e3 = kc.encrypt(EncryptionAlgorithm.a128_cbcpad, b"cbc data", iv=b"\x01" * 16)
    check("CBCPAD round trip", kc.decrypt(EncryptionAlgorithm.a128_cbcpad, e3.ciphertext, iv=b"\x01" * 16).plaintext == b"cbc data")

    rnd = admin.get_random_bytes(16)
    check("random bytes", len(rnd) == 16)
    expect_error("random bytes count", lambda: admin.get_random_bytes(129), 400)
    check("RSA-HSM", admin.create_rsa_key("py-rsa-hsm", hardware_protected=True).key_type == "RSA-HSM")
    expect_error("key release", lambda: admin.release_key("py-rsa-hsm", "token"), 400, "BadParameter")


def main():
    for scenario in (vault_scenario, hsm_scenario):
        try:
            scenario()
        except Exception as e:  # an unexpected error is a mismatch too
            failures.append(f"{scenario.__name__}: {type(e).__name__}: {e}")
            print(f"MISMATCH: {scenario.__name__} raised {type(e).__name__}: {e}", file=sys.stderr)
    print(f"azure scenario: {checks - len(failures)} of {checks} checks matched")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
