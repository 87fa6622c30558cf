/**
 * The capability matrix (markdown) and the per-run proof summary, both from the same data the
 * suite selects its tests by, so the README cannot claim more than the tests prove.
 */
import type { Capabilities } from '@keyport/core';
import { CONFORMANCE_CAPABILITIES, type ConformancePlan, declaredValue } from './capability-plan.js';
import { describeProof, GRANT_CONSTRAINT_KINDS, type Proof, type ProofTable, proofFor } from './fixtures.js';

export interface MatrixEntry {
  readonly provider: string;
  readonly capabilities: Capabilities;
  readonly proofs: ProofTable;
}

function proofKey(proof: Proof): string {
  return proof.kind === 'not-emulated' ? `not-emulated:${proof.reason}` : `${proof.kind}:${proof.name}`;
}

const escapeCell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * Rows are capabilities, columns providers. A cell shows the declared value and a numbered note
 * naming the target that proved it (or why nothing did); `—` means declared unavailable, which
 * the suite checks throws UnsupportedError.
 */
export function renderCapabilityMatrix(entries: readonly MatrixEntry[]): string {
  const notes = new Map<string, { n: number; text: string }>();
  const noteFor = (proof: Proof): number => {
    const key = proofKey(proof);
    let note = notes.get(key);
    if (note === undefined) {
      note = { n: notes.size + 1, text: describeProof(proof) };
      notes.set(key, note);
    }
    return note.n;
  };

  const header = `| capability | ${entries.map((e) => escapeCell(e.provider)).join(' | ')} |`;
  const rule = `|---|${entries.map(() => '---').join('|')}|`;
  const rows = CONFORMANCE_CAPABILITIES.map((capability) => {
    const cells = entries.map((e) => {
      const declared = declaredValue(e.capabilities, capability);
      if (declared === undefined) return '—';
      const proof = proofFor(e.proofs, capability);
      const mark = proof.kind === 'not-emulated' ? ' (not emulated)' : '';
      return `${escapeCell(declared)}${mark} [${noteFor(proof)}]`;
    });
    return `| ${capability} | ${cells.join(' | ')} |`;
  });
  const legend = [...notes.values()].map((note) => `[${note.n}] ${escapeCell(note.text)}`);
  return [
    header,
    rule,
    ...rows,
    '',
    '— declared unavailable: the call throws UnsupportedError (checked).',
    '',
    ...legend,
    '',
  ]
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
}

/** Which constraint kinds a `grantConstraints: yes` stands for, when not all of them. */
function constraintNote(plan: ConformancePlan, capability: string): string {
  if (capability !== 'grantConstraints' || !plan.exercised.has('grantConstraints')) return '';
  const refused = GRANT_CONSTRAINT_KINDS.filter((k) => !plan.grantConstraintKinds.includes(k));
  if (refused.length === 0) return '';
  return ` (${plan.grantConstraintKinds.join(', ')} only; ${refused.join(', ')} refused with UnsupportedError)`;
}

/** The text the suite prints after a run: what was proven against whose implementation. */
export function formatProofSummary(name: string, plan: ConformancePlan): string {
  const lines = [`keyport conformance — ${name}`];
  for (const row of plan.rows) {
    const what = row.declared === undefined ? 'unsupported (UnsupportedError checked)' : row.declared;
    const by =
      row.declared === undefined
        ? ''
        : row.proof.kind === 'not-emulated'
          ? ' — NOT EXERCISED, '
          : ' — proven by ';
    const proof = row.declared === undefined ? '' : describeProof(row.proof);
    lines.push(`  ${row.capability.padEnd(18)} ${what}${constraintNote(plan, row.capability)}${by}${proof}`);
  }
  lines.push(`  key specs exercised: ${plan.specs.map((s) => s.spec).join(', ') || 'none'}`);
  return lines.join('\n');
}
