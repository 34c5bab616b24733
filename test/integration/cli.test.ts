// The CLI as a user runs it: `tunnel host` and `tunnel client` as real processes, talking over a real
// PeerConnection on 127.0.0.1, with an echo service in this process. Help, bad flags and a busy port
// run through `npx node dist/src/cli.js ...` exactly as typed; the long-running processes are started
// with the same Node binary directly, because the tests signal them and npx forwards no signal
// (SIGTERM to npx leaves its child running; SIGKILL would kill npx alone).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  connect, destroyAllSockets, echoRoundTrip, runCli, startEchoService, unusedPort, whenEnded, within,
  type Child, type Service,
} from '../support/helpers.js';

const MiB = 1024 * 1024;
const PIN = '97531864';
/** npm may print an update notice on stderr; a user's terminal would too, but it is not ours. */
const NPX_ENV = { ...process.env, npm_config_update_notifier: 'false' };

/** The CLI's contract for a start-up failure: non-zero exit, one plain line on stderr, no stack. */
function assertOnePlainLine(stderr: string, what: string): void {
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${what}: one line on stderr, got ${JSON.stringify(stderr)}`);
  assert.match(lines[0] ?? '', /^tunnel( \w+)?: \S/, `${what}: a plain sentence`);
  assert.doesNotMatch(stderr, /\n\s+at |Error:|node:internal/, `${what}: no stack trace`);
}

async function runToExit(args: string[], ms: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = runCli(args, { viaNpx: true, env: NPX_ENV });
  try {
    const { code } = await within(child.exited, ms, `tunnel ${args.join(' ')}`);
    return { code, stdout: child.stdout(), stderr: child.stderr() };
  } finally {
    await child.stop();
  }
}

describe('tunnel --help and bad flags (npx node dist/src/cli.js ...)', { timeout: 60_000 }, () => {
  for (const command of ['host', 'client']) {
    test(`tunnel ${command} --help exits 0 with its usage`, { timeout: 20_000 }, async () => {
      const r = await runToExit([command, '--help'], 15_000);
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
      const r = await runToExit(args, 15_000);
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
    host = runCli(['host', '--pin', PIN, '--listen', '127.0.0.1:0', '--expose', `echo=127.0.0.1:${echo.port}`, '--ice-bind', '127.0.0.1', '--workers', '2']);
    url = (await host.line(/listening on (ws:\/\/\S+)/, 15_000))[1] ?? '';
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    await host.line(/PIN: 97531864\n/, 5000);
    forwardPort = await unusedPort();
    client = runCli(['client', '--connect', url, '--pin', PIN, '--forward', `127.0.0.1:${forwardPort}=echo`, '--ice-bind', '127.0.0.1', '--workers', '2']);
    await client.line(/forwarding 127\.0\.0\.1:\d+ -> echo/, 20_000);
  }, { timeout: 30_000 });

  after(async () => {
    destroyAllSockets();
    await client?.stop();
    await host?.stop();
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
      const r = await runToExit(['client', '--connect', url, '--pin', PIN, '--forward', `127.0.0.1:${busy}=echo`, '--ice-bind', '127.0.0.1'], 15_000);
      assert.notEqual(r.code, 0, 'exit code');
      assert.notEqual(r.code, null, 'exited by itself');
      assertOnePlainLine(r.stderr, 'port in use');
      assert.match(r.stderr, /in use/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  test('a forward port held by another tunnel client (which uses reusePort) is also "in use"', { timeout: 20_000 }, async () => {
    const r = await runToExit(['client', '--connect', url, '--pin', PIN, '--forward', `127.0.0.1:${forwardPort}=echo`, '--ice-bind', '127.0.0.1'], 15_000);
    assert.notEqual(r.code, 0, 'exit code');
    assertOnePlainLine(r.stderr, 'port in use by a tunnel');
    assert.match(r.stderr, /in use/);
    // and the running client still carries its streams
    const after = await echoRoundTrip(forwardPort, 1 * MiB, 400);
    assert.equal(after.receivedHash, after.sentHash);
  });

  test('SIGTERM: client and host both exit 0 within 3 s, with a connection open', { timeout: 20_000 }, async () => {
    const open = connect(forwardPort);
    await new Promise<void>((resolve, reject) => { open.once('connect', resolve); open.once('error', reject); });
    const ended = whenEnded(open);
    open.on('error', () => { /* a reset is the expected end of this one */ });
    const started = Date.now();
    client.proc.kill('SIGTERM');
    host.proc.kill('SIGTERM');
    const [c, h] = await within(Promise.all([client.exited, host.exited]), 8000, 'both processes exiting on SIGTERM');
    const ms = Date.now() - started;
    assert.deepEqual(c, { code: 0, signal: null }, `client exit; stderr: ${client.stderr()}`);
    assert.deepEqual(h, { code: 0, signal: null }, `host exit; stderr: ${host.stderr()}`);
    assert.ok(ms < 3000, `both exited after ${ms} ms, want < 3000`);
    console.log(`# SIGTERM: both processes exited 0 after ${ms} ms`);
    const e = await within(ended, 2000, 'the open connection after the client exited');
    assert.ok(e.how === 'error' || e.how === 'end' || e.how === 'close');
  });
});

after(() => {
  destroyAllSockets();
}, { timeout: 30_000 });
