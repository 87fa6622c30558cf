// The AWS Encryption SDK for Go (github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk,
// from the Go module proxy) as a child process, built by the harness (target esdk-go).
//
// The same line protocol as esdk-child.cjs (ESDK-JS): one JSON request per line on stdin, one
// JSON answer per line on stdout, matched by id. Raw AES, raw RSA, raw ECDH and AWS KMS keys (KMS
// at AWS_ENDPOINT_URL_KMS) through the Material Providers Library's keyrings (several making a
// multi keyring, the first its generator; with "requiredContextKeys" under its Required
// Encryption Context CMM, and "reproducedContext" given to decrypt); the Go SDK has no master-key API. It writes framed bodies only (its frame length is 1 to 2^32).
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	mpl "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygenerated"
	mpltypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/mpl/awscryptographymaterialproviderssmithygeneratedtypes"
	primtypes "github.com/aws/aws-cryptographic-material-providers-library/releases/go/primitives/awscryptographyprimitivessmithygeneratedtypes"
	esdk "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygenerated"
	esdktypes "github.com/aws/aws-encryption-sdk/releases/go/encryption-sdk/awscryptographyencryptionsdksmithygeneratedtypes"
)

type keyring struct {
	Type       string `json:"type"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	Key        string `json:"key"`
	PrivateKey string `json:"privateKey"`
	PublicKey  string `json:"publicKey"`
	Padding    string `json:"padding"`
	Arn        string `json:"arn"`
	Algorithm  string `json:"algorithm"`
	// Raw ECDH: public keys base64 SPKI DER, private keys PKCS #8 PEM.
	Scheme              string `json:"scheme"`
	Curve               string `json:"curve"`
	SenderPrivateKey    string `json:"senderPrivateKey"`
	RecipientPublicKey  string `json:"recipientPublicKey"`
	RecipientPrivateKey string `json:"recipientPrivateKey"`
}

type request struct {
	ID          int               `json:"id"`
	Op          string            `json:"op"`
	Keyrings    []keyring         `json:"keyrings"`
	Data        string            `json:"data"`
	Context     map[string]string `json:"context"`
	SuiteID     *int              `json:"suiteId"`
	FrameLength *int64            `json:"frameLength"`
	Policy      string            `json:"policy"`
	// The Required Encryption Context CMM's keys (encrypt), and the context given to decrypt.
	RequiredContextKeys []string          `json:"requiredContextKeys"`
	ReproducedContext   map[string]string `json:"reproducedContext"`
}

var aesAlgs = map[int]mpltypes.AesWrappingAlg{
	16: mpltypes.AesWrappingAlgAlgAes128GcmIv12Tag16,
	24: mpltypes.AesWrappingAlgAlgAes192GcmIv12Tag16,
	32: mpltypes.AesWrappingAlgAlgAes256GcmIv12Tag16,
}

var rsaPaddings = map[string]mpltypes.PaddingScheme{
	"oaep-sha1":   mpltypes.PaddingSchemeOaepSha1Mgf1,
	"oaep-sha256": mpltypes.PaddingSchemeOaepSha256Mgf1,
	"oaep-sha384": mpltypes.PaddingSchemeOaepSha384Mgf1,
	"oaep-sha512": mpltypes.PaddingSchemeOaepSha512Mgf1,
}

var policies = map[string]mpltypes.ESDKCommitmentPolicy{
	"require": mpltypes.ESDKCommitmentPolicyRequireEncryptRequireDecrypt,
	// Non-committing suites (v1 messages) are written only under this policy.
	"legacy": mpltypes.ESDKCommitmentPolicyForbidEncryptAllowDecrypt,
}

// pick is table[name], name defaulting to def, or an error naming what was asked for.
func pick[T any](table map[string]T, name, def, what string) (T, error) {
	if name == "" {
		name = def
	}
	v, ok := table[name]
	if !ok {
		var zero T
		return zero, fmt.Errorf("no %s %q", what, name)
	}
	return v, nil
}

func oneKeyring(ctx context.Context, m *mpl.Client, k keyring) (mpltypes.IKeyring, error) {
	switch k.Type {
	case "aes":
		material, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			return nil, err
		}
		alg, ok := aesAlgs[len(material)]
		if !ok {
			return nil, fmt.Errorf("no AES wrapping for a %d-byte key", len(material))
		}
		return m.CreateRawAesKeyring(ctx, mpltypes.CreateRawAesKeyringInput{
			KeyNamespace: k.Namespace, KeyName: k.Name, WrappingAlg: alg, WrappingKey: material,
		})
	case "rsa":
		scheme, err := pick(rsaPaddings, k.Padding, "oaep-sha256", "RSA padding")
		if err != nil {
			return nil, err
		}
		return m.CreateRawRsaKeyring(ctx, mpltypes.CreateRawRsaKeyringInput{
			KeyNamespace: k.Namespace, KeyName: k.Name, PaddingScheme: scheme,
			PublicKey: []byte(k.PublicKey), PrivateKey: []byte(k.PrivateKey),
		})
	case "ecdh":
		var scheme mpltypes.RawEcdhStaticConfigurations
		switch k.Scheme {
		case "static":
			pub, err := base64.StdEncoding.DecodeString(k.RecipientPublicKey)
			if err != nil {
				return nil, err
			}
			scheme = &mpltypes.RawEcdhStaticConfigurationsMemberRawPrivateKeyToStaticPublicKey{
				Value: mpltypes.RawPrivateKeyToStaticPublicKeyInput{SenderStaticPrivateKey: []byte(k.SenderPrivateKey), RecipientPublicKey: pub},
			}
		case "ephemeral":
			pub, err := base64.StdEncoding.DecodeString(k.RecipientPublicKey)
			if err != nil {
				return nil, err
			}
			scheme = &mpltypes.RawEcdhStaticConfigurationsMemberEphemeralPrivateKeyToStaticPublicKey{
				Value: mpltypes.EphemeralPrivateKeyToStaticPublicKeyInput{RecipientPublicKey: pub},
			}
		default:
			scheme = &mpltypes.RawEcdhStaticConfigurationsMemberPublicKeyDiscovery{
				Value: mpltypes.PublicKeyDiscoveryInput{RecipientStaticPrivateKey: []byte(k.RecipientPrivateKey)},
			}
		}
		return m.CreateRawEcdhKeyring(ctx, mpltypes.CreateRawEcdhKeyringInput{
			CurveSpec: primtypes.ECDHCurveSpec(k.Curve), KeyAgreementScheme: scheme,
		})
	case "kms":
		client, err := kmsClientFor(ctx, k.Arn)
		if err != nil {
			return nil, err
		}
		return m.CreateAwsKmsKeyring(ctx, mpltypes.CreateAwsKmsKeyringInput{KmsKeyId: k.Arn, KmsClient: client})
	case "kms-rsa":
		// The AWS KMS RSA keyring: wraps with the public key (PEM) here, unwraps through KMS Decrypt.
		client, err := kmsClientFor(ctx, k.Arn)
		if err != nil {
			return nil, err
		}
		algorithm := kmstypes.EncryptionAlgorithmSpecRsaesOaepSha256
		if k.Algorithm == "RSAES_OAEP_SHA_1" {
			algorithm = kmstypes.EncryptionAlgorithmSpecRsaesOaepSha1
		}
		return m.CreateAwsKmsRsaKeyring(ctx, mpltypes.CreateAwsKmsRsaKeyringInput{
			KmsKeyId: k.Arn, KmsClient: client, PublicKey: []byte(k.PublicKey), EncryptionAlgorithm: algorithm,
		})
	}
	return nil, fmt.Errorf("the Go child has no %q keys", k.Type)
}

// kmsClientFor is AWS KMS through the Go SDK's default chain, which takes its endpoint from
// AWS_ENDPOINT_URL_KMS (an emulator), in the region the key's ARN names.
func kmsClientFor(ctx context.Context, arn string) (*kms.Client, error) {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 {
		return nil, fmt.Errorf("not a KMS key ARN: %q", arn)
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(parts[3]))
	if err != nil {
		return nil, err
	}
	return kms.NewFromConfig(cfg), nil
}

func keyringOf(ctx context.Context, m *mpl.Client, keys []keyring) (mpltypes.IKeyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	rings := make([]mpltypes.IKeyring, 0, len(keys))
	for _, k := range keys {
		r, err := oneKeyring(ctx, m, k)
		if err != nil {
			return nil, err
		}
		rings = append(rings, r)
	}
	if len(rings) == 1 {
		return rings[0], nil
	}
	return m.CreateMultiKeyring(ctx, mpltypes.CreateMultiKeyringInput{Generator: rings[0], ChildKeyrings: rings[1:]})
}

// frameLength reads the frame length from a message header the SDK has just accepted (its
// decrypt output does not name it): v2 after the context and EDKs and the content type; v1
// after them, the content type, 4 reserved bytes and the IV length.
func frameLength(msg []byte) (uint32, error) {
	at := 0
	need := func(n int) error {
		if at+n > len(msg) {
			return errors.New("header ends early")
		}
		return nil
	}
	u16 := func() (int, error) {
		if err := need(2); err != nil {
			return 0, err
		}
		v := int(binary.BigEndian.Uint16(msg[at:]))
		at += 2
		return v, nil
	}
	skip16 := func() error { // a u16-length-prefixed field
		n, err := u16()
		if err != nil {
			return err
		}
		if err := need(n); err != nil {
			return err
		}
		at += n
		return nil
	}
	if err := need(1); err != nil {
		return 0, err
	}
	version := msg[0]
	switch version {
	case 2:
		at = 1 + 2 + 32
	case 1:
		at = 1 + 1 + 2 + 16
	default:
		return 0, fmt.Errorf("message format %d", version)
	}
	if err := skip16(); err != nil { // the serialized context, u16 length first
		return 0, err
	}
	edks, err := u16()
	if err != nil {
		return 0, err
	}
	for i := 0; i < edks; i++ {
		for f := 0; f < 3; f++ { // provider id, provider info, ciphertext
			if err := skip16(); err != nil {
				return 0, err
			}
		}
	}
	at++ // content type
	if version == 1 {
		at += 4 + 1 // reserved, IV length
	}
	if err := need(4); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(msg[at:]), nil
}

func answer(ctx context.Context, m *mpl.Client, req request) (map[string]any, error) {
	policy, err := pick(policies, req.Policy, "require", "commitment policy")
	if err != nil {
		return nil, err
	}
	client, err := esdk.NewClient(esdktypes.AwsEncryptionSdkConfig{CommitmentPolicy: &policy})
	if err != nil {
		return nil, err
	}
	ring, err := keyringOf(ctx, m, req.Keyrings)
	if err != nil {
		return nil, err
	}
	data, err := base64.StdEncoding.DecodeString(req.Data)
	if err != nil {
		return nil, err
	}
	if req.Op == "encrypt" {
		in := esdktypes.EncryptInput{Plaintext: data, EncryptionContext: req.Context, Keyring: ring, FrameLength: req.FrameLength}
		if in.EncryptionContext == nil {
			in.EncryptionContext = map[string]string{}
		}
		if req.SuiteID != nil {
			suite := mpltypes.ESDKAlgorithmSuiteId(fmt.Sprintf("0x%04X", *req.SuiteID))
			in.AlgorithmSuiteId = &suite
		}
		if req.RequiredContextKeys != nil {
			// Pairs authenticated but not stored: the CMM the SDK offers for them.
			under, err := m.CreateDefaultCryptographicMaterialsManager(ctx, mpltypes.CreateDefaultCryptographicMaterialsManagerInput{Keyring: ring})
			if err != nil {
				return nil, err
			}
			cmm, err := m.CreateRequiredEncryptionContextCMM(ctx, mpltypes.CreateRequiredEncryptionContextCMMInput{
				UnderlyingCMM: under, RequiredEncryptionContextKeys: req.RequiredContextKeys,
			})
			if err != nil {
				return nil, err
			}
			in.Keyring = nil
			in.MaterialsManager = cmm
		}
		out, err := client.Encrypt(ctx, in)
		if err != nil {
			return nil, err
		}
		return map[string]any{"data": base64.StdEncoding.EncodeToString(out.Ciphertext)}, nil
	}
	out, err := client.Decrypt(ctx, esdktypes.DecryptInput{Ciphertext: data, Keyring: ring, EncryptionContext: req.ReproducedContext})
	if err != nil {
		return nil, err
	}
	var suite int
	if _, err := fmt.Sscanf(string(out.AlgorithmSuiteId), "0x%x", &suite); err != nil {
		return nil, err
	}
	frame, err := frameLength(data)
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"data":        base64.StdEncoding.EncodeToString(out.Plaintext),
		"suiteId":     suite,
		"context":     out.EncryptionContext,
		"frameLength": frame,
	}, nil
}

func main() {
	ctx := context.Background()
	m, err := mpl.NewClient(mpltypes.MaterialProvidersConfig{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, "aws-encryption-sdk for Go")
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		var req request
		reply := map[string]any{}
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			reply["ok"], reply["error"] = false, err.Error()
		} else if body, err := answer(ctx, m, req); err != nil {
			// Every failure is an answer; the test decides what it means.
			reply["ok"], reply["error"] = false, fmt.Sprintf("%T: %v", err, err)
		} else {
			reply = body
			reply["ok"] = true
		}
		reply["id"] = req.ID
		line, _ := json.Marshal(reply)
		out.Write(line)
		out.WriteByte('\n')
		out.Flush()
	}
}
