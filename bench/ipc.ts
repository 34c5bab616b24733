// Request/response over Node's IPC channel: the harness calls a job in a child and awaits its answer.
// Every call has a timeout, so a hung child cannot hang the benchmark.

import type { ChildProcess } from 'node:child_process';

interface Request { id: number; job: unknown }
interface Reply { id: number; ok: boolean; value?: unknown; error?: string }

const isReply = (m: unknown): m is Reply => typeof m === 'object' && m !== null && 'id' in m && 'ok' in m;

let nextId = 1;
const pending = new WeakMap<ChildProcess, Map<number, { resolve(v: unknown): void; reject(e: Error): void }>>();

function table(child: ChildProcess): Map<number, { resolve(v: unknown): void; reject(e: Error): void }> {
  let calls = pending.get(child);
  if (!calls) {
    const map = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
    calls = map;
    pending.set(child, map);
    child.on('message', (m: unknown) => {
      if (!isReply(m)) return;
      const call = map.get(m.id);
      if (!call) return;
      map.delete(m.id);
      if (m.ok) call.resolve(m.value);
      else call.reject(new Error(m.error ?? 'child failed'));
    });
    child.on('exit', (code, signal) => {
      for (const call of map.values()) call.reject(new Error(`child exited (${signal ?? code}) during a call`));
      map.clear();
    });
  }
  return calls;
}

/** Runs `job` in `child`; rejects after `timeoutMs` (the job's own bound plus a margin). */
export function call<T>(child: ChildProcess, job: unknown, timeoutMs: number): Promise<T> {
  const calls = table(child);
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      calls.delete(id);
      reject(new Error(`no answer from the child in ${timeoutMs} ms`));
    }, timeoutMs);
    calls.set(id, {
      resolve: (v) => { clearTimeout(timer); resolve(v as T); },
      reject: (e) => { clearTimeout(timer); reject(e); },
    });
    if (!child.connected) {
      calls.delete(id);
      clearTimeout(timer);
      reject(new Error('child is not connected'));
      return;
    }
    child.send({ id, job } satisfies Request);
  });
}

/** In a child: answer every request with `handler`. The child exits when the harness goes away. */
export function serve<J>(handler: (job: J) => Promise<unknown>): void {
  process.on('message', (m: unknown) => {
    if (typeof m !== 'object' || m === null || !('id' in m) || !('job' in m)) return;
    const { id, job } = m as Request;
    handler(job as J).then(
      (value) => process.send?.({ id, ok: true, value } satisfies Reply),
      (err: unknown) => process.send?.({ id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies Reply),
    );
  });
  // the harness died or closed the channel: nothing left to do (other 'disconnect' listeners run first)
  process.on('disconnect', () => setImmediate(() => process.exit(0)));
}
