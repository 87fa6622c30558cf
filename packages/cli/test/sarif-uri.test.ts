/** `policy check --format sarif` names the policy file by a URI reference that resolves to it. */
import { describe, expect, it } from 'vitest';
import { policyUri } from '../src/commands/policy.js';

describe('SARIF artifact URI of the policy file', () => {
  it('percent-encodes a relative path by segment, and makes an absolute one a file: URL', () => {
    expect(policyUri('policy.yaml')).toBe('policy.yaml');
    expect(policyUri('ops/my policy#1 100%.yaml')).toBe('ops/my%20policy%231%20100%25.yaml');
    expect(policyUri('/srv/ops/p q.yaml')).toBe('file:///srv/ops/p%20q.yaml');
    // Each resolves back to the file it names.
    expect(decodeURIComponent(new URL(policyUri('ops/my policy#1 100%.yaml'), 'file:///r/').pathname)).toBe(
      '/r/ops/my policy#1 100%.yaml',
    );
  });
});
