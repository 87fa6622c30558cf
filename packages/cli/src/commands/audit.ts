/** `keyport audit verify <log> --key-file <f>`: checks a hash-chained JSONL audit log. */
import { verifyAuditLog } from '@keyport/core';
import type { Command } from 'commander';
import { EXIT } from '../exit-codes.js';
import type { Act } from '../program.js';
import { readHmacKey } from '../session.js';

export function registerAuditCommands(program: Command, act: Act): void {
  const audit = program.command('audit').description('audit logs');
  audit
    .command('verify')
    .description('verify a JSONL audit log: hash chain and HMAC checkpoints (exit 6 when it fails)')
    .argument('<log>', 'the audit log file')
    .requiredOption('--key-file <file>', 'file holding the HMAC checkpoint key (hex, base64 or raw)')
    .action(
      act(async (s, cmd) => {
        const log = s.path(cmd.args[0] as string);
        const { keyFile } = cmd.opts<{ keyFile: string }>();
        const key = await readHmacKey(s.path(keyFile));
        let result: Awaited<ReturnType<typeof verifyAuditLog>>;
        try {
          result = await verifyAuditLog(log, key);
        } finally {
          key.fill(0);
        }
        const human = result.ok
          ? `${s.out.paint('green', 'ok')}: ${result.records} records, ${result.checkpoints} checkpoints` +
            (result.uncheckpointed > 0
              ? `, ${result.uncheckpointed} after the last checkpoint (hash chain only)`
              : '')
          : `${s.out.paint('red', 'FAILED')}: ${result.problem?.kind} at line ${result.problem?.line}: ${result.problem?.detail}`;
        await s.out.result({ log, ...result }, human);
        return result.ok ? EXIT.ok : EXIT.integrity;
      }),
    );
}
