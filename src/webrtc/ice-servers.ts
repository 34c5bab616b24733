// The ICE flags, parsed and checked against what the library really does. node-datachannel 0.33
// builds libdatachannel 0.24 with libjuice as its ICE agent, and libjuice:
//   - speaks TURN over UDP only: a `turns:` URL or `?transport=tcp|tls` is dropped with a warning
//     in its log and the connection goes on without that server, so it is refused here, with why;
//   - uses at most two TURN servers (more are ignored): refused here;
//   - uses one STUN server, picked at random for each connection: more than one gets a warning.
//
//   stun:HOST[:PORT]                 STUN (port 3478)
//   turn:USER:PASS@HOST[:PORT]       TURN over UDP (port 3478); percent-encode ':', '@' and '%' in
//                                    USER and PASS (e.g. p%40ss for p@ss)
//   `stun://…` and `turn://…` are read the same way; HOST may be a name, an IPv4 or an [IPv6] address.
//
// The parsed servers go to node-datachannel as objects, not URLs, so the credentials it gets are the
// decoded ones whatever its own URL parser would make of them.

import type { IceServer } from 'node-datachannel';
import { tunnelError } from '../errors.js';

/** TURN servers libjuice uses at most. */
export const MAX_TURN_SERVERS = 2;
/** The STUN/TURN port when a URL names none (RFC 8489, RFC 8656). */
const DEFAULT_PORT = 3478;

const URL_RE = /^(stuns?|turns?):(?:\/\/)?(?:(.*)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?(?:\?transport=([A-Za-z]+))?$/;

const bad = (url: string, why: string) => tunnelError('BAD_FLAG', `--ice-server '${redact(url)}': ${why}`);

/** The URL with its password hidden, for messages and logs. */
export function redact(url: string): string {
  return url.replace(/^([a-z]+:(?:\/\/)?[^:@]*:)[^@]*@/i, '$1***@');
}

function decode(url: string, text: string, what: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw bad(url, `the ${what} is not valid percent-encoding`);
  }
}

/** One STUN or TURN URL as node-datachannel's IceServer; a BAD_FLAG error says what is wrong. */
export function parseIceServer(url: string): IceServer {
  const m = URL_RE.exec(url.trim());
  if (!m) throw bad(url, 'expected stun:HOST[:PORT] or turn:USER:PASS@HOST[:PORT]');
  const [, scheme = '', userinfo, rawHost = '', rawPort, transport] = m;
  const tcpOrTls = 'libjuice (the ICE agent node-datachannel is built with) drops TURN over TCP and TLS with a warning, so the server would never be used; use turn:USER:PASS@HOST:PORT (TURN over UDP)';
  if (scheme === 'turns' || scheme === 'stuns') throw bad(url, `${scheme}: is ${scheme === 'turns' ? 'TURN' : 'STUN'} over TLS: ${tcpOrTls}`);
  if (transport !== undefined) {
    const t = transport.toLowerCase();
    if (t === 'tcp' || t === 'tls') throw bad(url, `?transport=${t}: ${tcpOrTls}`);
    if (t !== 'udp') throw bad(url, `unknown transport '${transport}' (udp is the only one that works)`);
    if (scheme === 'stun') throw bad(url, '?transport= applies to turn: URLs only');
  }
  const hostname = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  const port = rawPort === undefined ? DEFAULT_PORT : Number(rawPort);
  if (port < 1 || port > 65535) throw bad(url, `port ${rawPort} is out of range`);
  if (scheme === 'stun') {
    if (userinfo !== undefined) throw bad(url, 'a STUN server takes no USER:PASS (did you mean turn:?)');
    return { hostname, port };
  }
  if (userinfo === undefined) throw bad(url, 'a TURN server needs credentials: turn:USER:PASS@HOST[:PORT]');
  const colon = userinfo.indexOf(':');
  if (colon <= 0) throw bad(url, 'expected USER:PASS@ before the host (percent-encode \':\' and \'@\' inside them)');
  const username = decode(url, userinfo.slice(0, colon), 'user name');
  const password = decode(url, userinfo.slice(colon + 1), 'password');
  return { hostname, port, username, password, relayType: 'TurnUdp' };
}

/** Every --ice-server, with the library's limits applied; `warn` hears what is accepted but odd. */
export function parseIceServers(urls: readonly string[], warn: (message: string) => void = () => {}): IceServer[] {
  const servers = urls.map(parseIceServer);
  const turn = servers.filter((s) => s.relayType !== undefined).length;
  if (turn > MAX_TURN_SERVERS) {
    throw tunnelError('BAD_FLAG', `--ice-server: ${turn} TURN servers given, but libjuice uses at most ${MAX_TURN_SERVERS} (the rest would be ignored); keep two`);
  }
  const stun = servers.length - turn;
  if (stun > 1) warn(`${stun} STUN servers given: libjuice uses one of them, picked at random for each connection`);
  return servers;
}

/** "MIN-MAX": the UDP ports ICE may bind (a session takes two from the range: see ../webrtc/channels.ts). */
export function parsePortRange(text: string): { min: number; max: number } {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || min < 1 || max > 65535 || min > max) {
    throw tunnelError('BAD_FLAG', `--ice-port-range: expected MIN-MAX with 1 <= MIN <= MAX <= 65535, got '${text}'`);
  }
  return { min, max };
}
