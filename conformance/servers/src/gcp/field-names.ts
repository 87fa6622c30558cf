/** Proto field names: snake_case as in the .proto, lowerCamel as in JSON and in protobufjs. */
export const camel = (s: string): string => s.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/** `versionTemplate` → `version_template`. */
export const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
