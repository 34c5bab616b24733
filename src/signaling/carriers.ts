// How each side reaches the other's signaling, whichever carrier it is: the host listens on its own
// WebSocket server, registers at a rendezvous relay, or both; the client dials the host's URL, or
// finds the host through the relay by its code. Both hand the handshakes SignalConns.

import { tunnelError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { SignalConn } from './conn.js';
import { listenSignaling, openSignaling } from './websocket.js';
import { registerHost, openRendezvous } from './rendezvous.js';
import { normalizeId, parseCode, parseRelayUrl } from './rendezvous-code.js';
import { parseHostPort } from '../address.js';

export interface HostSignaling {
  /** the direct signaling URL and port ('' and 0 when the host only registered at a relay) */
  url: string;
  port: number;
  /** the id the host registered under at the relay */
  relayId: string | undefined;
  close(): Promise<void>;
}

/** The host's signaling: `listen` (default 127.0.0.1:8765 unless only `rendezvous` is given) and/or
 *  `rendezvous`. Rejects with the start-up error of either. */
export async function startHostSignaling(options: {
  listen?: string | undefined;
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
  rendezvous?: string | undefined;
  rendezvousId?: string | undefined;
  log: Logger;
  onConnection(conn: SignalConn): void;
}): Promise<HostSignaling> {
  const { log, onConnection } = options;
  const direct = options.listen !== undefined || options.rendezvous === undefined;
  const listen = direct ? parseHostPort(options.listen ?? '127.0.0.1:8765', '--listen') : null;
  const id = options.rendezvousId === undefined ? undefined : normalizeId(options.rendezvousId, '--rendezvous-id');
  const server = listen ? await listenSignaling({ ...listen, tls: options.tls, log, onConnection }) : null;
  try {
    const relay = options.rendezvous === undefined ? null : await registerHost({ url: options.rendezvous, id, log, onConnection });
    return {
      url: server?.url ?? '',
      port: server?.port ?? 0,
      relayId: relay?.id,
      async close() {
        relay?.close();
        await server?.close();
      },
    };
  } catch (err) {
    await server?.close();
    throw err;
  }
}

/** The client's way to the host, checked once: a function that opens a new conversation each time
 *  (the first connection and every reconnection), the PIN to use, and how to name the host. */
export function clientSignaling(options: {
  connect?: string | undefined;
  rendezvous?: { url: string; code: string } | undefined;
  pin?: string | undefined;
  ca?: string | Buffer | undefined;
}): { open(): Promise<SignalConn>; pin: string; hostName: string } {
  if ((options.connect === undefined) === (options.rendezvous === undefined)) {
    throw tunnelError('BAD_FLAG', 'give the host\'s URL (--connect) or a rendezvous relay and code (--rendezvous, --code), one of the two');
  }
  const code = options.rendezvous ? parseCode(options.rendezvous.code) : undefined;
  const relay = options.rendezvous ? parseRelayUrl(options.rendezvous.url) : undefined;
  const pin = code?.pin ?? options.pin;
  if (pin === undefined || pin.length === 0) throw tunnelError('BAD_FLAG', 'the host\'s PIN is needed: in the code (ID-PIN), or --pin, --pin-file or TUNNEL_PIN');
  const url = options.connect ?? '';
  return {
    open: () => (code && relay ? openRendezvous(relay, code.id) : openSignaling(url, options.ca)),
    pin,
    hostName: code ? `code ${code.id}` : url,
  };
}
