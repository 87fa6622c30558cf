/** A clock the tests can move forward: expiry, not-before, purge dates and rotation read it. */
export class TestClock {
  private offsetMs = 0;

  /** Milliseconds since the epoch, as this server sees them. */
  now(): number {
    return Date.now() + this.offsetMs;
  }

  /** Whole seconds since the epoch: Key Vault's attribute timestamps are Unix seconds. */
  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  advance(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError('advance by seconds >= 0');
    this.offsetMs += seconds * 1000;
  }
}
