// What a run SIGKILLed inside the HSM key's generation leaves in the token: @keyport/pkcs11
// generates the AES key (C_GenerateKey, CKA_LABEL = the name, CKA_ID "kpv1" + version 1) and
// then writes the key's metadata object; this child does the first step as the provider does and
// SIGKILLs itself before the second. `node killed-mid-generation-child.mjs <label> [remove]`, on
// the token SOFTHSM2_CONF names; `remove` destroys the objects under the label instead (the
// clean-up the rerun's error describes, as pkcs11-tool --delete-object would do it).
import pkcs11js from 'pkcs11js';

const P = pkcs11js;
const [label, remove] = process.argv.slice(2);
const p11 = new P.PKCS11();
p11.load(process.env.KEYPORT_SOFTHSM_MODULE);
p11.C_Initialize();
const slot = p11
  .C_GetSlotList(true)
  .find((s) => p11.C_GetTokenInfo(s).label.trimEnd() === process.env.KEYPORT_SOFTHSM_TOKEN);
const session = p11.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
p11.C_Login(session, P.CKU_USER, process.env.KEYPORT_SOFTHSM_PIN);
if (remove === 'remove') {
  p11.C_FindObjectsInit(session, [{ type: P.CKA_LABEL, value: label }]);
  const found = p11.C_FindObjects(session, 16);
  p11.C_FindObjectsFinal(session);
  for (const h of found) p11.C_DestroyObject(session, h);
  p11.C_Logout(session);
  p11.C_CloseSession(session);
  p11.C_Finalize();
  process.exit(0);
}
p11.C_GenerateKey(session, { mechanism: P.CKM_AES_KEY_GEN }, [
  { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
  { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
  { type: P.CKA_TOKEN, value: true },
  { type: P.CKA_PRIVATE, value: true },
  { type: P.CKA_VALUE_LEN, value: 32 },
  { type: P.CKA_SENSITIVE, value: true },
  { type: P.CKA_EXTRACTABLE, value: true },
  { type: P.CKA_ENCRYPT, value: true },
  { type: P.CKA_DECRYPT, value: true },
  { type: P.CKA_LABEL, value: label },
  { type: P.CKA_ID, value: Buffer.from('6b70763100000001', 'hex') },
]);
process.kill(process.pid, 'SIGKILL');
