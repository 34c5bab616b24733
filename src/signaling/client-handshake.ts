// The client's side of signaling: hello, the PIN proof (CPace), the host's proof back, then the
// PeerConnections until their DataChannels are open — or, if ICE finds no path in time and both sides
// agreed to it, the WebSocket fallback. Rejects with a TunnelError whose code says what went wrong
// (WRONG_PIN, LOCKED_OUT, VERSION_MISMATCH, SIGNALING_*, ICE_FAILED, PEER_FAILED, HOST_UNREACHABLE,
// UNKNOWN_CODE, RELAY_*).
//
//   PAKE ─▶ offers, candidates ─▶ every DataChannel open in time? ─yes─▶ session on the ICE path
//                                   │ no (the ICE time is up, or each has opened or failed)
//                                   ├─ the small one open ─▶ mac(lanes) ─▶ ok ─▶ session on the lanes that opened
//                                   ├─ fallback agreed ─▶ mac(fallback) ─▶ ok ─▶ session on the WebSocket
//                                   │        (either) └─ no: the host's channels are all open,
//                                   │                    so ours are about to: wait for them
//                                   └─ otherwise ─▶ ICE_FAILED, one sentence with the remedy
//
// After that the conversation stays open: late candidates still arrive MAC'd and are applied, and
// the end of a direct WebSocket (the host process gone) ends the session at once, before any
// keepalive could notice. A relay's end ends nothing once the session is up.

import type ndc from 'node-datachannel';
import { createPeer, addCandidate, closePeers, type IceOptions } from '../webrtc/peer.js';
import { clientIsDtlsClient, mayBeRelayed, offerAsDtlsClient } from '../webrtc/sdp.js';
import { DEFAULT_BULK_LANES, keptChannels, openChannels, peerConnectionCount, watchClosed, type PeerChannels } from '../webrtc/channels.js';
import { selectedPath, type SessionPath } from '../webrtc/path.js';
import { TunnelError, tunnelError, type ErrorCode } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { WindowOffer } from '../shared/limits.js';
import { encodeSignal, decodePlain, PROTOCOL_VERSION, HANDSHAKE_TIMEOUT_MS, ICE_TIMEOUT_MS, FALLBACK_ICE_TIMEOUT_MS, type Inner, type Plain } from './codec.js';
import { clientAnswer, addMac, checkMac, equalConfirm } from './auth.js';
import { resumeProof, type ResumeTicket } from './resumption.js';
import { createFallbackChannel, type FallbackChannel } from './fallback-channel.js';
import type { SignalConn } from './conn.js';

export interface Session {
  /** the DataChannels, or the fallback as both */
  channels: PeerChannels;
  /** The path in use now (the RTT is live). */
  path(): SessionPath | null;
  services: string[];
  /** the host's per-stream receive window: our streams' send window towards it */
  sendWindow: WindowOffer;
  /** resolves with the reason once the session is over */
  ended: Promise<string>;
  /** what resumes this session on a later connection (./resumption.ts) */
  ticket: ResumeTicket;
  /** asked to resume an earlier session: whether the host did; null when not asked */
  resumed: boolean | null;
  end(reason: string): void;
}

export interface ClientHandshakeOptions {
  pin: string;
  /** our per-stream receive window, announced to the host */
  window: WindowOffer;
  ice: IceOptions;
  log: Logger;
  /** how the host is named in messages (its URL, or the rendezvous code's id) */
  hostName: string;
  /** Fall back to the signaling WebSocket when ICE finds no path (default true; never over a relay). */
  fallback?: boolean | undefined;
  /** Ask the host to resume the session of this ticket (the path to it broke). */
  resume?: ResumeTicket | undefined;
  /** Bulk lanes, each a PeerConnection of its own (default DEFAULT_BULK_LANES; ../webrtc/channels.ts). */
  bulkLanes?: number | undefined;
}

/** How long the host may take to answer a fallback request, or our channel to open after the host
 *  says its own is open (ms). */
const FALLBACK_REPLY_MS = 5000;
/** How long the RTT probe at the switch to the fallback may take (ms). */
const FIRST_RTT_MS = 1000;

/** What the host's refusals mean here; anything else is a protocol error. */
const HOST_CODES: Record<string, ErrorCode> = {
  WRONG_PIN: 'WRONG_PIN', LOCKED_OUT: 'LOCKED_OUT', VERSION_MISMATCH: 'VERSION_MISMATCH',
  SIGNALING_AUTH: 'SIGNALING_AUTH', SIGNALING_TIMEOUT: 'SIGNALING_TIMEOUT',
};

/** ICE failed: one sentence naming the cause and the remedy that applies here. */
function noPath(seconds: number, conn: SignalConn, ourFallback: boolean, hostFallback: boolean): TunnelError {
  const why = conn.relayed ? ' (a rendezvous relay carries no data, so there is no WebSocket fallback)'
    : !ourFallback ? ', or drop --no-fallback to carry the tunnel over the signaling WebSocket'
    : !hostFallback ? ' (the host has the WebSocket fallback turned off)' : '';
  return tunnelError('ICE_FAILED', `no network path to the host: ICE found no working connection in ${seconds} s (both sides behind symmetric NATs, or UDP blocked); add a TURN server with --ice-server turn:USER:PASS@HOST:3478${why}`);
}

export async function connectSession(conn: SignalConn, options: ClientHandshakeOptions): Promise<Session> {
  const { hostName, ice, log } = options;
  const inbox: Plain[] = [];
  let wake: (() => void) | null = null;
  let failure: TunnelError | null = null;
  let onFailure: (err: TunnelError) => void = () => {};
  let pcs: ndc.PeerConnection[] = [];
  let dcs: ndc.DataChannel[] = []; // kept referenced: an unreferenced channel is collected and closes
  let dcOpen = false;
  let fallback: FallbackChannel | null = null;
  let established = false;
  let endSession: (reason: string) => void = () => {};
  const ended = new Promise<string>((resolve) => {
    let over = false;
    endSession = (reason) => {
      if (over) return;
      over = true;
      fallback?.close();
      closePeers(pcs, dcs, dcOpen);
      conn.terminate();
      resolve(reason);
    };
  });
  const fail = (err: TunnelError) => { failure ??= err; wake?.(); onFailure(err); };
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
    if (established && conn.relayed && !fallback) {
      log.info('the rendezvous relay connection closed; the session goes on without it');
      return;
    }
    fail(error instanceof TunnelError ? error : tunnelError('HOST_UNREACHABLE', error ? `cannot reach the host at ${hostName}: ${error}` : `the host at ${hostName} closed the connection`));
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
    const welcome = await next(deadline);
    if (welcome.t !== 'mac') throw tunnelError('SIGNALING_PROTOCOL', 'expected a MAC\'d message');
    const inner = checkMac(macs, welcome);
    if (inner.t !== 'welcome' || !equalConfirm(inner.confirm, answer.expect)) {
      throw tunnelError('SIGNALING_AUTH', 'the host could not prove it knows the PIN');
    }
    if (inbox.length > 0) throw tunnelError('SIGNALING_PROTOCOL', 'the host sent more than its welcome');

    const ourFallback = options.fallback !== false && conn.carrier !== undefined;
    const useFallback = ourFallback && inner.fb;
    const ticket: ResumeTicket = { rid: inner.rid, key: macs.resumeKey };
    const resume = options.resume ? { resume: { rid: options.resume.rid, proof: resumeProof(options.resume, macs.session) } } : {};
    let resumed: boolean | null = null;
    const pcCount = peerConnectionCount(Math.min(options.bulkLanes ?? DEFAULT_BULK_LANES, inner.lanes));
    send(addMac(macs, { t: 'params', window: options.window, fb: ourFallback, mtu: ice.mtu, pcs: pcCount, ...resume }));
    const iceMs = useFallback ? FALLBACK_ICE_TIMEOUT_MS : ICE_TIMEOUT_MS;

    // from here on, every message is MAC'd and handled as it arrives
    const result = await new Promise<{ channels: PeerChannels; path: () => SessionPath | null }>((resolve, reject) => {
      let phase: 'ice' | 'lanes' | 'asked' | 'refused' | 'done' = 'ice';
      let iceConnected = false;
      let signalOpen = true; // our candidates go out until we ask for the fallback
      const timers: NodeJS.Timeout[] = [];
      const finish = (value: { channels: PeerChannels; path: () => SessionPath | null } | TunnelError) => {
        if (phase === 'done') return;
        phase = 'done';
        for (const t of timers) clearTimeout(t);
        if (value instanceof TunnelError) reject(value); else resolve(value);
      };
      onFailure = finish;
      if (failure) return finish(failure);
      const sendMac = (m: Inner) => send(addMac(macs, m));
      const iceStart = Date.now();
      // On one network (ICE bound to an address, no STUN/TURN server: loopback, a LAN), a
      // PeerConnection's candidates go out once its answer is applied. Until then the host cannot
      // reach us with its connectivity checks, so ours go first and our ICE connects before the
      // host's. The host is the DTLS client (libdatachannel's answerer) and sends its ClientHello as
      // soon as its own ICE connects: one that came before ours had connected was dropped (our DTLS
      // did not exist yet) and that PeerConnection waited for DTLS's 1 s retransmission. Loopback,
      // host and client in their own processes: with 8 lanes 61 of 100 sessions took over a second
      // to open before, 10 of 100 with this (median 96 ms, one signaling round trip more than the
      // fastest before); with 4 lanes 10 of 25, then 4 of 60. Across NATs the host's checks are what
      // open its NAT to ours, so there they go at once: in the lab (RTT 40 ms, cone NATs, 8 lanes)
      // holding them gave 7 stalls in 50 sessions against 2 without.
      const oneNetwork = Boolean(ice.iceBind) && ice.iceServers.length === 0;
      const dtlsClient = clientIsDtlsClient(mayBeRelayed(ice.iceServers, ice.relayOnly), inner.relay); // see ../webrtc/sdp.ts
      /** PeerConnections to go on without (asked for, then agreed): nothing of theirs matters. */
      const dropped = new Set<number>();
      let kept: number[] = [];
      const held: (Inner[] | null)[] = Array.from({ length: pcCount }, () => (oneNetwork ? [] : null));
      const peers = Array.from({ length: pcCount }, (_, index) => createPeer(`client-${index}`, ice, Math.min(ice.mtu, inner.mtu), {
        sdp: (sdp, type) => { if (!dropped.has(index)) sendMac({ t: 'sdp', sdp: type === 'offer' && dtlsClient ? offerAsDtlsClient(sdp) : sdp, type, pc: index }); },
        candidate: (cand, mid) => {
          if (!signalOpen) return;
          const m: Inner = { t: 'cand', cand, mid, pc: index };
          const waiting = held[index];
          if (waiting) waiting.push(m); else sendMac(m);
        },
      }));
      const answered = (index: number) => {
        const waiting = held[index];
        held[index] = null;
        if (signalOpen) for (const m of waiting ?? []) sendMac(m);
      };
      pcs = peers;
      /** Each PeerConnection: its channel open, or failed without a path (or never made). */
      const laneOpen = peers.map(() => false);
      const laneFailed = peers.map(() => false);
      let made: ReturnType<typeof openChannels>;
      try {
        made = openChannels(peers, (i) => { laneOpen[i] = true; queueMicrotask(() => settled()); });
      } catch (err) {
        // the small channel's PeerConnection could not gather (no free port): the session cannot start
        const range = ice.portRange ? ` (is --ice-port-range ${ice.portRange.min}-${ice.portRange.max} used up? a session takes ${pcCount} ports)` : '';
        return finish(tunnelError('PEER_FAILED', `cannot start a PeerConnection: ${(err as Error).message}${range}`));
      }
      const { opened, all, byPc } = made;
      byPc.forEach((dc, i) => { if (!dc) laneFailed[i] = true; });
      dcs = all;
      let channels: PeerChannels | null = null;
      // the small channel's path: the keepalive's round trips are measured there
      const onIcePath = () => { if (channels) finish({ channels, path: () => (peers[0] ? selectedPath(peers[0]) : null) }); };
      /** The small channel open, not every lane: the PeerConnections to go on with. */
      const usable = (): number[] | null => {
        if (peers.length < 2 || !laneOpen[0]) return null;
        const open = laneOpen.flatMap((o, i) => (o ? [i] : []));
        return open.length < peers.length ? open : null;
      };
      /** `dtlsFailed`: a PeerConnection failed after its own ICE had connected; otherwise the ICE
       *  time ran out, or every PeerConnection has opened its channel or failed. */
      const gaveUp = (dtlsFailed = false) => {
        if (phase !== 'ice') return;
        // A PeerConnection failed after its ICE connected: DTLS failed, a libdatachannel flake that a
        // retry cures (its DTLS can start before the answer's fingerprint is applied; a few times in
        // some 300 loopback starts with 8 lanes). There is a path, so this is no case for the
        // WebSocket fallback: asked for it, a host without one refused and the client gave up with
        // HOST_UNREACHABLE.
        if (dtlsFailed) return finish(tunnelError('PEER_FAILED', 'the WebRTC connection failed after ICE connected (DTLS)'));
        // The small channel open: there is a path, and a session on fewer lanes (or on the small
        // channel alone) beats the fallback, one TCP connection for everything, or none. A lane is
        // left out when its TURN allocation is refused (a server's per-user quota), its ports ran
        // out (--ice-port-range), or it was slow on a loaded machine.
        const lanes = usable();
        if (lanes) return askLanes(lanes);
        if (useFallback) return ask();
        if (iceConnected) return finish(tunnelError('PEER_FAILED', 'the WebRTC connection failed after ICE connected (DTLS/SCTP)'));
        const err = noPath(Math.round((Date.now() - iceStart) / 1000), conn, ourFallback, inner.fb);
        send({ t: 'error', code: err.code, message: err.message }); // the host logs it
        finish(err);
      };
      /** Every PeerConnection has opened its channel or failed, and not all opened: decide now. */
      const settled = () => {
        if (laneOpen.every((o) => o)) return; // the whole set: `opened` below
        if (laneOpen.every((o, i) => o || laneFailed[i])) gaveUp();
      };
      const askLanes = (lanes: number[]) => {
        phase = 'lanes';
        signalOpen = false;
        kept = lanes;
        peers.forEach((_, i) => { if (!lanes.includes(i)) dropped.add(i); });
        log.warn(`ICE opened ${lanes.length - 1} of ${peers.length - 1} bulk lanes in ${Math.round((Date.now() - iceStart) / 1000)} s; going on with ${lanes.length > 1 ? 'those' : 'the small channel alone'}`);
        sendMac({ t: 'lanes', pcs: lanes });
        timers.push(setTimeout(() => finish(tunnelError('SIGNALING_TIMEOUT', 'the host did not answer which lanes to keep')), FALLBACK_REPLY_MS));
      };
      const ask = () => {
        phase = 'asked';
        signalOpen = false;
        log.warn(`ICE found no path to the host in ${Math.round((Date.now() - iceStart) / 1000)} s; asking for the WebSocket fallback`);
        sendMac({ t: 'fallback' });
        timers.push(setTimeout(() => finish(tunnelError('SIGNALING_TIMEOUT', 'the host did not answer the fallback request')), FALLBACK_REPLY_MS));
      };
      /** The host said no (its own set is whole): wait a little for ours, then try again. */
      const refused = () => {
        dropped.clear();
        if (dcOpen) return onIcePath();
        phase = 'refused';
        signalOpen = true;
        timers.push(setTimeout(() => finish(tunnelError('PEER_FAILED', 'the host\'s DataChannels opened but ours did not')), FALLBACK_REPLY_MS));
      };
      const keepLanes = () => {
        const left = peers.filter((_, i) => dropped.has(i));
        closePeers(left, byPc.filter((dc, i): dc is ndc.DataChannel => dc !== undefined && dropped.has(i)), false);
        const k = keptChannels(byPc, kept); // pcs stays indexed as the host's messages name them
        dcs = k.keep;
        dcOpen = true;
        channels = k.channels;
        onIcePath();
      };
      const switchToFallback = async () => {
        const carrier = conn.carrier;
        if (!carrier) return finish(tunnelError('SIGNALING_PROTOCOL', 'the host offered a fallback this connection cannot carry'));
        closePeers(peers, all, dcOpen); // before the handshake's handler is replaced: no more ICE events matter
        pcs = [];
        dcs = [];
        const fb = createFallbackChannel(conn, carrier, macs.seal, (reason) => { log.warn('fallback channel failed', { reason }); endSession(reason); });
        fallback = fb;
        const rtt = await carrier.ping(FIRST_RTT_MS);
        const fbPath = (): SessionPath => ({ kind: 'websocket', relayed: false, local: carrier.local, remote: carrier.remote, rttMs: fb.rttMs() ?? rtt });
        finish({ channels: { small: fb, bulk: [fb] }, path: fbPath });
      };

      void opened.then((o) => {
        dcOpen = true;
        channels = o.channels;
        if (phase === 'ice' || phase === 'refused') onIcePath();
      });
      all.forEach((dc) => {
        const i = Math.max(0, byPc.indexOf(dc));
        watchClosed(dc, () => {
          if (fallback || dropped.has(i)) return;
          // asked for the fallback: the host closes its PeerConnections before it answers, which
          // closes the channels that did open here; the session goes on over the WebSocket
          if (phase === 'asked') return;
          if (phase !== 'done') return finish(tunnelError('PEER_FAILED', 'a DataChannel closed before the session was up'));
          endSession('data channel closed');
        });
      });
      const iceUp = peers.map(() => false);
      peers.forEach((peer, i) => peer.onIceStateChange((state) => { if (state === 'connected' || state === 'completed') iceConnected = iceUp[i] = true; }));
      peers.forEach((peer, i) => peer.onStateChange((state) => {
        if (fallback || dropped.has(i) || (state !== 'failed' && state !== 'closed')) return;
        if (established) {
          fail(tunnelError('PEER_FAILED', `the WebRTC connection ${state}`));
          endSession(`connection ${state}`);
        } else if (phase === 'refused' || (phase === 'lanes' && kept.includes(i))) {
          finish(tunnelError('PEER_FAILED', `the WebRTC connection ${state}`));
        } else if (iceUp[i]) {
          gaveUp(true);
        } else {
          laneFailed[i] = true;
          settled();
        }
      }));
      settled(); // lanes that could not even be made
      timers.push(setTimeout(() => gaveUp(), iceMs));

      conn.onMessage((data) => {
        if (phase === 'done') return;
        try {
          const msg = data ? decodePlain(data) : null;
          if (msg?.t === 'error') throw tunnelError(HOST_CODES[msg.code] ?? 'SIGNALING_PROTOCOL', `the host refused: ${msg.message}`);
          if (msg?.t !== 'mac') throw tunnelError('SIGNALING_PROTOCOL', `expected a MAC'd message, got '${msg?.t ?? 'text'}'`);
          const m = checkMac(macs, msg);
          if (m.t === 'resumed' && options.resume && resumed === null) resumed = m.ok;
          else if (m.t === 'sdp' && m.type === 'answer' && peers[m.pc]) { peers[m.pc]?.setRemoteDescription(m.sdp, 'answer'); answered(m.pc); }
          else if (m.t === 'cand') { const peer = peers[m.pc]; if (peer && phase !== 'asked') addCandidate(peer, m.cand, m.mid, ice); }
          else if (m.t === 'fallback-reply' && phase === 'asked') {
            if (m.ok) void switchToFallback(); else refused();
          } else if (m.t === 'lanes-reply' && phase === 'lanes') {
            if (m.ok) keepLanes(); else refused();
          } else {
            throw tunnelError('SIGNALING_PROTOCOL', `unexpected '${m.t}' from the host`);
          }
        } catch (err) {
          finish(err instanceof TunnelError ? err : tunnelError('SIGNALING_AUTH', (err as Error).message));
        }
      });
    });

    established = true;
    if (!fallback) {
      const peers = pcs;
      // late candidates and anything else are still authenticated and applied
      conn.onMessage((data) => {
        try {
          const msg = data ? decodePlain(data) : null;
          if (msg?.t !== 'mac') throw new Error(`unexpected '${msg?.t ?? 'text'}'`);
          const m = checkMac(macs, msg);
          const peer = m.t === 'cand' ? peers[m.pc] : undefined;
          if (m.t === 'cand' && peer) addCandidate(peer, m.cand, m.mid, ice);
        } catch (err) {
          log.warn('signaling error; dropping the session', { error: (err as Error).message });
          endSession('signaling error');
        }
      });
    }
    return { channels: result.channels, path: result.path, services: inner.services, sendWindow: inner.window, ended, end: endSession, ticket, resumed: options.resume ? resumed === true : null };
  } catch (err) {
    endSession('setup failed');
    if (err instanceof TunnelError) throw err;
    throw tunnelError('SIGNALING_AUTH', (err as Error).message);
  }
}
