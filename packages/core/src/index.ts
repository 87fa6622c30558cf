export * from './capabilities.js';
export type * from './client-api.js';
export * from './context.js';
export * from './errors.js';
export type * from './provider.js';
export * from './types.js';
export * from './uri.js';
