// Helpers for the tests of the tunnel as a service: a transfer kept running for a while (so that a
// reload happens in the middle of it), a scrape of /metrics through a real Prometheus text-format
// parser, and waiting for a line on a child's stderr.

import { createHash } from 'node:crypto';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { type Child } from './cli.js';
import { eventually } from './timing.js';
import { byteSource, connect } from './traffic.js';

export interface Paced {
  /** bytes echoed back so far */
  received(): number;
  /** resolves once the far side ended: what was sent and what came back */
  done: Promise<{ sent: number; received: number; sentHash: string; receivedHash: string }>;
}

/**
 * Sends `chunks` seeded chunks of `chunkBytes` through an echo at `port`, one every `intervalMs`
 * (honouring backpressure), then half-closes; hashes what comes back.
 */
export function pacedEcho(port: number, seed: number, chunks: number, chunkBytes: number, intervalMs: number): Paced {
  const next = byteSource(seed);
  const sentHash = createHash('sha256');
  const receivedHash = createHash('sha256');
  let sent = 0;
  let received = 0;
  const socket = connect(port);
  const done = new Promise<{ sent: number; received: number; sentHash: string; receivedHash: string }>((resolve, reject) => {
    let left = chunks;
    let timer: NodeJS.Timeout | undefined;
    const tick = () => {
      if (left === 0) {
        socket.end();
        return;
      }
      left--;
      const chunk = next(chunkBytes);
      sentHash.update(chunk);
      sent += chunk.byteLength;
      if (socket.write(chunk)) timer = setTimeout(tick, intervalMs);
      else socket.once('drain', () => { timer = setTimeout(tick, intervalMs); });
    };
    socket.once('connect', tick);
    socket.on('data', (c: Buffer) => { received += c.byteLength; receivedHash.update(c); });
    socket.once('end', () => {
      clearTimeout(timer);
      socket.end();
      resolve({ sent, received, sentHash: sentHash.digest('hex'), receivedHash: receivedHash.digest('hex') });
    });
    socket.once('error', (err) => { clearTimeout(timer); reject(new Error(`paced echo on ${port}: ${err.message} after ${sent} B sent, ${received} B back`)); });
  });
  return { received: () => received, done };
}

export interface Family {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'SUMMARY' | 'HISTOGRAM' | 'UNTYPED';
  metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string> }[];
}

/** GET `url` (a /metrics endpoint) and parse it with a real Prometheus text-format parser. */
export async function scrape(url: string): Promise<{ text: string; contentType: string; families: Map<string, Family> }> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
  const text = await res.text();
  const families = new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));
  return { text, contentType: res.headers.get('content-type') ?? '', families };
}

/** The value of a family's sample whose labels include `labels` (NaN if none). */
export function sample(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  const m = family?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m?.value === undefined ? Number.NaN : Number(m.value);
}

/** Waits until the child's stderr matches `re` (after `from` characters); fails after `ms`. */
export async function stderrLine(child: Child, re: RegExp, ms: number, from = 0): Promise<void> {
  if (!(await eventually(() => re.test(child.stderr().slice(from)), ms, 25))) {
    throw new Error(`no stderr line matching ${re} within ${ms} ms; stderr: ${child.stderr().slice(from).slice(-2000)}`);
  }
}
