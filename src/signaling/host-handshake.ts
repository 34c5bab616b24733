// The host's side of one client's signaling, from the first hello to the end of its session:
//
//   hello ──▶ guard: locked out? ──▶ CPace share ──▶ auth: right PIN? ──▶ welcome ──▶ session:
//                  └─ LOCKED_OUT              └─ WRONG_PIN (a failed guess)        params, SDP offer,
//                                                                                  candidates (MAC'd)
//
// An attempt that ends without a verdict (silence, a disconnect, garbage) counts as a failed guess,
// and so does one still in flight, so parallel connections cannot outrun the guard. Once the
// DataChannel is open the session belongs to the data plane; any later trouble ends it.

import type ndc from 'node-datachannel';
import { createPeer, addCandidate, type IceOptions } from '../webrtc/peer.js';
import { selectedPath, type SelectedPath } from '../webrtc/path.js';
import type { Logger } from '../shared/log.js';
import { encodeSignal, decodePlain, SignalError, PROTOCOL_VERSION, HANDSHAKE_TIMEOUT_MS, type Plain } from './codec.js';
import { hostStart, hostCheck, addMac, checkMac, AuthError, type MacState } from './auth.js';
import type { Guard } from './guard.js';
import type { SignalConn } from './conn.js';

export interface HostHandshakeOptions {
  peer: number;
  pin: string;
  guard: Guard;
  services: string[];
  /** the host's receive window, announced in the welcome */
  window: number;
  ice: IceOptions;
  log: Logger;
  /** Set when the client must be refused at once: the host is busy or shutting down. */
  busy?: string | undefined;
  /** The DataChannel is open; `sendWindow` is the client's receive window. */
  onChannel(channel: ndc.DataChannel, sendWindow: number): void;
  /** The session is over, for whatever reason (called once). */
  onEnd(reason: string): void;
}

export interface HostSession {
  /** The DataChannel is open (the client is connected, not only signaling). */
  connected(): boolean;
  /** The path ICE selected, once connected. */
  path(): SelectedPath | null;
  end(reason: string): void;
}

export function acceptClient(conn: SignalConn, options: HostHandshakeOptions): HostSession {
  const { peer, log } = options;
  const address = conn.remote;
  let pc: ndc.PeerConnection | null = null;
  let channel: ndc.DataChannel | null = null;
  let sendWindow = options.window;
  let step: 'hello' | 'auth' | 'session' = 'hello';
  let pake: ReturnType<typeof hostStart> | null = null;
  let macs: MacState | null = null;
  let endAttempt: (ok: boolean) => void = () => {};
  let over = false;
  let refused = false;

  const send = (msg: Plain) => conn.send(encodeSignal(msg));

  function end(reason: string): void {
    if (over) return;
    over = true;
    clearTimeout(timer);
    endAttempt(false);
    if (channel) log.info('client left', { peer, reason });
    try { channel?.close(); } catch { /* already closed */ }
    try { pc?.close(); } catch { /* already closed */ }
    conn.terminate();
    options.onEnd(reason);
  }

  function refuse(code: string, message: string): void {
    if (refused) return;
    refused = true; // what the client says after this is not read
    send({ t: 'error', code, message });
    conn.close(code);
    setTimeout(() => end(code), 1000).unref(); // the error reaches the client before the socket goes
  }

  const timer = setTimeout(() => refuse('SIGNALING_TIMEOUT', `handshake not completed in ${HANDSHAKE_TIMEOUT_MS} ms`), HANDSHAKE_TIMEOUT_MS);
  timer.unref();

  function hello(msg: Plain): void {
    if (msg.t !== 'hello') throw new SignalError('expected hello');
    if (msg.v !== PROTOCOL_VERSION) {
      refuse('VERSION_MISMATCH', `protocol version mismatch: host speaks ${PROTOCOL_VERSION}, client speaks ${msg.v}`);
      return;
    }
    const attempt = options.guard.begin(address);
    if (attempt.wait > 0) {
      log.warn('client refused: locked out', { peer, address, retryInS: Math.ceil(attempt.wait / 1000) });
      refuse('LOCKED_OUT', `too many wrong PINs: locked out, retry in ${Math.ceil(attempt.wait / 1000)} s`);
      return;
    }
    endAttempt = attempt.end;
    pake = hostStart(options.pin);
    send(pake.hello);
    step = 'auth';
  }

  function auth(msg: Plain): void {
    if (msg.t !== 'auth' || !pake) throw new SignalError('expected auth');
    const result = hostCheck(pake.session, pake.own, msg);
    if (!result) {
      endAttempt(false);
      log.warn('client refused: wrong PIN', { peer, address });
      refuse('WRONG_PIN', 'wrong PIN');
      return;
    }
    endAttempt(true);
    clearTimeout(timer);
    macs = result.macs;
    send(addMac(macs, { t: 'welcome', services: options.services, window: options.window, confirm: result.confirm }));
    step = 'session';
    log.info('client authenticated', { peer, address });
  }

  function session(msg: Plain): void {
    if (msg.t !== 'mac' || !macs) throw new SignalError('expected a MAC\'d message');
    const inner = checkMac(macs, msg);
    const m = macs;
    if (inner.t === 'params') {
      sendWindow = inner.window;
    } else if (inner.t === 'sdp') {
      if (inner.type !== 'offer' || pc) throw new SignalError('unexpected SDP');
      pc = createPeer(`host-${peer}`, options.ice, {
        sdp: (sdp, type) => send(addMac(m, { t: 'sdp', sdp, type })),
        candidate: (cand, mid) => send(addMac(m, { t: 'cand', cand, mid })),
      });
      pc.onDataChannel((dc) => {
        if (channel || over) { dc.close(); return; }
        channel = dc; // keep it referenced: an unreferenced channel is collected and closes
        dc.onClosed(() => end('data channel closed'));
        options.onChannel(dc, sendWindow);
        const path = pc ? selectedPath(pc) : null;
        log.info('client connected', { peer, address, path: path ? `${path.relayed ? 'relayed' : 'direct'} (${path.kind}) ${path.local} <-> ${path.remote}` : undefined });
      });
      pc.onStateChange((state) => {
        if (state === 'failed' || state === 'closed') end(`connection ${state}`);
      });
      pc.setRemoteDescription(inner.sdp, 'offer');
    } else if (inner.t === 'cand') {
      if (pc) addCandidate(pc, inner.cand, inner.mid, options.ice);
    } else {
      throw new SignalError(`unexpected '${inner.t}'`);
    }
  }

  conn.onMessage((data) => {
    if (over || refused) return;
    try {
      if (!data) throw new SignalError('signaling messages are binary');
      const msg = decodePlain(data);
      if (msg.t === 'error') throw new SignalError(`client error: ${msg.message}`);
      if (step === 'hello') hello(msg);
      else if (step === 'auth') auth(msg);
      else session(msg);
    } catch (err) {
      const code = err instanceof AuthError ? 'SIGNALING_AUTH' : 'SIGNALING_PROTOCOL';
      log.warn('signaling error', { peer, address, code, error: (err as Error).message });
      refuse(code, (err as Error).message);
    }
  });
  conn.onClose(() => end('signaling closed'));
  if (options.busy) refuse('BUSY', options.busy);

  return { connected: () => channel !== null && !over, path: () => (pc && channel && !over ? selectedPath(pc) : null), end };
}
