export { type AuditLastUse, type AuditLogSource, readAuditLastUse } from './audit-last-use.js';
export {
  collectInventory,
  type InventoryClient,
  type InventoryItem,
  type InventoryOptions,
  streamInventory,
} from './inventory.js';
export * from './inventory-types.js';
export { familyOf, keyBitsOf, protectionOf } from './protection.js';
