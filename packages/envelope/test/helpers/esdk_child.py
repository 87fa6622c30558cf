"""The AWS Encryption SDK for Python (aws-encryption-sdk, from PyPI) as a child process.

The same line protocol as esdk-child.cjs (ESDK-JS): one JSON request per line on stdin, one
JSON answer per line on stdout, matched by id. Raw AES, raw RSA and AWS KMS keys (KMS at AWS_ENDPOINT_URL_KMS; keyrings: also the AWS KMS RSA keyring), through
one of two APIs, chosen per request by "api": "masterkey" (default; the SDK's own raw master key
providers, RawMasterKeyProvider, one per key, several making one provider) or "keyring" (the
Material Providers Library's raw AES, raw RSA and multi keyrings; with "requiredContextKeys",
those keyrings under its Required Encryption Context CMM, and "reproducedContext" given to
decrypt). Started by helpers/esdk.ts with the harness's Python (KEYPORT_ESDK_PYTHON).
"""

import base64
import json
import sys

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy, EncryptionSDKClient, StrictAwsKmsMasterKeyProvider
from aws_encryption_sdk.identifiers import Algorithm, EncryptionKeyType, WrappingAlgorithm
from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
from aws_encryption_sdk.exceptions import UnknownIdentityError
from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider
from aws_cryptographic_material_providers.mpl import AwsCryptographicMaterialProviders
from aws_cryptographic_material_providers.mpl.config import MaterialProvidersConfig
from aws_cryptographic_material_providers.mpl.models import (
    AesWrappingAlg,
    CreateAwsKmsKeyringInput,
    CreateAwsKmsRsaKeyringInput,
    CreateDefaultCryptographicMaterialsManagerInput,
    CreateMultiKeyringInput,
    CreateRawAesKeyringInput,
    CreateRawEcdhKeyringInput,
    EphemeralPrivateKeyToStaticPublicKeyInput,
    PublicKeyDiscoveryInput,
    RawEcdhStaticConfigurationsEphemeralPrivateKeyToStaticPublicKey,
    RawEcdhStaticConfigurationsPublicKeyDiscovery,
    RawEcdhStaticConfigurationsRawPrivateKeyToStaticPublicKey,
    RawPrivateKeyToStaticPublicKeyInput,
    CreateRawRsaKeyringInput,
    CreateRequiredEncryptionContextCMMInput,
    PaddingScheme,
)

RSA_PADDINGS = {
    "oaep-sha1": WrappingAlgorithm.RSA_OAEP_SHA1_MGF1,
    "oaep-sha256": WrappingAlgorithm.RSA_OAEP_SHA256_MGF1,
    "oaep-sha384": WrappingAlgorithm.RSA_OAEP_SHA384_MGF1,
    "oaep-sha512": WrappingAlgorithm.RSA_OAEP_SHA512_MGF1,
}
AES_WRAPPING = {
    16: WrappingAlgorithm.AES_128_GCM_IV12_TAG16_NO_PADDING,
    24: WrappingAlgorithm.AES_192_GCM_IV12_TAG16_NO_PADDING,
    32: WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
}
MPL = AwsCryptographicMaterialProviders(config=MaterialProvidersConfig())
MPL_AES = {
    16: AesWrappingAlg.ALG_AES128_GCM_IV12_TAG16,
    24: AesWrappingAlg.ALG_AES192_GCM_IV12_TAG16,
    32: AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16,
}
MPL_RSA = {
    "oaep-sha1": PaddingScheme.OAEP_SHA1_MGF1,
    "oaep-sha256": PaddingScheme.OAEP_SHA256_MGF1,
    "oaep-sha384": PaddingScheme.OAEP_SHA384_MGF1,
    "oaep-sha512": PaddingScheme.OAEP_SHA512_MGF1,
}
CLIENTS = {
    "require": EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT),
    # Non-committing suites (v1 messages) are written only under this policy.
    "legacy": EncryptionSDKClient(commitment_policy=CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT),
}


def wrapping_key(k):
    if k["type"] == "aes":
        material = base64.b64decode(k["key"])
        return WrappingKey(
            wrapping_algorithm=AES_WRAPPING[len(material)],
            wrapping_key=material,
            wrapping_key_type=EncryptionKeyType.SYMMETRIC,
        )
    return WrappingKey(
        wrapping_algorithm=RSA_PADDINGS[k.get("padding", "oaep-sha256")],
        wrapping_key=k["privateKey"].encode("ascii"),
        wrapping_key_type=EncryptionKeyType.PRIVATE,
    )


def key_provider(k):
    """A provider (namespace) holding one key (name), which knows no other key id."""
    if k["type"] == "kms":
        # AWS KMS through botocore, which takes its endpoint from AWS_ENDPOINT_URL_KMS (an emulator).
        return StrictAwsKmsMasterKeyProvider(key_ids=[k["arn"]])
    name = k["name"].encode("utf-8")
    wrapping = wrapping_key(k)

    class OneRawKey(RawMasterKeyProvider):
        provider_id = k["namespace"]

        def _get_raw_key(self, key_id):
            if key_id != name:
                raise UnknownIdentityError(f"no key {key_id!r} here")
            return wrapping

    p = OneRawKey()
    p.add_master_key(name)
    return p


def provider(keys):
    first = key_provider(keys[0])
    for k in keys[1:]:
        first.add_master_key_provider(key_provider(k))
    return first


def one_keyring(k):
    if k["type"] == "kms":
        import boto3  # the keyring takes a client; its endpoint comes from AWS_ENDPOINT_URL_KMS

        client = boto3.client("kms", region_name=k["arn"].split(":")[3])
        return MPL.create_aws_kms_keyring(input=CreateAwsKmsKeyringInput(kms_key_id=k["arn"], kms_client=client))
    if k["type"] == "kms-rsa":
        import boto3  # as "kms": the endpoint comes from AWS_ENDPOINT_URL_KMS

        client = boto3.client("kms", region_name=k["arn"].split(":")[3])
        return MPL.create_aws_kms_rsa_keyring(
            input=CreateAwsKmsRsaKeyringInput(
                public_key=k["publicKey"].encode("ascii"),
                kms_key_id=k["arn"],
                encryption_algorithm=k.get("algorithm", "RSAES_OAEP_SHA_256"),
                kms_client=client,
            )
        )
    if k["type"] == "ecdh":
        # The raw ECDH keyring: public keys as base64 SPKI DER, private keys as PKCS #8 PEM.
        if k["scheme"] == "static":
            scheme = RawEcdhStaticConfigurationsRawPrivateKeyToStaticPublicKey(
                RawPrivateKeyToStaticPublicKeyInput(
                    sender_static_private_key=k["senderPrivateKey"].encode("ascii"),
                    recipient_public_key=base64.b64decode(k["recipientPublicKey"]),
                )
            )
        elif k["scheme"] == "ephemeral":
            scheme = RawEcdhStaticConfigurationsEphemeralPrivateKeyToStaticPublicKey(
                EphemeralPrivateKeyToStaticPublicKeyInput(recipient_public_key=base64.b64decode(k["recipientPublicKey"]))
            )
        else:
            scheme = RawEcdhStaticConfigurationsPublicKeyDiscovery(
                PublicKeyDiscoveryInput(recipient_static_private_key=k["recipientPrivateKey"].encode("ascii"))
            )
        return MPL.create_raw_ecdh_keyring(
            input=CreateRawEcdhKeyringInput(key_agreement_scheme=scheme, curve_spec=k["curve"])
        )
    if k["type"] == "aes":
        material = base64.b64decode(k["key"])
        return MPL.create_raw_aes_keyring(
            input=CreateRawAesKeyringInput(
                key_namespace=k["namespace"],
                key_name=k["name"],
                wrapping_key=material,
                wrapping_alg=MPL_AES[len(material)],
            )
        )
    return MPL.create_raw_rsa_keyring(
        input=CreateRawRsaKeyringInput(
            key_namespace=k["namespace"],
            key_name=k["name"],
            padding_scheme=MPL_RSA[k.get("padding", "oaep-sha256")],
            public_key=k["publicKey"].encode("ascii"),
            private_key=k["privateKey"].encode("ascii"),
        )
    )


def keyring(keys):
    rings = [one_keyring(k) for k in keys]
    if len(rings) == 1:
        return rings[0]
    return MPL.create_multi_keyring(input=CreateMultiKeyringInput(generator=rings[0], child_keyrings=rings[1:]))


def answer(req):
    client = CLIENTS[req.get("policy", "require")]
    data = base64.b64decode(req["data"])
    if "requiredContextKeys" in req:
        # Pairs authenticated but not stored: the CMM the ESDK offers for them (keyrings only).
        cmm = MPL.create_required_encryption_context_cmm(
            input=CreateRequiredEncryptionContextCMMInput(
                required_encryption_context_keys=req["requiredContextKeys"],
                # This MPL takes an underlying CMM only (not a keyring, which the spec allows).
                underlying_cmm=MPL.create_default_cryptographic_materials_manager(
                    input=CreateDefaultCryptographicMaterialsManagerInput(keyring=keyring(req["keyrings"]))
                ),
            )
        )
        keys = {"materials_manager": cmm}
    elif req.get("api", "masterkey") == "keyring":
        keys = {"keyring": keyring(req["keyrings"])}
    else:
        keys = {"key_provider": provider(req["keyrings"])}
    if req["op"] == "encrypt":
        options = {"source": data, **keys, "encryption_context": req.get("context", {})}
        if "suiteId" in req:
            options["algorithm"] = Algorithm.get_by_id(req["suiteId"])
        if "frameLength" in req:
            options["frame_length"] = req["frameLength"]
        message, _ = client.encrypt(**options)
        return {"data": base64.b64encode(message).decode("ascii")}
    if "reproducedContext" in req:
        keys["encryption_context"] = req["reproducedContext"]
    plaintext, header = client.decrypt(source=data, **keys)
    return {
        "data": base64.b64encode(plaintext).decode("ascii"),
        "suiteId": header.algorithm.algorithm_id,
        "context": header.encryption_context,
        "frameLength": header.frame_length,
    }


def main():
    for line in sys.stdin:
        req = json.loads(line)
        try:
            out = {"id": req["id"], "ok": True, **answer(req)}
        except Exception as e:  # every failure is an answer; the test decides what it means
            out = {"id": req["id"], "ok": False, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    sys.stderr.write(f"aws-encryption-sdk {aws_encryption_sdk.__version__}\n")
    main()
