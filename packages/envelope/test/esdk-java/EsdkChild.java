// The AWS Encryption SDK for Java (com.amazonaws:aws-encryption-sdk-java, from Maven Central)
// as a child process, speaking the line protocol of ../helpers/esdk-child.cjs: one JSON request
// per line on stdin, one JSON answer per line on stdout, matched by id.
//
// Two of its APIs, chosen per request by "api": "keyring" (the Material Providers Library's raw
// AES, raw RSA, raw ECDH and multi keyrings, the current API; with "requiredContextKeys" under its
// Required Encryption Context CMM, and "reproducedContext" given to decrypt) and "masterkey"
// (JceMasterKey and
// MultipleProviderFactory, the SDK's own older Java implementation). Compiled by the harness
// (target esdk-java) and run by helpers/esdk.ts: java -cp <the harness's classpath> EsdkChild
import com.amazonaws.encryptionsdk.AwsCrypto;
import com.amazonaws.encryptionsdk.CommitmentPolicy;
import com.amazonaws.encryptionsdk.CryptoAlgorithm;
import com.amazonaws.encryptionsdk.CryptoResult;
import com.amazonaws.encryptionsdk.MasterKeyProvider;
import com.amazonaws.encryptionsdk.jce.JceMasterKey;
import com.amazonaws.encryptionsdk.multi.MultipleProviderFactory;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import javax.crypto.spec.SecretKeySpec;
import software.amazon.cryptography.materialproviders.ICryptographicMaterialsManager;
import software.amazon.cryptography.materialproviders.IKeyring;
import software.amazon.cryptography.materialproviders.MaterialProviders;
import software.amazon.cryptography.materialproviders.model.AesWrappingAlg;
import software.amazon.cryptography.materialproviders.model.CreateDefaultCryptographicMaterialsManagerInput;
import software.amazon.cryptography.materialproviders.model.CreateMultiKeyringInput;
import software.amazon.cryptography.materialproviders.model.CreateRawAesKeyringInput;
import software.amazon.cryptography.materialproviders.model.CreateRawEcdhKeyringInput;
import software.amazon.cryptography.materialproviders.model.CreateRawRsaKeyringInput;
import software.amazon.cryptography.materialproviders.model.CreateRequiredEncryptionContextCMMInput;
import software.amazon.cryptography.materialproviders.model.EphemeralPrivateKeyToStaticPublicKeyInput;
import software.amazon.cryptography.materialproviders.model.MaterialProvidersConfig;
import software.amazon.cryptography.materialproviders.model.PaddingScheme;
import software.amazon.cryptography.materialproviders.model.PublicKeyDiscoveryInput;
import software.amazon.cryptography.materialproviders.model.RawEcdhStaticConfigurations;
import software.amazon.cryptography.materialproviders.model.RawPrivateKeyToStaticPublicKeyInput;
import software.amazon.cryptography.primitives.model.ECDHCurveSpec;

public class EsdkChild {
  static final ObjectMapper JSON = new ObjectMapper();
  static final MaterialProviders MPL =
      MaterialProviders.builder().MaterialProvidersConfig(MaterialProvidersConfig.builder().build()).build();

  public static void main(String[] args) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
    System.setOut(System.err); // answers only on the real stdout
    for (String line; (line = in.readLine()) != null; ) {
      JsonNode req = JSON.readTree(line);
      ObjectNode answer = JSON.createObjectNode();
      answer.put("id", req.get("id").asLong());
      try {
        answer(req, answer);
        answer.put("ok", true);
      } catch (Throwable e) { // every failure is an answer; the test decides what it means
        answer.put("ok", false);
        answer.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
      }
      out.println(JSON.writeValueAsString(answer));
    }
  }

  static void answer(JsonNode req, ObjectNode answer) throws Exception {
    boolean legacy = "legacy".equals(req.path("policy").asText("require"));
    AwsCrypto.Builder builder =
        AwsCrypto.builder()
            .withCommitmentPolicy(
                legacy ? CommitmentPolicy.ForbidEncryptAllowDecrypt : CommitmentPolicy.RequireEncryptRequireDecrypt);
    if (req.has("suiteId")) builder.withEncryptionAlgorithm(algorithm(req.get("suiteId").asInt()));
    if (req.has("frameLength")) builder.withEncryptionFrameSize(req.get("frameLength").asInt());
    AwsCrypto crypto = builder.build();
    byte[] data = Base64.getDecoder().decode(req.get("data").asText());
    boolean masterKeys = "masterkey".equals(req.path("api").asText("keyring"));
    JsonNode keys = req.get("keyrings");
    CryptoResult<byte[], ?> result;
    if ("encrypt".equals(req.get("op").asText())) {
      Map<String, String> context = stringMap(req.path("context"));
      if (req.has("requiredContextKeys")) {
        result = crypto.encryptData(requiredContextCmm(keys, req.get("requiredContextKeys")), data, context);
      } else {
        result =
            masterKeys
                ? crypto.encryptData(masterKeyProvider(keys), data, context)
                : crypto.encryptData(keyring(keys), data, context);
      }
      answer.put("data", Base64.getEncoder().encodeToString(result.getResult()));
      return;
    }
    if (req.has("reproducedContext")) {
      // The encryption context given to decrypt: the pairs the message did not store.
      result = crypto.decryptData(keyring(keys), data, stringMap(req.get("reproducedContext")));
    } else {
      result = masterKeys ? crypto.decryptData(masterKeyProvider(keys), data) : crypto.decryptData(keyring(keys), data);
    }
    answer.put("data", Base64.getEncoder().encodeToString(result.getResult()));
    answer.put("suiteId", result.getCryptoAlgorithm().getValue());
    answer.set("context", JSON.valueToTree(result.getEncryptionContext()));
    answer.put("frameLength", result.getHeaders().getFrameLength());
  }

  static Map<String, String> stringMap(JsonNode node) {
    Map<String, String> out = new HashMap<>();
    node.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
    return out;
  }

  /** The Required Encryption Context CMM over the keyrings: these keys are authenticated, not stored. */
  static ICryptographicMaterialsManager requiredContextCmm(JsonNode keys, JsonNode required) {
    List<String> names = new ArrayList<>();
    for (JsonNode n : required) names.add(n.asText());
    ICryptographicMaterialsManager underlying =
        MPL.CreateDefaultCryptographicMaterialsManager(
            CreateDefaultCryptographicMaterialsManagerInput.builder().keyring(keyring(keys)).build());
    return MPL.CreateRequiredEncryptionContextCMM(
        CreateRequiredEncryptionContextCMMInput.builder()
            .underlyingCMM(underlying)
            .requiredEncryptionContextKeys(names)
            .build());
  }

  static CryptoAlgorithm algorithm(int id) {
    for (CryptoAlgorithm a : CryptoAlgorithm.values()) if (a.getValue() == id) return a;
    throw new IllegalArgumentException("no suite " + id);
  }

  // ---------------------------------------------------------------- keyrings (MPL)

  static IKeyring keyring(JsonNode keys) {
    List<IKeyring> all = new ArrayList<>();
    for (JsonNode k : keys) all.add(oneKeyring(k));
    if (all.size() == 1) return all.get(0);
    return MPL.CreateMultiKeyring(
        CreateMultiKeyringInput.builder().generator(all.get(0)).childKeyrings(all.subList(1, all.size())).build());
  }

  static IKeyring oneKeyring(JsonNode k) {
    if ("ecdh".equals(k.get("type").asText())) return ecdhKeyring(k);
    String namespace = k.get("namespace").asText();
    String name = k.get("name").asText();
    if ("aes".equals(k.get("type").asText())) {
      byte[] key = Base64.getDecoder().decode(k.get("key").asText());
      AesWrappingAlg alg =
          key.length == 16
              ? AesWrappingAlg.ALG_AES128_GCM_IV12_TAG16
              : key.length == 24 ? AesWrappingAlg.ALG_AES192_GCM_IV12_TAG16 : AesWrappingAlg.ALG_AES256_GCM_IV12_TAG16;
      return MPL.CreateRawAesKeyring(
          CreateRawAesKeyringInput.builder()
              .keyNamespace(namespace)
              .keyName(name)
              .wrappingKey(ByteBuffer.wrap(key))
              .wrappingAlg(alg)
              .build());
    }
    PaddingScheme padding =
        switch (k.path("padding").asText("oaep-sha256")) {
          case "oaep-sha1" -> PaddingScheme.OAEP_SHA1_MGF1;
          case "oaep-sha384" -> PaddingScheme.OAEP_SHA384_MGF1;
          case "oaep-sha512" -> PaddingScheme.OAEP_SHA512_MGF1;
          default -> PaddingScheme.OAEP_SHA256_MGF1;
        };
    return MPL.CreateRawRsaKeyring(
        CreateRawRsaKeyringInput.builder()
            .keyNamespace(namespace)
            .keyName(name)
            .paddingScheme(padding)
            .publicKey(ByteBuffer.wrap(k.get("publicKey").asText().getBytes(StandardCharsets.US_ASCII)))
            .privateKey(ByteBuffer.wrap(k.get("privateKey").asText().getBytes(StandardCharsets.US_ASCII)))
            .build());
  }

  /** The raw ECDH keyring: public keys base64 SPKI DER, private keys PKCS #8 PEM. */
  static IKeyring ecdhKeyring(JsonNode k) {
    RawEcdhStaticConfigurations scheme =
        switch (k.get("scheme").asText()) {
          case "static" ->
              RawEcdhStaticConfigurations.builder()
                  .RawPrivateKeyToStaticPublicKey(
                      RawPrivateKeyToStaticPublicKeyInput.builder()
                          .senderStaticPrivateKey(ascii(k.get("senderPrivateKey").asText()))
                          .recipientPublicKey(ByteBuffer.wrap(Base64.getDecoder().decode(k.get("recipientPublicKey").asText())))
                          .build())
                  .build();
          case "ephemeral" ->
              RawEcdhStaticConfigurations.builder()
                  .EphemeralPrivateKeyToStaticPublicKey(
                      EphemeralPrivateKeyToStaticPublicKeyInput.builder()
                          .recipientPublicKey(ByteBuffer.wrap(Base64.getDecoder().decode(k.get("recipientPublicKey").asText())))
                          .build())
                  .build();
          default ->
              RawEcdhStaticConfigurations.builder()
                  .PublicKeyDiscovery(
                      PublicKeyDiscoveryInput.builder()
                          .recipientStaticPrivateKey(ascii(k.get("recipientPrivateKey").asText()))
                          .build())
                  .build();
        };
    return MPL.CreateRawEcdhKeyring(
        CreateRawEcdhKeyringInput.builder()
            .KeyAgreementScheme(scheme)
            .curveSpec(ECDHCurveSpec.valueOf(k.get("curve").asText()))
            .build());
  }

  static ByteBuffer ascii(String text) {
    return ByteBuffer.wrap(text.getBytes(StandardCharsets.US_ASCII));
  }

  // ---------------------------------------------------------------- master keys (JceMasterKey)

  static MasterKeyProvider<?> masterKeyProvider(JsonNode keys) throws Exception {
    List<JceMasterKey> all = new ArrayList<>();
    for (JsonNode k : keys) all.add(oneMasterKey(k));
    if (all.size() == 1) return all.get(0);
    return MultipleProviderFactory.buildMultiProvider(all); // the first one generates
  }

  static JceMasterKey oneMasterKey(JsonNode k) throws Exception {
    String namespace = k.get("namespace").asText();
    String name = k.get("name").asText();
    if ("aes".equals(k.get("type").asText())) {
      byte[] key = Base64.getDecoder().decode(k.get("key").asText());
      return JceMasterKey.getInstance(new SecretKeySpec(key, "AES"), namespace, name, "AES/GCM/NoPadding");
    }
    String hash =
        switch (k.path("padding").asText("oaep-sha256")) {
          case "oaep-sha1" -> "SHA-1";
          case "oaep-sha384" -> "SHA-384";
          case "oaep-sha512" -> "SHA-512";
          default -> "SHA-256";
        };
    KeyFactory rsa = KeyFactory.getInstance("RSA");
    PublicKey pub = rsa.generatePublic(new X509EncodedKeySpec(pemBody(k.get("publicKey").asText())));
    PrivateKey priv = rsa.generatePrivate(new PKCS8EncodedKeySpec(pemBody(k.get("privateKey").asText())));
    return JceMasterKey.getInstance(pub, priv, namespace, name, "RSA/ECB/OAEPWith" + hash + "AndMGF1Padding");
  }

  static byte[] pemBody(String pem) {
    return Base64.getMimeDecoder().decode(pem.replaceAll("-----[A-Z ]+-----", ""));
  }
}
