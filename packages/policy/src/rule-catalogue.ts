/**
 * What each rule type is for: a default rationale and the controls it maps to. A policy may
 * override both per rule; reports show them beside every finding.
 */
import type { RuleType } from './policy-types.js';

export interface RuleDoc {
  readonly title: string;
  readonly rationale: string;
  readonly controls: readonly string[];
}

export const RULE_CATALOGUE: Readonly<Record<RuleType, RuleDoc>> = {
  'max-rotation-period': {
    title: 'Maximum rotation period',
    rationale:
      'A key encrypts more data the longer it is used; a bounded crypto-period limits what one compromised key exposes and how much ciphertext an attacker can gather under it.',
    controls: ['NIST SP 800-57 Part 1 Rev. 5 §5.3 (cryptoperiods)', 'PCI DSS v4.0 3.7.4'],
  },
  'required-protection': {
    title: 'Required protection level',
    rationale:
      'Keys guarding regulated data must live in a validated hardware module (or a stated external manager), where the material cannot be copied out of process memory.',
    controls: ['NIST SP 800-57 Part 1 Rev. 5 §6.2.2', 'PCI DSS v4.0 3.6.1.2', 'FIPS 140-3'],
  },
  'forbidden-algorithms': {
    title: 'Forbidden algorithms',
    rationale: 'Algorithms the organisation has retired must not protect new or existing data.',
    controls: ['NIST SP 800-131A Rev. 2', 'PCI DSS v4.0 3.6.1 (strong cryptography)'],
  },
  'min-key-size': {
    title: 'Minimum key size',
    rationale:
      'Key sizes below the security strength the data needs through its lifetime fall to foreseeable attacks (e.g. RSA-2048 gives 112 bits, acceptable only through 2030).',
    controls: [
      'NIST SP 800-57 Part 1 Rev. 5 §5.6 (Table 2, 4)',
      'NIST SP 800-131A Rev. 2',
      'PCI DSS v4.0 3.6.1',
    ],
  },
  'max-grant-lifetime': {
    title: 'Maximum grant lifetime',
    rationale:
      'Access that never expires outlives the need for it; grants must end on their own and be renewed deliberately.',
    controls: ['NIST SP 800-57 Part 2 Rev. 1 §6.1 (least privilege)', 'PCI DSS v4.0 7.2.4 / 3.6.1.2'],
  },
  'grant-context-constraint': {
    title: 'Grants bound to an encryption context',
    rationale:
      'A grant without an encryption-context constraint lets its holder use the key for any data, not only the tenant or purpose it was given for.',
    controls: ['NIST SP 800-57 Part 1 Rev. 5 §5.2 (key usage)', 'PCI DSS v4.0 3.6.1.2 / 7.2.2'],
  },
  'min-pending-deletion-window': {
    title: 'Minimum pending-deletion window',
    rationale:
      'Deleting a key destroys every ciphertext under it; a deletion must leave enough time to notice a mistake and cancel it.',
    controls: ['NIST SP 800-57 Part 1 Rev. 5 §8.3.4 (key destruction)', 'PCI DSS v4.0 3.7.5'],
  },
  'max-unused-days': {
    title: 'Keys unused for too long',
    rationale:
      'A key nobody uses is attack surface without benefit: it should be disabled and retired (its crypto-period is over).',
    controls: ['NIST SP 800-57 Part 1 Rev. 5 §7 (key states: deactivated)', 'PCI DSS v4.0 3.7.5'],
  },
  'owner-label': {
    title: 'Owner label',
    rationale: 'Every key needs an accountable owner who decides its rotation, grants and retirement.',
    controls: ['NIST SP 800-57 Part 2 Rev. 1 §3.2 (key management roles)', 'PCI DSS v4.0 3.6.1.1 / 12.5.1'],
  },
};
