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
// It needs `gc`, which the CLI exposes (--expose-gc, set with the flag above, process-wide); a library
// embedding without it gets no bound (its process's own GC settings apply).

import v8 from 'node:v8';
import vm from 'node:vm';

/** Outside-the-heap bytes (ArrayBuffers) a thread may hold before it collects its young garbage. */
export const GARBAGE_BOUND_BYTES = 32 * 1024 * 1024;
/** How often the bound is checked (ms): at 160 MB/s a thread takes in ~4 MB between two checks. */
export const GARBAGE_CHECK_MS = 25;

type Collect = (options: { type: 'minor' | 'major'; execution: 'sync' }) => void;

/** Starts the bound in this thread if `gc` is exposed; returns a stop function (a no-op if not). */
export function boundGarbage(limitBytes = GARBAGE_BOUND_BYTES): () => void {
  const collect = vm.runInNewContext('typeof gc === "function" ? gc : undefined') as Collect | undefined;
  if (!collect) return () => {};
  const timer = setInterval(() => {
    if (v8.getHeapStatistics().external_memory > limitBytes) collect({ type: 'minor', execution: 'sync' });
  }, GARBAGE_CHECK_MS);
  timer.unref();
  return () => clearInterval(timer);
}
