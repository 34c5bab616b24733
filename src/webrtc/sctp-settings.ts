// usrsctp's settings, process-wide, as the tunnel sets them (peer.ts) and its baselines copy them
// (bench/raw-peer.ts, the lab's raw channel). Only node-datachannel's types, so a process that does
// not load it (the lab's harness) can read them.

import type { SctpSettings } from 'node-datachannel';

/** usrsctp's send and receive buffers (bytes), process-wide: 1 MiB by default, which caps a path at
 *  1 MiB per round trip (~20 MB/s at RTT 40 ms, ~8 at 100 ms). 4 MiB (with MAX_RETRANSMITS, see
 *  channels.ts) held 29-36 MB/s at RTT 40 ms and 28-30 at RTT 100 ms in the lab; 8 and 16 MiB made the
 *  bursts larger than the receiving host absorbs (libdatachannel's 1024-packet DTLS queue and the
 *  UDP socket buffer dropped thousands of packets), so 4 MiB is the measured best here. Memory is
 *  taken as data waits, not reserved. */
export const SCTP_BUFFER_BYTES = 4 * 1024 * 1024;

/** usrsctp's congestion control module: 0, NewReno (usrsctp's default). A receiving process drops a
 *  few datagrams now and then where no kernel counter sees them (libdatachannel's DTLS queue holds
 *  1024 and drops the rest when its worker falls behind: bench/lab/README, `rawdc --sctp-stats`), and
 *  after each loss NewReno climbs back one packet per round trip (~0.7 MB/s per second at RTT 40 ms).
 *  On a raw association in the lab, RTT 40 ms, HighSpeed TCP (1) moved 41-48 MB/s against NewReno's
 *  18-20 (3 runs each; RTT 100 ms 29-32 both, H-TCP (2) 14). Through the tunnel it changed nothing
 *  there (2 runs each: one download 34-35 MB/s both, 8 downloads 39-46 against 36-44; 1 % loss the
 *  same), so the tunnel's one stream is bound elsewhere on this machine, and NewReno, as fair to
 *  other flows as TCP, stays. `TUNNEL_BENCH_SCTP_CC=N` (bench only, both sides) picks another module
 *  to compare. */
export const SCTP_CONGESTION_CONTROL = benchCongestionControl() ?? 0;

/** What every process that creates PeerConnections passes to setSctpSettings. */
export const SCTP_SETTINGS: SctpSettings = {
  recvBufferSize: SCTP_BUFFER_BYTES,
  sendBufferSize: SCTP_BUFFER_BYTES,
  congestionControlModule: SCTP_CONGESTION_CONTROL,
};

function benchCongestionControl(): number | undefined {
  const v = process.env.TUNNEL_BENCH_SCTP_CC;
  return v !== undefined && /^[0-3]$/.test(v) ? Number(v) : undefined;
}
