// usrsctp's own counters of a running process, read with gdb (lab only, root), beside the kernel's UDP
// counters of that process's namespace. It is how the lab tells where packets go missing: a datagram
// the kernel delivered to the process's UDP socket that usrsctp never saw was dropped inside the
// process (libjuice -> libdatachannel's DTLS -> usrsctp), where no kernel counter sees it.
//
// node-datachannel exposes no SCTP statistics, but its addon keeps its symbol table: gdb calls
// usrsctp_get_stat() (process-wide, all associations since the process started) into a buffer it
// allocates in the process, dumps it and detaches. The process is stopped for a few hundred ms, so
// this runs once, after the measurement.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageVersion } from '../machine.js';

const run = promisify(execFile);

/** Byte offsets in usrsctp's `struct sctpstat` (usrsctp.h at fec583d, the usrsctp that node-datachannel
 *  0.33.4's libdatachannel 0.24.5 bundles; 664 bytes in all). Another version may move them. */
const FIELDS = {
  inpackets: 80, // SCTP packets usrsctp was handed (after DTLS)
  recvdata: 100, // DATA chunks received
  recvdupdata: 104, // of them, duplicates: retransmissions of chunks that had arrived
  senddata: 168,
  sendretransdata: 172, // DATA chunks retransmitted
  sendfastretrans: 176, // of them, by fast retransmit (each loss event halves NewReno's cwnd)
  timodata: 272, // T3 (retransmission timer) expiries
  fastretransinrtt: 412,
  datadroprwnd: 452, // DATA dropped for a full receive window
} as const;
const STRUCT_BYTES = 664;
const CHECKED_VERSION = '0.33.4';

export type SctpStats = Record<keyof typeof FIELDS, number>;

/** The kernel's UDP counters (/proc/PID/net/snmp: the process's own namespace). */
export interface UdpCounters { inDatagrams: number; outDatagrams: number; rcvbufErrors: number; sndbufErrors: number }

export interface ProcessCounters { sctp: SctpStats; udp: UdpCounters }

/** Refuses, with the reason, where the offsets above were not checked. */
export function sctpStatsUnavailable(): string | null {
  const version = packageVersion('node-datachannel');
  if (version !== CHECKED_VERSION) return `--sctp-stats reads usrsctp's struct at offsets checked for node-datachannel ${CHECKED_VERSION}, not ${version}`;
  if (process.getuid?.() !== 0) return '--sctp-stats attaches gdb to the peers: run it as root';
  return null;
}

export async function readUdpCounters(pid: number): Promise<UdpCounters> {
  return parseUdpCounters(await readFile(`/proc/${pid}/net/snmp`, 'utf8'));
}

/** /proc/net/snmp's `Udp:` header and value lines -> the counters. */
export function parseUdpCounters(snmp: string): UdpCounters {
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/).slice(1) ?? [];
  const values = lines[1]?.split(/\s+/).slice(1).map(Number) ?? [];
  const get = (name: string) => values[names.indexOf(name)] ?? NaN;
  return { inDatagrams: get('InDatagrams'), outDatagrams: get('OutDatagrams'), rcvbufErrors: get('RcvbufErrors'), sndbufErrors: get('SndbufErrors') };
}

export async function readSctpStats(pid: number): Promise<SctpStats> {
  const dir = await mkdtemp(join(tmpdir(), 'sctp-stats-'));
  const file = join(dir, 'sctpstat.bin');
  try {
    await run('gdb', ['-p', String(pid), '-batch', '-nx', '-q',
      '-ex', 'set $b = (char *) malloc(1024)',
      '-ex', 'call (void) usrsctp_get_stat((void *) $b)',
      '-ex', `dump binary memory ${file} $b $b+${STRUCT_BYTES}`,
      '-ex', 'call (void) free($b)',
      '-ex', 'detach'], { timeout: 30_000 });
    return decodeSctpStats(await readFile(file));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** usrsctp's `struct sctpstat`, as dumped -> the fields above. */
export function decodeSctpStats(bytes: Buffer): SctpStats {
  if (bytes.length !== STRUCT_BYTES) throw new Error(`usrsctp's stats are ${STRUCT_BYTES} bytes, got ${bytes.length}`);
  return Object.fromEntries(Object.entries(FIELDS).map(([k, off]) => [k, bytes.readUInt32LE(off)])) as SctpStats;
}

export async function readProcessCounters(pid: number): Promise<ProcessCounters> {
  const [sctp, udp] = await Promise.all([readSctpStats(pid), readUdpCounters(pid)]);
  return { sctp, udp };
}
