// The lab's fixed shape: five network namespaces, their addresses and the ports its services use.
//
//            10.71.1.0/24                       203.0.113.0/24 ("internet")                      10.71.2.0/24
//   A 10.71.1.2 ── 10.71.1.1 RA 203.0.113.10 ──pa── PUB 203.0.113.1 ──pb── 203.0.113.20 RB 10.71.2.1 ── 10.71.2.2 B
//   (client LAN)    NAT router A                 coturn, PeerJS, delay,           NAT router B      (host LAN)
//                                                loss, counters
//
// Every namespace has its own stack, so two labs with different prefixes use the same addresses without
// meeting. Each router has a /32 on its WAN side and a default route to PUB, so every packet between
// the sites crosses PUB's IP layer, where the impairments and the counters are.

/** A namespace of the lab, by role. */
export type Site = 'a' | 'ra' | 'pub' | 'rb' | 'b';
export const SITES: readonly Site[] = ['pub', 'ra', 'rb', 'a', 'b'];

export const ADDR = {
  a: '10.71.1.2',
  raLan: '10.71.1.1',
  raWan: '203.0.113.10',
  pub: '203.0.113.1',
  rbWan: '203.0.113.20',
  rbLan: '10.71.2.1',
  b: '10.71.2.2',
} as const;

/** Fixed MACs on the WAN links: the neighbours are static, so no ARP has to cross the policy routing. */
export const MAC = {
  pubToRa: '02:00:00:71:01:01',
  raWan: '02:00:00:71:01:0a',
  pubToRb: '02:00:00:71:02:01',
  rbWan: '02:00:00:71:02:14',
} as const;

/** coturn: STUN and TURN on one UDP/TCP port, long-term credentials, a fixed relay port range. */
export const TURN = {
  port: 3478,
  user: 'lab',
  pass: 'labpass',
  realm: 'lab',
  /** Relay ports (inclusive): the counters tell relayed bytes by these. 64 allocations is plenty. */
  relayMin: 49160,
  relayMax: 49223,
} as const;

/** The PeerJS server's port in PUB and its key (the package's default key). */
export const PEERJS = { port: 9000, key: 'peerjs', path: '/' } as const;

/** Namespace names must stay short and plain: they end up in /run/netns and in error messages. */
const PREFIX_RE = /^[a-z][a-z0-9]{1,11}$/;

export function checkPrefix(prefix: string): void {
  if (!PREFIX_RE.test(prefix)) throw new Error(`lab prefix must match ${PREFIX_RE}: ${JSON.stringify(prefix)}`);
  // the shared netlab uses ntl_*; a lab of ours must never take its namespaces down
  if (prefix === 'ntl') throw new Error('the lab prefix "ntl" belongs to the shared netlab');
}

export function nsName(prefix: string, site: Site): string {
  return `${prefix}_${site}`;
}
