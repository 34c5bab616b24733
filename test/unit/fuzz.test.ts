import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack } from 'msgpackr';
import { HEADER_BYTES, PacketError, PacketType, decodePackets, type Packet } from '../../src/shared/packet.js';
import { encodeBatch } from '../support/packets.js';
import { MAX_PEER_CONNECTIONS, MAX_SIGNAL_BYTES, SignalError, decodeInner, decodePlain, encodeSignal } from '../../src/signaling/codec.js';
import { prng } from '../support/prng.js';

const T = { timeout: 20_000 };
const PACKET_CODES = new Set(['PACKET_TRUNCATED', 'PACKET_BAD_TYPE', 'PACKET_OVERSIZED', 'PACKET_BAD_FIELD']);


function tools(seed: number) {
  const rand = prng(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const pick = <V>(items: readonly V[]): V => items[int(items.length)] as V;
  const bytes = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = int(256);
    return out;
  };
  return { rand, int, pick, bytes };
}

/** Runs decodePackets on one input and checks the contract: packets inside the input, or a PacketError. */
function checkPackets(input: Uint8Array): 'ok' | 'error' {
  let packets: Packet[];
  try {
    packets = decodePackets(input);
  } catch (err) {
    assert.ok(err instanceof PacketError, `not a PacketError: ${String(err)}`);
    assert.ok(PACKET_CODES.has(err.code), `unknown code ${err.code}`);
    return 'error';
  }
  assert.ok(packets.length >= 1);
  const end = input.byteOffset + input.byteLength;
  for (const p of packets) {
    assert.ok(p.type >= PacketType.CONNECT && p.type <= PacketType.RESUME);
    assert.equal(p.payload.buffer, input.buffer);
    assert.ok(p.payload.byteOffset >= input.byteOffset + HEADER_BYTES && p.payload.byteOffset + p.payload.byteLength <= end);
  }
  // whatever decodes re-encodes to exactly the same bytes (no field is silently dropped)
  assert.deepEqual(encodeBatch(packets), Uint8Array.from(input));
  return 'ok';
}

test('fuzz decodePackets: random bytes and random headers (seeded)', T, () => {
  const { rand, int, pick, bytes } = tools(0xf00d);
  const lengths = [0, 1, 2, 8, 63, 64, 65, 199, 200, 201, 65535, 65536, 65537, 0x7fffffff, 0xffffffff];
  let ok = 0;
  for (let i = 0; i < 10_000; i++) {
    let input: Uint8Array;
    if (i % 4 === 0) {
      input = bytes(int(80));
    } else {
      // headers built from plausible and implausible field values, payload random, sometimes short
      const parts: number[] = [];
      const streamId = int(4);
      for (let k = 1 + int(3); k > 0; k--) {
        const length = rand() < 0.7 ? int(70) : pick(lengths);
        const head = new Uint8Array(HEADER_BYTES);
        const v = new DataView(head.buffer);
        v.setUint8(0, rand() < 0.9 ? 1 + int(6) : int(256));
        v.setUint8(1, rand() < 0.95 ? 0 : int(256));
        v.setUint16(2, rand() < 0.95 ? 0 : int(65536));
        v.setUint32(4, rand() < 0.9 ? streamId : int(4));
        v.setUint32(8, int(2 ** 32));
        v.setUint32(12, length);
        parts.push(...head, ...bytes(Math.max(0, Math.min(length, 300) + (rand() < 0.2 ? int(5) - 2 : 0))));
      }
      // sometimes at an offset inside a larger buffer, like a pooled Buffer
      const pad = rand() < 0.3 ? int(16) : 0;
      const whole = new Uint8Array(pad + parts.length + pad);
      whole.set(parts, pad);
      input = whole.subarray(pad, pad + parts.length);
    }
    if (checkPackets(input) === 'ok') ok++;
  }
  assert.ok(ok > 100, `too few valid inputs (${ok}) to exercise the success path`);
});

test('fuzz decodePackets: mutated valid batches (seeded)', T, () => {
  const { int, pick, bytes } = tools(0xbeef);
  const types = Object.values(PacketType);
  const max: Record<number, number> = { 1: 64, 2: 300, 3: 0, 4: 200, 5: 0, 6: 8 };
  let ok = 0;
  for (let i = 0; i < 10_000; i++) {
    const streamId = int(2 ** 32);
    const packets = Array.from({ length: 1 + int(4) }, (_, k) => {
      const type = pick(types);
      const n = type === PacketType.CONNECT ? 1 + int(64) : int((max[type] ?? 0) + 1);
      return { type, streamId, seq: k, payload: bytes(n) };
    });
    const valid = encodeBatch(packets);
    let mutated = Uint8Array.from(valid);
    for (let m = 1 + int(3); m > 0; m--) {
      const at = int(Math.max(1, mutated.byteLength));
      switch (int(6)) {
        case 0: mutated[at] = (mutated[at] ?? 0) ^ (1 << int(8)); break;
        case 1: mutated[at] = int(256); break;
        case 2: mutated = mutated.slice(0, at); break;
        case 3: mutated = Uint8Array.from([...mutated, ...bytes(1 + int(20))]); break;
        case 4: mutated = Uint8Array.from([...mutated.subarray(0, at), ...valid.subarray(int(valid.byteLength))]); break;
        default: mutated = Uint8Array.from([...mutated, ...valid]); break;
      }
    }
    if (checkPackets(mutated) === 'ok') ok++;
    assert.equal(checkPackets(valid), 'ok');
  }
  assert.ok(ok > 100, `too few mutated inputs still valid (${ok})`);
});

/** Runs a signaling decoder and checks it returns a typed record or throws SignalError, nothing else. */
function checkSignal(decode: (d: Uint8Array) => { t: string }, input: Uint8Array, allowed: readonly string[]): 'ok' | 'error' {
  try {
    const msg = decode(input);
    assert.ok(allowed.includes(msg.t), `unexpected t ${msg.t}`);
    checkShape(msg as unknown as Record<string, unknown>);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof SignalError, `not a SignalError: ${String(err)} ${(err as Error)?.stack ?? ''}`);
    assert.equal(err.code, 'SIGNALING_PROTOCOL');
    return 'error';
  }
}
/** What each accepted message promises its reader (the declared types in signaling.ts). */
function checkShape(m: Record<string, unknown>): void {
  const bytes = (v: unknown, min: number, max: number): boolean => v instanceof Uint8Array && v.byteLength >= min && v.byteLength <= max;
  const text = (v: unknown, max: number): boolean => typeof v === 'string' && v.length <= max;
  const size = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 65536 && (v as number) <= 1024 ** 3;
  const mtu = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 576 && (v as number) <= 4140;
  const count = (v: unknown, max: number): boolean => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max;
  const window = (v: unknown): boolean => typeof v === 'object' && v !== null && size((v as Record<string, unknown>).initial) && size((v as Record<string, unknown>).max) && ((v as Record<string, number>).initial ?? 0) <= ((v as Record<string, number>).max ?? 0);
  const ok: Record<string, () => boolean> = {
    hello: () => typeof m.v === 'number' && (m.session === undefined || bytes(m.session, 16, 16)) && (m.yb === undefined || bytes(m.yb, 32, 32)),
    auth: () => bytes(m.ya, 32, 32) && bytes(m.confirm, 32, 32),
    mac: () => Number.isSafeInteger(m.n) && bytes(m.body, 1, MAX_SIGNAL_BYTES) && bytes(m.mac, 32, 32),
    error: () => text(m.code, 64) && text(m.message, 500),
    welcome: () => Array.isArray(m.services) && m.services.every((s) => text(s, 64)) && bytes(m.confirm, 32, 32) && window(m.window) && typeof m.fb === 'boolean' && mtu(m.mtu) && count(m.lanes, MAX_PEER_CONNECTIONS - 1) && typeof m.relay === 'boolean',
    params: () => window(m.window) && typeof m.fb === 'boolean' && mtu(m.mtu) && count(m.pcs, MAX_PEER_CONNECTIONS),
    fallback: () => true,
    'fallback-reply': () => typeof m.ok === 'boolean',
    lanes: () => Array.isArray(m.pcs) && m.pcs.length >= 1 && m.pcs[0] === 0
      && m.pcs.every((pc, i, all) => count((pc as number) + 1, MAX_PEER_CONNECTIONS) && (i === 0 || (pc as number) > (all[i - 1] as number))),
    'lanes-reply': () => typeof m.ok === 'boolean',
    sdp: () => typeof m.sdp === 'string' && (m.type === 'offer' || m.type === 'answer') && count((m.pc as number) + 1, MAX_PEER_CONNECTIONS),
    cand: () => text(m.cand, 1000) && text(m.mid, 100) && count((m.pc as number) + 1, MAX_PEER_CONNECTIONS),
  };
  assert.ok(ok[String(m.t)]?.(), `accepted a malformed message: ${JSON.stringify(m, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
}
const PLAIN = ['hello', 'auth', 'mac', 'error'] as const;
const INNER = ['welcome', 'params', 'sdp', 'cand', 'fallback', 'fallback-reply', 'lanes', 'lanes-reply'] as const;

/** A random msgpack-able value, nested a little. */
function randomValue(tl: ReturnType<typeof tools>, depth: number): unknown {
  const { rand, int, pick, bytes } = tl;
  switch (int(depth > 2 ? 9 : 11)) {
    case 0: return null;
    case 1: return rand() < 0.5;
    case 2: return pick([0, 1, -1, 127, 128, 255, 256, 65535, 2 ** 32, -(2 ** 31), Number.MAX_SAFE_INTEGER, 2 ** 53 + 2, -(2 ** 63)]);
    case 3: return pick([0.5, -1.25, NaN, Infinity, -Infinity, 1e300]);
    case 4: return pick(['', 'hello', 'auth', 'mac', 'error', 'welcome', 'params', 'fallback', 'fallback-reply', 'lanes', 'lanes-reply', 'sdp', 'cand', 'offer', 'answer', 'x'.repeat(70), 'é'.repeat(600)]);
    case 5: return bytes(pick([0, 1, 15, 16, 17, 31, 32, 33, 100]));
    case 6: return pick([0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n]);
    case 7: return undefined;
    case 8: return int(100_000);
    case 9: return Array.from({ length: int(5) }, () => randomValue(tl, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let k = int(5); k > 0; k--) o[pick(['t', 'v', 'session', 'yb', 'ya', 'confirm', 'n', 'body', 'mac', 'code', 'message', 'services', 'window', 'initial', 'max', 'fb', 'mtu', 'lanes', 'relay', 'pcs', 'pc', 'ok', 'sdp', 'type', 'cand', 'mid', 'z'])] = randomValue(tl, depth + 1);
      return o;
    }
  }
}

/** A message that has the right `t` and fields drawn at random: most branches of the validators. */
function nearValid(tl: ReturnType<typeof tools>): Record<string, unknown> {
  const { rand, pick } = tl;
  const t = pick([...PLAIN, ...INNER, 'nope']);
  const fields: Record<string, readonly string[]> = {
    hello: ['v', 'session', 'yb'], auth: ['ya', 'confirm'], mac: ['n', 'body', 'mac'], error: ['code', 'message'],
    welcome: ['services', 'confirm', 'window', 'fb', 'mtu', 'lanes', 'rid', 'relay'], params: ['window', 'fb', 'mtu', 'pcs'], fallback: [], 'fallback-reply': ['ok'],
    lanes: ['pcs'], 'lanes-reply': ['ok'], sdp: ['sdp', 'type', 'pc'], cand: ['cand', 'mid', 'pc'], nope: ['z'],
  };
  // a field is valid most of the time, so every validator is reached past its first check
  const good: Record<string, () => unknown> = {
    v: () => 1, session: () => tl.bytes(16), yb: () => tl.bytes(32), ya: () => tl.bytes(32), confirm: () => tl.bytes(32),
    n: () => tl.int(10), body: () => tl.bytes(1 + tl.int(40)), mac: () => tl.bytes(32), code: () => 'E', message: () => 'm',
    services: () => ['web', 'db'], window: () => pick([{ initial: 262144, max: 16777216 }, { initial: 262144, max: 65536 }, { initial: 1, max: 2 }, { max: 262144 }]), fb: () => rand() < 0.5, mtu: () => pick([1280, 4140, 4141, 575, 1280.5]), lanes: () => pick([1, 4, 8, 9, 0]), pcs: () => (t === 'lanes' ? pick([[0], [0, 1, 2], [0, 2, 8], [0, 8, 9], [1, 2], [0, 2, 1], [0, 1, 1], [], [0, -1], [0, 1.5]]) : pick([1, 5, 9, 10, 0])), pc: () => pick([0, 1, 8, 9, -1]), rid: () => tl.bytes(16), relay: () => rand() < 0.5, ok: () => rand() < 0.5, sdp: () => 'v=0', type: () => pick(['offer', 'answer']), cand: () => 'c', mid: () => '0',
  };
  const m: Record<string, unknown> = { t };
  for (const f of fields[t] ?? []) {
    if (rand() < 0.05) continue;
    m[f] = rand() < 0.8 ? good[f]?.() : randomValue(tl, 1);
  }
  return m;
}

test('fuzz signaling decoders: random bytes (seeded)', T, () => {
  const tl = tools(0x516);
  for (let i = 0; i < 4000; i++) {
    const input = tl.bytes(tl.int(120));
    checkSignal(decodePlain, input, PLAIN);
    checkSignal(decodeInner, input, INNER);
  }
  const huge = new Uint8Array(MAX_SIGNAL_BYTES + 1);
  assert.equal(checkSignal(decodePlain, huge, PLAIN), 'error');
  assert.equal(checkSignal(decodeInner, huge, INNER), 'error');
});

test('fuzz signaling decoders: random and near-valid msgpack values, whole and mutated (seeded)', T, () => {
  const tl = tools(0x5160);
  let ok = 0;
  for (let i = 0; i < 4000; i++) {
    const value = i % 3 === 0 ? randomValue(tl, 0) : nearValid(tl);
    const packed = Uint8Array.from(pack(value));
    for (const input of [packed, mutate(tl, packed)]) {
      if (checkSignal(decodePlain, input, PLAIN) === 'ok') ok++;
      if (checkSignal(decodeInner, input, INNER) === 'ok') ok++;
    }
  }
  assert.ok(ok > 50, `too few inputs accepted (${ok}) to exercise the success path`);
});

function mutate(tl: ReturnType<typeof tools>, input: Uint8Array): Uint8Array {
  const out = Uint8Array.from(input);
  if (out.byteLength === 0) return tl.bytes(3);
  const at = tl.int(out.byteLength);
  if (tl.rand() < 0.3) return out.subarray(0, at);
  out[at] = tl.int(256);
  return out;
}

test('sanity: valid signaling messages decode back', T, () => {
  const b = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
  assert.deepEqual(decodePlain(encodeSignal({ t: 'hello', v: 1 })), { t: 'hello', v: 1 });
  const hello = decodePlain(encodeSignal({ t: 'hello', v: 1, session: b(16, 1), yb: b(32, 2) }));
  assert.ok(hello.t === 'hello' && hello.session?.byteLength === 16 && hello.yb?.byteLength === 32);
  assert.equal(decodePlain(encodeSignal({ t: 'auth', ya: b(32, 3), confirm: b(32, 4) })).t, 'auth');
  assert.equal(decodePlain(encodeSignal({ t: 'mac', n: 3, body: b(10, 5), mac: b(32, 6) })).t, 'mac');
  assert.deepEqual(decodePlain(encodeSignal({ t: 'error', code: 'X', message: 'y' })), { t: 'error', code: 'X', message: 'y' });
  const w = { initial: 256 * 1024, max: 1048576 };
  assert.equal(decodeInner(encodeSignal({ t: 'welcome', services: ['web'], window: w, confirm: b(32, 7), fb: true, mtu: 1280, lanes: 4, rid: b(16, 8), relay: false })).t, 'welcome');
  assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'welcome', services: ['web'], window: w, confirm: b(32, 7), fb: true, mtu: 1280, lanes: 4, rid: b(16, 8) } as never), INNER), 'error'); // relay is required
  assert.deepEqual(decodeInner(encodeSignal({ t: 'params', window: w, fb: false, mtu: 4140, pcs: 5 })), { t: 'params', window: w, fb: false, mtu: 4140, pcs: 5 });
  assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'params', window: w, fb: false, mtu: 8192, pcs: 5 } as never), INNER), 'error'); // past what libjuice reads
  // how many PeerConnections the client offers: 1 to MAX_PEER_CONNECTIONS
  for (const pcs of [0, MAX_PEER_CONNECTIONS + 1, 1.5, '2', undefined]) {
    assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'params', window: w, fb: false, mtu: 1280, pcs } as never), INNER), 'error');
  }
  assert.deepEqual(decodeInner(encodeSignal({ t: 'fallback' })), { t: 'fallback' });
  assert.deepEqual(decodeInner(encodeSignal({ t: 'fallback-reply', ok: true })), { t: 'fallback-reply', ok: true });
  assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'params', window: w } as never), INNER), 'error'); // fb is required
  assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'params', window: 1048576, fb: true } as never), INNER), 'error'); // a window is {initial, max}
  assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'fallback-reply', ok: 1 } as never), INNER), 'error');
  // lanes: the small channel's PeerConnection first, then lanes in order, each once
  assert.deepEqual(decodeInner(encodeSignal({ t: 'lanes', pcs: [0, 2, 5] })), { t: 'lanes', pcs: [0, 2, 5] });
  assert.deepEqual(decodeInner(encodeSignal({ t: 'lanes', pcs: [0] })), { t: 'lanes', pcs: [0] });
  for (const pcs of [[], [1, 2], [0, 2, 1], [0, 1, 1], [0, MAX_PEER_CONNECTIONS], [0, 0.5], Array.from({ length: MAX_PEER_CONNECTIONS + 1 }, (_, i) => i), '0,1', undefined]) {
    assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'lanes', pcs } as never), INNER), 'error', JSON.stringify(pcs));
  }
  assert.deepEqual(decodeInner(encodeSignal({ t: 'lanes-reply', ok: false })), { t: 'lanes-reply', ok: false });
  assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'lanes-reply' } as never), INNER), 'error');
  assert.deepEqual(decodeInner(encodeSignal({ t: 'sdp', sdp: 'v=0', type: 'offer', pc: 1 })), { t: 'sdp', sdp: 'v=0', type: 'offer', pc: 1 });
  assert.deepEqual(decodeInner(encodeSignal({ t: 'cand', cand: 'c', mid: '0', pc: 0 })), { t: 'cand', cand: 'c', mid: '0', pc: 0 });
  // each names one of the session's PeerConnections
  assert.equal(decodeInner(encodeSignal({ t: 'sdp', sdp: 'v=0', type: 'offer', pc: MAX_PEER_CONNECTIONS - 1 })).t, 'sdp');
  for (const pc of [MAX_PEER_CONNECTIONS, -1, 0.5, '0', undefined]) {
    assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'sdp', sdp: 'v=0', type: 'offer', pc } as never), INNER), 'error');
    assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'cand', cand: 'c', mid: '0', pc } as never), INNER), 'error');
  }
  // the two decoders do not accept each other's messages
  assert.equal(checkSignal(decodeInner, encodeSignal({ t: 'hello', v: 1 }), INNER), 'error');
  assert.equal(checkSignal(decodePlain, encodeSignal({ t: 'cand', cand: 'c', mid: '0', pc: 0 }), PLAIN), 'error');
});
