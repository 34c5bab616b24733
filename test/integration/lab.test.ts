// The network lab itself (bench/lab/): NAT behaviour, the delay, coturn, a relay-only DataChannel, the
// PeerJS server, UDP blocking, and a teardown that leaves nothing behind. Needs root, nft, coturn and a
// C compiler; skips with the reason otherwise. Two labs run at once here (different prefixes), as a
// test and a benchmark would.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startLab, labSkipReason, type Lab } from '../../bench/lab/lab.js';
import { runProbe, startProbe } from '../../bench/lab/run-probe.js';
import { runRawDc } from '../../bench/lab/rawdc.js';
import { namespaceInode, pidsIn } from '../../bench/lab/netns.js';
import { PEERJS, TURN } from '../../bench/lab/topology.js';

const skip = labSkipReason();
const T = { timeout: 30_000 };
/** One-way delay for the RTT checks (ms): A↔PUB = 1 × this, A↔B = 2 × this. */
const DELAY_MS = 25;

interface Received { port?: number; from?: string }
interface Rtt { rttMs: number[]; mapped?: string }

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const rootTables = () => execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });

/** The source ports PUB saw from one socket in `site` (port 40000) sending to two PUB ports. */
async function mappedPorts(lab: Lab, site: 'a' | 'b'): Promise<string[]> {
  // ends as soon as both ports heard from A or B; the 10 s cap only matters on a very busy machine
  const listen = await startProbe(lab, 'pub', ['udp-listen', '--ports', '4001,4002', '--seconds', '10', '--until-each']);
  await runProbe(lab, site, ['udp-send', '--from-port', '40000', '--to', lab.addr.pub, '--ports', '4001,4002']);
  const seen = (await listen.done) as Received[];
  const first = (port: number) => seen.find((r) => r.port === port)?.from ?? 'nothing';
  return [first(4001), first(4002)];
}

describe('network lab', { skip: skip ?? false, timeout: 120_000 }, () => {
  let lab: Lab;
  let tablesBefore = '';

  before(async () => {
    tablesBefore = rootTables();
    lab = await startLab({ prefix: 'dctt', nat: { a: 'cone', b: 'symmetric' }, peerjs: true });
  });
  after(async () => { await lab?.down(); });

  test('cone keeps one public port per socket; symmetric takes a new one per destination', T, async () => {
    const [a1, a2] = await mappedPorts(lab, 'a');
    assert.equal(a1, `${lab.addr.raWan}:40000`, 'cone: the source port is kept');
    assert.equal(a2, a1, 'cone: the same mapping for both destinations');
    const [b1, b2] = await mappedPorts(lab, 'b');
    assert.ok(b1.startsWith(`${lab.addr.rbWan}:`) && b2.startsWith(`${lab.addr.rbWan}:`), `${b1} ${b2}`);
    assert.notEqual(b1, b2, 'symmetric: a different port per destination');
  });

  test('coturn answers a STUN binding with the router\'s public address', T, async () => {
    const [r] = (await runProbe(lab, 'a', ['stun', '--to', lab.addr.pub, '--port', String(TURN.port), '--count', '3'])) as Rtt[];
    assert.equal(r?.rttMs.length, 3, 'three answers');
    assert.match(r?.mapped ?? '', new RegExp(`^${lab.addr.raWan.replaceAll('.', '\\.')}:\\d+$`));
  });

  test('the delay shapes the RTT: A↔PUB one delay, A↔B two (through both NATs)', T, async () => {
    await lab.shape({ delayMs: DELAY_MS });
    try {
      const [toPub] = (await runProbe(lab, 'a', ['stun', '--to', lab.addr.pub, '--port', String(TURN.port), '--count', '5'])) as Rtt[];
      await lab.portForward(7000, { proto: 'udp' });
      await startProbe(lab, 'b', ['udp-echo', '--port', '7000', '--seconds', '10']);
      const [toB] = (await runProbe(lab, 'a', ['udp-rtt', '--to', lab.addr.rbWan, '--port', '7000', '--count', '5'])) as Rtt[];
      const pub = median(toPub?.rttMs ?? []);
      const b = median(toB?.rttMs ?? []);
      // the lower bounds prove the delay; the upper ones that no path is delayed once too often (one
      // delay of slack: this machine is shared, and a busy scheduler adds milliseconds, never removes any)
      assert.ok(pub >= DELAY_MS && pub < 2 * DELAY_MS, `A↔PUB RTT ${pub} ms (${toPub?.rttMs.join(' ')})`);
      assert.ok(b >= 2 * DELAY_MS && b < 3 * DELAY_MS, `A↔B RTT ${b} ms (${toB?.rttMs.join(' ')})`);
      const stats = await lab.forwarderStats();
      assert.equal(stats.length, 2, stats.join('\n'));
      for (const line of stats) assert.match(line, /drop_queue=0 drop_loss=0 write_err=0/);
    } finally {
      await lab.shape({});
    }
  });

  test('a relay-only DataChannel carries bytes through coturn, and the relay counters show it', T, async () => {
    await lab.counters({ reset: true });
    const r = await runRawDc(lab, { seconds: 2, relayOnly: true, iceServers: [lab.turnUrl] });
    assert.ok(r.ok, r.error ?? 'no bytes');
    assert.match(r.offer?.local ?? '', /^relay /, `offer side's pair: ${JSON.stringify(r.offer)}`);
    assert.match(r.answer?.local ?? '', /^relay /, `answer side's pair: ${JSON.stringify(r.answer)}`);
    const c = await lab.counters();
    assert.ok(c.udpRelay.bytes > r.receivedMB * 1e6, `relay ${c.udpRelay.bytes} B for ${r.receivedMB} MB received`);
    assert.ok(c.udpTurn.bytes > r.receivedMB * 1e6, `TURN port ${c.udpTurn.bytes} B`);
    assert.equal(c.udpDirect.bytes, 0, 'nothing went direct');
    assert.deepEqual(lab.turnDenials(), [], 'coturn refused nothing');
  });

  test('the PeerJS server answers OPEN to a client in A', T, async () => {
    assert.ok(lab.peerjsUrl);
    const [r] = (await runProbe(lab, 'a', ['ws-open', '--url', `${lab.peerjsUrl}?key=${PEERJS.key}&id=lab-test&token=t1`])) as { message?: { type?: string } }[];
    assert.equal(r?.message?.type, 'OPEN');
    assert.ok((await lab.counters()).tcpPub.bytes > 0, 'the signaling counted as TCP to PUB');
  });

  test('a second lab beside the first: UDP blocked, TCP through a forwarded port, a closed router', T, async () => {
    const other = await startLab({ prefix: 'dctu', nat: { a: 'closed', b: 'cone' }, blockUdp: true });
    try {
      const [stun] = (await runProbe(other, 'b', ['stun', '--to', other.addr.pub, '--port', String(TURN.port), '--count', '1'])) as Rtt[];
      assert.equal(stun?.rttMs.length, 0, 'no STUN answer with UDP blocked');
      await assert.rejects(other.portForward(7100, { site: 'a' }), /closed/);
      await other.portForward(7100);
      const sink = await startProbe(other, 'b', ['tcp-sink', '--port', '7100', '--seconds', '2']);
      await runProbe(other, 'a', ['tcp-send', '--host', other.addr.rbWan, '--port', '7100', '--seconds', '0.5']);
      const [, got] = (await sink.done) as { bytes?: number }[];
      assert.ok((got?.bytes ?? 0) > 0, 'bytes reached B');
      const c = await other.counters();
      assert.ok(c.udpBlocked.packets > 0, 'the STUN requests were dropped');
      assert.ok(c.tcpDirect.bytes >= (got?.bytes ?? 0), `tcpDirect ${c.tcpDirect.bytes} B`);
      // the first lab is untouched by the second
      const [r] = (await runProbe(lab, 'a', ['stun', '--to', lab.addr.pub, '--port', String(TURN.port), '--count', '1'])) as Rtt[];
      assert.equal(r?.rttMs.length, 1);
    } finally {
      await other.down();
    }
  });

  test('down() leaves no namespace, process, nft table or file behind', T, async () => {
    const inodes = new Set(Object.values(lab.ns).map((ns) => namespaceInode(ns)).filter((i): i is number => i !== null));
    assert.equal(inodes.size, 5);
    assert.ok(pidsIn(inodes).length >= 2, 'coturn and the PeerJS server run');
    await lab.down();
    assert.deepEqual(pidsIn(inodes), [], 'processes left in the lab namespaces');
    for (const ns of Object.values(lab.ns)) assert.equal(namespaceInode(ns), null, `${ns} still exists`);
    assert.ok(!existsSync(lab.dir), `${lab.dir} still exists`);
    assert.equal(rootTables(), tablesBefore, 'the root namespace\'s nft tables changed');
    const leftovers = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').filter((l) => /^dct[tu]_/.test(l));
    assert.deepEqual(leftovers, []);
  });
});

if (skip) test(`network lab skipped: ${skip}`, { skip }, () => {});
