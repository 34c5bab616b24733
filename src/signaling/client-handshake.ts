// The client's side of signaling: hello, the PIN proof (CPace), the host's proof back, then the
// PeerConnection, until its DataChannel is open. Rejects with a TunnelError whose code says what
// went wrong (WRONG_PIN, LOCKED_OUT, VERSION_MISMATCH, SIGNALING_*, PEER_FAILED, HOST_UNREACHABLE).
//
// After that the conversation stays open: late candidates still arrive MAC'd and are applied, and
// its end (the host process gone) ends the session at once, before any keepalive could notice.

import type ndc from 'node-datachannel';
import { createPeer, addCandidate, type IceOptions } from '../webrtc/peer.js';
import { openChannels, type PeerChannels } from '../webrtc/channels.js';
import { TunnelError, tunnelError, type ErrorCode } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { WindowOffer } from '../shared/limits.js';
import { encodeSignal, decodePlain, PROTOCOL_VERSION, HANDSHAKE_TIMEOUT_MS, type Plain } from './codec.js';
import { clientAnswer, addMac, checkMac, equalConfirm, type MacState } from './auth.js';
import type { SignalConn } from './conn.js';

export interface Session {
  pc: ndc.PeerConnection;
  channels: PeerChannels;
  services: string[];
  /** the host's receive window: our streams' send window towards it */
  sendWindow: WindowOffer;
  /** resolves with the reason once the session is over */
  ended: Promise<string>;
  end(reason: string): void;
}

export interface ClientHandshakeOptions {
  pin: string;
  /** our per-stream receive window, announced to the host */
  window: WindowOffer;
  ice: IceOptions;
  log: Logger;
  /** how the host is named in messages (its URL) */
  hostName: string;
}

/** How long the PeerConnection may take to open its DataChannel (ms). */
const PEER_OPEN_TIMEOUT_MS = 15000;

/** What the host's refusals mean here; anything else is a protocol error. */
const HOST_CODES: Record<string, ErrorCode> = {
  WRONG_PIN: 'WRONG_PIN', LOCKED_OUT: 'LOCKED_OUT', VERSION_MISMATCH: 'VERSION_MISMATCH',
  SIGNALING_AUTH: 'SIGNALING_AUTH', SIGNALING_TIMEOUT: 'SIGNALING_TIMEOUT',
};

export async function connectSession(conn: SignalConn, options: ClientHandshakeOptions): Promise<Session> {
  const { hostName, ice } = options;
  const inbox: Plain[] = [];
  let wake: (() => void) | null = null;
  let failure: TunnelError | null = null;
  let pc: ndc.PeerConnection | null = null;
  let channels: ndc.DataChannel[] = []; // kept referenced: an unreferenced channel is collected and closes
  let endSession: (reason: string) => void = () => {};
  const ended = new Promise<string>((resolve) => {
    let over = false;
    endSession = (reason) => {
      if (over) return;
      over = true;
      for (const dc of channels) { try { dc.close(); } catch { /* closed */ } }
      try { pc?.close(); } catch { /* closed */ }
      conn.terminate();
      resolve(reason);
    };
  });
  const fail = (err: TunnelError) => { failure ??= err; wake?.(); };
  const send = (msg: Plain) => conn.send(encodeSignal(msg));

  conn.onMessage((data) => {
    try {
      if (!data) throw new Error('text message');
      inbox.push(decodePlain(data));
    } catch (err) {
      fail(tunnelError('SIGNALING_PROTOCOL', `the host sent a bad signaling message: ${(err as Error).message}`));
    }
    wake?.();
  });
  conn.onClose((error) => {
    fail(tunnelError('HOST_UNREACHABLE', error ? `cannot reach the host at ${hostName}: ${error}` : `the host at ${hostName} closed the connection`));
    endSession('signaling closed');
  });

  /** The next message, or the host's refusal / a failure / the deadline as a TunnelError. */
  const next = async (deadline: number): Promise<Plain> => {
    for (;;) {
      const msg = inbox.shift();
      if (msg) {
        if (msg.t === 'error') throw tunnelError(HOST_CODES[msg.code] ?? 'SIGNALING_PROTOCOL', msg.code === 'WRONG_PIN' ? 'wrong PIN: the host refused it' : `the host refused: ${msg.message}`);
        return msg;
      }
      if (failure) throw failure;
      const left = deadline - Date.now();
      if (left <= 0) throw tunnelError('SIGNALING_TIMEOUT', `the host at ${hostName} did not answer in time`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        wake = () => { clearTimeout(t); wake = null; resolve(); };
      });
    }
  };

  /** A MAC'd message from the host, checked. */
  const nextInner = async (macs: MacState, deadline: number) => {
    const msg = await next(deadline);
    if (msg.t !== 'mac') throw tunnelError('SIGNALING_PROTOCOL', 'expected a MAC\'d message');
    return checkMac(macs, msg);
  };

  try {
    const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS;
    send({ t: 'hello', v: PROTOCOL_VERSION });
    const hello = await next(deadline);
    if (hello.t !== 'hello') throw tunnelError('SIGNALING_PROTOCOL', 'the host did not say hello');
    if (hello.v !== PROTOCOL_VERSION) throw tunnelError('VERSION_MISMATCH', `protocol version mismatch: client speaks ${PROTOCOL_VERSION}, host speaks ${hello.v}`);
    if (!hello.session || !hello.yb) throw tunnelError('SIGNALING_PROTOCOL', 'the host hello lacks its PAKE share');
    const answer = clientAnswer(options.pin, { session: hello.session, yb: hello.yb });
    const macs = answer.macs;
    send(answer.auth);
    const welcome = await nextInner(macs, deadline);
    if (welcome.t !== 'welcome' || !equalConfirm(welcome.confirm, answer.expect)) {
      throw tunnelError('SIGNALING_AUTH', 'the host could not prove it knows the PIN');
    }

    send(addMac(macs, { t: 'params', window: options.window }));
    const peer = createPeer('client', ice, {
      sdp: (sdp, type) => send(addMac(macs, { t: 'sdp', sdp, type })),
      candidate: (cand, mid) => send(addMac(macs, { t: 'cand', cand, mid })),
    });
    pc = peer;
    const { opened, all } = openChannels(peer);
    channels = all;
    let open: PeerChannels | null = null;
    void opened.then((o) => { open = o.channels; wake?.(); });
    peer.onStateChange((state) => {
      if (state === 'failed' || state === 'closed') {
        fail(tunnelError('PEER_FAILED', `the WebRTC connection ${state}`));
        endSession(`connection ${state}`);
      }
    });
    for (const dc of all) dc.onClosed(() => endSession('data channel closed'));
    const openDeadline = Date.now() + PEER_OPEN_TIMEOUT_MS;
    while (!open) {
      if (Date.now() >= openDeadline) throw tunnelError('PEER_FAILED', `no WebRTC connection to the host within ${PEER_OPEN_TIMEOUT_MS / 1000} s (ICE failed: check --ice-server / --ice-bind)`);
      if (inbox.length === 0 && !failure) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.max(1, Math.min(200, openDeadline - Date.now())));
          wake = () => { clearTimeout(t); wake = null; resolve(); };
        });
        continue;
      }
      const inner = await nextInner(macs, openDeadline);
      if (inner.t === 'sdp' && inner.type === 'answer') peer.setRemoteDescription(inner.sdp, 'answer');
      else if (inner.t === 'cand') addCandidate(peer, inner.cand, inner.mid, ice);
      else throw tunnelError('SIGNALING_PROTOCOL', `unexpected '${inner.t}' from the host`);
    }
    // from now on, late candidates and anything else are still authenticated and applied
    conn.onMessage((data) => {
      try {
        const msg = data ? decodePlain(data) : null;
        if (msg?.t !== 'mac') throw new Error(`unexpected '${msg?.t ?? 'text'}'`);
        const inner = checkMac(macs, msg);
        if (inner.t === 'cand') addCandidate(peer, inner.cand, inner.mid, ice);
      } catch (err) {
        options.log.warn('signaling error; dropping the session', { error: (err as Error).message });
        endSession('signaling error');
      }
    });
    return { pc: peer, channels: open, services: welcome.services, sendWindow: welcome.window, ended, end: endSession };
  } catch (err) {
    endSession('setup failed');
    if (err instanceof TunnelError) throw err;
    throw tunnelError('SIGNALING_AUTH', (err as Error).message);
  }
}
