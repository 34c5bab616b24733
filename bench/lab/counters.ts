// nft counters in PUB that prove which path the bytes took:
//
//   udpDirect   UDP forwarded between the two routers' WAN addresses (a direct, hole-punched path)
//   udpRelay    UDP to and from coturn's relay ports (the peer-facing side of a TURN allocation; a
//               relay-to-relay path crosses PUB's loopback and counts on both ends)
//   udpTurn     UDP to and from coturn's port 3478 (STUN, TURN control, and the client-facing side of
//               relayed data)
//   tcpDirect   TCP forwarded between the two sites (a forwarded port: signaling or a fallback)
//   tcpPub      TCP to and from PUB's own services (the PeerJS server, TURN over TCP)
//   udpBlocked  UDP dropped because the lab blocks UDP (the WebSocket-fallback case)
//   pubSocketDrops  UDP datagrams PUB's own sockets dropped for a full receive buffer (RcvbufErrors in
//               PUB's /proc/net/snmp; never reset). coturn gives each relay socket a 128 KiB buffer,
//               and net.core.rmem_* cannot be raised inside a namespace on this kernel: a relay-to-relay
//               path (both sides relay-only on this coturn) drops here in SCTP's bursts.
//
// Forwarded packets are counted on their last hop only (out of `pa`/`pb`): with the delay on, every
// packet crosses PUB's forward path twice (into the delay device and back), and the first leg leaves by
// `dla`/`dlb`.

import { ADDR, TURN } from './topology.js';
import { nft, nsRun } from './netns.js';

export interface Count { packets: number; bytes: number }
export interface Counters {
  udpDirect: Count;
  udpRelay: Count;
  udpTurn: Count;
  tcpDirect: Count;
  tcpPub: Count;
  udpBlocked: Count;
  pubSocketDrops: number;
}

const NAMES = {
  udp_direct: 'udpDirect', relay_in: 'udpRelay', relay_out: 'udpRelay', turn_in: 'udpTurn', turn_out: 'udpTurn',
  tcp_direct: 'tcpDirect', tcp_pub_in: 'tcpPub', tcp_pub_out: 'tcpPub', udp_blocked: 'udpBlocked',
} as const satisfies Record<string, keyof Counters>;

export function counterRules(blockUdp: boolean): string {
  const counters = Object.keys(NAMES).map((n) => `  counter ${n} {}`).join('\n');
  const relay = `${TURN.relayMin}-${TURN.relayMax}`;
  const drop = (extra: string) => blockUdp ? `meta l4proto udp ${extra}counter name "udp_blocked" drop` : '';
  return `
table inet lab_count {
${counters}
  set wan { type ipv4_addr; elements = { ${ADDR.raWan}, ${ADDR.rbWan} } }
  chain c_fwd { type filter hook forward priority filter; policy accept;
    ${drop('')}
    oifname { "pa", "pb" } ip saddr @wan ip daddr @wan meta l4proto udp counter name "udp_direct"
    oifname { "pa", "pb" } ip saddr @wan ip daddr @wan meta l4proto tcp counter name "tcp_direct"
  }
  chain c_in { type filter hook input priority filter; policy accept;
    ${drop('iifname != "lo" ')}
    udp dport ${relay} counter name "relay_in"
    udp dport ${TURN.port} counter name "turn_in"
    iifname != "lo" meta l4proto tcp counter name "tcp_pub_in"
  }
  chain c_out { type filter hook output priority filter; policy accept;
    udp sport ${relay} counter name "relay_out"
    udp sport ${TURN.port} counter name "turn_out"
    oifname != "lo" meta l4proto tcp counter name "tcp_pub_out"
  }
}
`;
}

export async function installCounters(pub: string, blockUdp: boolean): Promise<void> {
  await nft(pub, counterRules(blockUdp));
}

interface NftCounter { counter?: { name: string; packets: number; bytes: number } }

export async function readCounters(pub: string, reset = false): Promise<Counters> {
  const { stdout } = await nsRun(pub, 'nft', ['-j', reset ? 'reset' : 'list', 'counters', 'table', 'inet', 'lab_count']);
  const zero = (): Count => ({ packets: 0, bytes: 0 });
  const out: Counters = { udpDirect: zero(), udpRelay: zero(), udpTurn: zero(), tcpDirect: zero(), tcpPub: zero(), udpBlocked: zero(), pubSocketDrops: 0 };
  const parsed = JSON.parse(stdout) as { nftables: NftCounter[] };
  for (const item of parsed.nftables) {
    const c = item.counter;
    if (!c || !(c.name in NAMES)) continue;
    const key = NAMES[c.name as keyof typeof NAMES];
    out[key].packets += c.packets;
    out[key].bytes += c.bytes;
  }
  out.pubSocketDrops = await socketDrops(pub);
  return out;
}

/** RcvbufErrors of the Udp line in a namespace's /proc/net/snmp. */
async function socketDrops(ns: string): Promise<number> {
  const { stdout } = await nsRun(ns, 'cat', ['/proc/net/snmp']);
  const [names, values] = stdout.split('\n').filter((l) => l.startsWith('Udp:')).map((l) => l.split(/\s+/));
  const i = names?.indexOf('RcvbufErrors') ?? -1;
  return i > 0 ? Number(values?.[i] ?? 0) : 0;
}
