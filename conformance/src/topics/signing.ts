/** Sign/verify per spec and declared algorithm (checked by node:crypto where the public key is exposed), and MAC. */
import { constants, createHash, createPublicKey, verify as nodeVerify, randomBytes } from 'node:crypto';
import type { SigningAlgorithm } from '@keyport/core';
import { describe, expect, it } from 'vitest';
import { specsFor } from '../capability-plan.js';
import { asKeyportError, bytesEqual, flipBit } from '../expect-error.js';
import type { Topic } from './registrar.js';

const hashOf = (algorithm: SigningAlgorithm): 'sha256' | 'sha384' =>
  algorithm === 'ECDSA_SHA_384' ? 'sha384' : 'sha256';

function verifiesWithNode(
  algorithm: SigningAlgorithm,
  spki: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  const key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  const hash = hashOf(algorithm);
  if (algorithm === 'RSASSA_PSS_SHA_256') {
    return nodeVerify(
      hash,
      message,
      { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO },
      signature,
    );
  }
  return nodeVerify(hash, message, key, signature); // PKCS#1 v1.5, or ECDSA with a DER signature
}

export function registerSigningTests(t: Topic): void {
  const { plan, timeoutMs } = t;

  if (plan.exercised.has('sign')) {
    for (const spec of specsFor(plan, 'sign_verify')) {
      describe(`sign/verify: ${spec}`, () => {
        const declared = plan.signingAlgorithms.filter((p) => p.spec === spec).map((p) => p.algorithm);
        const firstDeclared = (): SigningAlgorithm => {
          const algorithm = declared[0];
          if (algorithm === undefined)
            throw new Error(`conformance: ${spec} is declared for signing but no declared algorithm fits it`);
          return algorithm;
        };
        for (const algorithm of declared) {
          it(
            `${algorithm}: the signature verifies (provider, and node:crypto where the public key is exposed); altered inputs do not`,
            async () => {
              const s = t.state();
              const key = await s.sharedKey(spec, 'sign_verify');
              const message = randomBytes(200);
              const signed = await s.client.sign(key.uri, message, { algorithm });
              expect(signed.algorithm).toBe(algorithm);
              expect(await s.client.verify(key.uri, message, signed.signature, { algorithm })).toBe(true);
              expect(
                await s.client.verify(key.uri, flipBit(message, 3), signed.signature, { algorithm }),
              ).toBe(false);
              expect(
                await s.client.verify(key.uri, message, flipBit(signed.signature, -1), { algorithm }),
              ).toBe(false);
              if (s.fixtures.publicKey !== undefined) {
                const ref =
                  signed.keyVersion === undefined
                    ? { uri: key.uri }
                    : { uri: key.uri, version: signed.keyVersion };
                const spki = await s.fixtures.publicKey(ref);
                expect(verifiesWithNode(algorithm, spki, message, signed.signature)).toBe(true);
                expect(verifiesWithNode(algorithm, spki, flipBit(message, 0), signed.signature)).toBe(false);
              }
            },
            timeoutMs,
          );
        }

        it(
          'another key’s signature does not verify',
          async () => {
            const s = t.state();
            const algorithm = firstDeclared();
            const key = await s.sharedKey(spec, 'sign_verify');
            const message = randomBytes(100);
            const other = await s.createKey(spec, { usage: 'sign_verify', hint: 'other-signer' });
            const foreign = await s.client.sign(other.uri, message, { algorithm });
            expect(await s.client.verify(other.uri, message, foreign.signature, { algorithm })).toBe(true);
            expect(await s.client.verify(key.uri, message, foreign.signature, { algorithm })).toBe(false);
          },
          timeoutMs,
        );

        it(
          'a pre-hashed digest signs like the message, or is refused with UnsupportedError',
          async () => {
            // Capabilities cannot declare digest signing yet, so both answers are allowed; a
            // signature over the digest that does not verify as the message is not.
            const s = t.state();
            const algorithm = firstDeclared();
            const key = await s.sharedKey(spec, 'sign_verify');
            const message = randomBytes(100);
            const digest = createHash(hashOf(algorithm)).update(message).digest();
            let signature: Uint8Array;
            try {
              signature = (await s.client.sign(key.uri, digest, { algorithm, messageType: 'digest' }))
                .signature;
            } catch (e) {
              expect(
                asKeyportError(e)?.code,
                'digest signing failed with something other than Unsupported',
              ).toBe('Unsupported');
              return;
            }
            expect(await s.client.verify(key.uri, message, signature, { algorithm })).toBe(true);
          },
          timeoutMs,
        );
      });
    }
  }

  if (plan.exercised.has('mac')) {
    for (const spec of specsFor(plan, 'mac')) {
      describe(`MAC: ${spec}`, () => {
        it(
          'a MAC verifies and is stable for the same message',
          async () => {
            const s = t.state();
            const key = await s.sharedKey(spec, 'mac');
            const message = randomBytes(100);
            const a = await s.client.mac(key.uri, message);
            const b = await s.client.mac(key.uri, message);
            expect(bytesEqual(a.mac, b.mac)).toBe(true);
            expect(await s.client.verifyMac(key.uri, message, a.mac)).toBe(true);
          },
          timeoutMs,
        );

        it(
          'an altered message, an altered MAC, or another key’s MAC does not verify',
          async () => {
            const s = t.state();
            const key = await s.sharedKey(spec, 'mac');
            const message = randomBytes(100);
            const { mac } = await s.client.mac(key.uri, message);
            expect(await s.client.verifyMac(key.uri, flipBit(message, 0), mac)).toBe(false);
            expect(await s.client.verifyMac(key.uri, message, flipBit(mac, -1))).toBe(false);
            const other = await s.createKey(spec, { usage: 'mac', hint: 'other-mac' });
            const foreign = await s.client.mac(other.uri, message);
            expect(bytesEqual(foreign.mac, mac)).toBe(false);
            expect(await s.client.verifyMac(key.uri, message, foreign.mac)).toBe(false);
          },
          timeoutMs,
        );
      });
    }
  }
}
