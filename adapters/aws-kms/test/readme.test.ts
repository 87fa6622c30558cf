/**
 * The README as a user reads it: its usage sample runs as written (against moto), every form in
 * the key URI table names the key it says (local-kms, whose account is the README's), every
 * "AWS-only method" exists on the provider, and the error table's retryable column is what
 * `mapAwsError` answers.
 */
import { readFileSync } from 'node:fs';
import { createKeyport } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { AWS_ERROR_TABLE, AwsKmsProvider, awsKms, mapAwsError } from '../src/index.js';
import { call, providerFor, TEST_CREDENTIALS, target, uniqueName, utf8 } from './support/targets.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const section = (title: string) => {
  const start = README.indexOf(`${title}\n`);
  expect(start, title).toBeGreaterThan(-1);
  const next = README.slice(start + title.length).search(/\n#{2,3} /);
  return README.slice(start, next === -1 ? undefined : start + title.length + next);
};

describe('README', () => {
  it('usage sample runs as written (moto standing in for eu-west-1)', async () => {
    const name = uniqueName('orders'); // the sample's 'orders', unique per run
    const data = utf8('order 42');
    const keyport = createKeyport({
      providers: [
        awsKms({ region: 'eu-west-1', endpoint: target('moto').endpoint, credentials: TEST_CREDENTIALS }),
      ],
    });
    try {
      const key = await keyport.createKey('aws-kms', { name, spec: 'AES_256', labels: { team: 'shop' } });
      const { ciphertext } = await keyport.encrypt(key.uri, data, { context: { orderId: '42' } });
      const { plaintext } = await keyport.decrypt(`aws-kms://alias/${name}?region=eu-west-1`, ciphertext, {
        context: { orderId: '42' },
      });
      expect(plaintext).toEqual(data);
      expect(key.uri).toMatch(/^aws-kms:\/\/arn:aws:kms:eu-west-1:/);
      expect(key.labels).toEqual({ team: 'shop' });
    } finally {
      await keyport.close();
    }
    // the sample in the README is the one tested here
    const sample = section('## Usage');
    expect(sample).toContain("awsKms({ region: 'eu-west-1' })");
    expect(sample).toContain("keyport.decrypt('aws-kms://alias/orders?region=eu-west-1', ciphertext");
  });

  it('every key URI form in the table names the key (local-kms: account 111122223333, us-east-1)', async () => {
    const t = target('local-kms');
    const provider = providerFor(t);
    try {
      const alias = uniqueName('uri-forms');
      const created = await provider.createKey({ name: alias, spec: 'AES_256' }, call());
      const keyId = created.uri.slice(created.uri.lastIndexOf('/') + 1);
      const rows = [...section('## Key URIs').matchAll(/^\| `(aws-kms:\/\/[^`]+)`/gm)].map(
        (m) => m[1] as string,
      );
      expect(rows).toHaveLength(5);
      for (const row of rows) {
        const uri = row
          .replace('1234abcd-12ab-34cd-56ef-1234567890ab', keyId)
          .replace('alias/orders', `alias/${alias}`)
          .replace('region=eu-west-1', 'region=us-east-1')
          .replace('http://127.0.0.1:4566', t.endpoint);
        expect(uri, row).not.toBe(row);
        const info = await provider.describeKey({ uri }, call());
        expect(info.uri.replace(/\?endpoint=.*$/, ''), row).toBe(created.uri);
        // management calls (which take no alias) reach the same key from every form
        expect((await provider.disableKey({ uri }, call())).state, row).toBe('disabled');
        expect((await provider.enableKey({ uri }, call())).state, row).toBe('enabled');
        const sealed = await provider.encrypt({ uri }, utf8(row), { context: { row } }, call());
        expect(`aws-kms://${sealed.keyArn}`).toBe(created.uri);
      }
    } finally {
      await provider.close();
    }
  });

  it('every listed AWS-only method is a method of AwsKmsProvider', () => {
    const names = [...section('### AWS-only methods').matchAll(/^- `([A-Za-z]+)\(/gm)].map(
      (m) => m[1] as string,
    );
    expect(names.length).toBeGreaterThan(5);
    const provider = new AwsKmsProvider({ region: 'us-east-1', credentials: TEST_CREDENTIALS });
    for (const name of names) {
      expect(typeof (provider as unknown as Record<string, unknown>)[name], name).toBe('function');
    }
  });

  it("the error table's retryable column is what mapAwsError answers", () => {
    const rows = [
      ...section('## Error mapping').matchAll(
        /^\|\s*`([A-Za-z]+)`\s*\|\s*`([A-Za-z]+)`\s*\|\s*(yes|no)\s*\|/gm,
      ),
    ];
    expect(rows).toHaveLength(Object.keys(AWS_ERROR_TABLE).length);
    for (const [, name, code, retryable] of rows) {
      const error = Object.assign(new Error('m'), { name, $metadata: { httpStatusCode: 400 } });
      expect(mapAwsError(error), name).toMatchObject({ code, retryable: retryable === 'yes' });
    }
  });
});
