// Micro-benchmarks of the hot paths, each against a naive baseline in the same run:
//   codec       encodePacket + decodePackets   vs  a msgpack-encoded header (msgpackr pack/unpack)
//   reassembler reassemble() under random reordering  vs  push + sort + deliver the in-order prefix
//               (both copy a held payload, as ours must)
//   dispatcher  the routing step (peek the sid, route table, batch per shard per turn)
//               vs  a full decode of every message, a string-keyed route table, one post per message
// Printed as operations per second and ours / naive. `tunnel bench --micro [--quick] [--json FILE]`.

import { writeFileSync } from 'node:fs';
import { pack, unpack } from 'msgpackr';
import { PacketType, encodePacket, decodePackets, type Packet } from '../src/shared/packet.js';
import { createReassembler, reassemble } from '../workers/reassembler.js';
import { createDispatcher } from '../src/dataplane/dispatcher.js';
import type { Channel } from '../src/webrtc/channels.js';
import { defaultConfig, windowOffer } from '../src/shared/limits.js';
import { createLogger } from '../src/shared/log.js';
import type { ToShard } from '../src/shared/thread-messages.js';

interface Result { name: string; unit: string; ours: number; naive: number; ratio: number }

/** Runs `fn` (which returns how many operations it did) until `ms` have passed; operations per second. */
async function measure(fn: () => number | Promise<number>, ms: number): Promise<number> {
  const warm = performance.now() + ms / 4;
  while (performance.now() < warm) await fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    ops += await fn();
    now = performance.now();
  }
  return ops / ((now - start) / 1000);
}

let sink = 0; // results are folded in here so the work cannot be optimised away

// ---- codec ----

function codecOurs(payload: Uint8Array, type: PacketType): () => number {
  let seq = 0;
  return () => {
    for (let i = 0; i < 1000; i++) {
      const message = encodePacket(type, 0x01abcdef, seq++, type === PacketType.DATA ? payload : undefined);
      const [p] = decodePackets(message);
      sink += p ? p.seq : 0;
    }
    return 1000;
  };
}

function codecNaive(payload: Uint8Array, type: PacketType): () => number {
  let seq = 0;
  return () => {
    for (let i = 0; i < 1000; i++) {
      const message = pack({ type, sid: 0x01abcdef, seq: seq++, payload: type === PacketType.DATA ? payload : new Uint8Array(0) });
      const p = unpack(message) as { seq: number };
      sink += p.seq;
    }
    return 1000;
  };
}

// ---- reassembler ----

/** Sequence numbers 0..n-1 shuffled within consecutive blocks of `spread`: what an unordered channel does. */
function reordered(n: number, spread: number): Packet[] {
  const payload = new Uint8Array(1024);
  const packets: Packet[] = [];
  for (let base = 0; base < n; base += spread) {
    const block: number[] = [];
    for (let s = base; s < Math.min(n, base + spread); s++) block.push(s);
    for (let i = block.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [block[i], block[j]] = [block[j] ?? 0, block[i] ?? 0];
    }
    for (const seq of block) packets.push({ type: PacketType.DATA, streamId: 1, seq, payload });
  }
  return packets;
}

function reassemblerOurs(packets: Packet[]): () => number {
  const limits = { maxHeldBytes: 64 * 1024 * 1024, maxAheadPackets: 16384 };
  const deliver = (p: Packet) => { sink += p.seq; };
  return () => {
    const r = createReassembler();
    for (const p of packets) reassemble(r, p, limits, deliver);
    if (r.next !== packets.length) throw new Error('reassembler lost packets');
    return packets.length;
  };
}

/** Push + sort + deliver the in-order prefix. Like ours, it keeps a copy of a held packet's payload
 *  (ours does, so a held view cannot pin its whole DataChannel message): the comparison is the algorithm. */
function reassemblerNaive(packets: Packet[]): () => number {
  return () => {
    let next = 0;
    const held: Packet[] = [];
    for (const p of packets) {
      held.push(p.seq === next ? p : { ...p, payload: p.payload.slice() });
      held.sort((a, b) => a.seq - b.seq);
      while (held.length > 0 && held[0]?.seq === next) {
        const q = held.shift();
        sink += q ? q.seq : 0;
        next++;
      }
    }
    if (next !== packets.length) throw new Error('naive reorder lost packets');
    return packets.length;
  };
}

// ---- dispatcher ----

const STREAMS = 1000;
const BATCH = 1000;

/** DATA messages of 1 KiB over STREAMS streams, each a Buffer over its own exact-size ArrayBuffer. */
function channelMessages(): Buffer[] {
  const payload = new Uint8Array(1024);
  return Array.from({ length: BATCH }, (_, i) => Buffer.from(encodePacket(PacketType.DATA, (i % STREAMS) + 1, Math.floor(i / STREAMS), payload).buffer as ArrayBuffer));
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function dispatcherOurs(shards: number): { run: () => Promise<number>; close(): void } {
  let onMessage: ((msg: string | Buffer | ArrayBuffer) => void) | null = null;
  const channel = {
    sendMessageBinary: () => true,
    bufferedAmount: () => 0,
    setBufferedAmountLowThreshold: () => {},
    onBufferedAmountLow: () => {},
    onMessage: (cb: (msg: string | Buffer | ArrayBuffer) => void) => { onMessage = cb; },
    isOpen: () => true,
  } as unknown as Channel;
  const posts = Array.from({ length: shards }, () => (msg: ToShard) => { if (msg.t === 'turn') for (const b of msg.pkts) sink += b.bufs.length; });
  const dispatcher = createDispatcher({ role: 'host', config: defaultConfig, shards: posts, log: createLogger('micro', 'error'), onPeerDead: () => {} });
  dispatcher.addPeer(1, { small: channel, bulk: [channel] }, windowOffer(defaultConfig));
  const messages = channelMessages();
  return {
    run: async () => {
      const deliver = onMessage;
      if (!deliver) throw new Error('no message handler');
      for (const m of messages) deliver(m);
      await nextTurn(); // the dispatcher posts once per shard per turn
      return messages.length;
    },
    close: () => dispatcher.close(),
  };
}

function dispatcherNaive(shards: number): { run: () => Promise<number>; close(): void } {
  const routes = new Map<string, number>();
  const posts = Array.from({ length: shards }, () => (msg: { t: 'pkts'; peer: number; bufs: ArrayBuffer[] }) => { sink += msg.bufs.length; });
  const messages = channelMessages();
  return {
    run: async () => {
      for (const m of messages) {
        const [first] = decodePackets(m);
        if (!first) continue;
        const key = `1:${first.streamId}`;
        let shard = routes.get(key);
        if (shard === undefined) routes.set(key, (shard = first.streamId % shards));
        posts[shard]?.({ t: 'pkts', peer: 1, bufs: [m.buffer as ArrayBuffer] });
      }
      await nextTurn();
      return messages.length;
    },
    close: () => {},
  };
}

// ---- report ----

function fmtOps(v: number): string {
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M/s`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k/s`;
  return `${v.toFixed(0)} /s`;
}

export async function micro(options: { quick: boolean; json?: string | undefined }): Promise<number> {
  const ms = options.quick ? 200 : 1000;
  const results: Result[] = [];
  const add = async (name: string, unit: string, ours: () => number | Promise<number>, naive: () => number | Promise<number>) => {
    process.stderr.write(`micro: ${name}\n`);
    const o = await measure(ours, ms);
    const n = await measure(naive, ms);
    results.push({ name, unit, ours: o, naive: n, ratio: o / n });
  };
  const kib = new Uint8Array(1024).fill(7);
  await add('codec: DATA 1 KiB encode+decode', 'packets', codecOurs(kib, PacketType.DATA), codecNaive(kib, PacketType.DATA));
  await add('codec: WINDOW (header only) encode+decode', 'packets', codecOurs(kib, PacketType.WINDOW), codecNaive(kib, PacketType.WINDOW));
  for (const spread of [1, 8, 64]) {
    const packets = reordered(options.quick ? 4096 : 16384, spread);
    await add(`reassembler: reordered within ${spread}`, 'packets', reassemblerOurs(packets), reassemblerNaive(packets));
  }
  for (const shards of [1, 2]) {
    const ours = dispatcherOurs(shards);
    const naive = dispatcherNaive(shards);
    await add(`dispatcher: route 1 KiB DATA, ${STREAMS} streams, ${shards} shard(s)`, 'messages', ours.run, naive.run);
    ours.close();
    naive.close();
  }

  const header = ['micro-benchmark', 'ours', 'naive baseline', 'ours/naive'];
  const rows = results.map((r) => [r.name, `${fmtOps(r.ours)} ${r.unit}`, `${fmtOps(r.naive)} ${r.unit}`, `${r.ratio.toFixed(2)}x`]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  process.stdout.write(`Node ${process.versions.node}; ${ms} ms per measurement after a warm-up\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}\n`);
  if (options.json) writeFileSync(options.json, `${JSON.stringify({ node: process.versions.node, ms, results }, null, 2)}\n`);
  if (sink === 0.5) process.stdout.write(''); // keeps `sink` observable
  return 0;
}
