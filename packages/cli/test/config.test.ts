import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, open, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../src/index.js';
import { jsonError, localWorkspace, PASSPHRASE, runCli } from './support/cli.js';

async function dirWith(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keyport-cfg-'));
  await writeFile(join(dir, name), text);
  return dir;
}

describe('config file', () => {
  it('accepts YAML and JSON with every provider kind', () => {
    const yaml = `
providers:
  local: { keystore: ./k.kp, passphraseFile: ./pass }
  aws-kms: { region: us-east-1, endpoint: "http://127.0.0.1:5000" }
  hcvault: { address: "http://127.0.0.1:8200", flavor: openbao }
  pkcs11: { module: /usr/lib/softhsm/libsofthsm2.so, token: keyport }
  gcp-kms: { apiEndpoint: 127.0.0.1, port: 9000, insecure: true }
defaults: { recipients: ["local://k.kp#a"], jobs: 4 }
`;
    const c = parseConfigText(yaml, 'keyport.config.yaml');
    expect(Object.keys(c.providers)).toEqual(['local', 'aws-kms', 'hcvault', 'pkcs11', 'gcp-kms']);
    expect(
      parseConfigText('{"providers":{"local":{"keystore":"k"}}}', 'x.json').providers.local?.keystore,
    ).toBe('k');
  });

  it('names the path of a bad field', () => {
    expect(() => parseConfigText('providers:\n  hcvault:\n    address: nope\n', 'c.yaml')).toThrow(
      /c\.yaml: providers\.hcvault\.address: must be an http\(s\):\/\/ URL/,
    );
    expect(() => parseConfigText('providers:\n  local: {}\n', 'c.yaml')).toThrow(
      /providers\.local\.keystore/,
    );
    expect(() => parseConfigText('providers:\n  local: { keystore: k, colour: red }\n', 'c.yaml')).toThrow(
      /providers\.local: .*colour/,
    );
    expect(() =>
      parseConfigText('defaults: { jobs: 0 }\nproviders: { local: { keystore: k } }', 'c.yaml'),
    ).toThrow(/defaults\.jobs/);
    expect(() => parseConfigText('providers: {}', 'c.yaml')).toThrow(
      /providers: configure at least one provider/,
    );
  });

  it('refuses literal secrets and says where they belong', () => {
    expect(() =>
      parseConfigText('providers:\n  local: { keystore: k, passphrase: hunter2 }\n', 'c.yaml'),
    ).toThrow(
      /providers\.local\.passphrase: secrets never go in the config file; use passphraseFile or the KEYPORT_LOCAL_PASSPHRASE/,
    );
    try {
      parseConfigText('providers:\n  hcvault: { address: "http://x:1", token: s3cr3t-value }\n', 'c.yaml');
    } catch (e) {
      expect(String(e)).not.toContain('s3cr3t-value');
    }
  });

  it('a string field written as a number or true/false says to quote it, naming the field and line', async () => {
    const yaml = (field: string) =>
      `providers:\n  local: { keystore: k.kp }\n  gcp-kms:\n    keyRing: r\n    ${field}\n`;
    // YAML reads 0123 as 123 (the zero is gone), 1e3 as 1000 and 0x10 as 16: never coerced back.
    for (const value of ['0123', '123456789012', '1e3', '0x10']) {
      expect(() => parseConfigText(yaml(`projectId: ${value}`), 'c.yaml'), value).toThrow(
        'config c.yaml: providers.gcp-kms.projectId (line 5): must be a string, but YAML read the value as a number (which drops leading zeros): write it in double quotes, as in projectId: "…"',
      );
    }
    expect(() => parseConfigText('providers:\n  pkcs11: { module: m.so, token: true }\n', 'c.yaml')).toThrow(
      'providers.pkcs11.token (line 2): must be a string, but YAML read the value as true/false',
    );
    expect(() =>
      parseConfigText('providers:\n  local: { keystore: k }\ndefaults:\n  recipients:\n    - 42\n', 'c.yaml'),
    ).toThrow('defaults.recipients[0] (line 5): must be a string');
    // JSON: the loader knows no line; the quoted form is the same advice.
    expect(() => parseConfigText('{"providers":{"gcp-kms":{"projectId":1e3}}}', 'c.json')).toThrow(
      'config c.json: providers.gcp-kms.projectId: must be a string, but JSON read the value as a number (which drops leading zeros): write it in double quotes',
    );
    // Quoted, it is the string as written.
    expect(parseConfigText(yaml('projectId: "0123"'), 'c.yaml').providers['gcp-kms']?.projectId).toBe('0123');
    // Through the bin: a usage/config error (exit 2) that never shows the value.
    const dir = await dirWith('keyport.config.yaml', yaml('projectId: 0987654321'));
    const r = await runCli(['--json', 'keys', 'list'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(jsonError(r.stderr).message).toContain('providers.gcp-kms.projectId (line 5): must be a string');
    expect(r.stderr).not.toMatch(/987654321/);
  });

  it('a literal secret written as a hex or exponent number is refused as a secret, never echoed', () => {
    // The check for spelled numbers ran first and quoted the value: "(not 0x5f3759df)".
    for (const value of ['0x5f3759df', '9e99', '+31337']) {
      let message = '';
      try {
        parseConfigText(`providers:\n  local: { keystore: k, passphrase: ${value} }\n`, 'c.yaml');
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, value).toContain('providers.local.passphrase: secrets never go in the config file');
      expect(message, value).not.toContain(value);
    }
    // A mistyped key holding a spelled number is an unknown key, not "write decimal digits".
    expect(() =>
      parseConfigText('providers:\n  local: { keystore: k, pinn: 0x1234abcd }\n', 'c.yaml'),
    ).toThrow(/^config c\.yaml: providers\.local: Unrecognized key: "pinn"[^0]*$/);
  });

  it('a JSON syntax error never quotes the config text (a secret written without quotes); it gives line and column', () => {
    const failure = (text: string): string => {
      try {
        parseConfigText(text, 'c.json');
      } catch (e) {
        return (e as Error).message;
      }
      return 'parsed';
    };
    // JSON.parse quotes up to 20 characters around an unexpected token, or the whole text.
    const long =
      '{\n  "providers": {\n    "local": { "keystore": "k", "passphrase": hunter2secret }\n  }\n}\n';
    expect(failure(long)).toBe('config c.json: not valid JSON: an unexpected character at line 3, column 47');
    expect(failure('{"passphrase": hunter2}')).toBe(
      'config c.json: not valid JSON: an unexpected character at line 1, column 16',
    );
    expect(failure('hunter2')).toBe(
      'config c.json: not valid JSON: an unexpected character at line 1, column 1',
    );
    expect(failure('{"providers": {}} hunter2')).toBe(
      'config c.json: not valid JSON: Unexpected non-whitespace character after JSON at line 1, column 19',
    );
    expect(failure('{"a": 1,\n}')).toBe(
      'config c.json: not valid JSON: Expected double-quoted property name at line 2, column 1',
    );
    expect(failure('{"a": "x')).toBe(
      'config c.json: not valid JSON: Unterminated string at line 1, column 9',
    );
    expect(failure('')).toBe('config c.json: not valid JSON: Unexpected end of JSON input');
    for (const text of [long, '{"passphrase": hunter2}', 'hunter2', '{"providers": {}} hunter2'])
      expect(failure(text), text).not.toContain('hunter');
  });

  it('__proto__ and constructor keys in a config are unknown keys, never prototypes', () => {
    for (const [text, where] of [
      ['__proto__: { x: 1 }\nproviders: { local: { keystore: k } }\n', '(top level)'],
      ['providers: { local: { keystore: k } }\ndefaults: { __proto__: { jobs: 999 } }\n', 'defaults'],
      ['providers: { local: { keystore: k, __proto__: { create: true } } }\n', 'providers.local'],
      ['providers: { local: { keystore: k, __proto__: 0123 } }\n', 'providers.local'],
      ['providers: { local: { keystore: k }, gcp-kms: { constructor: 5 } }\n', 'providers.gcp-kms'],
    ] as const) {
      expect(() => parseConfigText(text, 'c.yaml'), text).toThrow(`${where}: Unrecognized key`);
    }
    expect(() =>
      parseConfigText('{"providers":{"local":{"keystore":"k","__proto__":{"create":true}}}}', 'c.json'),
    ).toThrow('providers.local: Unrecognized key: "__proto__"');
  });

  it('a Vault address with a path, query, fragment or credentials is a config error naming the field', async () => {
    // The vault-transit adapter sends requests to <protocol>//<host>/v1/...: a path would be
    // dropped without a word. The config says so when it is read, naming the field, and never
    // echoes the credentials.
    for (const [address, why] of [
      ['http://127.0.0.1:8200/vault', /without a path, query or fragment/],
      ['http://127.0.0.1:8200/v1/', /without a path, query or fragment/],
      ['http://127.0.0.1:8200?ns=x', /without a path, query or fragment/],
      ['http://127.0.0.1:8200#f', /without a path, query or fragment/],
      ['http://admin:hunter2-pw@127.0.0.1:8200', /must not carry credentials/],
    ] as const) {
      for (const key of ['hcvault', 'hcvault+eu']) {
        const text = JSON.stringify({ providers: { [key]: { address } } });
        let message = '';
        try {
          parseConfigText(text, 'c.json');
        } catch (e) {
          message = String(e);
        }
        expect(message).toContain(`c.json: providers.${key}.address: `);
        expect(message).toMatch(why);
        expect(message).not.toContain('hunter2');
      }
    }
    for (const ok of ['http://127.0.0.1:8200', 'https://vault.example:8200/', 'http://[::1]:8200'])
      expect(
        parseConfigText(JSON.stringify({ providers: { hcvault: { address: ok } } }), 'c.json'),
      ).toBeDefined();
    const dir = await dirWith(
      'keyport.config.json',
      JSON.stringify({ providers: { hcvault: { address: 'http://u:hunter2-pw@127.0.0.1:1/proxy' } } }),
    );
    const r = await runCli(['--json', 'keys', 'list', 'hcvault'], {
      cwd: dir,
      env: { KEYPORT_VAULT_TOKEN: 't' },
    });
    expect(r.code).toBe(2);
    const error = JSON.parse(r.stderr).error;
    expect(error).toMatchObject({ code: 'InvalidArgument', exitCode: 2 });
    expect(error.message).toContain('providers.hcvault.address: must not carry credentials');
    expect(r.stderr).not.toContain('hunter2');
    expect(r.stderr).not.toMatch(/\bat .*\.(m?js|ts):\d+/); // no stack trace
  });

  it('a broken config file exits 2 with the file and field named', async () => {
    const dir = await dirWith('keyport.config.yaml', 'providers:\n  hcvault:\n    address: 12\n');
    const r = await runCli(['keys', 'list'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('keyport.config.yaml: providers.hcvault.address');
    expect(r.stderr).toContain('next:');
    const bad = await dirWith('keyport.config.json', '{ "providers": ');
    const j = await runCli(['--json', 'keys', 'list'], { cwd: bad });
    expect(j.code).toBe(2);
    expect(JSON.parse(j.stderr).error).toMatchObject({ code: 'InvalidArgument', exitCode: 2 });
    expect(JSON.parse(j.stderr).error.message).toMatch(/not valid JSON/);
  });

  it('a config file every user can write is refused (exit 2), also through a symlink; group-writable and 0644 are read', async () => {
    const ws = await localWorkspace();
    const config = join(ws.dir, 'keyport.config.json');
    await chmod(config, 0o666);
    const r = await runCli(['--json', 'keys', 'list'], { cwd: ws.dir });
    expect(r.code, r.stderr).toBe(2);
    expect(jsonError(r.stderr)).toMatchObject({ code: 'InvalidArgument', exitCode: 2 });
    expect(jsonError(r.stderr).message).toBe(
      `config ${config}: every user can write it (mode 0666), so anyone could change which servers and keys keyport uses; run chmod o-w on it`,
    );
    await symlink(config, join(ws.dir, 'link.json'));
    const viaLink = await runCli(['--config', 'link.json', 'keys', 'list'], { cwd: ws.dir });
    expect(viaLink.code, viaLink.stderr).toBe(2);
    expect(viaLink.stderr).toMatch(/every user can write it \(mode 0666\)/);
    for (const mode of [0o664, 0o644, 0o600]) {
      await chmod(config, mode);
      const ok = await runCli(['keys', 'list'], { cwd: ws.dir });
      expect(ok.code, `${mode.toString(8)}: ${ok.stderr}`).toBe(0);
    }
  });

  it('no config file, or a missing --config, is a usage error', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'keyport-none-'));
    const r = await runCli(['keys', 'list'], { cwd: empty });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no config file/);
    const m = await runCli(['--config', 'nope.yaml', 'keys', 'list'], { cwd: empty });
    expect(m.code).toBe(2);
    expect(m.stderr).toMatch(/nope\.yaml: the file does not exist/);
    // An empty name (an unset shell variable) is not the working directory.
    const ws = await localWorkspace();
    for (const [argv, env, source] of [
      [['--config', '', 'keys', 'list'], {}, '--config'],
      [['keys', 'list'], { KEYPORT_CONFIG: '' }, 'KEYPORT_CONFIG'],
    ] as const) {
      const r = await runCli([...argv], { cwd: ws.dir, env });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain(
        `error InvalidArgument: ${source} is an empty file name: name the config file`,
      );
    }
  });

  it('the passphrase comes from the environment or a file, and a wrong one is access denied', async () => {
    const ws = await localWorkspace();
    const missing = await runCli(['keys', 'list', 'local'], {
      cwd: ws.dir,
      env: { KEYPORT_LOCAL_PASSPHRASE: undefined },
    });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/passphrase is not set: export KEYPORT_LOCAL_PASSPHRASE/);

    const wrong = await runCli(['keys', 'list', 'local'], {
      cwd: ws.dir,
      env: { KEYPORT_LOCAL_PASSPHRASE: 'wrong' },
    });
    expect(wrong.code).toBe(4);
    expect(wrong.stderr).toMatch(/error AccessDenied/);
    expect(wrong.stderr).not.toContain('wrong\n');

    await writeFile(join(ws.dir, 'pass.txt'), `${PASSPHRASE}\n`);
    await writeFile(
      join(ws.dir, 'keyport.config.json'),
      JSON.stringify({ providers: { local: { keystore: 'keys.kp', passphraseFile: 'pass.txt' } } }),
    );
    const viaFile = await runCli(['keys', 'list', 'local'], {
      cwd: ws.dir,
      env: { KEYPORT_LOCAL_PASSPHRASE: undefined },
    });
    expect(viaFile.code).toBe(0);
  });

  it('a config or secret file that never ends (/dev/zero) fails at its size bound; a pipe still works', async () => {
    const ws = await localWorkspace();
    const endless = await runCli(['-c', '/dev/zero', 'keys', 'list', 'local'], { cwd: ws.dir });
    expect(endless.code).toBe(2);
    expect(endless.stderr).toContain('config /dev/zero: cannot be read (larger than 1048576 bytes)');
    const config = (passphraseFile: string) =>
      writeFile(
        join(ws.dir, 'keyport.config.json'),
        JSON.stringify({ providers: { local: { keystore: 'keys.kp', passphraseFile } } }),
      );
    await config('/dev/zero');
    const zero = await runCli(['keys', 'list', 'local'], {
      cwd: ws.dir,
      env: { KEYPORT_LOCAL_PASSPHRASE: undefined },
    });
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain('the file /dev/zero cannot be read (larger than 65536 bytes)');
    // A FIFO (what `passphraseFile: /dev/fd/3` or a process substitution gives) is read to its end.
    const fifo = join(ws.dir, 'pass.fifo');
    execFileSync('mkfifo', [fifo]);
    await config('pass.fifo');
    const writer = open(fifo, 'w').then(async (f) => {
      await f.writeFile(`${PASSPHRASE}\n`);
      await f.close();
    });
    const viaPipe = await runCli(['keys', 'list', 'local'], {
      cwd: ws.dir,
      env: { KEYPORT_LOCAL_PASSPHRASE: undefined },
    });
    await writer;
    expect(viaPipe.code, viaPipe.stderr).toBe(0);
  });

  it('a config file that starts with a byte-order mark is read as it would be without one', async () => {
    const ws = await localWorkspace();
    for (const [name, text] of [
      ['bom.json', '\uFEFF{"providers":{"local":{"keystore":"keys.kp"}}}'],
      ['bom.yaml', '\uFEFFproviders:\n  local: { keystore: keys.kp }\n'],
    ] as const) {
      await writeFile(join(ws.dir, name), text);
      const r = await runCli(['--json', '-c', name, 'keys', 'list', 'local'], { cwd: ws.dir });
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
    }
  });

  it('a config that repeats a key, nests without end or contains itself exits 2 naming the field', async () => {
    const ws = await localWorkspace();
    const listWith = async (name: string, text: string) => {
      await writeFile(join(ws.dir, name), text);
      return runCli(['--json', '-c', name, 'keys', 'list', 'local'], { cwd: ws.dir });
    };
    // JSON.parse keeps the last of two keys silently: the second "local" would replace the first.
    for (const [text, field] of [
      ['{"providers":{"local":{"keystore":"keys.kp"},"local":{"keystore":"other.kp"}}}', 'providers.local'],
      ['{"providers":{"local":{"keystore":"keys.kp","keystore":"other.kp"}}}', 'providers.local.keystore'],
      ['{"providers":{"local":{"keystore":"keys.kp"}},"__proto__":1,"__proto__":2}', '__proto__'],
      [
        '{"providers":{"local":{"keystore":"keys.kp"}},"defaults":{"recipients":[{"a":1},{"a":1,"a":2}]}}',
        'defaults.recipients[1].a',
      ],
    ] as const) {
      const r = await listWith('dup.json', text);
      expect(r.code, text).toBe(2);
      expect(jsonError(r.stderr).message, text).toContain(`${field}: given twice`);
    }
    // The same keys in different objects, or the same values twice, are not duplicates.
    const fine = await listWith(
      'fine.json',
      '{"providers":{"local":{"keystore":"keys.kp"}},"defaults":{"recipients":["local://keys.kp#a","local://keys.kp#a"]}}',
    );
    expect(fine.code, fine.stderr).toBe(0);
    // YAML refuses duplicates too (its parser's own message).
    const yaml = await listWith(
      'dup.yaml',
      'providers:\n  local: { keystore: keys.kp }\n  local: { keystore: x }\n',
    );
    expect(yaml.code).toBe(2);
    expect(jsonError(yaml.stderr).message).toMatch(/not valid YAML: Map keys must be unique/);
    // A YAML alias inside its own anchor is a cycle; 300,000 levels of JSON arrays fit in 1 MiB.
    // Both used to overflow the stack and exit 1 as an "Internal" failure.
    const cyclic = await listWith('cycle.yaml', 'providers:\n  local: { keystore: keys.kp }\nx: &a [*a]\n');
    expect(cyclic.code, cyclic.stderr).toBe(2);
    expect(jsonError(cyclic.stderr).message).toContain('x[0]: contains itself');
    const deep = await listWith(
      'deep.json',
      `{"providers":{"local":{"keystore":"keys.kp"}},"x":${'['.repeat(300_000)}${']'.repeat(300_000)}}`,
    );
    expect(deep.code, deep.stderr).toBe(2);
    expect(jsonError(deep.stderr)).toMatchObject({ code: 'InvalidArgument', exitCode: 2 });
    expect(jsonError(deep.stderr).message).toMatch(/deep\.json: x(\[0\])+: nested deeper than 32 levels/);
  });

  it('a YAML config of 6,000 keys in one map is read in linear time; a duplicate at the end of it is still refused', () => {
    // The YAML parser's own duplicate-key check compares each key with every earlier one of its
    // map: 30,000 keys took about 6 s to refuse. A config is now at most 50,000 YAML tokens
    // (config-yaml-tokens.test.ts), about 6,200 such keys; 6,000 still show the quadratic check.
    const keys = Array.from({ length: 6_000 }, (_, i) => `  k${i}: 1\n`).join('');
    const big = `providers:\n  local: { keystore: keys.kp }\n${keys}`;
    expect(big.length).toBeLessThan(1024 * 1024);
    const timed = (text: string, path: string): { message: string; ms: number } => {
      const start = performance.now();
      try {
        parseConfigText(text, path);
      } catch (e) {
        return { message: (e as Error).message, ms: performance.now() - start };
      }
      throw new Error(`${path} was accepted`);
    };
    // Timed against the same number of keys spread over 60 small maps (linear for any parser), in
    // the same process, best of 2 each: a loaded machine slows both alike. The old quadratic check
    // took ~17x longer on the one big map; linear is ~1x.
    const spread = `providers:\n  local: { keystore: keys.kp }\n${Array.from(
      { length: 60 },
      (_, m) => `  m${m}:\n${Array.from({ length: 100 }, (_, i) => `    k${i}: 1\n`).join('')}`,
    ).join('')}`;
    const best = (text: string, path: string) => Math.min(...[0, 1].map(() => timed(text, path).ms));
    const refused = timed(big, 'big.yaml');
    expect(refused.message).toMatch(/^config big\.yaml: providers\.k0: /);
    const baseline = best(spread, 'spread.yaml');
    expect(best(big, 'big.yaml')).toBeLessThan(5 * baseline + 100);
    // The first key of the map again as its last: named by line and column, as the parser did.
    const duplicate = timed(`${big}  local: { keystore: other.kp }\n`, 'dup.yaml');
    expect(duplicate.message).toBe(
      'config dup.yaml: not valid YAML: Map keys must be unique at line 6003, column 3:',
    );
    expect(duplicate.ms).toBeLessThan(5 * baseline + 100);
    // A duplicate in a map inside the big one, and one before a syntax error, are found too.
    expect(() => parseConfigText(`${big}  x: { a: 1, b: 2, a: 3 }\n`, 'c.yaml')).toThrow(
      'not valid YAML: Map keys must be unique at line 6003, column 20:',
    );
    expect(() => parseConfigText('a: 1\nb: 2\na: 3\nc: [\n', 'c.yaml')).toThrow(
      'not valid YAML: Map keys must be unique at line 3, column 1:',
    );
    // Alias expansion stays bounded (a "billion laughs" file is refused, not expanded).
    let laughs = 'a: &a [x, x, x, x, x, x, x, x, x, x]\n';
    for (const [name, previous] of ['ba', 'cb', 'dc', 'ed', 'fe', 'gf', 'hg', 'ih']) {
      laughs += `${name}: &${name} [${Array(10).fill(`*${previous}`).join(', ')}]\n`;
    }
    expect(() => parseConfigText(laughs, 'c.yaml')).toThrow(/not valid YAML: Excessive alias count/);
  });

  it('numeric flags take decimal digits only: hex, exponents, signs, NaN and empty values exit 2', async () => {
    const ws = await localWorkspace();
    // Number() reads "0x10" as 16 and "1e3" as 1000: a --days 0x10 would schedule a deletion in 16 days.
    for (const bad of ['0x10', '1e3', '-1', 'NaN', '', ' 5', '+5', '1.5', '0b1', 'Infinity', '1e999']) {
      const timeout = await runCli(['--timeout', bad, 'keys', 'list'], { cwd: ws.dir });
      expect(timeout.code, `--timeout ${JSON.stringify(bad)}`).toBe(2);
      for (const argv of [
        ['keys', 'schedule-deletion', ws.uri('k'), '--days', bad],
        ['keys', 'create', 'k2', '--rotation-days', bad],
        ['encrypt', '-r', ws.uri('k'), '--frame-length', bad, '-o', 'x.enc'],
        ['migrate', '--from', ws.uri('a'), '--to', ws.uri('b'), '--jobs', bad, '.'],
      ]) {
        const r = await runCli(['--json', ...argv], { cwd: ws.dir, stdin: 'x' });
        expect(r.code, `${argv.join(' ')}`).toBe(2);
        expect(jsonError(r.stderr).message).toMatch(/^--[a-z-]+ must be a (positive integer|whole number)/);
      }
    }
    // Leading zeros are still decimal.
    const ok = await runCli(['--timeout', '010000', 'keys', 'list'], { cwd: ws.dir });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('bad flags are usage errors (exit 2); --help and --version exit 0', async () => {
    const ws = await localWorkspace();
    expect((await runCli(['keys', 'create'], { cwd: ws.dir })).code).toBe(2);
    expect((await runCli(['no-such-command'], { cwd: ws.dir })).code).toBe(2);
    expect((await runCli(['--timeout', 'soon', 'keys', 'list'], { cwd: ws.dir })).code).toBe(2);
    // Past a Node timer's range a deadline would fire at once: refused, naming the flag.
    for (const ms of ['2147483648', '99999999999999999999']) {
      const r = await runCli(['--timeout', ms, 'keys', 'list'], { cwd: ws.dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("option '--timeout <ms>'");
    }
    // Numbers past what the command can use are refused up front, naming the flag and its range
    // (before the keystore is unlocked: no passphrase is set here).
    for (const [argv, flag] of [
      [
        ['migrate', '--from', 'local://keys.kp#a', '--to', 'local://keys.kp#b', '--jobs', '257', 'dir'],
        '--jobs',
      ],
      [
        [
          'migrate',
          '--from',
          'local://keys.kp#a',
          '--to',
          'local://keys.kp#b',
          '--progress-every',
          '1e12',
          'dir',
        ],
        '--progress-every',
      ],
      [['encrypt', '-r', 'local://keys.kp#a', '--frame-length', '99999999999', '-o', 'x'], '--frame-length'],
    ] as const) {
      const r = await runCli([...argv], {
        cwd: ws.dir,
        stdin: 'x',
        env: { KEYPORT_LOCAL_PASSPHRASE: undefined },
      });
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${flag} must be a whole number from 1 to \\d+`));
    }
    const tooLong = await localWorkspace({}, { defaults: { timeoutMs: 2 ** 31 } });
    const r = await runCli(['keys', 'list'], { cwd: tooLong.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('defaults.timeoutMs');
    const help = await runCli(['--help'], { cwd: ws.dir });
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes: 0 ok, 1 operation failed, 2 usage\/config error/);
    expect((await runCli(['--version'], { cwd: ws.dir })).stdout.trim()).toBe('0.1.0');
  });
});
