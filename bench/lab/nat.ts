// The two NAT routers' nftables rules: how a router maps its LAN host's flows to its WAN address, and
// what it lets in from the WAN side.
//
//   cone       endpoint-independent mapping: masquerade keeps the source port, so one local socket has
//              one public port whatever it sends to (what STUN reports is what every peer sees);
//              port-restricted filtering: conntrack lets in only replies from an address:port the host
//              sent to, and unsolicited UDP to the router is dropped. A hole punch works.
//   symmetric  masquerade fully-random: a new random public port for every destination, so the port
//              STUN saw is useless to the peer; only a relay (TURN) connects two of these.
//   closed     cone mapping, and every unsolicited inbound packet is dropped (UDP, TCP, ping), and no
//              port can be forwarded: a host with no open port. Replies and punched holes still work.

import { ADDR, type Site } from './topology.js';

export type NatMode = 'cone' | 'symmetric' | 'closed';
export const NAT_MODES: readonly NatMode[] = ['cone', 'symmetric', 'closed'];

export function routerRules(mode: NatMode): string {
  const masquerade = mode === 'symmetric' ? 'masquerade fully-random' : 'masquerade';
  // cone and symmetric: a router answers TCP to a closed port with a reset, like most do; closed drops it
  const inbound = mode === 'closed' ? 'iifname "wan" ct state new counter drop' : 'iifname "wan" meta l4proto udp ct state new counter drop';
  const forward = mode === 'closed' ? 'iifname "wan" ct state new counter drop;' : '';
  return `
table ip lab_nat {
  chain pre { type nat hook prerouting priority dstnat; policy accept; }
  chain post { type nat hook postrouting priority srcnat; policy accept; oifname "wan" ${masquerade}; }
}
table inet lab_fw {
  chain input { type filter hook input priority filter; policy accept; ${inbound}; }
  chain forward { type filter hook forward priority filter; policy accept; ${forward} }
}
`;
}

export type Proto = 'tcp' | 'udp';

/** DNAT `port` on a router's WAN address to its LAN host: a host with an open port ("direct mode"). */
export function portForwardRule(router: Extract<Site, 'ra' | 'rb'>, proto: Proto, port: number): string {
  const target = router === 'ra' ? ADDR.a : ADDR.b;
  return `add rule ip lab_nat pre iifname "wan" ${proto} dport ${port} dnat to ${target}:${port}\n`;
}
