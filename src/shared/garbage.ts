// A bound on the garbage a thread may hold outside V8's heap (the memory half of src/gc.ts's trade).
//
// Every TCP read and every received DataChannel message is a fresh 64 KiB ArrayBuffer outside the
// heap; most are garbage a few milliseconds later. With V8's --external-memory-accounted-in-global-limit
// (set by the CLI, src/gc.ts) V8 collects them only when heap + outside memory reach its global limit:
// few collections (the CPU the flag saves), but 64 bulk streams on loopback peaked at 216-238 MiB RSS
// per side against 90 MiB idle. A young-generation collection frees the buffers that died young, and
// costs little when few objects survive: run one whenever the thread's outside memory passes
// GARBAGE_BOUND_BYTES. A/B interleaved, 3 runs each, --workers 0, 64 streams x 200 MB each way:
// peak RSS host/client median 228/232 -> 146/146 MiB; tunnel CPU upload 19.6 -> 17.6 ms/MB,
// download 15.2 -> 16.2 (within the noise of this shared 2-core VM). Without the flag at all: 143 MiB.
//
// A young collection cannot free what has lived through two of them: buffers that sat a few
// milliseconds in a socket's write queue or behind a busy DataChannel are promoted to the old
// generation, where only a full collection frees them, and V8 starts one only at its global limit. On
// a faster machine (2026-12-06, raw DataChannel 268-290 MB/s on loopback) 64 bulk streams each way
// then peaked above 192 MiB on one side or the other in 8 of 15 fresh pairs (up to 255 MiB; a fixed
// 256 KiB window or checking every 5 ms did not stop it, nor did fewer malloc arenas: 5 of 15). So
// when a young collection leaves more than OLD_GARBAGE_FACTOR times the bound outside the heap, a
// full one follows.
// Interleaved, 4 x 5 fresh pairs each (tunnel bench --scenarios bulk --streams 64 [or 1,64] --workers
// 0 --runs 5): 0 of 20 over 192 MiB (149-181 MiB) against 13 of 20 without it (up to 253 MiB); CPU
// per MB the same or lower at 1 and 64 streams (one upload 9.30 and 8.50 ms/MB against 10.35 and 8.90),
// throughput within the runs' noise. At 256 streams, where more garbage gets old, the CPU per MB
// against the raw channel was 3-9 % higher in two more pairs (--streams 64,256): a possible small
// cost, inside this machine's noise, that the bound on memory is worth.
//
// It needs `gc`, which the CLI exposes (--expose-gc, set with the flag above, process-wide); a library
// embedding without it gets no bound (its process's own GC settings apply).

import v8 from 'node:v8';
import vm from 'node:vm';

/** Outside-the-heap bytes (ArrayBuffers) a thread may hold before it collects its young garbage. */
export const GARBAGE_BOUND_BYTES = 32 * 1024 * 1024;
/** How often the bound is checked (ms): at 160 MB/s a thread takes in ~4 MB between two checks. */
export const GARBAGE_CHECK_MS = 25;
/** Past a young collection, outside memory above this many times the bound is old garbage. */
export const OLD_GARBAGE_FACTOR = 2;

type Collect = (options: { type: 'minor' | 'major'; execution: 'sync' }) => void;

/** Starts the bound in this thread if `gc` is exposed; returns a stop function (a no-op if not). */
export function boundGarbage(limitBytes = GARBAGE_BOUND_BYTES): () => void {
  const collect = vm.runInNewContext('typeof gc === "function" ? gc : undefined') as Collect | undefined;
  if (!collect) return () => {};
  const timer = setInterval(() => {
    if (v8.getHeapStatistics().external_memory <= limitBytes) return;
    collect({ type: 'minor', execution: 'sync' });
    if (v8.getHeapStatistics().external_memory > OLD_GARBAGE_FACTOR * limitBytes) collect({ type: 'major', execution: 'sync' });
  }, GARBAGE_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
