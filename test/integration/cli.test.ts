// The CLI as a user runs it: `tunnel host` and `tunnel client` as real processes, talking over a real
// PeerConnection on 127.0.0.1, with an echo service in this process. Help, bad flags and a busy port
// run through `npx node dist/src/cli.js ...` exactly as typed; the long-running processes are started
// with the same Node binary directly, because the tests signal them and npx forwards no signal.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { PIN, assertOnePlainLine, clientArgs, hostArgs, runToExit, spawnClient, spawnHost, stopChildren, type Child } from '../support/cli.js';
import { startEchoService, unusedPort, type Service } from '../support/services.js';
import { MiB, destroyAllSockets, echoRoundTrip, openEchoed } from '../support/traffic.js';
import { within } from '../support/timing.js';

/** Log level of the long-running processes: loud enough that a warning would show on stderr, where
 *  the SIGTERM test looks for anything that went wrong. */
const LOUD = 'warn';

after(async () => {
  destroyAllSockets();
  await stopChildren();
}, { timeout: 30_000 });

describe('tunnel --help and bad flags (npx node dist/src/cli.js ...)', { timeout: 60_000 }, () => {
  for (const command of ['host', 'client']) {
    test(`tunnel ${command} --help exits 0 with its usage`, { timeout: 20_000 }, async () => {
      const r = await runToExit([command, '--help'], 15_000, { viaNpx: true });
      assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: tunnel ${command}`));
      assert.equal(r.stderr, '');
    });
  }

  const bad: [string, string[]][] = [
    ['an unknown flag', ['host', '--bogus']],
    ['a flag without its value', ['client', '--connect']],
    ['a malformed --expose', ['host', '--expose', 'no-equals-sign']],
    ['--workers not a number', ['host', '--expose', 'a=127.0.0.1:9', '--workers', 'many']],
    ['--workers past the 256 a stream id can name', ['client', '--connect', 'ws://127.0.0.1:1', '--pin', '1', '--forward', '9000=echo', '--workers', '257']],
    ['a forward on port 0', ['client', '--connect', 'ws://127.0.0.1:1', '--pin', '1', '--forward', '0=echo']],
    ['no --connect', ['client', '--pin', '1', '--forward', '9000=echo']],
  ];
  for (const [what, args] of bad) {
    test(`${what} exits non-zero with one plain line on stderr`, { timeout: 20_000 }, async () => {
      const r = await runToExit(args, 15_000, { viaNpx: true });
      assert.notEqual(r.code, 0, 'exit code');
      assert.notEqual(r.code, null, 'exited by itself');
      assertOnePlainLine(r.stderr, what);
    });
  }
});

describe('tunnel host + tunnel client as processes', { timeout: 90_000 }, () => {
  let echo: Service;
  let host: Child;
  let client: Child;
  let url = '';
  let forwardPort = 0;

  before(async () => {
    echo = await startEchoService();
    ({ child: host, url } = await spawnHost(hostArgs(echo.port, { pin: PIN, workers: 2 }, '--log-level', LOUD)));
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    await host.line(new RegExp(`PIN: ${PIN}\n`), 5000);
    forwardPort = await unusedPort();
    client = await spawnClient(clientArgs(url, forwardPort, { pin: PIN, workers: 2 }, '--log-level', LOUD));
    assert.match(client.stdout(), new RegExp(`forwarding 127\\.0\\.0\\.1:${forwardPort} -> echo`));
  }, { timeout: 30_000 });

  after(async () => {
    destroyAllSockets();
    await stopChildren();
    await echo?.close();
  }, { timeout: 30_000 });

  test('bytes pushed through the forwarded port come back byte-exact', { timeout: 30_000 }, async () => {
    const sizes = [4 * MiB, 3 * MiB, 1, 0];
    const results = await Promise.all(sizes.map((size, i) => echoRoundTrip(forwardPort, size, 300 + i)));
    results.forEach((r, i) => {
      assert.equal(r.received, sizes[i], `stream ${i}: bytes back`);
      assert.equal(r.receivedHash, r.sentHash, `stream ${i}: SHA-256`);
    });
  });

  test('a forward port held by another program: plain "in use" message, non-zero exit', { timeout: 20_000 }, async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    const busy = typeof address === 'object' && address ? address.port : 0;
    try {
      const r = await runToExit(clientArgs(url, busy, { pin: PIN }), 15_000, { viaNpx: true });
      assert.notEqual(r.code, 0, 'exit code');
      assert.notEqual(r.code, null, 'exited by itself');
      assertOnePlainLine(r.stderr, 'port in use');
      assert.match(r.stderr, /in use/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  test('a forward port held by another tunnel client (which uses reusePort) is also "in use"', { timeout: 20_000 }, async () => {
    const r = await runToExit(clientArgs(url, forwardPort, { pin: PIN }), 15_000, { viaNpx: true });
    assert.notEqual(r.code, 0, 'exit code');
    assertOnePlainLine(r.stderr, 'port in use by a tunnel');
    assert.match(r.stderr, /in use/);
    // and the running client still carries its streams
    const after = await echoRoundTrip(forwardPort, 1 * MiB, 400);
    assert.equal(after.receivedHash, after.sentHash);
  });

  // last: it ends the processes
  test('SIGTERM with connections open: a client exits 0 within 3 s, then the host, then a client whose host is gone', { timeout: 40_000 }, async (t) => {
    const port2 = await unusedPort();
    const client2 = await spawnClient(clientArgs(url, port2, { pin: PIN, workers: 2 }, '--log-level', LOUD));
    const s1 = await openEchoed(forwardPort);
    const s2 = await openEchoed(port2);

    const term = async (p: Child, what: string) => {
      const at = Date.now();
      p.proc.kill('SIGTERM');
      const exit = await within(p.exited, 5000, `${what} to exit after SIGTERM`);
      const ms = Date.now() - at;
      assert.deepEqual(exit, { code: 0, signal: null }, `${what} exit; stderr:\n${p.stderr()}`);
      assert.ok(ms <= 3000, `${what} exited ${ms} ms after SIGTERM`);
      t.diagnostic(`${what} exited 0 ${ms} ms after SIGTERM`);
      assert.doesNotMatch(p.stderr(), /Error:|Segmentation|Bus error|Aborted|\n\s+at /, `${what} stderr`);
    };
    const s1Closed = new Promise<void>((resolve) => s1.once('close', () => resolve()));
    await term(client, 'tunnel client');
    await within(s1Closed, 3000, "the client's connection to be closed");

    const s2Closed = new Promise<void>((resolve) => s2.once('close', () => resolve()));
    await term(host, 'tunnel host');
    await within(s2Closed, 5000, "the other client's connection to be closed when the host left");
    await term(client2, 'tunnel client (host gone, reconnecting)');
  });
});
