// A signaling client made by hand: raw WebSocket frames to a host and its replies decoded, for tests
// that send what no real client would (and one that plays the PAKE itself, then misbehaves).

import assert from 'node:assert/strict';
import { WebSocket, type RawData } from 'ws';
import { unpack } from 'msgpackr';
import { clientAnswer, checkMac, type MacState } from '../../src/signaling/auth.js';
import { encodeSignal, PROTOCOL_VERSION } from '../../src/signaling/codec.js';
import { within } from './timing.js';

/** One WebSocket message as bytes, whichever form `ws` delivered it in. */
export const toBuffer = (data: RawData): Buffer => (Buffer.isBuffer(data) ? Buffer.from(data) : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));

/** A raw signaling WebSocket: every message it receives, decoded where possible. */
export interface Raw {
  ws: WebSocket;
  msgs: Record<string, unknown>[];
  closed: Promise<{ code: number; reason: string }>;
  next(ms?: number): Promise<Record<string, unknown>>;
  /** Drops the connection at once (no close handshake). */
  close(): void;
}

export async function rawConnect(url: string): Promise<Raw> {
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
    close: () => ws.terminate(),
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
export async function refusal(raw: Raw, ms = 5000): Promise<{ code: number; error?: { code: string; message: string } }> {
  const closed = await within(raw.closed, ms, 'host closing the connection');
  const error = raw.msgs.find((m) => m.t === 'error') as { code: string; message: string } | undefined;
  return { code: closed.code, ...(error ? { error } : {}) };
}

/** Plays the client through the PAKE with raw messages; returns the connection and its MAC state. */
export async function rawAuthenticated(url: string, pin: string): Promise<{ raw: Raw; macs: MacState }> {
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
