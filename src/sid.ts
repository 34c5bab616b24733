// Socket ids: the worker index in the top bits, a hash of the connection's 4-tuple in the rest.
// The main thread then routes a client stream by its id alone and never arbitrates; the worker
// probes past ids it still has in use. The host never allocates ids.

export const SID_WORKER_SHIFT = 24;
export const SID_HASH_MASK = 0x00ff_ffff;
/** 8 bits of worker index. */
export const MAX_WORKERS = 256;

/** FNV-1a, 32 bits: cheap, and spread enough for a table key (ids are not secrets). */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function socketId(worker: number, remoteAddr: string, remotePort: number, localAddr: string, localPort: number): number {
  const h = fnv1a(`${remoteAddr}|${remotePort}|${localAddr}|${localPort}`);
  return ((worker << SID_WORKER_SHIFT) | (h & SID_HASH_MASK)) >>> 0;
}

/** The client's worker that owns an id. */
export function workerOfSid(sid: number): number {
  return sid >>> SID_WORKER_SHIFT;
}

/** The host's worker for a new (peer, id): a hash, so DATA that overtakes its CONNECT lands on the
 *  worker that will own the stream. */
export function hostWorkerFor(peer: number, sid: number, workers: number): number {
  const h = Math.imul((sid ^ Math.imul(peer + 1, 0x9e3779b1)) >>> 0, 0x85ebca6b) >>> 0;
  return ((h ^ (h >>> 15)) >>> 0) % workers;
}
