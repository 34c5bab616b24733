// Small probes the lab runs inside its namespaces (a process cannot enter a namespace, so each probe is
// its own process: `lab.spawn(site, process.execPath, [PROBE, 'udp-listen', ...])`). Every one is
// bounded in count and time, prints JSON lines, and exits by itself.
//
//   udp-listen --ports 4001,4002 [--seconds 3] [--until-each]
//                                                      prints {"ready":true}, then {"port","from"} per datagram;
//                                                      --until-each: ends once every port has had one
//   udp-send --from-port N --to ADDR --ports 4001,4002  one datagram from one socket to each port (x3)
//   udp-echo --port P [--seconds 10]                   echoes every datagram back (at most 100,000)
//   udp-rtt --to ADDR --port P [--count 10]            round trips to a udp-echo; {"rttMs":[...]}
//   stun --to ADDR --port P [--count 5]                STUN binding requests; {"mapped","rttMs":[...]}
//   ws-open --url URL [--seconds 5]                    prints the first WebSocket message ({"message":...})
//   tcp-sink --port P [--seconds 60]                   prints {"ready":true}; at the end {"bytes","ms"}
//   tcp-send --host H --port P [--streams 1] [--seconds 10]
//                                                      N connections send as fast as they can; {"bytes","ms","MBps"}

import dgram from 'node:dgram';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

/** This file as the pinned Node runs it (dist/bench/lab/probe.js). */
export const PROBE = fileURLToPath(import.meta.url);

const say = (obj: object) => process.stdout.write(JSON.stringify(obj) + '\n');

/** Every probe ends by this time at the latest, whatever it is doing (s). */
const HARD_LIMIT_MARGIN_S = 5;

function ports(list: string | undefined): number[] {
  return (list ?? '').split(',').filter(Boolean).map(Number);
}

async function udpListen(list: number[], seconds: number, untilEach: boolean): Promise<void> {
  let seen = 0;
  const ports = new Set<number>();
  let stop = () => {};
  const sockets = await Promise.all(list.map((port) => new Promise<dgram.Socket>((resolve) => {
    const s = dgram.createSocket('udp4');
    s.on('message', (_msg, from) => {
      if (seen++ < 1000) say({ port, from: `${from.address}:${from.port}` });
      ports.add(port);
      if (untilEach && ports.size === list.length) stop();
    });
    s.bind(port, () => resolve(s));
  })));
  say({ ready: true });
  await new Promise<void>((resolve) => { stop = resolve; setTimeout(resolve, seconds * 1000); });
  for (const s of sockets) s.close();
}

async function udpSend(fromPort: number, to: string, list: number[]): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(fromPort, resolve));
  for (let round = 0; round < 3; round++) {
    for (const port of list) await new Promise<void>((resolve) => s.send('lab-probe', port, to, () => resolve()));
    await new Promise((r) => setTimeout(r, 50));
  }
  s.close();
  say({ sent: list.length * 3 });
}

async function udpEcho(port: number, seconds: number): Promise<void> {
  let n = 0;
  const s = dgram.createSocket('udp4');
  s.on('message', (msg, from) => { if (n++ < 100_000) s.send(msg, from.port, from.address); });
  await new Promise<void>((resolve) => s.bind(port, resolve));
  say({ ready: true });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  s.close();
}

/** Sends `count` requests one after the other (each waits for its answer, up to 2 s); RTTs in ms. */
async function roundTrips(to: string, port: number, count: number, request: () => Buffer, answer: (msg: Buffer, req: Buffer) => boolean, onAnswer?: (msg: Buffer) => void): Promise<number[]> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, resolve));
  const rtts: number[] = [];
  for (let i = 0; i < count; i++) {
    const req = request();
    const start = performance.now();
    const got = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => { s.off('message', onMsg); resolve(false); }, 2000);
      const onMsg = (msg: Buffer) => {
        if (!answer(msg, req)) return;
        clearTimeout(timer);
        s.off('message', onMsg);
        onAnswer?.(msg);
        resolve(true);
      };
      s.on('message', onMsg);
      s.send(req, port, to);
    });
    if (got) rtts.push(+(performance.now() - start).toFixed(2));
  }
  s.close();
  return rtts;
}

async function udpRtt(to: string, port: number, count: number): Promise<void> {
  let seq = 0;
  const rttMs = await roundTrips(to, port, count, () => Buffer.from(`rtt ${seq++}`), (msg, req) => msg.equals(req));
  say({ rttMs });
}

/** STUN (RFC 5389): a binding request and the XOR-MAPPED-ADDRESS of its success response. */
const STUN_MAGIC = 0x2112a442;
async function stun(to: string, port: number, count: number): Promise<void> {
  let mapped = '';
  const request = () => {
    const b = Buffer.alloc(20);
    b.writeUInt16BE(0x0001, 0);
    b.writeUInt32BE(STUN_MAGIC, 4);
    for (let i = 8; i < 20; i++) b[i] = Math.floor(Math.random() * 256);
    return b;
  };
  const answer = (msg: Buffer, req: Buffer) => msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(req.subarray(8, 20));
  const parse = (msg: Buffer) => {
    for (let off = 20; off + 4 <= msg.length;) {
      const type = msg.readUInt16BE(off);
      const len = msg.readUInt16BE(off + 2);
      if (type === 0x0020 && len >= 8) {
        const xport = msg.readUInt16BE(off + 6) ^ (STUN_MAGIC >>> 16);
        const xaddr = (msg.readUInt32BE(off + 8) ^ STUN_MAGIC) >>> 0;
        mapped = `${xaddr >>> 24}.${(xaddr >>> 16) & 255}.${(xaddr >>> 8) & 255}.${xaddr & 255}:${xport}`;
      }
      off += 4 + Math.ceil(len / 4) * 4;
    }
  };
  const rttMs = await roundTrips(to, port, count, request, answer, parse);
  say({ mapped, rttMs });
}

async function wsOpen(url: string, seconds: number): Promise<void> {
  const ws = new WebSocket(url);
  const message = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message from ${url} in ${seconds} s`)), seconds * 1000);
    ws.once('message', (data: Buffer) => { clearTimeout(timer); resolve(data.toString('utf8')); });
    ws.once('error', (err) => { clearTimeout(timer); reject(err); });
  });
  say({ message: JSON.parse(message) as unknown });
  ws.close();
}

async function tcpSink(port: number, seconds: number): Promise<void> {
  let bytes = 0;
  let first = 0;
  let last = 0;
  const server = net.createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      const now = performance.now();
      if (!first) first = now;
      last = now;
      bytes += chunk.byteLength;
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(port, resolve));
  say({ ready: true });
  await new Promise((r) => setTimeout(r, seconds * 1000));
  server.close();
  say({ bytes, ms: Math.round(last - first) });
  process.exit(0);
}

async function tcpSend(host: string, port: number, streams: number, seconds: number): Promise<void> {
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  let bytes = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(Array.from({ length: streams }, () => new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host, port }, () => {
      const pump = () => {
        while (performance.now() < end) {
          bytes += chunk.byteLength;
          if (!socket.write(chunk)) { socket.once('drain', pump); return; }
        }
        socket.end(resolve);
      };
      pump();
    });
    socket.on('error', reject);
  })));
  const ms = performance.now() - start;
  say({ bytes, ms: Math.round(ms), MBps: +(bytes / 1e6 / (ms / 1000)).toFixed(1) });
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const { values } = parseArgs({
    args: rest,
    options: {
      ports: { type: 'string' }, 'from-port': { type: 'string' }, to: { type: 'string' }, url: { type: 'string' },
      host: { type: 'string' }, port: { type: 'string' }, streams: { type: 'string' }, seconds: { type: 'string' }, count: { type: 'string' }, 'until-each': { type: 'boolean' },
    },
  });
  const seconds = Number(values.seconds ?? 5);
  // round-trip probes wait up to 2 s per answer
  const limitS = seconds + 2 * Number(values.count ?? 10) + HARD_LIMIT_MARGIN_S;
  setTimeout(() => { say({ error: 'hard time limit' }); process.exit(3); }, limitS * 1000).unref();
  switch (command) {
    case 'udp-listen': return udpListen(ports(values.ports), seconds, values['until-each'] ?? false);
    case 'udp-send': return udpSend(Number(values['from-port'] ?? 0), values.to ?? '', ports(values.ports));
    case 'udp-echo': return udpEcho(Number(values.port), seconds);
    case 'udp-rtt': return udpRtt(values.to ?? '', Number(values.port), Number(values.count ?? 10));
    case 'stun': return stun(values.to ?? '', Number(values.port), Number(values.count ?? 5));
    case 'ws-open': return wsOpen(values.url ?? '', seconds);
    case 'tcp-sink': return tcpSink(Number(values.port), seconds);
    case 'tcp-send': return tcpSend(values.host ?? '', Number(values.port), Number(values.streams ?? 1), seconds);
    default: throw new Error(`unknown probe ${command}`);
  }
}

if (process.argv[1] === PROBE) {
  main().catch((err: unknown) => { say({ error: (err as Error).message }); process.exit(1); });
}
