// Resume on loopback, in this process: the client drops its PeerConnection (as a broken path does)
// in the middle of transfers; every stream goes on byte-exact over the next one. The forged resumes are
// loopback too, and so is an outage that outlasts the deadline; a cut by a real network (nft in the
// lab) is test/integration/lab-resume.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startPair, startHostSide, startTestClient, releaseAtEnd } from '../support/pair.js';
import { openFlow, MiB } from '../support/traffic.js';
import { within, sleep, eventually } from '../support/timing.js';
import { liveStreams } from '../support/stats.js';
import { connectSession } from '../../src/signaling/client-handshake.js';
import { openSignaling } from '../../src/signaling/websocket.js';
import type { ResumeTicket } from '../../src/signaling/resumption.js';
import { defaultConfig, windowOffer } from '../../src/shared/limits.js';
import { createLogger } from '../../src/shared/log.js';

releaseAtEnd();

describe('resume (loopback)', { timeout: 90_000 }, () => {
  test('8 streams echoing 4 MiB each survive a dropped PeerConnection byte-exact', { timeout: 60_000 }, async () => {
    const pair = await startPair({ client: { reconnect: true } });
    try {
      const flows = Array.from({ length: 8 }, (_, i) => openFlow(pair.port.echo ?? 0, 100 + i, { bytes: 4 * MiB }));
      await within(new Promise<void>((resolve) => { const t = setInterval(() => { if ((flows[0]?.received() ?? 0) > MiB / 2) { clearInterval(t); resolve(); } }, 5); }), 20_000, 'data to flow');
      const cutAt = Date.now();
      pair.client.dropPath('test: path dropped');
      await within(new Promise<void>((resolve) => { const t = setInterval(() => { if (pair.client.reconnecting()) { clearInterval(t); resolve(); } }, 2); }), 5_000, 'the outage to show');
      await within(pair.client.whenConnected(), 20_000, 'the client to reconnect');
      const backMs = Date.now() - cutAt;
      const results = await within(Promise.all(flows.map((f) => f.finish())), 40_000, 'the flows to finish');
      for (const r of results) {
        assert.equal(r.received, 4 * MiB);
        assert.equal(r.receivedHash, r.sentHash);
      }
      const stats = await pair.client.stats();
      assert.equal(stats.outages.resumes, 1);
      assert.deepEqual(Object.keys(stats.shards[0]?.resets ?? {}), []);
      console.log(`# resumed in ${backMs} ms`);
    } finally {
      await pair.close();
    }
  });
});

describe('resume after a longer outage (loopback)', { timeout: 60_000 }, () => {
  test('the path dropped and signaling refused for 5 s: 16 busy streams wait with reads paused, then resume byte-exact', { timeout: 50_000 }, async (t) => {
    const side = await startHostSide();
    let blocked = false;
    // the client reaches the host's signaling through this proxy, which refuses it during the outage
    const proxy = net.createServer((c) => {
      if (blocked) { c.destroy(); return; }
      const u = net.connect(side.host.port, '127.0.0.1');
      c.pipe(u).pipe(c);
      const both = () => { c.destroy(); u.destroy(); };
      c.on('error', both); u.on('error', both); c.on('close', both); u.on('close', both);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address() as net.AddressInfo;
    const { client, port } = await startTestClient(`ws://127.0.0.1:${address.port}`, ['echo'], { pin: side.host.pin, reconnect: true });
    try {
      const flows = Array.from({ length: 16 }, (_, i) => openFlow(port.echo ?? 0, 300 + i, { bytes: 2 * MiB }));
      assert.ok(await eventually(() => flows.every((f) => f.received() > 256 * 1024), 20_000, 5), 'data flows');
      blocked = true;
      client.dropPath('test: outage');
      await sleep(1000);
      const paused = flows.reduce((n, f) => n + f.received(), 0);
      await sleep(4000);
      assert.equal(flows.reduce((n, f) => n + f.received(), 0), paused, 'nothing moves while the path is down');
      assert.equal(client.reconnecting(), true);
      blocked = false;
      const back = Date.now();
      assert.ok(await eventually(() => flows.reduce((n, f) => n + f.received(), 0) > paused, 20_000, 5), 'data flows again');
      t.diagnostic(`data flowing again ${Date.now() - back} ms after the path came back`);
      for (const r of await within(Promise.all(flows.map((f) => f.finish())), 30_000, 'the flows to finish')) {
        assert.equal(r.received, 2 * MiB);
        assert.equal(r.receivedHash, r.sentHash);
      }
      assert.equal((await client.stats()).outages.resumes, 1);
    } finally {
      await client.close();
      await side.close();
      proxy.close();
    }
  });
});

/** The client reaches the host's signaling through this proxy, which refuses it while `blocked`. */
async function signalingProxy(hostPort: number) {
  const state = { blocked: false, port: 0, close: () => {} };
  const proxy = net.createServer((c) => {
    if (state.blocked) { c.destroy(); return; }
    const u = net.connect(hostPort, '127.0.0.1');
    c.pipe(u).pipe(c);
    const both = () => { c.destroy(); u.destroy(); };
    c.on('error', both); u.on('error', both); c.on('close', both); u.on('close', both);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  state.port = (proxy.address() as net.AddressInfo).port;
  state.close = () => proxy.close();
  return state;
}

describe('resume: the deadline (loopback)', { timeout: 60_000 }, () => {
  test('an outage longer than --resume-timeout resets the waiting streams on both sides; the client then starts a new session', { timeout: 40_000 }, async () => {
    const DEADLINE_MS = 2000;
    const side = await startHostSide({ config: { resumeTimeoutMs: DEADLINE_MS } });
    const proxy = await signalingProxy(side.host.port);
    const { client, port } = await startTestClient(`ws://127.0.0.1:${proxy.port}`, ['echo'], { pin: side.host.pin, reconnect: true, config: { resumeTimeoutMs: DEADLINE_MS } });
    try {
      const flows = Array.from({ length: 4 }, (_, i) => openFlow(port.echo ?? 0, 400 + i, { bytes: 64 * MiB }));
      assert.ok(await eventually(() => flows.every((f) => f.received() > 64 * 1024), 20_000, 5), 'data flows');
      proxy.blocked = true;
      client.dropPath('test: outage');
      const lost = Date.now();
      const results = await within(Promise.allSettled(flows.map((f) => f.finish())), 15_000, 'the waiting streams to be reset');
      const waited = Date.now() - lost;
      for (const r of results) assert.equal(r.status, 'rejected', 'each application connection is closed without its bytes');
      assert.ok(waited >= DEADLINE_MS - 100, `the streams waited for the deadline (${waited} ms)`);
      assert.ok(await eventually(async () => (await client.stats()).outages.expired === 1 && (await side.host.stats()).outages.expired === 1, 10_000, 20), 'both sides count the expired outage');
      assert.ok(await eventually(async () => (await liveStreams(side.host)) === 0 && (await liveStreams(client)) === 0, 10_000, 20), 'neither side holds a stream of the old session');
      proxy.blocked = false;
      await within(client.whenConnected(), 20_000, 'a new session');
      const after = openFlow(port.echo ?? 0, 500, { bytes: 256 * 1024 });
      const r = await within(after.finish(), 20_000, 'a new connection over the new session');
      assert.equal(r.receivedHash, r.sentHash);
    } finally {
      await client.close();
      await side.close();
      proxy.close();
    }
  });
});

describe('resume: authentication (loopback)', { timeout: 60_000 }, () => {
  test('a forged or replayed resume is refused and the real session goes on; the real ticket resumes', { timeout: 40_000 }, async () => {
    const side = await startHostSide();
    const open = async (resume?: ResumeTicket) => connectSession(await openSignaling(side.host.url), {
      pin: side.host.pin, window: windowOffer(defaultConfig), hostName: side.host.url, log: createLogger('raw', 'error'),
      ice: { iceServers: [], iceBind: '127.0.0.1', mtu: 1280 }, ...(resume ? { resume } : {}),
    });
    try {
      const real = await open();
      // the right PIN, the real rid, but not the old session's key
      const forged = await open({ rid: real.ticket.rid, key: new Uint8Array(32).fill(7) });
      assert.equal(forged.resumed, false);
      // someone else's rid with their own key
      const other = await open({ rid: new Uint8Array(16).fill(1), key: forged.ticket.key });
      assert.equal(other.resumed, false);
      await sleep(200);
      assert.equal(side.host.peers(), 3, 'the real session is untouched');
      // the real ticket: the host ends the old session and resumes it on the new one
      const again = await open(real.ticket);
      assert.equal(again.resumed, true);
      await within(real.ended, 5_000, 'the host to end the old session');
      for (const s of [forged, other, again]) s.end('test over');
    } finally {
      await side.close();
    }
  });

  test('a host restart: the old streams are reset (the host says so as it stops), the client gets a new session and does not hang', { timeout: 40_000 }, async () => {
    const first = await startHostSide();
    const port = first.host.port;
    const { client, port: fwd } = await startTestClient(first.host.url, ['echo'], { pin: first.host.pin, reconnect: true });
    let second: Awaited<ReturnType<typeof startHostSide>> | undefined;
    try {
      const flow = openFlow(fwd.echo ?? 0, 7);
      await eventually(() => flow.received() > 64 * 1024, 10_000);
      await first.close();
      second = await startHostSide({ host: { listen: `127.0.0.1:${port}`, pin: first.host.pin } });
      await within(flow.finish().then(() => 'ended', () => 'reset'), 20_000, 'the old stream to end').then((how) => assert.equal(how, 'reset'));
      await within(client.whenConnected(), 20_000, 'the client to reconnect');
      assert.equal((await client.stats()).outages.resumes, 0);
    } finally {
      await client.close();
      await second?.close();
    }
  });
});
