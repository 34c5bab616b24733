// The live status line on a terminal: peers, their path, open streams and throughput each way, redrawn every
// second in place. Off with --quiet, and never when stdout is not a TTY (logs stay plain lines).

import type { DataPlaneStats } from '../dataplane/data-plane.js';

export interface StatusSource {
  stats(): Promise<DataPlaneStats>;
  peers(): number;
  /** the path(s) in use, short ("direct/host 3 ms", "relay 1, websocket 1") */
  path?(): string;
}

const mbps = (bytes: number, ms: number) => `${((bytes / 1e6) / (ms / 1000)).toFixed(2)} MB/s`;

export function startStatusLine(source: StatusSource, out: NodeJS.WriteStream = process.stdout): () => void {
  if (!out.isTTY) return () => {};
  let last = { at: Date.now(), in: 0, out: 0 };
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    source.stats().then((s) => {
      const now = Date.now();
      const streams = s.shards.reduce((n, shard) => n + (shard?.streams ?? 0), 0);
      const path = source.path ? `  path ${source.path()}` : '';
      const line = `peers ${source.peers()}${path}  streams ${streams}  in ${mbps(s.dispatcher.bytesIn - last.in, now - last.at)}  out ${mbps(s.dispatcher.bytesOut - last.out, now - last.at)}`;
      last = { at: now, in: s.dispatcher.bytesIn, out: s.dispatcher.bytesOut };
      out.write(`\r\x1b[K${line}`);
    }).catch(() => {}).finally(() => { busy = false; });
  }, 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    out.write('\r\x1b[K');
  };
}
