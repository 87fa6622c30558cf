import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../src/gcp/crc32c.js';
import { type CloudKmsServer, startCloudKmsServer } from '../src/gcp/index.js';

// Well-known types over REST: Int64Value checksums, Durations and Timestamps are read as proto3
// JSON defines them and refused in the service's words. The decoder library took an int64 string
// out of range, or `true`, as some other number (answered as a checksum mismatch), refused
// every negative Duration in its own words, read "s" as 0 s, took a Timestamp without a zone, rolled
// 2030-02-30 over to March 2 and read the fraction of an offset Timestamp as nanoseconds.
const LOCATION = 'projects/keyport-wkt/locations/global';
const RING = `${LOCATION}/keyRings/wkt`;
const KEY = `${RING}/cryptoKeys/k`;

let server: CloudKmsServer;
let made = 0;

interface Answer {
  status: number;
  body: {
    error?: {
      message?: string;
      status?: string;
      details?: { '@type'?: string; fieldViolations?: { field?: string }[] }[];
    };
    verifiedPlaintextCrc32c?: boolean;
    nextRotationTime?: string;
    rotationPeriod?: string;
  };
}

async function post(path: string, body: string): Promise<Answer> {
  const res = await fetch(`${server.restUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

const PLAINTEXT = Buffer.from('keyport');
const CRC = crc32c(PLAINTEXT);
const encrypt = (crc: string) =>
  post(`/v1/${KEY}:encrypt`, `{"plaintext":"${PLAINTEXT.toString('base64')}","plaintextCrc32c":${crc}}`);

/** CreateCryptoKey with the given JSON for rotationPeriod and nextRotationTime. */
const createKey = (rotationPeriod: string, nextRotationTime: string) =>
  post(
    `/v1/${RING}/cryptoKeys?cryptoKeyId=r${++made}`,
    `{"purpose":"ENCRYPT_DECRYPT","rotationPeriod":${rotationPeriod},"nextRotationTime":${nextRotationTime}}`,
  );

beforeAll(async () => {
  server = await startCloudKmsServer();
  expect((await post(`/v1/${LOCATION}/keyRings?keyRingId=wkt`, '{}')).status).toBe(200);
  expect((await post(`/v1/${RING}/cryptoKeys?cryptoKeyId=k`, '{"purpose":"ENCRYPT_DECRYPT"}')).status).toBe(
    200,
  );
});
afterAll(async () => {
  await server?.stop();
});

describe('Cloud KMS over REST: Int64Value checksums', () => {
  it('the right checksum, as a string or a number, is verified', async () => {
    for (const crc of [`"${CRC}"`, String(CRC)]) {
      const got = await encrypt(crc);
      expect(got.status, crc).toBe(200);
      expect(got.body.verifiedPlaintextCrc32c).toBe(true);
    }
  });

  it('a value outside int64 (CRC32C + 2^64 included) is 400 TYPE_INT64, not a checksum mismatch', async () => {
    for (const crc of [
      `"${BigInt(CRC) + 2n ** 64n}"`,
      '"18446744073709551616"',
      '"9223372036854775808"',
      '"-9223372036854775809"',
    ]) {
      const got = await encrypt(crc);
      expect(got.status, crc).toBe(400);
      expect(got.body.error?.status).toBe('INVALID_ARGUMENT');
      expect(got.body.error?.message).toBe(`Invalid value at 'plaintext_crc32c.value' (TYPE_INT64), ${crc}`);
    }
  });

  it('a boolean, a fraction or a non-number is refused, not read as 1 or 0', async () => {
    for (const crc of ['true', '1.5', '"abc"', '""']) {
      const got = await encrypt(crc);
      expect(got.status, crc).toBe(400);
      expect(got.body.error?.message).toBe(`Invalid value at 'plaintext_crc32c.value' (TYPE_INT64), ${crc}`);
    }
  });

  it('an in-range int64 that is not the checksum (-1, 2^63 - 1) is a checksum mismatch', async () => {
    for (const crc of ['-1', '"-1"', '"9223372036854775807"', String(CRC + 1)]) {
      const got = await encrypt(crc);
      expect(got.status, crc).toBe(400);
      expect(got.body.error?.message).toBe(
        'The checksum in field plaintext_crc32c did not match the data in field plaintext.',
      );
    }
  });
});

describe('Cloud KMS over REST: Duration and Timestamp values', () => {
  const FUTURE = '"2031-06-01T00:00:00Z"';

  it('a negative Duration reaches the field rule; an empty or malformed one is refused as the service words it', async () => {
    const negative = await createKey('"-86400s"', FUTURE);
    expect(negative.status).toBe(400);
    expect(negative.body.error?.message).toBe('rotation_period must be between 24 hours and 876,000 hours.');
    const shapes: [string, string][] = [
      ['"86400"', "Illegal duration format; duration must end with 's'"],
      ['"1d"', "Illegal duration format; duration must end with 's'"],
      ['"s"', 'Illegal duration format'],
      ['"-s"', 'Illegal duration format'],
      ['".5s"', 'Illegal duration format'],
      ['"1e5s"', 'Illegal duration format'],
      ['"86400.0000000001s"', 'Illegal duration format'],
      ['86400', 'Invalid data type for duration'],
      ['{"seconds":86400}', 'Invalid data type for duration'],
    ];
    for (const [value, why] of shapes) {
      const got = await createKey(value, FUTURE);
      expect(got.status, value).toBe(400);
      const message = `Invalid value at 'crypto_key.rotation_period' (type.googleapis.com/google.protobuf.Duration), Field 'rotationPeriod', ${why}`;
      expect(got.body.error?.message, value).toBe(message);
      expect(got.body.error?.details?.[0]?.fieldViolations?.[0]?.field).toBe('crypto_key.rotation_period');
    }
    const fraction = await createKey('"86400.5s"', FUTURE);
    expect(fraction.status).toBe(200);
    expect(fraction.body.rotationPeriod).toBe('86400.500s');
  });

  it('a Timestamp needs a zone and a real date; an offset and its fraction are read exactly', async () => {
    const shapes: [string, string][] = [
      [
        '"2031-06-01T00:00:00"',
        "Illegal timestamp format; timestamps must end with 'Z' or have a valid timezone offset.",
      ],
      [
        '"2031-06-01"',
        "Illegal timestamp format; timestamps must end with 'Z' or have a valid timezone offset.",
      ],
      ['"2031-02-29T00:00:00Z"', 'Invalid time format: Failed to parse input'],
      ['"2031-13-01T00:00:00Z"', 'Invalid time format: Failed to parse input'],
      ['"2031-06-01T24:00:00Z"', 'Invalid time format: Failed to parse input'],
      ['"2031-06-01 00:00:00Z"', 'Invalid time format: Failed to parse input'],
      ['"2031-06-01T00:00:00.1234567891Z"', 'Invalid time format: Failed to parse input'],
      ['1956528000', 'Invalid data type for timestamp'],
    ];
    for (const [value, why] of shapes) {
      const got = await createKey('"86400s"', value);
      expect(got.status, value).toBe(400);
      const message = `Invalid value at 'crypto_key.next_rotation_time' (type.googleapis.com/google.protobuf.Timestamp), Field 'nextRotationTime', ${why}`;
      expect(got.body.error?.message, value).toBe(message);
    }
    const leap = await createKey('"86400s"', '"2032-02-29T00:00:00Z"');
    expect(leap.status).toBe(200);
    const offset = await createKey('"86400s"', '"2031-06-01T00:30:00.5+01:00"');
    expect(offset.status).toBe(200);
    expect(new Date(offset.body.nextRotationTime ?? '').toISOString()).toBe('2031-05-31T23:30:00.500Z');
  });
});
