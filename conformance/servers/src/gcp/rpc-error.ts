import { status } from '@grpc/grpc-js';

/** An error the server answers with: a gRPC status code and the message the service would give. */
export class RpcError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

export const notFound = (what: string): RpcError => new RpcError(status.NOT_FOUND, `${what} not found.`);
export const alreadyExists = (what: string): RpcError =>
  new RpcError(status.ALREADY_EXISTS, `${what} already exists.`);
export const invalid = (message: string): RpcError => new RpcError(status.INVALID_ARGUMENT, message);
export const precondition = (message: string): RpcError => new RpcError(status.FAILED_PRECONDITION, message);
export const unimplemented = (what: string): RpcError =>
  new RpcError(status.UNIMPLEMENTED, `${what} is not emulated by the keyport Cloud KMS test server.`);
