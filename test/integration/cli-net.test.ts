// The CLI across networks, as processes: `tunnel host --rendezvous` prints its code and
// `tunnel client --rendezvous --code` finds it; both print the path they took; with no ICE path
// (host ICE on 127.0.0.1, client on 127.0.0.2) the client takes the WebSocket fallback, or with
// --no-fallback exits non-zero with one sentence while the host keeps serving; ICE flags that
// cannot work are refused at start-up.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, type Child } from '../support/cli.js';
import { startEchoService, unusedPort, type Service } from '../support/services.js';
import { within } from '../support/timing.js';
import { destroyAllSockets, echoRoundTrip } from '../support/traffic.js';
import { startPeerServer, type PeerServer } from '../support/peer-server.js';

const MiB = 1024 * 1024;
const PIN = '86420864';
const NPX_ENV = { ...process.env, npm_config_update_notifier: 'false' };

function assertOnePlainLine(stderr: string, what: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got ${JSON.stringify(stderr)}`);
  assert.match(lines[0] ?? '', /^tunnel( \w+)?: \S/, `${what}: a plain sentence`);
  assert.doesNotMatch(stderr, /\n\s+at |Error:|node:internal/, `${what}: no stack trace`);
}

describe('tunnel host --rendezvous + tunnel client --rendezvous --code', { timeout: 60_000 }, () => {
  let relay: PeerServer;
  let echo: Service;
  let host: Child;
  let client: Child;

  before(async () => {
    relay = await startPeerServer();
    echo = await startEchoService();
  });

  after(async () => {
    destroyAllSockets();
    await client?.stop();
    await host?.stop();
    await echo?.close();
    await relay?.kill();
  });

  test('the host prints a code and opens no port; the client finds it (code from TUNNEL_CODE); both print the path', { timeout: 45_000 }, async () => {
    host = runCli(['host', '--rendezvous', relay.url, '--expose', `echo=127.0.0.1:${echo.port}`, '--ice-bind', '127.0.0.1', '--workers', '1', '--quiet']);
    const code = (await host.line(/^code: (\S+)$/m, 15_000))[1] ?? '';
    assert.match(code, /^[0-9a-hjkmnp-tv-z]{8}-\d{8}$/);
    assert.doesNotMatch(host.stdout(), /listening on/, 'no signaling port');
    const port = await unusedPort();
    client = runCli(['client', '--rendezvous', relay.url, '--forward', `${port}=echo`, '--ice-bind', '127.0.0.1', '--workers', '1', '--quiet'], { env: { ...process.env, TUNNEL_CODE: code } });
    await client.line(/^path: direct \((host|prflx)\) 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+, rtt (\d+|\?) ms$/m, 20_000);
    await host.line(/^client 1 from relay:tunnel-client-[0-9a-z]+: path: direct \((host|prflx)\) /m, 5000);
    const r = await echoRoundTrip(port, MiB, 60);
    assert.equal(r.receivedHash, r.sentHash);
  });
});

describe('no ICE path between tunnel processes', { timeout: 90_000 }, () => {
  let echo: Service;
  let host: Child;
  let url = '';
  const children: Child[] = [];

  before(async () => {
    echo = await startEchoService();
    host = runCli(['host', '--pin', PIN, '--listen', '127.0.0.1:0', '--expose', `echo=127.0.0.1:${echo.port}`, '--ice-bind', '127.0.0.1', '--workers', '1', '--quiet']);
    url = (await host.line(/listening on (ws:\/\/\S+)/, 15_000))[1] ?? '';
  });

  after(async () => {
    destroyAllSockets();
    for (const c of children) await c.stop();
    await host?.stop();
    await echo?.close();
  });

  test('--no-fallback: the client exits 2 within 30 s with one sentence naming the cause and the remedy; the host logs it', { timeout: 40_000 }, async () => {
    const started = Date.now();
    const child = runCli(['client', '--connect', url, '--pin', PIN, '--forward', `${await unusedPort()}=echo`, '--ice-bind', '127.0.0.2', '--workers', '1', '--no-fallback', '--quiet']);
    children.push(child);
    const { code } = await within(child.exited, 30_000, 'the client giving up');
    const ms = Date.now() - started;
    assert.equal(code, 2, `exit code; stderr: ${child.stderr()}`);
    assertOnePlainLine(child.stderr(), 'ICE failure');
    assert.match(child.stderr(), /^tunnel client: no network path to the host: ICE found no working connection in 15 s .*add a TURN server with --ice-server turn:USER:PASS@HOST:3478, or drop --no-fallback/);
    assert.ok(ms < 30_000, `took ${ms} ms`);
    await within((async () => { while (!/client could not connect: no network path/.test(host.stderr())) await new Promise((r) => setTimeout(r, 100)); })(), 5000, 'the host logging the cause');
    assert.equal(host.proc.exitCode, null, 'the host keeps running');
  });

  test('the fallback (default): both sides print the websocket path; bytes flow', { timeout: 40_000 }, async () => {
    const port = await unusedPort();
    const child = runCli(['client', '--connect', url, '--pin', PIN, '--forward', `${port}=echo`, '--ice-bind', '127.0.0.2', '--workers', '1', '--quiet']);
    children.push(child);
    const line = (await child.line(/^path: .*$/m, 25_000))[0];
    const hostPort = url.split(':').pop() ?? '';
    assert.match(line, new RegExp(`^path: websocket fallback \\(TCP\\) 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${hostPort}, rtt \\d+ ms$`));
    await host.line(/^client \d+ from 127\.0\.0\.1: path: websocket fallback \(TCP\) 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+/m, 5000);
    assert.match(child.stderr(), /ICE found no path to the host in 8 s; asking for the WebSocket fallback/);
    const r = await echoRoundTrip(port, 4 * MiB, 61);
    assert.equal(r.receivedHash, r.sentHash);
  });
});

describe('ICE flags that cannot work are refused at start-up', { timeout: 60_000 }, () => {
  const bad: [string, string[], RegExp][] = [
    ['TURN over TLS', ['host', '--expose', 'a=127.0.0.1:9', '--ice-server', 'turns:u:secret@turn.example.org:5349'], /turns: is TURN over TLS: libjuice .* drops TURN over TCP and TLS/],
    ['relay-only without TURN', ['client', '--connect', 'ws://127.0.0.1:1', '--pin', '1', '--forward', '9000=a', '--ice-relay-only'], /--ice-relay-only needs a TURN server/],
    ['a rendezvous without a code', ['client', '--rendezvous', 'ws://127.0.0.1:1', '--forward', '9000=a'], /--rendezvous needs the host's code/],
  ];
  for (const [what, args, pattern] of bad) {
    test(`${what}: exit 78 (a bad flag), one sentence`, { timeout: 20_000 }, async () => {
      const child = runCli(args, { viaNpx: true, env: { ...NPX_ENV, TUNNEL_CODE: '' } });
      const { code } = await within(child.exited, 15_000, what);
      assert.equal(code, 78, `exit code; stderr: ${child.stderr()}`);
      assertOnePlainLine(child.stderr(), what);
      assert.match(child.stderr(), pattern);
      assert.doesNotMatch(child.stderr(), /secret/, 'no password in the message');
    });
  }
});
