/**
 * A bounded pool of logged-in read/write sessions. A PKCS#11 session holds at most one active
 * operation and is not safe for concurrent use, so each call borrows one session for its whole
 * duration. Login state belongs to the application per token (not per session): one C_Login
 * covers every session, and CKR_USER_ALREADY_LOGGED_IN is success. A call that meets
 * CKR_USER_NOT_LOGGED_IN (the token logged us out, e.g. after a device reset) logs in again and
 * is retried once. A session that saw any PKCS#11 error is closed rather than reused: after an
 * error it may still hold an active operation (CKR_OPERATION_ACTIVE on its next *Init). The one
 * exception is a decrypt or unwrap that refused its input, which ends the operation: that session
 * is kept once a probe shows it idle.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { KeyportError, settleOrAbort } from '@keyport/core';
import { mapPkcs11Error, operationEnded, PROVIDER_NAME } from './errors.js';
import { tokenWriteRunning } from './objects.js';
import {
  DEFAULT_PIN_TIMEOUT_MS,
  dropPin,
  type PinSource,
  pinFrom,
  pinSourceKind,
  readPinSource,
} from './options.js';
import { ckrOf, type Handle, P, type Pkcs11 } from './p11.js';

/** CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS, CKS_RW_SO_FUNCTIONS (pkcs11js does not export CKS_*). */
const LOGGED_IN_STATES = new Set([1, 3, 4]);

interface Waiter {
  resolve(session: Handle): void;
  reject(error: unknown): void;
}

const abortErrors = new WeakSet<object>();

/** An Aborted error of this pool's own (no PKCS#11 call failed: the session is intact). */
function isAbort(error: unknown): boolean {
  return typeof error === 'object' && error !== null && abortErrors.has(error);
}

export function abortedError(): KeyportError {
  const error = new KeyportError('Aborted', 'the operation was aborted', {
    provider: PROVIDER_NAME,
    retryable: false,
  });
  abortErrors.add(error);
  return error;
}

/** Throws Aborted when the signal fired: called between PKCS#11 steps, never inside one. */
export function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError();
}

/**
 * C_Login attempts when the token answers CKR_GENERAL_ERROR. SoftHSM2 2.6.1 answers it when
 * another process logs in on the same token at that moment: every C_Login rewrites the token's
 * `token.object` file (setTokenFlags, src/lib/slot_mgr/Token.cpp:179/184), and the writer
 * releases its fcntl lock (ObjectFile.cpp:655, writeAttributes) after the ftruncate
 * (ObjectFile.cpp:532) but before its stdio buffer reaches the file (fclose in ~File,
 * File.cpp:141). A reader that locks in that window sees an empty file (ObjectFile.cpp:321), so
 * getTokenFlags fails and loginUser returns CKR_GENERAL_ERROR (Token.cpp:169-172) before the
 * PIN is checked (line 176): no wrong-PIN attempt is counted, and the next try reads the whole
 * file. Only CKR_GENERAL_ERROR is retried: CKR_PIN_INCORRECT / CKR_PIN_LOCKED count toward a
 * lockout and are never sent again; a failed C_Login writes no key. Bounded (a token that always
 * answers it fails after LOGIN_ATTEMPTS, Internal as before) and jittered, so two processes that
 * collided do not collide again in step.
 */
const LOGIN_ATTEMPTS = 5;

/** 10–30 ms times the attempt number (at most ~300 ms in all). */
function loginBackoff(attempt: number): Promise<void> {
  const ms = attempt * (10 + Math.floor(Math.random() * 21));
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function closedError(): KeyportError {
  return new KeyportError('Unavailable', 'the PKCS#11 provider was closed', {
    provider: PROVIDER_NAME,
    retryable: false,
  });
}

/**
 * C_OpenSession answered CKR_SESSION_COUNT while this pool holds no session to wait for: other
 * applications hold the token's sessions. Retryable (Unavailable, as the error table maps
 * CKR_SESSION_COUNT elsewhere): they may close theirs.
 */
function sessionCountError(cause: unknown): KeyportError {
  return new KeyportError(
    'Unavailable',
    'the token has no session free (CKR_SESSION_COUNT in C_OpenSession) and this provider holds none to wait for',
    { provider: PROVIDER_NAME, retryable: true, cause },
  );
}

/**
 * The PIN source did not answer in time. Names the source's kind and the bound, nothing else.
 * Not retryable: core's retries would ask the source again within the same call (its default
 * policy: up to 4 times), prompting a person who is not answering again and again, each time
 * leaving the previous callback running (it cannot be cancelled), and stretching the wait the
 * caller bounded with `pin.timeoutMs` several times over. The next call asks again.
 */
function pinTimeoutError(source: PinSource, ms: number): KeyportError {
  const kind = pinSourceKind(source);
  return new KeyportError(
    'Unavailable',
    `the PIN ${kind} did not answer within ${ms} ms (pin.timeoutMs); the next call asks it again`,
    { provider: PROVIDER_NAME, retryable: false },
  );
}

/**
 * Login failures raised before any C_Login ran (the PIN source failed, timed out or gave no
 * string; a PIN the token refused before): no PKCS#11 call saw an error, so the sessions of
 * that login are intact and go back to the pool instead of being closed.
 */
const beforeLogin = new WeakSet<object>();

function failedBeforeLogin(error: unknown): unknown {
  if (typeof error === 'object' && error !== null) beforeLogin.add(error);
  return error;
}

/** Whether a session whose login failed with `error` may be kept (see beforeLogin). */
function sessionIntact(error: unknown): boolean {
  return typeof error === 'object' && error !== null && beforeLogin.has(error);
}

export class SessionPool {
  private readonly idle: Handle[] = [];
  private readonly waiters: Waiter[] = [];
  private open = 0;
  private login: Promise<void> | undefined;
  /** The current login promise has settled successfully (saves an await per call). */
  private loginDone = false;
  private closed = false;
  private readonly drainers: Array<() => void> = [];
  /**
   * A keyed digest of the last PIN the token refused (never the PIN): a real token counts every
   * wrong PIN toward locking the user out, so the same wrong PIN is not sent again on every call.
   */
  private refusedPin: string | undefined;
  private readonly pinDigestKey = randomBytes(32);
  /** Gives up each PIN wait in progress (close() does, at once); see readPin. */
  private readonly pinWaits = new Set<(error: KeyportError) => void>();

  constructor(
    private readonly p11: Pkcs11,
    private readonly slot: Handle,
    private readonly pin: PinSource,
    readonly maxSessions: number,
  ) {}

  /**
   * Runs `fn` on a borrowed, logged-in session; re-logs in once after CKR_USER_NOT_LOGGED_IN.
   * Every call takes this path, so it stays as short as a bare pkcs11js program's: an idle
   * session runs `fn` with no await before it, a session handed over by the previous caller
   * runs it in the step that hands it over, and the result settles in one step after `fn`.
   */
  run<T>(signal: AbortSignal | undefined, fn: (session: Handle) => Promise<T> | T): Promise<T> {
    if (signal?.aborted || this.closed || !this.loginDone) return this.runSlowly(signal, fn, 1);
    const idle = this.idle.pop();
    if (idle !== undefined) return this.runOn(idle, signal, fn, 1);
    if (this.open < this.maxSessions) return this.runSlowly(signal, fn, 1);
    return this.wait(signal).then((session) =>
      this.loginDone ? this.runOn(session, signal, fn, 1) : this.loginThenRun(session, signal, fn, 1),
    );
  }

  private runOn<T>(
    session: Handle,
    signal: AbortSignal | undefined,
    fn: (session: Handle) => Promise<T> | T,
    attempt: number,
  ): Promise<T> {
    // No call starts while a token write runs on this module (objects.ts: SoftHSM2 fails either).
    const writing = tokenWriteRunning(this.p11);
    if (writing !== undefined) {
      const again = () => this.runOn(session, signal, fn, attempt);
      return writing.then(again, again);
    }
    let result: Promise<T> | T;
    try {
      result = fn(session);
    } catch (e) {
      return this.failed(session, e, signal, fn, attempt);
    }
    if (!(result instanceof Promise)) {
      this.release(session, true);
      return Promise.resolve(result);
    }
    return result.then(
      (value) => {
        this.release(session, true);
        return value;
      },
      (e: unknown) => this.failed(session, e, signal, fn, attempt),
    );
  }

  private async loginThenRun<T>(
    session: Handle,
    signal: AbortSignal | undefined,
    fn: (session: Handle) => Promise<T> | T,
    attempt: number,
  ): Promise<T> {
    try {
      await this.loginFor(session, signal);
    } catch (e) {
      if (!isAbort(e)) this.release(session, sessionIntact(e)); // an abort was released by loginFor
      throw e;
    }
    return this.runOn(session, signal, fn, attempt);
  }

  private async runSlowly<T>(
    signal: AbortSignal | undefined,
    fn: (session: Handle) => Promise<T> | T,
    attempt: number,
  ): Promise<T> {
    return this.runOn(await this.acquire(signal), signal, fn, attempt);
  }

  /**
   * After `fn` failed on `session`: the session is closed if PKCS#11 reported the failure (it may
   * still hold an active operation); a logout under us (CKR_USER_NOT_LOGGED_IN, or — SoftHSM2 —
   * private objects that turned invisible, NotFound, while the session shows a public state) logs
   * in again and runs `fn` once more.
   */
  private failed<T>(
    session: Handle,
    error: unknown,
    signal: AbortSignal | undefined,
    fn: (session: Handle) => Promise<T> | T,
    attempt: number,
  ): Promise<T> {
    // keyport's own checks run before any C_*Init and leave the session as it was; a PKCS#11
    // error (also one turned into a KeyportError, e.g. a failed tag check → InvalidCiphertext) or
    // anything unexpected (a TypeError between an Init and its operation) may leave an active
    // operation behind: that session is closed.
    const own = error instanceof KeyportError && !(error.cause instanceof P.NativeError);
    const ckr = ckrOf(error) ?? (error instanceof KeyportError ? ckrOf(error.cause) : undefined);
    const mayBeLoggedOut = ckr !== undefined || (error instanceof KeyportError && error.code === 'NotFound');
    const loggedOut =
      attempt === 1 && mayBeLoggedOut && (ckr === P.CKR_USER_NOT_LOGGED_IN || !this.stillLoggedIn(session));
    // A C_Decrypt that refused its input ended its operation (PKCS#11 §5.9): the session is kept
    // once it is seen to hold none, so a flood of bad ciphertexts does not churn sessions.
    this.release(session, own || (!loggedOut && operationEnded(error) && this.holdsNoOperation(session)));
    if (!loggedOut) return Promise.reject(error);
    this.forgetLogin();
    return this.runSlowly(signal, fn, attempt + 1);
  }

  private async acquire(signal: AbortSignal | undefined): Promise<Handle> {
    checkSignal(signal);
    if (this.closed)
      throw new KeyportError('Unavailable', 'the PKCS#11 provider is closed', {
        provider: PROVIDER_NAME,
        retryable: false,
      });
    const idle = this.idle.pop();
    const opened = idle === undefined && this.open < this.maxSessions ? this.openIfRoom() : undefined;
    const session = idle ?? opened ?? (await this.wait(signal));
    try {
      // Closing an application's last session logs it out (PKCS#11 §5.6), and another provider
      // sharing the module may have done so: a NEW session that reports a public state needs a
      // login. (A session handed over by another caller was logged in a moment ago.)
      // Only a login that finished: while one is still waiting for the PIN, a new session is
      // public anyway, and forgetting that login would ask the PIN source a second time.
      if (opened !== undefined && this.loginDone && !this.loggedIn(session)) this.forgetLogin();
      if (!this.loginDone || this.login === undefined) await this.loginFor(session, signal);
    } catch (e) {
      // An abort was released by loginFor; a C_GetSessionInfo that failed leaves intact false.
      if (!isAbort(e)) this.release(session, sessionIntact(e));
      throw e;
    }
    return session;
  }

  /**
   * The shared login, given up by this caller when its signal fires: a PIN callback that never
   * settles (a secret store that does not answer) must not hold the caller forever. The login
   * itself goes on. The caller's session goes back to the pool, but only once no C_Login can run
   * on it: a login this caller started logs in on its session when the PIN arrives.
   */
  private loginFor(session: Handle, signal: AbortSignal | undefined): Promise<void> {
    const logsInOnSession = this.login === undefined;
    const login = this.ensureLogin(session);
    if (signal === undefined) return login;
    return settleOrAbort(login, signal, () => {
      if (!logsInOnSession) this.release(session, true);
      else
        login.then(
          () => this.release(session, true),
          (e: unknown) => this.release(session, sessionIntact(e)),
        );
      return abortedError();
    });
  }

  private openSession(): Handle {
    this.open++;
    try {
      return this.p11.C_OpenSession(this.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    } catch (e) {
      this.open--;
      throw e;
    }
  }

  /**
   * A new session, or undefined when the token has none free (CKR_SESSION_COUNT: other
   * applications hold them) but this pool has sessions open: the caller then waits for one of
   * those instead of failing. With none open there is nothing to wait for: a typed retryable error.
   */
  private openIfRoom(): Handle | undefined {
    try {
      return this.openSession();
    } catch (e) {
      if (ckrOf(e) !== P.CKR_SESSION_COUNT) throw e;
      if (this.open > 0) return undefined;
      throw sessionCountError(e);
    }
  }

  private wait(signal: AbortSignal | undefined): Promise<Handle> {
    return new Promise<Handle>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortedError());
      };
      const waiter: Waiter = {
        resolve: (s) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(s);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /**
   * Whether the session holds no decrypt operation: a C_Decrypt with none active answers
   * CKR_OPERATION_NOT_INITIALIZED and starts nothing. Any other answer (an operation was still
   * there, or the session is gone) means the session is not kept.
   */
  private holdsNoOperation(session: Handle): boolean {
    try {
      this.p11.C_Decrypt(session, Buffer.alloc(1), Buffer.alloc(1));
    } catch (e) {
      return ckrOf(e) === P.CKR_OPERATION_NOT_INITIALIZED;
    }
    return false;
  }

  private stillLoggedIn(session: Handle): boolean {
    try {
      return this.loggedIn(session);
    } catch {
      return true; // the session itself is gone: not a login problem
    }
  }

  private loggedIn(session: Handle): boolean {
    const { state } = this.p11.C_GetSessionInfo(session);
    return LOGGED_IN_STATES.has(state);
  }

  private forgetLogin(): void {
    this.login = undefined;
    this.loginDone = false;
  }

  /** One C_Login for the token, shared by concurrent callers; the PIN is read only here. */
  private ensureLogin(session: Handle): Promise<void> {
    if (this.login === undefined) {
      const attempt = (async () => {
        let pin: string;
        let digest: string;
        try {
          pin = await this.readPin();
          if (this.closed) throw closedError();
          digest = createHmac('sha256', this.pinDigestKey).update(pin).digest('base64');
          if (digest === this.refusedPin) {
            throw new KeyportError(
              'AccessDenied',
              'the token refused this PIN before (incorrect or locked); it is not sent again, since every wrong PIN counts toward locking the user out: give the right PIN',
              { provider: PROVIDER_NAME, retryable: false },
            );
          }
        } catch (e) {
          // No C_Login ran: the session this login was for is as it was (see beforeLogin). Safe
          // to keep because a late PIN never reaches C_Login (readPin drops it): nothing can log
          // in on, or fail on, that session once it is back in the pool.
          throw failedBeforeLogin(e);
        }
        for (let attempt = 1; ; attempt++) {
          try {
            this.p11.C_Login(session, P.CKU_USER, pin);
          } catch (e) {
            const ckr = ckrOf(e);
            if (ckr === P.CKR_GENERAL_ERROR && attempt < LOGIN_ATTEMPTS) {
              await loginBackoff(attempt);
              if (this.closed) throw closedError();
              continue;
            }
            if (ckr === P.CKR_PIN_INCORRECT || ckr === P.CKR_PIN_LOCKED) this.refusedPin = digest;
            // Mapped here (AccessDenied for a wrong or locked PIN): the first call may be one a
            // caller makes on the driver directly, not through core.
            if (ckr !== P.CKR_USER_ALREADY_LOGGED_IN) throw mapPkcs11Error(e) ?? e;
          }
          break;
        }
        this.refusedPin = undefined;
      })();
      this.login = attempt;
      this.loginDone = false;
      attempt.then(
        () => {
          if (this.login === attempt) this.loginDone = true;
        },
        () => {
          if (this.login === attempt) this.forgetLogin();
        },
      );
    }
    return this.login;
  }

  /**
   * The PIN source's answer, waited for at most `pin.timeoutMs`: a secret store that does not
   * answer fails this login (Unavailable, not retried within the call) and the next login asks
   * the source again, instead of every later call joining a login that never ends. A late answer
   * is dropped (wiped when it is bytes) and never reaches C_Login: the session this login was
   * to log in on went back to the pool when the login failed. close() gives the wait up at once.
   */
  private readPin(): Promise<string> {
    const ms = this.pin.timeoutMs ?? DEFAULT_PIN_TIMEOUT_MS;
    return new Promise<string>((resolve, reject) => {
      let done = false;
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        this.pinWaits.delete(giveUp);
        return true;
      };
      const giveUp = (error: KeyportError): void => {
        if (finish()) reject(error);
      };
      const timer = setTimeout(() => giveUp(pinTimeoutError(this.pin, ms)), ms);
      this.pinWaits.add(giveUp);
      readPinSource(this.pin).then(
        (answer) => {
          if (!finish()) return dropPin(answer);
          try {
            resolve(pinFrom(answer));
          } catch (e) {
            reject(e);
          }
        },
        (error: unknown) => {
          if (finish()) reject(error); // a late failure is dropped
        },
      );
    });
  }

  private release(session: Handle, healthy: boolean): void {
    if (!healthy || this.closed) {
      // Our last session is replaced before it is closed: closing an application's last session
      // logs it out and (SoftHSM2) forgets every object handle, which the key cache holds.
      let replacement: Handle | undefined;
      if (!this.closed && this.open === 1) {
        try {
          replacement = this.p11.C_OpenSession(this.slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
        } catch {
          // no replacement: the pool shrinks to zero, as below
        }
      }
      if (replacement !== undefined) {
        try {
          this.p11.C_CloseSession(session);
        } catch {
          // already gone
        }
        const waiter = this.waiters.shift();
        if (waiter !== undefined) waiter.resolve(replacement);
        else this.idle.push(replacement);
        return;
      }
      this.open--;
      try {
        this.p11.C_CloseSession(session);
      } catch {
        // already gone: nothing to release
      }
      // Closing the application's last session logged it out (PKCS#11 §5.6).
      if (this.open === 0) this.forgetLogin();
      const next = this.closed ? undefined : this.waiters.shift();
      if (next === undefined && this.open === 0) for (const d of this.drainers.splice(0)) d();
      if (next !== undefined) {
        try {
          next.resolve(this.openSession());
        } catch (e) {
          const full = ckrOf(e) === P.CKR_SESSION_COUNT;
          // The token is full but our other sessions will come back: the waiter keeps its place.
          if (full && this.open > 0) this.waiters.unshift(next);
          // No session of ours is left to come back: every waiter would wait forever.
          else
            for (const w of [next, ...(this.open === 0 ? this.waiters.splice(0) : [])])
              w.reject(full ? sessionCountError(e) : e);
        }
      }
      return;
    }
    const next = this.waiters.shift();
    if (next !== undefined) next.resolve(session);
    else this.idle.push(session);
  }

  /** Closes idle sessions now and busy ones as they come back; pending waiters fail. */
  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(closedError());
    // A login waiting for the PIN holds a session: it fails now, so that session comes back and
    // close() does not wait for a PIN source that may never answer.
    for (const giveUp of [...this.pinWaits]) giveUp(closedError());
    for (const s of this.idle.splice(0)) {
      this.open--;
      try {
        this.p11.C_CloseSession(s);
      } catch {
        // already gone
      }
    }
  }

  /** Resolves when every borrowed session has come back and been closed. */
  drained(): Promise<void> {
    if (this.open === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainers.push(resolve));
  }

  /** Sessions currently open (idle + borrowed). */
  get size(): number {
    return this.open;
  }
}
