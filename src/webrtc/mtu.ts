// The MTU the SCTP association assumes (libdatachannel's RtcConfig.mtu). usrsctp has no path-MTU
// discovery here, so the value is chosen up front: each side states its own in signaling and the
// smaller wins. SCTP packs one DTLS record per datagram of `mtu - 48` bytes (IPv6 + UDP headers
// assumed), so a larger MTU means fewer, larger datagrams for the same bytes: on loopback a raw
// DataChannel moved ~73 MB/s at 1280 and ~150 MB/s at 4096 (DESIGN.md section 6).

import { networkInterfaces } from 'node:os';
import { readFileSync } from 'node:fs';

/** libdatachannel's default, safe across the internet (IPv6's minimum) and through TURN. */
export const DEFAULT_MTU = 1280;
/** Below this a datagram would not hold a useful SCTP packet. */
export const MIN_MTU = 576;
/** libjuice reads every datagram into a 4096-byte buffer (conn_poll.c / conn_mux.c BUFFER_SIZE): a
 *  longer one is cut short and its DTLS record fails (measured: at --mtu 8192 not one byte arrived).
 *  A datagram is mtu - 48 bytes, and through TURN its ChannelData header adds 4: 4140 fits both. */
export const MAX_MTU = 4096 + 48 - 4;

/** This side's MTU when none is given: the interface's own (capped) when ICE is bound to one address
 *  and no STUN/TURN server can take the path off that network (loopback, a LAN), else the default. */
export function defaultMtu(iceBind: string | undefined, iceServers: number): number {
  if (!iceBind || iceServers > 0) return DEFAULT_MTU;
  const ifaceMtu = interfaceMtu(iceBind);
  return ifaceMtu === undefined ? DEFAULT_MTU : Math.max(MIN_MTU, Math.min(MAX_MTU, ifaceMtu));
}

/** The MTU of the interface that holds `address` (Linux: /sys/class/net/NAME/mtu), if it can be read. */
function interfaceMtu(address: string): number | undefined {
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    if (!addrs?.some((a) => a.address === address)) continue;
    try {
      const mtu = Number(readFileSync(`/sys/class/net/${name}/mtu`, 'utf8').trim());
      return Number.isInteger(mtu) && mtu > 0 ? mtu : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function isMtu(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= MIN_MTU && (value as number) <= MAX_MTU;
}
