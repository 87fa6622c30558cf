/**
 * One loaded module and one C_Initialize per module path per process. PKCS#11 allows a single
 * initialisation per application: a second C_Initialize answers CKR_CRYPTOKI_ALREADY_INITIALIZED,
 * and a C_Finalize by one provider would pull the module from under every other. So providers
 * share a reference-counted handle; the last one to close finalises — unless someone outside this
 * registry initialised the module first, in which case it is theirs to finalise.
 */
import { realpathSync } from 'node:fs';
import { ckrOf, P, type Pkcs11 } from './p11.js';

export interface LoadedModule {
  readonly p11: Pkcs11;
  /** The module's path with symbolic links resolved: the registry's key. */
  readonly path: string;
  /** False when the module was already initialised by code outside this registry. */
  readonly ownsInitialize: boolean;
}

interface Entry {
  module: LoadedModule;
  refs: number;
}

const loaded = new Map<string, Entry>();

/**
 * One file, one entry: two spellings of a module's path (a symlink such as
 * /usr/lib/softhsm/libsofthsm2.so and its target) load the same library, so they must share one
 * C_Initialize — else the first provider's C_Finalize pulls the module from under the other.
 * A name the dynamic loader resolves itself (no such file here) is its own key.
 */
function moduleKey(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export function acquireModule(given: string): LoadedModule {
  const path = moduleKey(given);
  const entry = loaded.get(path);
  if (entry !== undefined) {
    entry.refs++;
    return entry.module;
  }
  const p11 = new P.PKCS11();
  p11.load(path);
  let ownsInitialize = true;
  try {
    // OS locking: pkcs11js runs the *Async calls on libuv worker threads.
    p11.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
  } catch (e) {
    if (ckrOf(e) !== P.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      p11.close();
      throw e;
    }
    ownsInitialize = false;
  }
  const module: LoadedModule = { p11, path, ownsInitialize };
  loaded.set(path, { module, refs: 1 });
  return module;
}

export function releaseModule(module: LoadedModule): void {
  const entry = loaded.get(module.path);
  if (entry === undefined || entry.module !== module) return;
  entry.refs--;
  if (entry.refs > 0) return;
  loaded.delete(module.path);
  if (module.ownsInitialize) {
    try {
      module.p11.C_Finalize();
    } finally {
      module.p11.close();
    }
  }
}

/**
 * Finalises and initialises the module again, when this registry initialised it and `module` is
 * its only user (no other provider, so no session, can be pulled from under anyone): true when
 * it did. A module reads its tokens at C_Initialize, and SoftHSM2 keeps the slot list it built
 * then (SlotManager's constructor; ObjectStore skips a token whose `token.object` it read empty,
 * which another process's C_Login makes it do for an instant): a token missed then is missing
 * for the life of the initialisation, whatever C_GetSlotList is asked later.
 */
export function reinitializeIfSole(module: LoadedModule): boolean {
  const entry = loaded.get(module.path);
  if (entry === undefined || entry.module !== module || entry.refs !== 1 || !module.ownsInitialize)
    return false;
  module.p11.C_Finalize();
  module.p11.C_Initialize({ flags: P.CKF_OS_LOCKING_OK });
  return true;
}

/** How many providers share the module at `path` (for tests and diagnostics). */
export function moduleRefs(path: string): number {
  return loaded.get(moduleKey(path))?.refs ?? 0;
}
