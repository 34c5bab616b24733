// The lab's counter readers (bench/lab/sctp-stats.ts): usrsctp's dumped `struct sctpstat` and the
// kernel's /proc/net/snmp, decoded. Reading them from a live peer (gdb) is a lab tool, not tested here.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeSctpStats, parseUdpCounters } from '../../bench/lab/sctp-stats.js';

describe('sctp-stats', () => {
  it('reads the fields at the offsets of usrsctp fec583d (node-datachannel 0.33.4), little-endian', () => {
    const bytes = Buffer.alloc(664);
    bytes.writeUInt32LE(318_838, 80); // inpackets
    bytes.writeUInt32LE(1_341, 104); // recvdupdata
    bytes.writeUInt32LE(1_645, 172); // sendretransdata
    bytes.writeUInt32LE(1_645, 176); // sendfastretrans
    bytes.writeUInt32LE(2, 272); // timodata
    const s = decodeSctpStats(bytes);
    assert.equal(s.inpackets, 318_838);
    assert.equal(s.recvdupdata, 1_341);
    assert.equal(s.sendretransdata, 1_645);
    assert.equal(s.sendfastretrans, 1_645);
    assert.equal(s.timodata, 2);
    assert.equal(s.datadroprwnd, 0);
  });

  it('refuses a dump of another size (another usrsctp)', () => {
    assert.throws(() => decodeSctpStats(Buffer.alloc(600)), /664 bytes, got 600/);
  });

  it('parses the Udp lines by name, whatever their order', () => {
    const snmp = 'Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors\nUdp: 319158 2 5 154405 5 1 0\nUdpLite: InDatagrams\nUdpLite: 0\n';
    assert.deepEqual(parseUdpCounters(snmp), { inDatagrams: 319_158, outDatagrams: 154_405, rcvbufErrors: 5, sndbufErrors: 1 });
  });

  it("parses this machine's own counters", () => {
    const c = parseUdpCounters(readFileSync('/proc/self/net/snmp', 'utf8'));
    assert.ok(Number.isInteger(c.inDatagrams) && c.inDatagrams >= 0);
    assert.ok(Number.isInteger(c.rcvbufErrors) && c.rcvbufErrors >= 0);
  });
});
