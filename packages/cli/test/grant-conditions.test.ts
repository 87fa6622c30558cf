/** `grants list` shows a grant under a condition keyport does not model as conditional, never as "-". */
import type { Grant } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { grantLines } from '../src/commands/grants.js';

const base: Grant = {
  id: 'kpg-1',
  keyUri: 'gcp-kms://projects/p/locations/l/keyRings/r/cryptoKeys/k',
  grantee: 'user:a@example.com',
  operations: ['encrypt'],
};

describe('grants list text', () => {
  it('a conditional grant reads conditional, with the condition (escaped) under the table', () => {
    const lines = grantLines([
      { ...base, unmodeledConditions: ['resource.name == "x"\u001b[2J'] },
      { ...base, id: 'kpg-2' },
    ]);
    const rows = lines.filter((l) => l.startsWith('kpg-'));
    expect(rows[0]).toMatch(/conditional\*\s*$/);
    // A grant keyport reads in full and without expiry still says '-'.
    expect(rows[1]).toMatch(/\s-\s*$/);
    const note = lines.find((l) => l.startsWith('* kpg-1'));
    expect(note).toContain('condition "resource.name == \\"x\\"\\u001b[2J"');
    expect(lines.join('\n')).not.toContain('\u001b');
  });
});
