// Closing what a test started: newest first (a client before its host, a host before its services),
// each part with a deadline, every part even when one fails. A part that hangs fails the test
// instead of the run: a close that never resolves is a bug worth seeing.

import { within } from './timing.js';

/** How long one part may take to close (ms). */
const CLOSE_MS = 10_000;

interface Closeable { close(): Promise<unknown> | void }

export interface Teardown {
  /** Has close() close `part` too, before everything added earlier; returns `part`. */
  add<T extends Closeable>(part: T, what: string): T;
  /** Closes every part added so far (newest first); rejects naming those that failed or hung. */
  close(): Promise<void>;
}

export function teardown(): Teardown {
  const parts: { part: Closeable; what: string }[] = [];
  return {
    add(part, what) {
      parts.push({ part, what });
      return part;
    },
    async close() {
      const failures: string[] = [];
      for (const { part, what } of parts.splice(0).reverse()) {
        await within(Promise.resolve(part.close()), CLOSE_MS, `closing the ${what}`).catch((err: Error) => failures.push(err.message));
      }
      if (failures.length > 0) throw new Error(failures.join('; '));
    },
  };
}
