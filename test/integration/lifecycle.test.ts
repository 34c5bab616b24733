// A tunnel's life around its streams, with real processes and real PeerConnections on 127.0.0.1: a
// host restarted under a connected client (the same PIN, then another), the PIN from --pin-file or
// TUNNEL_PIN, an idle tunnel whose two sides chose different --keepalive, and host.close() right
// after the application reset its streams. Processes dying or freezing: faults.test.ts; SIGTERM:
// cli.test.ts.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TunnelError } from '../../src/errors.js';
import { FIXTURES, PIN, clientArgs, hostArgs, runCli, spawnClient, spawnHost, spawnNode, stopChildren } from '../support/cli.js';
import { captureLog, releaseAtEnd, startPair, startTestClient } from '../support/pair.js';
import { startEchoService, unusedPort, type Service } from '../support/services.js';
import { MiB, byteSource, connected, echoExact, echoRoundTrip } from '../support/traffic.js';
import { eventually, sleep, within } from '../support/timing.js';

releaseAtEnd();

describe('lifecycle', { timeout: 120_000 }, () => {
  let echo: Service;
  const dirs: string[] = [];
  before(async () => { echo = await startEchoService(); });
  after(async () => {
    await stopChildren();
    await echo?.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, { timeout: 30_000 });

  test('host restarted: the client reconnects and new connections work; a host with another PIN makes it give up', { timeout: 60_000 }, async () => {
    const listen = `127.0.0.1:${await unusedPort()}`;
    const fatal: TunnelError[] = [];
    const clientLog = captureLog('client');
    const h1 = await spawnHost(hostArgs(echo.port, { pin: PIN, listen }));
    const { client, port } = await startTestClient(h1.url, ['echo'], {
      reconnect: true,
      log: clientLog.log,
      onFatal: (err) => fatal.push(err),
    });
    try {
      const next = byteSource(2000);
      await echoExact(port.echo, next(256 * 1024));

      // the host goes away (killed) and a new one comes up on the same port with the same PIN
      h1.child.proc.kill('SIGKILL');
      await h1.child.exited;
      assert.ok(await eventually(() => !client.connected(), 5000), 'the client noticed the host is gone');
      // a connection accepted during the outage waits for the host (up to outageWaitMs, 10 s)
      const duringOutage = echoExact(port.echo, next(64 * 1024), 30_000);
      const h2 = await spawnHost(hostArgs(echo.port, { pin: PIN, listen }));
      await within(client.whenConnected(), 20_000, 'the client to reconnect');
      assert.ok(client.connected());
      await echoExact(port.echo, next(2 * MiB));
      await duringOutage;
      assert.equal(fatal.length, 0);

      // now a host that refuses the PIN: the client stops instead of spending the guess budget
      await h2.child.stop();
      assert.ok(await eventually(() => !client.connected(), 5000), 'the client noticed the host is gone');
      const h3 = await spawnHost(hostArgs(echo.port, { pin: '11112222', listen }, '--log-level', 'info'));
      assert.ok(await eventually(() => fatal.length > 0, 20_000), 'onFatal was called');
      assert.equal(fatal[0]?.code, 'WRONG_PIN', fatal[0]?.message);
      assert.ok(clientLog.lines.some((l) => /giving up/.test(l)), `the client logs that it gives up:\n${clientLog.lines.join('')}`);
      await sleep(2500); // longer than the next backoff steps: no further attempts
      const refusals = h3.child.stderr().split('\n').filter((l) => /wrong PIN/.test(l)).length;
      assert.equal(refusals, 1, `the new host saw exactly one attempt:\n${h3.child.stderr()}`);
      assert.equal(fatal.length, 1);
      assert.equal(client.connected(), false);
    } finally {
      await within(client.close(), 10_000, 'client.close()');
    }
  });

  test('the PIN from --pin-file or TUNNEL_PIN works for host and client, and is not in ps', { timeout: 40_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tunnel-pin-'));
    dirs.push(dir);
    const pinFile = path.join(dir, 'pin');
    writeFileSync(pinFile, `${PIN}\n`, { mode: 0o600 });

    // host from a file, client from the environment; then the other way round
    const hFile = await spawnHost(hostArgs(echo.port, {}, '--pin-file', pinFile));
    const hEnv = await spawnHost(hostArgs(echo.port, {}), { env: { TUNNEL_PIN: PIN } });
    for (const h of [hFile, hEnv]) {
      const line = (await h.child.line(/PIN: .*/, 5000))[0];
      assert.doesNotMatch(line, /generated/, 'the host uses the given PIN');
    }
    const [pEnv, pFile] = [await unusedPort(), await unusedPort()];
    const cEnv = await spawnClient(clientArgs(hFile.url, pEnv, {}), { env: { TUNNEL_PIN: PIN } });
    const cFile = await spawnClient(clientArgs(hEnv.url, pFile, {}, '--pin-file', pinFile));
    for (const [i, p] of [pEnv, pFile].entries()) {
      const r = await echoRoundTrip(p, 512 * 1024, 2100 + i);
      assert.equal(r.receivedHash, r.sentHash, `through port ${p}`);
    }

    for (const p of [hFile.child, hEnv.child, cEnv, cFile]) {
      const args = execFileSync('ps', ['-o', 'args=', '-p', String(p.proc.pid)], { encoding: 'utf8' });
      assert.ok(args.includes('cli.js'), `ps shows the process: ${args}`);
      assert.ok(!args.includes(PIN), `the PIN is in ps: ${args}`);
    }
    // a wrong PIN in the environment is refused (the variable is really read)
    const wrong = runCli(clientArgs(hFile.url, await unusedPort(), {}), { env: { TUNNEL_PIN: '00000000' } });
    const { code } = await within(wrong.exited, 15_000, 'the wrong-PIN client to exit');
    assert.equal(code, 2);
    assert.match(wrong.stderr(), /wrong PIN/);
    const all = [cEnv, cFile, hFile.child, hEnv.child];
    for (const p of all) p.proc.kill('SIGTERM');
    await within(Promise.all(all.map((p) => p.exited)), 5000, 'every process to exit on SIGTERM');
  });

  test('an idle tunnel stays up for 9 s and an idle open stream survives (host --keepalive 10000, client default)', { timeout: 40_000 }, async () => {
    // exactly what `tunnel host --keepalive 10000` configures; the client keeps the default (1000),
    // so the host sends less often than the client's peer timeout (5 s) would allow
    const pair = await startPair({ workers: 2, host: { config: { keepaliveMs: 10_000, peerTimeoutMs: 50_000 } } });
    try {
      const s = await connected(pair.port.echo);
      let ended = '';
      s.once('error', (err: NodeJS.ErrnoException) => { ended = `error ${err.code}`; });
      s.once('close', () => { ended ||= 'close'; });
      let drops = 0;
      for (let i = 0; i < 18; i++) {
        await sleep(500);
        if (!pair.client.connected()) drops++;
      }
      assert.equal(ended, '', 'the idle stream was closed by the tunnel');
      assert.equal(drops, 0, 'the client thought the host was gone while the tunnel was idle');
      const r = await echoRoundTrip(pair.port.echo, 1 * MiB, 1);
      assert.equal(r.receivedHash, r.sentHash);
    } finally {
      await pair.close();
    }
  });

  test('host.close() resolves when the application has just reset its streams and the client closed (20 rounds)', { timeout: 60_000 }, async () => {
    // in its own process: a hung worker thread keeps a process alive for good (even through
    // process.exit), so the fixture says HUNG and is killed from here
    const fixture = spawnNode(path.join(FIXTURES, 'close-after-resets.js'), ['20']);
    // true once it says HUNG; false once it exited (or after 50 s, and then the exit code says so)
    const hung = await fixture.line(/HUNG/, 50_000).then(() => true, () => false);
    await fixture.stop();
    const { code } = await fixture.exited;
    assert.equal(hung, false, `host.close() did not resolve:\n${fixture.stdout()}`);
    assert.equal(code, 0, `${fixture.stdout()}\n${fixture.stderr()}`);
  });
});
