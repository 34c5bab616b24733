// Security of signaling, end to end with real PeerConnections on 127.0.0.1: a recording relay in the
// middle shows the PIN never crosses the wire (nor a hash of it); the same relay tampering with or
// replaying MAC'd messages gets the session refused; wrong PINs and the lockout; hostile signaling
// input from raw WebSockets; wss:// with a self-signed certificate.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { pack, unpack } from 'msgpackr';
import { startHost, type HostHandle, type HostOptions } from '../../src/host.js';
import { startClient, type ClientHandle, type ClientOptions } from '../../src/client.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import { startEcho, freePort, type Echo } from '../../src/cli/loopback.js';
import { TunnelError } from '../../src/errors.js';
import { createLogger } from '../../src/shared/log.js';
import { clientAnswer, addMac, checkMac, type MacState } from '../../src/signaling/auth.js';
import { encodeSignal, PROTOCOL_VERSION, MAX_WEBSOCKET_MESSAGE_BYTES } from '../../src/signaling/codec.js';
import { echoExact } from '../support/helpers.js';

const PIN = '73519468';
const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// helpers

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Clean-up: waits for `p` at most `ms`, ignoring its failure. */
async function bounded(p: Promise<unknown> | undefined, ms = 5000): Promise<void> {
  if (p) await withTimeout(p, ms, 'clean-up').catch(() => {});
}

/** Resolves with the rejection of `p` (fails if it resolves). */
async function rejection(p: Promise<unknown>, onResolved?: (v: unknown) => Promise<void>): Promise<TunnelError> {
  try {
    const v = await p;
    await onResolved?.(v);
  } catch (err) {
    return err as TunnelError;
  }
  assert.fail('expected a rejection');
}

interface Frame { dir: 'c2h' | 'h2c'; data: Buffer; binary: boolean; conn: number }
/** Returns the frames to forward instead of `frame` (an empty list drops it). */
type Tamper = (frame: Frame) => Buffer[];

interface Relay {
  url: string;
  frames: Frame[];
  tamper: Tamper | null;
  close(): Promise<void>;
}

const toBuffer = (data: RawData): Buffer => (Buffer.isBuffer(data) ? Buffer.from(data) : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));

/** A WebSocket man-in-the-middle between client and host that records every frame both ways. */
async function startRelay(target: string): Promise<Relay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 1024 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const sockets = new Set<WebSocket>();
  let conns = 0;
  const relay: Relay = {
    url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}`,
    frames: [],
    tamper: null,
    async close() {
      for (const s of sockets) s.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  wss.on('connection', (down) => {
    const conn = ++conns;
    const up = new WebSocket(target, { maxPayload: 1024 * 1024 });
    sockets.add(down);
    sockets.add(up);
    const pending: { data: Buffer; binary: boolean }[] = [];
    const forward = (to: WebSocket, dir: Frame['dir'], data: RawData, binary: boolean) => {
      const frame: Frame = { dir, data: toBuffer(data), binary, conn };
      relay.frames.push(frame);
      const out = relay.tamper ? relay.tamper(frame) : [frame.data];
      for (const d of out) {
        if (to === up && up.readyState === WebSocket.CONNECTING) pending.push({ data: d, binary });
        else if (to.readyState === WebSocket.OPEN) to.send(d, { binary });
      }
    };
    up.on('open', () => { for (const p of pending.splice(0)) up.send(p.data, { binary: p.binary }); });
    down.on('message', (data, binary) => forward(up, 'c2h', data, binary));
    up.on('message', (data, binary) => forward(down, 'h2c', data, binary));
    const closeBoth = () => {
      if (down.readyState === WebSocket.OPEN) down.close(); else if (down.readyState === WebSocket.CONNECTING) down.terminate();
      if (up.readyState === WebSocket.OPEN) up.close(); else if (up.readyState === WebSocket.CONNECTING) up.terminate();
    };
    down.on('close', closeBoth);
    up.on('close', closeBoth);
    down.on('error', () => down.terminate());
    up.on('error', () => { up.terminate(); down.terminate(); });
  });
  return relay;
}

/** A MAC'd frame: its outer message and inner body, or null for anything else. */
function macdOf(data: Buffer): { outer: { t: string; n: number; body: Uint8Array; mac: Uint8Array }; inner: Record<string, unknown> } | null {
  try {
    const outer = unpack(data) as { t: string; n: number; body: Uint8Array; mac: Uint8Array };
    if (outer?.t !== 'mac') return null;
    return { outer, inner: unpack(outer.body) as Record<string, unknown> };
  } catch {
    return null;
  }
}

/** A raw signaling WebSocket: every message it receives, decoded where possible. */
interface Raw {
  ws: WebSocket;
  msgs: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
  next(ms?: number): Promise<Record<string, unknown>>;
}

async function rawConnect(url: string): Promise<Raw> {
  const ws = new WebSocket(url, { maxPayload: 1024 * 1024 });
  const msgs: Record<string, unknown>[] = [];
  let read = 0;
  let wake: (() => void) | null = null;
  ws.on('message', (data) => {
    try { msgs.push(unpack(toBuffer(data)) as Record<string, unknown>); } catch { msgs.push({ t: '<undecodable>' }); }
    wake?.();
  });
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => { wake?.(); resolve({ code, reason: reason.toString() }); }));
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return {
    ws, msgs, closed,
    async next(ms = 5000) {
      const end = Date.now() + ms;
      while (msgs.length <= read) {
        if (Date.now() > end || ws.readyState === WebSocket.CLOSED) throw new Error(`no message from the host (got ${JSON.stringify(msgs)})`);
        await new Promise<void>((resolve) => { const t = setTimeout(resolve, 50); wake = () => { clearTimeout(t); wake = null; resolve(); }; });
      }
      return msgs[read++] as Record<string, unknown>;
    },
  };
}

/** Waits until the host closes `raw`, and returns the error it sent (if any) and the close code. */
async function refusal(raw: Raw, ms = 5000): Promise<{ code: number; error?: { code: string; message: string } }> {
  const closed = await withTimeout(raw.closed, ms, 'host closing the connection');
  const error = raw.msgs.find((m) => m.t === 'error') as { code: string; message: string } | undefined;
  return { code: closed.code, ...(error ? { error } : {}) };
}

/** Plays the client through the PAKE with raw messages; returns the connection and its MAC state. */
async function rawAuthenticated(url: string, pin: string): Promise<{ raw: Raw; macs: MacState }> {
  const raw = await rawConnect(url);
  raw.ws.send(encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }));
  const hello = await raw.next() as { t: string; session: Uint8Array; yb: Uint8Array };
  assert.equal(hello.t, 'hello');
  const answer = clientAnswer(pin, { session: new Uint8Array(hello.session), yb: new Uint8Array(hello.yb) });
  raw.ws.send(encodeSignal(answer.auth));
  const welcome = await raw.next() as { t: 'mac'; n: number; body: Uint8Array; mac: Uint8Array };
  assert.equal(welcome.t, 'mac');
  assert.equal(checkMac(answer.macs, welcome).t, 'welcome');
  return { raw, macs: answer.macs };
}

function captureLog(): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger('host', 'info', (line) => lines.push(line)) };
}

const hostBase = (echo: Echo): HostOptions => ({
  pin: PIN, listen: '127.0.0.1:0', workers: 1, iceBind: '127.0.0.1', logLevel: 'error',
  services: { echo: { host: '127.0.0.1', port: echo.port } },
});

const clientBase = async (connect: string, pin = PIN): Promise<ClientOptions> => ({
  connect, pin, workers: 1, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false,
  forwards: [{ host: '127.0.0.1', port: await freePort(), service: 'echo' }],
});

after(() => releaseDataChannelLibrary()); // or the process never exits

// ---------------------------------------------------------------------------------------------

describe('signaling through a man-in-the-middle relay', { timeout: 60_000 }, () => {
  let echo: Echo;
  let host: HostHandle;
  let relay: Relay;
  const hostLog = captureLog();
  const clients: ClientHandle[] = [];

  before(async () => {
    echo = await startEcho();
    host = await startHost({ ...hostBase(echo), log: hostLog.log });
    relay = await startRelay(host.url);
  });

  after(async () => {
    for (const c of clients) await bounded(c.close());
    await bounded(relay?.close());
    await bounded(host?.close());
    echo?.close();
  }, { timeout: 30_000 });

  it('the right PIN connects, and the transcript holds neither the PIN nor a hash of it', { timeout: 30_000 }, async () => {
    relay.frames.length = 0;
    relay.tamper = null;
    const options = await clientBase(relay.url);
    const client = await startClient(options);
    clients.push(client);
    await echoExact(options.forwards[0]!.port, randomBytes(256 * 1024));
    await client.close();

    const frames = relay.frames;
    assert.ok(frames.some((f) => f.dir === 'c2h') && frames.some((f) => f.dir === 'h2c'), 'frames both ways were recorded');
    const all = Buffer.concat(frames.map((f) => f.data));
    // the recorder sees what crosses: the SDP (authenticated, not hidden) is in it
    assert.ok(all.includes('a=fingerprint'), 'the recorded transcript holds the SDP');

    const pinBytes = Buffer.from(PIN, 'utf8');
    const needles: [string, Buffer][] = [
      ['PIN (utf8)', pinBytes],
      ['PIN (utf16le)', Buffer.from(PIN, 'utf16le')],
      ['PIN as a big-endian uint32', (() => { const b = Buffer.alloc(4); b.writeUInt32BE(Number(PIN)); return b; })()],
      ['PIN as a little-endian uint32', (() => { const b = Buffer.alloc(4); b.writeUInt32LE(Number(PIN)); return b; })()],
    ];
    for (const algorithm of ['sha256', 'sha1', 'md5', 'sha512']) {
      const digest = createHash(algorithm).update(pinBytes).digest();
      needles.push([`${algorithm}(PIN) raw`, digest]);
      needles.push([`${algorithm}(PIN) hex`, Buffer.from(digest.toString('hex'))]);
      needles.push([`${algorithm}(PIN) HEX`, Buffer.from(digest.toString('hex').toUpperCase())]);
      needles.push([`${algorithm}(PIN) base64`, Buffer.from(digest.toString('base64'))]);
    }
    // the search itself works: a planted needle is found
    assert.ok(Buffer.concat([all, needles[4]![1]]).includes(needles[4]![1]));
    for (const [what, needle] of needles) {
      assert.equal(all.includes(needle), false, `the transcript contains ${what}`);
      for (const f of frames) assert.equal(f.data.includes(needle), false, `a ${f.dir} frame contains ${what}`);
    }
  });

  it("a tampered fingerprint in the host's SDP answer is rejected with SIGNALING_AUTH", { timeout: 30_000 }, async () => {
    let tampered = 0;
    relay.tamper = (frame) => {
      const macd = frame.dir === 'h2c' ? macdOf(frame.data) : null;
      if (!macd || macd.inner.t !== 'sdp') return [frame.data];
      const body = Buffer.from(macd.outer.body);
      const at = body.indexOf('a=fingerprint:');
      if (at < 0) return [frame.data]; // (then `tampered` stays 0 and the test says so)
      const space = body.indexOf(' ', at);
      const i = space + 1; // first hex digit of the fingerprint
      body[i] = body[i] === 0x41 ? 0x42 : 0x41; // 'A' <-> 'B': still a well-formed fingerprint
      tampered++;
      return [pack({ ...macd.outer, body })];
    };
    const err = await rejection(startClient(await clientBase(relay.url)), async (c) => { clients.push(c as ClientHandle); });
    assert.equal(tampered, 1, 'the relay altered the answer');
    assert.ok(err instanceof TunnelError, `a TunnelError, got ${String(err)}`);
    assert.equal(err.code, 'SIGNALING_AUTH', err.message);
    assert.match(err.message, /authentication/);
    await waitFor(() => host.peers() === 0, 3000, 'no peer on the host');
  });

  it('a tampered client candidate makes the host end that session, and it logs why', { timeout: 30_000 }, async (t) => {
    hostLog.lines.length = 0;
    let tampered = 0;
    relay.tamper = (frame) => {
      const macd = frame.dir === 'c2h' ? macdOf(frame.data) : null;
      if (!macd || macd.inner.t !== 'cand') return [frame.data];
      const body = Buffer.from(macd.outer.body);
      const at = body.indexOf('127.0.0.1 ');
      if (at < 0) return [frame.data];
      const port = at + '127.0.0.1 '.length;
      body[port] = body[port] === 0x31 ? 0x32 : 0x31; // another port, the same format
      tampered++;
      return [pack({ ...macd.outer, body })];
    };
    const options = await clientBase(relay.url);
    let connectedClient: ClientHandle | null = null;
    try {
      connectedClient = await startClient(options);
      clients.push(connectedClient);
      t.diagnostic('startClient resolved (the DataChannel opened first); the session must end');
    } catch (err) {
      assert.ok(err instanceof TunnelError, `a TunnelError, got ${String(err)}`);
      t.diagnostic(`startClient rejected: ${err.code}: ${err.message}`);
      assert.ok(['SIGNALING_AUTH', 'HOST_UNREACHABLE', 'PEER_FAILED'].includes(err.code), `${err.code}: ${err.message}`);
    }
    // if the DataChannel won the race, it must not survive the host ending the session
    if (connectedClient) await waitFor(() => !connectedClient.connected(), 5000, 'the client to lose the session');
    assert.ok(tampered >= 1, 'the relay altered a candidate');
    await waitFor(() => hostLog.lines.some((l) => /signaling error/.test(l) && /code=SIGNALING_AUTH/.test(l)), 3000, 'the host to log the failed authentication');
    await waitFor(() => host.peers() === 0, 3000, 'no peer on the host');
  });

  it("a replayed MAC'd frame is rejected, within a session and across sessions", { timeout: 30_000 }, async () => {
    // within a session: the client's offer (MAC'd, n=0) is delivered twice
    hostLog.lines.length = 0;
    let duplicated = 0;
    relay.tamper = (frame) => {
      const macd = frame.dir === 'c2h' ? macdOf(frame.data) : null;
      if (macd?.inner.t === 'sdp' && duplicated === 0) { duplicated++; return [frame.data, frame.data]; }
      return [frame.data];
    };
    const err1 = await rejection(startClient(await clientBase(relay.url)), async (c) => { clients.push(c as ClientHandle); });
    assert.equal(duplicated, 1);
    assert.equal(err1.code, 'SIGNALING_AUTH', err1.message);
    await waitFor(() => hostLog.lines.some((l) => /code=SIGNALING_AUTH/.test(l) && /replayed/.test(l)), 3000, 'the host to log the replay');

    // across sessions: record a good session, then feed its welcome (MAC'd under the old key) to a new one
    relay.tamper = null;
    relay.frames.length = 0;
    const good = await startClient(await clientBase(relay.url));
    await good.close();
    const oldWelcome = relay.frames.find((f) => f.dir === 'h2c' && macdOf(f.data)?.inner.t === 'welcome');
    assert.ok(oldWelcome, 'the welcome of the first session was recorded');
    let replaced = 0;
    relay.tamper = (frame) => {
      if (frame.dir === 'h2c' && macdOf(frame.data)?.inner.t === 'welcome') { replaced++; return [oldWelcome.data]; }
      return [frame.data];
    };
    const err2 = await rejection(startClient(await clientBase(relay.url)), async (c) => { clients.push(c as ClientHandle); });
    assert.equal(replaced, 1);
    assert.equal(err2.code, 'SIGNALING_AUTH', err2.message);

    // and the other way: the old session's offer in a new session is refused by the host
    relay.tamper = null;
    relay.frames.length = 0;
    const good2 = await startClient(await clientBase(relay.url));
    await good2.close();
    const oldOffer = relay.frames.find((f) => f.dir === 'c2h' && macdOf(f.data)?.inner.t === 'sdp');
    assert.ok(oldOffer);
    hostLog.lines.length = 0;
    relay.tamper = (frame) => (frame.dir === 'c2h' && macdOf(frame.data)?.inner.t === 'sdp' ? [oldOffer.data] : [frame.data]);
    const err3 = await rejection(startClient(await clientBase(relay.url)), async (c) => { clients.push(c as ClientHandle); });
    assert.equal(err3.code, 'SIGNALING_AUTH', err3.message);
    await waitFor(() => hostLog.lines.some((l) => /code=SIGNALING_AUTH/.test(l)), 3000, 'the host to log it');

    // the relay stops tampering: the host still admits a good client
    relay.tamper = null;
    const options = await clientBase(relay.url);
    const again = await startClient(options);
    clients.push(again);
    await echoExact(options.forwards[0]!.port, randomBytes(64 * 1024));
    await again.close();
  });
});

describe('PIN guessing', { timeout: 30_000 }, () => {
  let echo: Echo;
  let host: HostHandle;
  const hostLog = captureLog();
  const clients: ClientHandle[] = [];

  before(async () => {
    echo = await startEcho();
    host = await startHost({ ...hostBase(echo), log: hostLog.log, guard: { maxFailuresPerAddress: 2, lockoutMs: 1000 } });
  });

  after(async () => {
    for (const c of clients) await bounded(c.close());
    await bounded(host?.close());
    echo?.close();
  }, { timeout: 30_000 });

  it('a wrong PIN is rejected with WRONG_PIN', { timeout: 10_000 }, async () => {
    const err = await rejection(startClient(await clientBase(host.url, '73519469')), async (c) => { clients.push(c as ClientHandle); });
    assert.ok(err instanceof TunnelError);
    assert.equal(err.code, 'WRONG_PIN', err.message);
    assert.match(err.message, /wrong PIN/);
    assert.ok(hostLog.lines.some((l) => /wrong PIN/.test(l)), 'the host logs the wrong PIN');
  });

  it('after 2 wrong PINs the right PIN is locked out, and after the lockout it connects', { timeout: 15_000 }, async () => {
    const err = await rejection(startClient(await clientBase(host.url, '00000000')), async (c) => { clients.push(c as ClientHandle); });
    assert.equal(err.code, 'WRONG_PIN', err.message);
    const lockedAt = Date.now();
    const locked = await rejection(startClient(await clientBase(host.url)), async (c) => { clients.push(c as ClientHandle); });
    assert.equal(locked.code, 'LOCKED_OUT', locked.message);
    assert.match(locked.message, /retry in \d+ s/);
    assert.ok(hostLog.lines.some((l) => /locked out/.test(l)), 'the host logs the lockout');
    // still locked a moment later (a locked-out attempt does not reset anything)
    const still = await rejection(startClient(await clientBase(host.url)), async (c) => { clients.push(c as ClientHandle); });
    assert.equal(still.code, 'LOCKED_OUT', still.message);

    await sleep(Math.max(0, lockedAt + 1300 - Date.now()));
    const options = await clientBase(host.url);
    const client = await startClient(options);
    clients.push(client);
    await echoExact(options.forwards[0]!.port, randomBytes(64 * 1024));
  });
});

describe('hostile signaling input', { timeout: 60_000 }, () => {
  let echo: Echo;
  let host: HostHandle;
  const hostLog = captureLog();
  const raws: Raw[] = [];
  const clients: ClientHandle[] = [];
  const connect = async () => { const r = await rawConnect(host.url); raws.push(r); return r; };

  before(async () => {
    echo = await startEcho();
    // a generous guard: connections that say hello and then misbehave count as failed guesses
    host = await startHost({ ...hostBase(echo), log: hostLog.log, guard: { maxFailuresPerAddress: 10_000, maxFailuresGlobal: 10_000 } });
  });

  after(async () => {
    for (const r of raws) r.ws.terminate();
    for (const c of clients) await bounded(c.close());
    await bounded(host?.close());
    echo?.close();
  }, { timeout: 30_000 });

  it('random binary frames are refused with SIGNALING_PROTOCOL', { timeout: 30_000 }, async () => {
    let seed = 0x5eed;
    const random = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000; };
    for (let batch = 0; batch < 10; batch++) {
      const conns = await Promise.all(Array.from({ length: 20 }, () => connect()));
      for (const r of conns) {
        const frame = randomBytes(1 + Math.floor(random() * 300));
        if (batch % 2 === 0) frame[0] = 0x80 | (frame[0]! & 0x0f); // a msgpack map header, to get past the first byte
        r.ws.send(frame);
      }
      for (const r of conns) {
        const { error } = await refusal(r);
        assert.equal(error?.code, 'SIGNALING_PROTOCOL', JSON.stringify(error));
      }
    }
  });

  it('a text frame is refused', { timeout: 10_000 }, async () => {
    const r = await connect();
    r.ws.send(JSON.stringify({ t: 'hello', v: PROTOCOL_VERSION }));
    const { error } = await refusal(r);
    assert.equal(error?.code, 'SIGNALING_PROTOCOL');
    assert.match(error?.message ?? '', /binary/);
  });

  it('a frame over 64 KiB closes the connection', { timeout: 10_000 }, async () => {
    // a signaling message over 64 KiB is refused by the codec (the WebSocket itself admits sealed
    // fallback messages up to MAX_WEBSOCKET_MESSAGE_BYTES), and a frame past that by the WebSocket
    const r = await connect();
    r.ws.send(pack({ t: 'hello', v: PROTOCOL_VERSION, pad: Buffer.alloc(64 * 1024 + 16) }));
    const refused = await refusal(r);
    assert.equal(refused.code, 1008, 'closed as a policy violation');
    assert.match(refused.error?.message ?? '', /exceeds 65536/);
    const r2 = await connect();
    r2.ws.send(Buffer.alloc(MAX_WEBSOCKET_MESSAGE_BYTES + 1));
    const { code } = await refusal(r2);
    assert.equal(code, 1009, 'closed as "message too big"');
  });

  it('valid msgpack of the wrong shapes is refused', { timeout: 20_000 }, async () => {
    const bytes = (n: number) => Buffer.alloc(n, 7);
    const shapes: unknown[] = [
      1, -1, 'hello', null, true, 1.5, [], ['hello', 1], {}, { t: 1 }, { t: null }, { t: ['hello'] }, { t: 'nope' },
      { t: 'hello' }, { t: 'hello', v: '1' }, { t: 'hello', v: null }, { t: 'hello', v: 1, session: 'x' }, { t: 'hello', v: 1, yb: bytes(31) },
      { t: 'auth' }, { t: 'auth', ya: bytes(31), confirm: bytes(32) }, { t: 'auth', ya: 'x'.repeat(32), confirm: bytes(32) },
      { t: 'mac' }, { t: 'mac', n: 0, body: bytes(0), mac: bytes(32) }, { t: 'mac', n: -1, body: bytes(4), mac: bytes(32) },
      { t: 'mac', n: 1e300, body: bytes(4), mac: bytes(32) }, { t: 'mac', n: 0, body: bytes(4), mac: bytes(31) },
      { t: 'error' }, { t: 'error', code: 'x'.repeat(100), message: 'm' }, { t: 'error', code: 'X', message: 'm' },
      { t: 'welcome', services: ['echo'], confirm: bytes(32) }, { t: 'sdp', sdp: 'v=0', type: 'offer' }, { t: 'cand', cand: 'c', mid: '0' },
      { t: 'x'.repeat(60_000) }, { t: 'auth', ya: bytes(32), confirm: bytes(32), deep: [[[[[[[[[[1]]]]]]]]]] },
      { __proto__: { t: 'hello', v: 1 } }, { t: 'constructor' }, { t: '__proto__', v: 1 }, { t: 'toString', v: 1 },
    ];
    const frames: Buffer[] = shapes.map((s) => pack(s));
    frames.push(Buffer.alloc(60_000, 0x91)); // arrays nested 60,000 deep
    frames.push(Buffer.from('dd7fffffff', 'hex')); // an array that claims 2^31 items
    frames.push(Buffer.from('db7fffffff', 'hex')); // a string that claims 2 GiB
    frames.push(Buffer.from('c7ff42', 'hex')); // an extension cut short
    frames.push(Buffer.from('d4720082a174a568656c6c6fa17601', 'hex')); // a msgpackr record, truncated
    for (let i = 0; i < frames.length; i += 10) {
      const conns = await Promise.all(frames.slice(i, i + 10).map(async (f) => { const r = await connect(); r.ws.send(f); return r; }));
      for (const [j, r] of conns.entries()) {
        const { error } = await refusal(r);
        assert.ok(error, `frame ${i + j} (${frames[i + j]!.subarray(0, 16).toString('hex')}) was refused with an error message`);
        assert.equal(error.code, 'SIGNALING_PROTOCOL', `frame ${i + j}: ${JSON.stringify(error)}`);
      }
    }
  });

  it('a hello of another protocol version gets an error naming both versions', { timeout: 10_000 }, async () => {
    const r = await connect();
    r.ws.send(encodeSignal({ t: 'hello', v: 99 }));
    const { error } = await refusal(r);
    assert.equal(error?.code, 'VERSION_MISMATCH');
    assert.match(error?.message ?? '', new RegExp(`\\b${PROTOCOL_VERSION}\\b`));
    assert.match(error?.message ?? '', /\b99\b/);
  });

  it('out-of-order messages are refused, before and after the PAKE', { timeout: 20_000 }, async () => {
    const auth = { t: 'auth', ya: randomBytes(32), confirm: randomBytes(32) };
    const macd = { t: 'mac', n: 0, body: pack({ t: 'sdp', sdp: 'v=0', type: 'offer' }), mac: randomBytes(32) };
    // auth or a MAC'd message before hello
    for (const first of [auth, macd]) {
      const r = await connect();
      r.ws.send(pack(first));
      const { error } = await refusal(r);
      assert.equal(error?.code, 'SIGNALING_PROTOCOL', JSON.stringify(error));
      assert.match(error?.message ?? '', /expected hello/);
    }
    // hello twice; a MAC'd message instead of auth
    for (const second of [{ t: 'hello', v: PROTOCOL_VERSION }, macd]) {
      const r = await connect();
      r.ws.send(encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }));
      assert.equal((await r.next()).t, 'hello');
      r.ws.send(pack(second));
      const { error } = await refusal(r);
      assert.equal(error?.code, 'SIGNALING_PROTOCOL', JSON.stringify(error));
    }
    // an auth with an invalid point (all zeros) is a failed guess, not a crash
    {
      const r = await connect();
      r.ws.send(encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }));
      await r.next();
      r.ws.send(encodeSignal({ t: 'auth', ya: new Uint8Array(32), confirm: new Uint8Array(32) }));
      const { error } = await refusal(r);
      assert.equal(error?.code, 'WRONG_PIN', JSON.stringify(error));
    }
    // after the PAKE (knowing the PIN): a plain message, an SDP answer, a MAC'd welcome, an offer
    // that is not SDP, two offers, a counter that skips
    const afterPake: ((s: MacState) => Buffer)[] = [
      () => encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }),
      (s) => encodeSignal(addMac(s, { t: 'sdp', sdp: 'v=0', type: 'answer' })),
      (s) => encodeSignal(addMac(s, { t: 'welcome', services: [], window: { initial: 256 * 1024, max: 1048576 }, confirm: new Uint8Array(32), fb: false })),
      (s) => encodeSignal(addMac(s, { t: 'sdp', sdp: 'this is not SDP\r\na=fingerprint:sha-256 zz\r\n', type: 'offer' })),
      (s) => { s.sent = 5; return encodeSignal(addMac(s, { t: 'cand', cand: 'candidate:1 1 UDP 1 127.0.0.1 9 typ host', mid: '0' })); },
      (s) => encodeSignal(addMac(s, { t: 'cand', cand: 'candidate:1 1 UDP 1 127.0.0.1 99999999 typ host', mid: '0' })), // before any offer: ignored
    ];
    for (const [i, make] of afterPake.entries()) {
      const { raw, macs } = await rawAuthenticated(host.url, PIN);
      raws.push(raw);
      raw.ws.send(make(macs));
      if (i === afterPake.length - 1) {
        // a candidate before the offer is ignored, not fatal; an offer that is not SDP then is refused
        await sleep(200);
        assert.equal(raw.ws.readyState, WebSocket.OPEN, 'a stray candidate does not end the session');
        raw.ws.send(encodeSignal(addMac(macs, { t: 'sdp', sdp: 'v=0\r\n', type: 'offer' })));
      }
      const { error } = await refusal(raw);
      assert.ok(error && ['SIGNALING_PROTOCOL', 'SIGNALING_AUTH'].includes(error.code), `case ${i}: ${JSON.stringify(error)}`);
    }
  });

  it('a connection that never speaks does not hold up others; afterwards a good client moves bytes', { timeout: 30_000 }, async () => {
    const silent = await connect();
    const options = await clientBase(host.url);
    const client = await startClient(options);
    clients.push(client);
    await echoExact(options.forwards[0]!.port, randomBytes(1024 * 1024));
    assert.equal(silent.ws.readyState, WebSocket.OPEN, 'the silent connection is still waiting (its timeout is 10 s)');
    assert.equal(host.peers(), 1);
    // the host's signaling still answers a fresh raw hello
    const r = await connect();
    r.ws.send(encodeSignal({ t: 'hello', v: PROTOCOL_VERSION }));
    assert.equal((await r.next()).t, 'hello');
    r.ws.terminate();
  });

  it('past maxClients signaling connections, new ones are refused with BUSY', { timeout: 20_000 }, async () => {
    const small = await startHost({ ...hostBase(echo), maxClients: 3 });
    const mine: Raw[] = [];
    try {
      for (let i = 0; i < 3; i++) mine.push(await rawConnect(small.url));
      const extra = await rawConnect(small.url);
      mine.push(extra);
      const { error } = await refusal(extra);
      assert.equal(error?.code, 'BUSY');
      for (const r of mine.slice(0, 3)) r.ws.terminate();
      await sleep(200);
      const options = await clientBase(small.url);
      const client = await startClient(options);
      await echoExact(options.forwards[0]!.port, randomBytes(64 * 1024));
      await client.close();
    } finally {
      for (const r of mine) r.ws.terminate();
      await small.close();
    }
  });
});

describe('signaling limits leave nothing behind', { timeout: 30_000 }, () => {
  let child: ChildProcess | null = null;
  after(() => { if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });

  it('a connection refused as BUSY keeps no timer alive: the process ends promptly after host.close()', { timeout: 25_000 }, async () => {
    // test/support/fixtures/busy-exit.ts: maxClients 1, a second connection is refused, all is closed
    const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'support', 'fixtures', 'busy-exit.js');
    child = spawn(process.execPath, [fixture], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let closedAt = 0;
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); if (!closedAt && /^closed$/m.test(out)) closedAt = Date.now(); });
    child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
    const code = await withTimeout(exited, 20_000, 'the fixture to exit');
    assert.equal(code, 0, out);
    assert.match(out, /second connection closed \(BUSY\)/);
    assert.ok(closedAt > 0, out);
    const lingered = Date.now() - closedAt;
    assert.ok(lingered < 3000, `the process lingered ${lingered} ms after host.close() (the handshake timer of the BUSY connection)`);
  });
});

describe('wss:// with a self-signed certificate', { timeout: 60_000 }, () => {
  let dir: string;
  let cert: string;
  let key: string;
  let echo: Echo;
  let host: HostHandle;
  const clients: ClientHandle[] = [];
  const children: ChildProcess[] = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tunnel-tls-'));
    key = path.join(dir, 'key.pem');
    cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    echo = await startEcho();
    host = await startHost({ ...hostBase(echo), tls: { cert: readFileSync(cert), key: readFileSync(key) } });
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const c of clients) await bounded(c.close());
    await bounded(host?.close());
    echo?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, { timeout: 30_000 });

  it('a client trusting the certificate connects over wss:// and moves bytes', { timeout: 20_000 }, async () => {
    assert.match(host.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
    const options = { ...(await clientBase(host.url)), ca: readFileSync(cert) };
    const client = await startClient(options);
    clients.push(client);
    await echoExact(options.forwards[0]!.port, randomBytes(1024 * 1024));
    await client.close();
  });

  it('without the CA the client fails at start-up with a plain error', { timeout: 20_000 }, async () => {
    const err = await rejection(startClient(await clientBase(host.url)), async (c) => { clients.push(c as ClientHandle); });
    assert.ok(err instanceof TunnelError, `a TunnelError, got ${String(err)}`);
    assert.equal(err.code, 'HOST_UNREACHABLE', err.message);
    assert.doesNotMatch(err.message, /\n/);

    // the CLI: one sentence on stderr, no stack trace, exit code 2
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'client', '--connect', host.url, '--pin', PIN, '--forward', `${port}=echo`, '--ice-bind', '127.0.0.1', '--workers', '1', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const code = await withTimeout(new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c))), 15_000, 'the CLI client to exit');
    assert.equal(code, 2, stderr);
    const lines = stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line on stderr: ${stderr}`);
    assert.match(lines[0]!, /^tunnel client: /);
    assert.match(lines[0]!, /cert|self[- ]signed/i, 'it names the certificate problem');
  });
});
