// Predefined roles and the Cloud KMS permissions they carry (from the "Cloud KMS roles and
// permissions" reference page), limited to the permissions this server checks.
const P = {
  encrypt: 'cloudkms.cryptoKeyVersions.useToEncrypt',
  decrypt: 'cloudkms.cryptoKeyVersions.useToDecrypt',
  sign: 'cloudkms.cryptoKeyVersions.useToSign',
  verify: 'cloudkms.cryptoKeyVersions.useToVerify',
  decapsulate: 'cloudkms.cryptoKeyVersions.useToDecapsulate',
  viewPublicKey: 'cloudkms.cryptoKeyVersions.viewPublicKey',
  random: 'cloudkms.locations.generateRandomBytes',
  useToImport: 'cloudkms.importJobs.useToImport',
} as const;
export const PERMISSION = P;

const READ = [
  'cloudkms.keyRings.get',
  'cloudkms.keyRings.list',
  'cloudkms.keyRings.getIamPolicy',
  'cloudkms.cryptoKeys.get',
  'cloudkms.cryptoKeys.list',
  'cloudkms.cryptoKeys.getIamPolicy',
  'cloudkms.cryptoKeyVersions.get',
  'cloudkms.cryptoKeyVersions.list',
  'cloudkms.importJobs.get',
  'cloudkms.importJobs.list',
  'cloudkms.importJobs.getIamPolicy',
  'cloudkms.locations.get',
  'cloudkms.locations.list',
  'cloudkms.retiredResources.get',
  'cloudkms.retiredResources.list',
];
const MANAGE = [
  ...READ,
  'cloudkms.keyRings.create',
  'cloudkms.keyRings.setIamPolicy',
  'cloudkms.cryptoKeys.create',
  'cloudkms.cryptoKeys.update',
  'cloudkms.cryptoKeys.setIamPolicy',
  'cloudkms.cryptoKeyVersions.create',
  'cloudkms.cryptoKeyVersions.update',
  'cloudkms.cryptoKeyVersions.destroy',
  'cloudkms.cryptoKeyVersions.restore',
  'cloudkms.cryptoKeys.delete',
  'cloudkms.cryptoKeyVersions.delete',
  'cloudkms.importJobs.create',
  'cloudkms.importJobs.setIamPolicy',
];
const USE = [P.encrypt, P.decrypt, P.sign, P.verify, P.decapsulate, P.viewPublicKey, P.random];
const LOCATIONS = ['cloudkms.locations.get', 'cloudkms.locations.list'];

export const ROLES: Readonly<Record<string, readonly string[]>> = {
  'roles/cloudkms.admin': [...MANAGE, P.random],
  'roles/cloudkms.viewer': READ,
  'roles/cloudkms.cryptoKeyEncrypterDecrypter': [P.encrypt, P.decrypt, ...LOCATIONS],
  'roles/cloudkms.cryptoKeyEncrypter': [P.encrypt, ...LOCATIONS],
  'roles/cloudkms.cryptoKeyDecrypter': [P.decrypt, ...LOCATIONS],
  'roles/cloudkms.signerVerifier': [P.sign, P.verify, P.viewPublicKey, ...LOCATIONS],
  'roles/cloudkms.signer': [P.sign, ...LOCATIONS],
  'roles/cloudkms.verifier': [P.verify, P.viewPublicKey, ...LOCATIONS],
  'roles/cloudkms.publicKeyViewer': [P.viewPublicKey, ...LOCATIONS],
  'roles/cloudkms.decapsulator': [P.decapsulate, ...LOCATIONS],
  'roles/cloudkms.cryptoOperator': [...USE, ...LOCATIONS],
  'roles/cloudkms.importer': [
    'cloudkms.importJobs.create',
    'cloudkms.importJobs.get',
    'cloudkms.importJobs.list',
    P.useToImport,
    ...LOCATIONS,
  ],
  'roles/owner': [...MANAGE, ...USE, P.useToImport],
  'roles/editor': [...MANAGE.filter((p) => !p.endsWith('setIamPolicy')), ...USE, P.useToImport],
  'roles/viewer': READ,
};

export const KNOWN_PERMISSIONS: ReadonlySet<string> = new Set(Object.values(ROLES).flat());
