export { type AuditLastUse, type AuditLogSource, readAuditLastUse } from './audit-last-use.js';
export { type Chart, MAX_CHART_KEYS, reportCharts } from './charts.js';
export {
  type CheckOptions,
  type CheckResult,
  type CheckSummary,
  checkPolicy,
  type Finding,
  ruleDoc,
  type UnmatchedProviders,
} from './check.js';
export {
  applyFixes,
  describeFix,
  type Fix,
  type FixAction,
  type FixClient,
  type FixesStopped,
  FixesStoppedError,
  type FixOutcome,
  planFixes,
} from './fix.js';
export {
  collectInventory,
  type InventoryClient,
  type InventoryItem,
  type InventoryOptions,
  streamInventory,
} from './inventory.js';
export * from './inventory-types.js';
export {
  jsonPointerToPath,
  MAX_POLICY_BYTES,
  MAX_POLICY_TOKENS,
  PolicyError,
  parsePolicyText,
  policySchema,
  readPolicyFile,
  ruleLine,
  validatePolicy,
} from './policy-file.js';
export * from './policy-types.js';
export { familyOf, keyBitsOf, protectionOf } from './protection.js';
export { escapeHtml, type HtmlReportOptions, toHtml } from './report-html.js';
export { SARIF_SCHEMA_URI, type SarifOptions, toSarif } from './report-sarif.js';
export { findingsTable, formatTable, inventoryTable } from './report-table.js';
export { RULE_CATALOGUE, type RuleDoc } from './rule-catalogue.js';
