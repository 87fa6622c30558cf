// The vault's keys as JSON, for --state: live and soft-deleted keys with every version.
import { deserializeMaterial, type SerializedMaterial, serializeMaterial } from './material.js';
import type { DeletedRecord, KeyRecord, KeyStore, KeyVersion, RotationPolicy } from './store.js';

interface SavedRecord {
  name: string;
  versions: Array<Omit<KeyVersion, 'material'> & { material: SerializedMaterial }>;
  rotationPolicy?: RotationPolicy;
}
export interface SavedVault {
  format: 'keyport-azure-keyvault-state/1';
  mode: string;
  live: SavedRecord[];
  deleted: Array<{ record: SavedRecord; deletedDate: number; scheduledPurgeDate: number }>;
}

const saveRecord = (r: KeyRecord): SavedRecord => ({
  name: r.name,
  versions: r.versions.map((v) => ({ ...v, material: serializeMaterial(v.material) })),
  ...(r.rotationPolicy && { rotationPolicy: r.rotationPolicy }),
});

const loadRecord = (s: SavedRecord): KeyRecord => ({
  name: s.name,
  versions: s.versions.map((v) => ({ ...v, material: deserializeMaterial(v.material) })),
  ...(s.rotationPolicy && { rotationPolicy: s.rotationPolicy }),
});

export function saveVault(mode: string, store: KeyStore): SavedVault {
  return {
    format: 'keyport-azure-keyvault-state/1',
    mode,
    live: [...store.live.values()].map(saveRecord),
    deleted: [...store.deleted.values()].map((d) => ({ ...d, record: saveRecord(d.record) })),
  };
}

export function loadVault(mode: string, store: KeyStore, saved: SavedVault): void {
  if (saved.format !== 'keyport-azure-keyvault-state/1')
    throw new Error('not a Key Vault test server state file');
  if (saved.mode !== mode) throw new Error(`the state file holds a ${saved.mode}, not a ${mode}`);
  for (const s of saved.live) store.live.set(s.name.toLowerCase(), loadRecord(s));
  for (const d of saved.deleted) {
    const record: DeletedRecord = {
      record: loadRecord(d.record),
      deletedDate: d.deletedDate,
      scheduledPurgeDate: d.scheduledPurgeDate,
    };
    store.deleted.set(d.record.name.toLowerCase(), record);
  }
}
