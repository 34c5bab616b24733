// One V8 setting for the tool's processes (the CLI and the benchmark's raw DataChannel peers; the
// library leaves the embedding process alone).
//
// Every TCP read and every received DataChannel message is a 64 KiB ArrayBuffer outside V8's heap.
// By default V8 starts a full mark-compact whenever that outside memory has grown by a fixed step, so
// a bulk transfer ran one every ~10 MB: 16-19 mark-compacts per 200 MB on each side, 20-30 % of the
// main thread in the profiles. Counting outside memory in the global heap limit instead: 4-5.
// The memory that saves CPU is bounded by src/shared/garbage.ts, which needs `gc` (--expose-gc): each
// thread runs a young-generation collection once its outside memory passes 32 MiB.

import v8 from 'node:v8';
import { boundGarbage } from './shared/garbage.js';

export function tuneGarbageCollector(): void {
  const [major = 0, minor = 0] = process.versions.v8.split('.').map(Number);
  // the flag exists from V8 13.6 (Node 24); an older V8 would print "unrecognized flag"
  if (major > 13 || (major === 13 && minor >= 6)) v8.setFlagsFromString('--external-memory-accounted-in-global-limit');
  // process-wide: the shards' threads, started later, find `gc` too (workers/entry.ts)
  v8.setFlagsFromString('--expose-gc');
  boundGarbage();
}
