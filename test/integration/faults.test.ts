// A tunnel process dies or freezes in the middle of a transfer: real `tunnel host` / `tunnel client`
// processes beside an in-process peer, real PeerConnections on 127.0.0.1. A killed process closes
// its sockets (the survivor hears the signaling connection go); a frozen one (SIGSTOP) leaves them
// open, so only the keepalive can tell. Either way every connection must end, none may hang, and
// everyone else must carry on.

import { describe, test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { PIN, clientArgs, hostArgs, spawnClient, spawnHost, stopChildren } from '../support/cli.js';
import { releaseAtEnd, startHostSide, startPair, startTestClient } from '../support/pair.js';
import { startEchoService, unusedPort } from '../support/services.js';
import { MiB, connect, destroyAllSockets, openEchoed, openFlow, whenEnded, type Flow } from '../support/traffic.js';
import { liveStreams } from '../support/stats.js';
import { teardown } from '../support/teardown.js';
import { eventually, sleep, within } from '../support/timing.js';

/** after the host process is killed, the client's connections must end within this (ms) */
const HOST_DEATH_MS = 6000;
/** after a client process is killed, the host must have released its streams within this (ms) */
const CLIENT_DEATH_MS = 3000;
/** Keepalive of the side that watches a frozen peer (ms), and the silence after which the peer is
 *  gone: 5 intervals, as `--keepalive` sets it. Not too short: a loaded machine must not miss one. */
const KEEPALIVE_MS = 400;
const PEER_TIMEOUT_MS = 5 * KEEPALIVE_MS;
/** a frozen peer's streams must end within this of the freeze (ms): its timeout plus slack */
const FREEZE_BOUND_MS = PEER_TIMEOUT_MS + 2000;

releaseAtEnd();

/** What each test started in this process, closed after it whatever happened: the survivors of a
 *  fault must still shut down. */
const started = teardown();
afterEach(async () => {
  destroyAllSockets();
  await stopChildren();
  await started.close();
}, { timeout: 40_000 });

/** Waits until every flow has moved `bytes` each way. */
async function moving(flows: Flow[], bytes: number): Promise<void> {
  assert.ok(await eventually(() => flows.every((f) => f.received() >= bytes), 15_000), `streams moving: ${flows.map((f) => f.received()).join(', ')} B echoed`);
}

for (const workers of [0, 2]) {
  describe(`a process dies or freezes (workers: ${workers})`, { timeout: 120_000 }, () => {
    test('SIGKILL on the host: every client connection ends promptly, and the client knows', { timeout: 40_000 }, async () => {
      const echo = started.add(await startEchoService(), 'echo service');
      const listen = `127.0.0.1:${await unusedPort()}`;
      const { child: host, url } = await spawnHost(hostArgs(echo.port, { workers, pin: PIN, listen }));
      assert.equal(url, `ws://${listen}`);
      const { client, port } = await startTestClient(url, ['echo'], { workers });
      started.add(client, 'client');

      // four streams, each sending seeded bytes as fast as the tunnel takes them
      const flows = Array.from({ length: 4 }, (_, i) => openFlow(port.echo, 900 + i));
      await moving(flows, 2 * MiB);
      const killedAt = Date.now();
      host.proc.kill('SIGKILL');
      const results = await within(Promise.all(flows.map((f) => whenEnded(f.socket, killedAt))), HOST_DEATH_MS + 4000, 'client connections after the host was killed');
      await host.exited;
      console.log(`# workers=${workers}: after SIGKILL the streams ended in ${results.map((r) => `${r.ms} ms (${r.how})`).join(', ')}`);
      for (const [i, r] of results.entries()) assert.ok(r.ms < HOST_DEATH_MS, `stream ${i} ended ${r.ms} ms after the kill (${r.how}), want < ${HOST_DEATH_MS}`);
      assert.ok(await eventually(() => !client.connected(), 2000), 'the client knows the host is gone');
    });

    test('SIGSTOP on the host (signaling left open): the client ends busy and idle connections after its peer timeout, then refuses new ones after outageWaitMs', { timeout: 40_000 }, async () => {
      const echo = started.add(await startEchoService(), 'echo service');
      const { child: host, url } = await spawnHost(hostArgs(echo.port, { workers, pin: PIN }, '--keepalive', String(KEEPALIVE_MS)));
      const outageWaitMs = 500;
      const { client, port } = await startTestClient(url, ['echo'], { workers, config: { keepaliveMs: KEEPALIVE_MS, peerTimeoutMs: PEER_TIMEOUT_MS, outageWaitMs } });
      started.add(client, 'client');
      const flows = Array.from({ length: 3 }, (_, i) => openFlow(port.echo, 1300 + i));
      const idle = [await openEchoed(port.echo), await openEchoed(port.echo)];
      await moving(flows, 1 * MiB);

      const stoppedAt = Date.now();
      host.proc.kill('SIGSTOP'); // its sockets stay open: only silence tells
      const sockets = [...flows.map((f) => f.socket), ...idle];
      const results = await within(Promise.all(sockets.map((s) => whenEnded(s, stoppedAt))), FREEZE_BOUND_MS + 5000, 'client connections after the host froze');
      console.log(`# workers=${workers}: host frozen; connections ended after ${results.map((r) => `${r.ms} ms (${r.how})`).join(', ')}`);
      for (const [i, r] of results.entries()) assert.ok(r.ms < FREEZE_BOUND_MS, `connection ${i} ended ${r.ms} ms after the freeze, want < ${FREEZE_BOUND_MS}`);
      assert.ok(await eventually(() => !client.connected(), 2000), 'the client knows the host is gone');

      // with no host, a new connection waits outageWaitMs, then is closed
      const late = connect(port.echo);
      late.on('error', () => {});
      const e = await within(whenEnded(late), 5000, 'a connection during the outage to be closed');
      assert.ok(e.ms >= outageWaitMs - 200 && e.ms <= 3000, `a connection during the outage was closed after ${e.ms} ms (outageWaitMs ${outageWaitMs})`);
    });

    // resume off on the host: with it, B's streams would wait --resume-timeout for B (resume.test.ts)
    test('two clients, B a process killed (SIGKILL) mid-transfer: the host (resume off) releases B\'s streams and service connections, A completes byte-exact', { timeout: 40_000 }, async (t) => {
      const pair = started.add(await startPair({ workers, host: { config: { resumeTimeoutMs: 0 } } }), 'pair'); // the host and client A, in this process
      const echo = pair.services.echo;
      assert.ok(echo);
      const portB = await unusedPort();
      const b = await spawnClient(clientArgs(pair.host.url, portB, { workers, pin: PIN }));
      assert.ok(await eventually(() => pair.host.peers() === 2, 5000), 'two peers on the host');

      const idleA = await openEchoed(pair.port.echo); // one stream of A stays open throughout
      const flowA = openFlow(pair.port.echo, 1400);
      const flowsB = Array.from({ length: 4 }, (_, i) => openFlow(portB, 1410 + i));
      await moving([flowA, ...flowsB], 1 * MiB);
      assert.equal(echo.sockets().length, 6, 'the service holds one connection per stream');

      const killedAt = Date.now();
      b.proc.kill('SIGKILL');
      const aAtKill = flowA.received();
      assert.equal((await within(b.exited, 5000, 'B to die')).signal, 'SIGKILL');
      // the host notices and releases B's streams: back to A's two (the idle one and the transfer)
      assert.equal(await liveStreams(pair.client), 2, 'A holds two streams');
      const released = await eventually(async () => pair.host.peers() === 1 && (await liveStreams(pair.host)) === 2 && echo.sockets().length === 2, CLIENT_DEATH_MS, 20);
      const releasedMs = Date.now() - killedAt;
      assert.ok(released, `${releasedMs} ms after B was killed: host peers ${pair.host.peers()}, host streams ${await liveStreams(pair.host)}, service connections ${echo.sockets().length}`);
      t.diagnostic(`B's streams and service connections released ${releasedMs} ms after SIGKILL`);

      // A was not disturbed: it kept moving, and ends byte-exact
      await sleep(300);
      const resultA = await within(flowA.finish(), 20_000, "A's transfer to complete");
      assert.ok(resultA.received > aAtKill, 'A moved bytes after B was killed');
      assert.equal(resultA.received, resultA.sent, 'A: byte count');
      assert.equal(resultA.receivedHash, resultA.sentHash, 'A: SHA-256');
      assert.ok(pair.client.connected());
      // and A's idle stream still echoes
      idleA.write('pong');
      const pong = await within(new Promise<string>((resolve) => idleA.once('data', (d: Buffer) => resolve(d.toString()))), 5000, 'the idle stream to echo');
      assert.equal(pong, 'pong');
    });
  });
}

describe('a client process frozen (SIGSTOP, signaling left open)', { timeout: 60_000 }, () => {
  test('is dropped by the host (resume off) when its keepalive timeout runs out, not before', { timeout: 30_000 }, async (t) => {
    const side = started.add(await startHostSide({ workers: 2, config: { keepaliveMs: KEEPALIVE_MS, peerTimeoutMs: PEER_TIMEOUT_MS, resumeTimeoutMs: 0 } }), 'host');
    const host = side.host;
    const port = await unusedPort();
    const c = await spawnClient(clientArgs(host.url, port, { pin: PIN }, '--keepalive', String(KEEPALIVE_MS)));
    assert.ok(await eventually(() => host.peers() === 1, 5000), 'the client on the host');
    const flow = openFlow(port, 1500);
    await openEchoed(port);
    await moving([flow], 1 * MiB);
    assert.equal(await liveStreams(host), 2);

    c.proc.kill('SIGSTOP'); // its sockets stay open: only the keepalive can tell
    const stoppedAt = Date.now();
    const dropped = await eventually(async () => host.peers() === 0 && (await liveStreams(host)) === 0, FREEZE_BOUND_MS + 1000, 20);
    const ms = Date.now() - stoppedAt;
    assert.ok(dropped, `the host still holds the silent client ${ms} ms after SIGSTOP`);
    t.diagnostic(`the host released the silent client ${ms} ms after SIGSTOP`);
    // the last keepalive may have come up to one interval before the freeze
    assert.ok(ms >= PEER_TIMEOUT_MS - KEEPALIVE_MS, `released after ${ms} ms: before the keepalive timeout (${PEER_TIMEOUT_MS} ms), so not by the keepalive`);
    assert.ok(ms <= FREEZE_BOUND_MS, `released after ${ms} ms, want <= ${FREEZE_BOUND_MS}`);
  });
});
