// Security of signaling, end to end with real PeerConnections on 127.0.0.1: a recording relay in the
// middle shows the PIN never crosses the wire (nor a hash of it); the same relay tampering with or
// replaying MAC'd messages gets the session refused; wrong PINs and the lockout; wss:// with a
// self-signed certificate. Hostile signaling input: hostile-signaling.test.ts.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pack, unpack } from 'msgpackr';
import type { HostHandle } from '../../src/host.js';
import { startClient, type ClientHandle, type ClientOptions } from '../../src/client.js';
import { TunnelError } from '../../src/errors.js';
import { PIN, assertOnePlainLine, clientArgs, runToExit } from '../support/cli.js';
import { captureLog, checkFreshClient, releaseAtEnd, startHostSide, startPair, startTestClient, testClientOptions, type HostSide, type Pair } from '../support/pair.js';
import { portIsFree, unusedPort } from '../support/services.js';
import { startMitm, type Frame, type Mitm, type Tamper } from '../support/ws-mitm.js';
import { echoExact } from '../support/traffic.js';
import { eventually, sleep } from '../support/timing.js';

releaseAtEnd();

/** Starts a client that the host must refuse: resolves with the error and the port it would have
 *  forwarded. A client that starts after all is closed, and fails the test. */
async function refused(url: string, overrides: Partial<ClientOptions> = {}): Promise<{ error: TunnelError; port: number }> {
  const options = await testClientOptions(url, ['echo'], overrides);
  const error = await startClient(options).then(async (c) => { await c.close(); return null; }, (err: unknown) => err);
  assert.ok(error instanceof TunnelError, `startClient rejects with a TunnelError, got ${String(error)}`);
  return { error, port: options.forwards[0]?.port ?? 0 };
}

/** A MAC'd frame: its outer message and inner body, or null for anything else. */
function macdOf(data: Buffer): { outer: { t: string; n: number; body: Uint8Array; mac: Uint8Array }; inner: Record<string, unknown> } | null {
  try {
    const outer = unpack(data) as { t: string; n: number; body: Uint8Array; mac: Uint8Array };
    if (outer?.t !== 'mac') return null;
    return { outer, inner: unpack(outer.body) as Record<string, unknown> };
  } catch {
    return null;
  }
}

/**
 * A tamper that alters one byte in the body of every MAC'd `type` message going `dir` and keeps
 * the old MAC: the byte at `find(body)` (none if negative) becomes the other of `swap`, so the text
 * stays well-formed and only the MAC can tell. `altered()` counts the messages it changed.
 */
function alterByte(dir: Frame['dir'], type: string, find: (body: Buffer) => number, swap: [number, number]): { tamper: Tamper; altered: () => number } {
  let altered = 0;
  const tamper: Tamper = (frame) => {
    const macd = frame.dir === dir ? macdOf(frame.data) : null;
    if (!macd || macd.inner.t !== type) return [frame.data];
    const body = Buffer.from(macd.outer.body);
    const i = find(body);
    if (i < 0) return [frame.data]; // (then altered() stays 0 and the test says so)
    body[i] = body[i] === swap[0] ? swap[1] : swap[0];
    altered++;
    return [pack({ ...macd.outer, body })];
  };
  return { tamper, altered: () => altered };
}

// ---------------------------------------------------------------------------------------------

describe('signaling through a man-in-the-middle relay', { timeout: 60_000 }, () => {
  let side: HostSide;
  let host: HostHandle;
  let relay: Mitm;
  const hostLog = captureLog('host');

  before(async () => {
    side = await startHostSide({ host: { log: hostLog.log } });
    host = side.host;
    relay = side.add(await startMitm(host.url), 'relay');
  }, { timeout: 30_000 });
  after(() => side?.close(), { timeout: 30_000 });

  it('the right PIN connects, and the transcript holds neither the PIN nor a hash of it', { timeout: 30_000 }, async () => {
    relay.frames.length = 0;
    relay.tamper = null;
    await checkFreshClient(relay.url, 256 * 1024);

    const frames = relay.frames;
    assert.ok(frames.some((f) => f.dir === 'c2h') && frames.some((f) => f.dir === 'h2c'), 'frames both ways were recorded');
    const all = Buffer.concat(frames.map((f) => f.data));
    // the recorder sees what crosses: the SDP (authenticated, not hidden) is in it
    assert.ok(all.includes('a=fingerprint'), 'the recorded transcript holds the SDP');

    const pinBytes = Buffer.from(PIN, 'utf8');
    const needles: [string, Buffer][] = [
      ['PIN (utf8)', pinBytes],
      ['PIN (utf16le)', Buffer.from(PIN, 'utf16le')],
      ['PIN as a big-endian uint32', (() => { const b = Buffer.alloc(4); b.writeUInt32BE(Number(PIN)); return b; })()],
      ['PIN as a little-endian uint32', (() => { const b = Buffer.alloc(4); b.writeUInt32LE(Number(PIN)); return b; })()],
    ];
    for (const algorithm of ['sha256', 'sha1', 'md5', 'sha512']) {
      const digest = createHash(algorithm).update(pinBytes).digest();
      needles.push([`${algorithm}(PIN) raw`, digest]);
      needles.push([`${algorithm}(PIN) hex`, Buffer.from(digest.toString('hex'))]);
      needles.push([`${algorithm}(PIN) HEX`, Buffer.from(digest.toString('hex').toUpperCase())]);
      needles.push([`${algorithm}(PIN) base64`, Buffer.from(digest.toString('base64'))]);
    }
    // the search itself works: a planted needle is found
    assert.ok(Buffer.concat([all, needles[4]![1]]).includes(needles[4]![1]));
    for (const [what, needle] of needles) {
      assert.equal(all.includes(needle), false, `the transcript contains ${what}`);
      for (const f of frames) assert.equal(f.data.includes(needle), false, `a ${f.dir} frame contains ${what}`);
    }
  });

  it("a tampered fingerprint in the host's SDP answer is rejected with SIGNALING_AUTH", { timeout: 30_000 }, async () => {
    // the first hex digit of the fingerprint, 'A' <-> 'B'
    const fingerprint = alterByte('h2c', 'sdp', (body) => { const at = body.indexOf('a=fingerprint:'); return at < 0 ? -1 : body.indexOf(' ', at) + 1; }, [0x41, 0x42]);
    relay.tamper = fingerprint.tamper;
    const { error: err } = await refused(relay.url);
    assert.ok(fingerprint.altered() >= 1, 'the relay altered an answer'); // one per PeerConnection, until the first is refused
    assert.equal(err.code, 'SIGNALING_AUTH', err.message);
    assert.match(err.message, /authentication/);
    assert.ok(await eventually(() => host.peers() === 0, 3000), 'no peer on the host');
  });

  it('a tampered client candidate makes the host end that session, and it logs why', { timeout: 30_000 }, async (t) => {
    hostLog.lines.length = 0;
    // the first digit of the candidate's port, '1' <-> '2': another port, the same format
    const candidate = alterByte('c2h', 'cand', (body) => { const at = body.indexOf('127.0.0.1 '); return at < 0 ? -1 : at + '127.0.0.1 '.length; }, [0x31, 0x32]);
    relay.tamper = candidate.tamper;
    let connectedClient: ClientHandle | null = null;
    try {
      connectedClient = await startClient(await testClientOptions(relay.url)); // once: the relay counts
      side.add(connectedClient, 'client');
      t.diagnostic('startClient resolved (the DataChannel opened first); the session must end');
    } catch (err) {
      assert.ok(err instanceof TunnelError, `a TunnelError, got ${String(err)}`);
      t.diagnostic(`startClient rejected: ${err.code}: ${err.message}`);
      assert.ok(['SIGNALING_AUTH', 'HOST_UNREACHABLE', 'PEER_FAILED'].includes(err.code), `${err.code}: ${err.message}`);
    }
    // if the DataChannel won the race, it must not survive the host ending the session
    if (connectedClient) assert.ok(await eventually(() => !connectedClient.connected(), 5000), 'the client to lose the session');
    assert.ok(candidate.altered() >= 1, 'the relay altered a candidate');
    assert.ok(await eventually(() => hostLog.lines.some((l) => /signaling error/.test(l) && /code=SIGNALING_AUTH/.test(l)), 3000), 'the host to log the failed authentication');
    assert.ok(await eventually(() => host.peers() === 0, 3000), 'no peer on the host');
  });

  it("a replayed MAC'd frame is rejected, within a session and across sessions", { timeout: 30_000 }, async () => {
    // within a session: the client's offer (MAC'd, n=0) is delivered twice
    hostLog.lines.length = 0;
    let duplicated = 0;
    relay.tamper = (frame) => {
      const macd = frame.dir === 'c2h' ? macdOf(frame.data) : null;
      if (macd?.inner.t === 'sdp' && duplicated === 0) { duplicated++; return [frame.data, frame.data]; }
      return [frame.data];
    };
    const { error: err1 } = await refused(relay.url);
    assert.equal(duplicated, 1);
    assert.equal(err1.code, 'SIGNALING_AUTH', err1.message);
    assert.ok(await eventually(() => hostLog.lines.some((l) => /code=SIGNALING_AUTH/.test(l) && /replayed/.test(l)), 3000), 'the host to log the replay');

    // across sessions: record a good session, then feed its welcome (MAC'd under the old key) to a new one
    relay.tamper = null;
    relay.frames.length = 0;
    const { client: good } = await startTestClient(relay.url);
    await good.close();
    const oldWelcome = relay.frames.find((f) => f.dir === 'h2c' && macdOf(f.data)?.inner.t === 'welcome');
    assert.ok(oldWelcome, 'the welcome of the first session was recorded');
    let replaced = 0;
    relay.tamper = (frame) => {
      if (frame.dir === 'h2c' && macdOf(frame.data)?.inner.t === 'welcome') { replaced++; return [oldWelcome.data]; }
      return [frame.data];
    };
    const { error: err2 } = await refused(relay.url);
    assert.equal(replaced, 1);
    assert.equal(err2.code, 'SIGNALING_AUTH', err2.message);

    // and the other way: the old session's offer in a new session is refused by the host
    relay.tamper = null;
    relay.frames.length = 0;
    const { client: good2 } = await startTestClient(relay.url);
    await good2.close();
    const oldOffer = relay.frames.find((f) => f.dir === 'c2h' && macdOf(f.data)?.inner.t === 'sdp');
    assert.ok(oldOffer);
    hostLog.lines.length = 0;
    relay.tamper = (frame) => (frame.dir === 'c2h' && macdOf(frame.data)?.inner.t === 'sdp' ? [oldOffer.data] : [frame.data]);
    const { error: err3 } = await refused(relay.url);
    assert.equal(err3.code, 'SIGNALING_AUTH', err3.message);
    assert.ok(await eventually(() => hostLog.lines.some((l) => /code=SIGNALING_AUTH/.test(l)), 3000), 'the host to log it');

    // the relay stops tampering: the host still admits a good client
    relay.tamper = null;
    await checkFreshClient(relay.url);
  });
});

describe('PIN guessing', { timeout: 30_000 }, () => {
  const hostLog = captureLog('host');
  let pair: Pair; // its client was admitted before any wrong guess

  before(async () => {
    pair = await startPair({ workers: 2, host: { log: hostLog.log, guard: { maxFailuresPerAddress: 2, lockoutMs: 1000 } } });
  }, { timeout: 30_000 });
  after(() => pair?.close(), { timeout: 30_000 });

  /** A wrong PIN is refused with WRONG_PIN and a plain message, the host logs it, the refused
   *  client leaves its forward port free, and the admitted client is unaffected. */
  async function wrongPin(pin: string, workers: number): Promise<void> {
    hostLog.lines.length = 0;
    const { error, port } = await refused(pair.host.url, { pin, workers });
    assert.equal(error.code, 'WRONG_PIN', error.message);
    assert.match(error.message, /wrong PIN/);
    assert.ok(hostLog.lines.some((l) => /wrong PIN/.test(l)), 'the host logs the wrong PIN');
    assert.ok(await portIsFree(port), 'the refused client left its forward port free');
    await echoExact(pair.port.echo, randomBytes(1024 * 1024));
  }

  it('a wrong PIN is rejected with WRONG_PIN (refused client workers: 0)', { timeout: 15_000 }, async () => {
    await wrongPin('73519469', 0);
  });

  it('after 2 wrong PINs the right PIN is locked out, and after the lockout it connects', { timeout: 15_000 }, async () => {
    await wrongPin('00000000', 2); // the second wrong guess from this address (workers: 2 this time)
    const lockedAt = Date.now();
    const { error: locked } = await refused(pair.host.url);
    assert.equal(locked.code, 'LOCKED_OUT', locked.message);
    assert.match(locked.message, /retry in \d+ s/);
    assert.ok(hostLog.lines.some((l) => /locked out/.test(l)), 'the host logs the lockout');
    // still locked a moment later (a locked-out attempt does not reset anything)
    const { error: still } = await refused(pair.host.url);
    assert.equal(still.code, 'LOCKED_OUT', still.message);

    await sleep(Math.max(0, lockedAt + 1300 - Date.now()));
    await checkFreshClient(pair.host.url);
  });
});

describe('wss:// with a self-signed certificate', { timeout: 60_000 }, () => {
  let dir = '';
  let cert: Buffer;
  let pair: Pair;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tunnel-tls-'));
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
    cert = readFileSync(certFile);
    // the pair's client trusts the certificate
    pair = await startPair({ host: { tls: { cert, key: readFileSync(keyFile) } }, client: { ca: cert } });
  }, { timeout: 30_000 });

  after(async () => {
    await pair?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, { timeout: 30_000 });

  it('a client trusting the certificate connects over wss:// and moves bytes', { timeout: 20_000 }, async () => {
    assert.match(pair.host.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
    await echoExact(pair.port.echo, randomBytes(1024 * 1024));
  });

  it('without the CA the client fails at start-up with a plain error', { timeout: 20_000 }, async () => {
    const { error } = await refused(pair.host.url);
    assert.equal(error.code, 'HOST_UNREACHABLE', error.message);
    assert.doesNotMatch(error.message, /\n/);

    // the CLI: one sentence on stderr, no stack trace, exit code 2
    const r = await runToExit(clientArgs(pair.host.url, await unusedPort(), { pin: PIN }), 15_000);
    assert.equal(r.code, 2, r.stderr);
    assertOnePlainLine(r.stderr, 'a certificate the client does not trust');
    assert.match(r.stderr, /^tunnel client: .*(cert|self[- ]signed)/i, 'it names the certificate problem');
  });
});
