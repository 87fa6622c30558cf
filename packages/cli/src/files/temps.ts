/**
 * The temp files this process has open right now. A normal failure removes its own temp; this
 * list is for the exits that skip `finally` blocks: a second Ctrl-C, or the watchdog that ends
 * a run which did not stop within a second of a signal. Those remove every listed temp
 * synchronously before the process exits.
 */
import { unlinkSync } from 'node:fs';

const live = new Set<string>();

export function trackTemp(path: string): void {
  live.add(path);
}

export function untrackTemp(path: string): void {
  live.delete(path);
}

/** Whether `path` is a temp this process has open (a sweep of leftovers must not take it). */
export function isLiveTemp(path: string): boolean {
  return live.has(path);
}

/** Removes every live temp file (synchronously: safe in a signal handler right before exit). */
export function removeLiveTempsSync(): void {
  for (const path of live) {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
  live.clear();
}
