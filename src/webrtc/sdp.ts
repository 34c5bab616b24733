// What the client changes in its SDP offer before sending it (a pure function: the host parses and
// checks what arrives; libdatachannel does both ends' SDP otherwise).

/** The offer as sent when the client takes the DTLS client role: `a=setup:active` where
 *  libdatachannel offers `actpass` (its answerer, the host, then takes the client role itself). */
export function offerAsDtlsClient(sdp: string): string {
  return sdp.replace(/^a=setup:actpass(?=\r?$)/gm, 'a=setup:active');
}

/** Whether a side may be relayed: only with a TURN server of its own (or relay only). */
export function mayBeRelayed(iceServers: readonly { relayType?: unknown }[], relayOnly = false): boolean {
  return relayOnly || iceServers.some((s) => s.relayType !== undefined);
}

/**
 * Whether the client takes the DTLS client role: when it may be relayed and the host may not.
 *
 * libdatachannel 0.24.5 (node-datachannel 0.33.4) can deadlock a whole process when its DTLS server
 * sends through a TURN relay. A ClientHello that arrives before the server's own ICE has connected is
 * held, and handed to the DTLS transport as it starts on libjuice's poll thread, which holds libjuice's
 * lock across that callback. A thread-pool thread takes the handshake's lock to answer it and, the path
 * being relayed, then waits for libjuice's lock to send; the poll thread, still starting the
 * transport, waits for the handshake's lock. Every ICE agent of the process shares that poll thread,
 * so every PeerConnection stops, and the next close() blocks the main thread for good. Seen in the lab
 * (symmetric NATs, the client on TURN, the host on STUN: 6 of 60 sessions hung, 4 of 42 at RTT 40 ms;
 * gdb showed these threads each time); fixed upstream after that release (libdatachannel pull request
 * 1630). A direct send takes no lock, and a DTLS client holds nothing when it starts (the server speaks
 * only after the ClientHello), so the side that may be relayed should be the client: then none of 60
 * (none of 42 at RTT 40 ms) hung, and they opened faster. The price is on a direct path: there the
 * client's ClientHello is the early one, and one that a pool thread reads before start() has marked the
 * transport "connecting" waits for the 1 s retransmission (cone NATs, RTT 40 ms: 29 of 42 sessions,
 * none with the host as DTLS client). A second now and then beats a hang. Otherwise libdatachannel's
 * default stays, the host as DTLS client, and when both sides may be relayed that keeps the host, whose
 * deadlock would take every client's session with it, out of harm's way.
 */
export function clientIsDtlsClient(clientMayBeRelayed: boolean, hostMayBeRelayed: boolean): boolean {
  return clientMayBeRelayed && !hostMayBeRelayed;
}
