/**
 * The one place pkcs11js is imported. From ESM its DEFAULT export is the CommonJS module object:
 * the namespace import lacks the CK* constants (DESIGN.md, seen with pkcs11js 2.1.7).
 */
import pkcs11js from 'pkcs11js';

export const P = pkcs11js;
export type Pkcs11 = InstanceType<typeof pkcs11js.PKCS11>;
export type Handle = Buffer;
export type Template = Parameters<Pkcs11['C_CreateObject']>[1];
export type Mechanism = Parameters<Pkcs11['C_EncryptInit']>[1];

/** CKZ_DATA_SPECIFIED (PKCS#11 v2.40 §2.1.8); pkcs11js does not export it. */
export const CKZ_DATA_SPECIFIED = 1;

/** A PKCS#11 return value carried by a pkcs11js error (Pkcs11Error.code), if the error is one. */
export function ckrOf(error: unknown): number | undefined {
  if (error instanceof P.Pkcs11Error) return error.code;
  return undefined;
}

/** Reads CK_ULONG / CK_BBOOL attribute values (pkcs11js returns raw little-endian buffers). */
export function readUlong(value: Buffer): number {
  if (value.length >= 8) return Number(value.readBigUInt64LE(0));
  if (value.length >= 4) return value.readUInt32LE(0);
  return value[0] ?? 0;
}

export function readBool(value: Buffer): boolean {
  return value.length > 0 && value[0] !== 0;
}
