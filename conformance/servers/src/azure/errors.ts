// Key Vault's error shape: HTTP status + `{ error: { code, message, innererror? } }`
// (https://learn.microsoft.com/rest/api/keyvault/keys/create-key/create-key#keyvaulterror).

export class KeyVaultError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
    this.name = 'KeyVaultError';
  }

  toBody(): { error: Record<string, unknown> } {
    const error: Record<string, unknown> = { code: this.code, message: this.message };
    if (this.innerCode) error.innererror = { code: this.innerCode };
    return { error };
  }
}

export const badParameter = (message: string): KeyVaultError =>
  new KeyVaultError(400, 'BadParameter', message);

export const keyNotFound = (nameOrId: string): KeyVaultError =>
  new KeyVaultError(
    404,
    'KeyNotFound',
    `A key with (name/id) ${nameOrId} was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );

export const deletedKeyNotFound = (name: string): KeyVaultError =>
  new KeyVaultError(404, 'KeyNotFound', `Deleted Key not found: ${name}`);

export const forbidden = (message: string, innerCode: string): KeyVaultError =>
  new KeyVaultError(403, 'Forbidden', message, innerCode);

/** 409; `innerCode` (e.g. ObjectIsDeletedButRecoverable) is what clients branch on to recover or purge. */
export const conflict = (message: string, innerCode?: string): KeyVaultError =>
  new KeyVaultError(409, 'Conflict', message, innerCode);
