// The host's side of one client's signaling, from the first hello to the end of its session:
//
//   hello ──▶ guard: locked out? ──▶ CPace share ──▶ auth: right PIN? ──▶ welcome ──▶ session:
//                  └─ LOCKED_OUT              └─ WRONG_PIN (a failed guess)        params, SDP offers,
//                                                                                  candidates (MAC'd)
//   session ──▶ DataChannels open ────────────────────────────────────▶ the data plane has the peer
//          ├──▶ mac(lanes) from the client (its ICE time ran out with some lanes open):
//          │      our whole set open, or one it names missing? ─yes─▶ reply no
//          │                                                  └─no──▶ close the others, the data
//          │                                                          plane has the peer, reply ok
//          └──▶ mac(fallback) from the client (ICE found no path):
//                 our channel already open? ─yes─▶ reply no (the client's is about to open)
//                                          └─no──▶ close the PeerConnection, reply ok, and the data
//                                                  plane has the peer over the WebSocket (sealed)
//
// An attempt that ends without a verdict (silence, a disconnect, garbage) counts as a failed guess,
// and so does one still in flight, so parallel connections cannot outrun the guard. Once the
// channel is open the session belongs to the data plane; any later trouble ends it. A client whose
// ICE fails tells us so (an 'error' message) and we log it; one that goes silent is dropped after
// HOST_ICE_WAIT_MS.

import type ndc from 'node-datachannel';
import { createPeer, addCandidate, closePeers, type IceOptions } from '../webrtc/peer.js';
import { mayBeRelayed } from '../webrtc/sdp.js';
import { selectedPath, type SessionPath } from '../webrtc/path.js';
import type { Logger } from '../shared/log.js';
import { encodeSignal, decodePlain, SignalError, PROTOCOL_VERSION, HANDSHAKE_TIMEOUT_MS, ICE_TIMEOUT_MS, type Plain, type ResumeRequest } from './codec.js';
import { newResumeId, type ResumeTicket } from './resumption.js';
import { hostStart, hostCheck, addMac, checkMac, AuthError, type MacState } from './auth.js';
import { createFallbackChannel, type FallbackChannel } from './fallback-channel.js';
import { acceptChannels, watchClosed, type Opened, type PeerChannels } from '../webrtc/channels.js';
import type { WindowOffer } from '../shared/limits.js';
import type { Guard } from './guard.js';
import type { SignalConn } from './conn.js';

export interface HostHandshakeOptions {
  peer: number;
  pin: string;
  guard: Guard;
  services: string[];
  /** the host's per-stream receive window, announced in the welcome */
  window: WindowOffer;
  ice: IceOptions;
  /** The most bulk lanes a client may open (announced in the welcome; webrtc/channels.ts). */
  lanes: number;
  /** Offer the WebSocket fallback to clients whose connection can carry it. */
  fallback: boolean;
  log: Logger;
  /** Set when the client must be refused at once: the host is busy or shutting down. */
  busy?: string | undefined;
  /** The channels are open (the DataChannels, or the fallback as both); `sendWindow` is the client's
   *  per-stream receive window, `path` says how it goes. A reason ends this session instead (its
   *  resume was taken by another connection of the same client). */
  onChannels(channels: PeerChannels, sendWindow: WindowOffer, path: () => SessionPath | null): string | null;
  /** The session is over, for whatever reason (called once). */
  onEnd(reason: string): void;
  /** The client is authenticated: the ticket that lets it resume this session later. */
  onTicket?(ticket: ResumeTicket): void;
  /** The client asks to resume an earlier session; `session` is this handshake's CPace session id.
   *  True if the request's proof verifies (./resumption.ts). */
  onResume?(request: ResumeRequest, session: Uint8Array): boolean;
}

export interface HostSession {
  /** The channel is open (the client is connected, not only signaling). */
  connected(): boolean;
  path(): SessionPath | null;
  end(reason: string): void;
}

/** A client that has neither opened its channel nor asked for the fallback nor given up in this long
 *  is dropped (ms): its own ICE timeout, and some slack for a slow network. */
const HOST_ICE_WAIT_MS = ICE_TIMEOUT_MS + 10000;

export function acceptClient(conn: SignalConn, options: HostHandshakeOptions): HostSession {
  const { peer, log } = options;
  const address = conn.remote;
  const pcs: (ndc.PeerConnection | undefined)[] = []; // by the client's index
  let dcs: ndc.DataChannel[] = []; // kept referenced: an unreferenced channel is collected and closes
  let fallback: FallbackChannel | null = null;
  let channels: PeerChannels | null = null;
  let path: () => SessionPath | null = () => null;
  let sendWindow = options.window;
  let step: 'hello' | 'auth' | 'session' = 'hello';
  let pake: ReturnType<typeof hostStart> | null = null;
  let macs: MacState | null = null;
  let endAttempt: (ok: boolean) => void = () => {};
  let over = false;
  let refused = false;
  let fellBack = false;
  let clientFallback = false;
  let clientMtu = options.ice.mtu; // until its params say
  let clientPcs = 0; // PeerConnections the client offers: no SDP is taken before its params
  let iceTimer: NodeJS.Timeout | undefined;
  const offerFallback = options.fallback && conn.carrier !== undefined;

  const send = (msg: Plain) => conn.send(encodeSignal(msg));

  function end(reason: string): void {
    if (over) return;
    over = true;
    clearTimeout(timer);
    clearTimeout(iceTimer);
    endAttempt(false);
    if (channels) log.info('client left', { peer, reason });
    fallback?.close();
    closePeers(live(), dcs, true); // the channels the host has came from onDataChannel: they opened
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

  function connected(how: PeerChannels, pathOf: () => SessionPath | null): boolean {
    clearTimeout(iceTimer);
    channels = how;
    path = pathOf;
    const refusal = options.onChannels(how, sendWindow, pathOf);
    if (refusal !== null) end(refusal);
    return refusal === null;
  }

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
    const rid = newResumeId();
    send(addMac(macs, { t: 'welcome', services: options.services, window: options.window, confirm: result.confirm, fb: offerFallback, mtu: options.ice.mtu, lanes: options.lanes, rid, relay: mayBeRelayed(options.ice.iceServers, options.ice.relayOnly) }));
    options.onTicket?.({ rid, key: macs.resumeKey });
    step = 'session';
    log.info('client authenticated', { peer, address });
  }

  const live = () => pcs.filter((p): p is ndc.PeerConnection => p !== undefined);

  /** The channels this session goes on with: every PeerConnection's, or those the client kept. */
  function channelsOpen(opened: Opened, lanes?: string): void {
    if (over || fellBack) { for (const c of opened.keep) c.close(); return; }
    dcs = opened.keep;
    for (const c of dcs) watchClosed(c, () => { if (!fellBack) end('data channel closed'); });
    // the small channel's path (the client's first PeerConnection): the keepalive's round trips go there
    const first = pcs[0];
    if (!connected(opened.channels, () => (first ? selectedPath(first) : null))) return;
    if (lanes) log.warn(`client connected with ${lanes}`, { peer, address, path: path() });
    else log.info('client connected', { peer, address, path: path() });
  }
  const accepting = acceptChannels(() => clientPcs, (opened) => channelsOpen(opened));
  /** PeerConnections the client went on without: their closing is no reason to end the session. */
  const dropped = new Set<number>();
  let lanesKept = false;

  function offer(m: MacState, index: number, sdp: string): void {
    const p = createPeer(`host-${peer}-${index}`, options.ice, Math.min(options.ice.mtu, clientMtu), {
      sdp: (s, type) => { if (!fellBack) send(addMac(m, { t: 'sdp', sdp: s, type, pc: index })); },
      candidate: (cand, mid) => { if (!fellBack) send(addMac(m, { t: 'cand', cand, mid, pc: index })); },
    });
    pcs[index] = p;
    accepting.watch(p, index);
    p.onStateChange((state) => {
      if (fellBack || dropped.has(index) || (state !== 'failed' && state !== 'closed')) return;
      // before the channel opens, a failure is the client's to handle: it asks for the fallback or
      // tells us it gives up (and HOST_ICE_WAIT_MS drops one that does neither)
      if (channels) end(`connection ${state}`);
      else log.debug('the WebRTC connection failed before its channel opened; waiting for the client', { peer, address });
    });
    if (!iceTimer) {
      iceTimer = setTimeout(() => {
        log.warn('no network path to the client: its channel did not open and it did not ask for the fallback', { peer, address, waitedS: HOST_ICE_WAIT_MS / 1000 });
        end('ICE failed');
      }, HOST_ICE_WAIT_MS);
      iceTimer.unref();
    }
    try {
      p.setRemoteDescription(sdp, 'offer');
    } catch (err) {
      // it gathers here: no free port (--ice-port-range). A lane's is not fatal: unanswered, it never
      // opens, and the client goes on without it when its ICE time is up
      if (index === 0) throw err;
      log.warn(`cannot answer the client's bulk lane ${index}; it will go on without it`, { peer, address, error: (err as Error).message });
      dropped.add(index);
      closePeers([p], [], true);
    }
  }

  function fallBack(m: MacState): void {
    const carrier = conn.carrier;
    if (!offerFallback || !clientFallback || !carrier) throw new SignalError('the fallback was not agreed');
    if (channels) {
      send(addMac(m, { t: 'fallback-reply', ok: false })); // ours is open: the client's is about to
      return;
    }
    fellBack = true;
    closePeers(live(), dcs, false);
    pcs.length = 0;
    dcs = [];
    // one ping first, while the client waits for the reply and sends nothing: the RTT for the report
    void carrier.ping(1000).then((rtt) => {
      if (over) return;
      send(addMac(m, { t: 'fallback-reply', ok: true }));
      const fb = createFallbackChannel(conn, carrier, m.seal, (reason) => { log.warn('fallback channel failed', { peer, address, reason }); end(reason); }, rtt);
      fallback = fb;
      if (!connected({ small: fb, bulk: [fb] }, () => ({ kind: 'websocket', relayed: false, local: carrier.local, remote: carrier.remote, rttMs: fb.rttMs() }))) return;
      log.warn('client connected over the WebSocket fallback: ICE found no path', { peer, address, path: path() });
    });
  }

  /** The client's ICE time ran out with some lanes open: go on with those (or say no: ours are all open,
   *  the client's are about to; or a channel it names has not reached us, and it tries again). */
  function keepLanes(m: MacState, kept: number[]): void {
    if (kept.some((i) => i >= clientPcs)) throw new SignalError(`lanes names a PeerConnection past the ${clientPcs} offered`);
    const opened = channels ? null : accepting.partial(kept);
    if (!opened) {
      send(addMac(m, { t: 'lanes-reply', ok: false }));
      return;
    }
    lanesKept = true;
    const left = pcs.filter((p, i): p is ndc.PeerConnection => p !== undefined && !kept.includes(i));
    pcs.forEach((p, i) => { if (p && !kept.includes(i)) dropped.add(i); });
    closePeers(left, [], true);
    channelsOpen(opened, `${kept.length - 1} of ${clientPcs - 1} bulk lanes: the others did not open in time`);
    if (!over) send(addMac(m, { t: 'lanes-reply', ok: true }));
  }

  function session(msg: Plain): void {
    if (msg.t !== 'mac' || !macs) throw new SignalError('expected a MAC\'d message');
    const inner = checkMac(macs, msg);
    if (inner.t === 'params') {
      sendWindow = inner.window;
      clientFallback = inner.fb;
      clientMtu = inner.mtu;
      if (inner.pcs > 1 + options.lanes) throw new SignalError(`the client offers ${inner.pcs} PeerConnections; this host allows ${1 + options.lanes}`);
      clientPcs = inner.pcs;
      if (inner.resume) {
        const ok = options.onResume?.(inner.resume, macs.session) ?? false;
        if (!ok) log.warn('resume refused: no such session here (the host restarted, or its deadline passed), or a forged proof', { peer, address });
        send(addMac(macs, { t: 'resumed', ok }));
      }
    } else if (inner.t === 'sdp' && (dropped.has(inner.pc) || (lanesKept && inner.pc < clientPcs && !pcs[inner.pc]))) {
      // a lane the session went on without: its offer crossed our reply
    } else if (inner.t === 'sdp') {
      if (inner.type !== 'offer' || inner.pc >= clientPcs || pcs[inner.pc] || fellBack || channels) throw new SignalError('unexpected SDP');
      offer(macs, inner.pc, inner.sdp);
    } else if (inner.t === 'cand') {
      const p = pcs[inner.pc];
      if (p && !fellBack) addCandidate(p, inner.cand, inner.mid, options.ice);
    } else if (inner.t === 'fallback' && !fellBack) {
      fallBack(macs);
    } else if (inner.t === 'lanes' && !fellBack) {
      keepLanes(macs, inner.pcs);
    } else {
      throw new SignalError(`unexpected '${inner.t}'`);
    }
  }

  conn.onMessage((data) => {
    if (over || refused) return;
    try {
      if (!data) throw new SignalError('signaling messages are binary');
      const msg = decodePlain(data);
      if (msg.t === 'error' && step === 'session') {
        log.warn(`client could not connect: ${msg.message}`, { peer, address, code: msg.code });
        end(msg.code);
        return;
      }
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

  return { connected: () => channels !== null && !over, path: () => (over ? null : path()), end };
}
