// Rendezvous: host and clients both connect outward to the real PeerJS server (a child process on
// 127.0.0.1) and nobody listens for signaling. Several clients at once by the host's code, the
// relay's own failures as one-sentence errors (unreachable, id taken, unknown code), the relay
// restarting under a live session, and a relay that lies: the PAKE still decides.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHost, type HostHandle, type HostOptions } from '../../src/host.js';
import { startClient, type ClientHandle, type ClientOptions } from '../../src/client.js';
import { TunnelError, type ErrorCode } from '../../src/errors.js';
import { createLogger } from '../../src/shared/log.js';
import { releaseDataChannelLibrary } from '../../src/webrtc/peer.js';
import { startEchoService, unusedPort, type Service } from '../support/services.js';
import { eventually } from '../support/timing.js';
import { destroyAllSockets, echoRoundTrip } from '../support/traffic.js';
import { startPeerServer, type PeerServer } from '../support/peer-server.js';
import { startHostileRelay } from '../support/hostile-relay.js';

const MiB = 1024 * 1024;

after(() => releaseDataChannelLibrary()); // once, after every suite: or the process never exits

async function refused(p: Promise<unknown>, code: ErrorCode, onResolved?: (v: unknown) => Promise<void>): Promise<TunnelError> {
  try {
    const v = await p;
    await onResolved?.(v);
  } catch (err) {
    assert.ok(err instanceof TunnelError, `not a TunnelError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.doesNotMatch(err.message, /\n/, 'one sentence');
    return err;
  }
  return assert.fail(`expected ${code}`);
}

describe('rendezvous through the PeerJS server', { timeout: 150_000 }, () => {
  let relay: PeerServer;
  let echo: Service;
  let host: HostHandle;
  const hostLog: string[] = [];
  const clients: ClientHandle[] = [];
  const hosts: HostHandle[] = [];

  const hostOptions = (more: Partial<HostOptions> = {}): HostOptions => ({
    rendezvous: relay.url, workers: 1, iceBind: '127.0.0.1', logLevel: 'error',
    services: { echo: { host: '127.0.0.1', port: echo.port } }, ...more,
  });
  const clientOptions = async (code: string, more: Partial<ClientOptions> = {}): Promise<ClientOptions> => ({
    rendezvous: { url: relay.url, code }, workers: 1, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false,
    forwards: [{ host: '127.0.0.1', port: await unusedPort(), service: 'echo' }], ...more,
  });
  const start = async (options: ClientOptions) => {
    const c = await startClient(options);
    clients.push(c);
    return c;
  };

  before(async () => {
    relay = await startPeerServer();
    echo = await startEchoService();
    host = await startHost(hostOptions({ log: createLogger('host', 'info', (l) => hostLog.push(l)) }));
  });

  after(async () => {
    destroyAllSockets();
    for (const c of clients) await c.close();
    for (const h of [host, ...hosts]) await h?.close();
    await echo?.close();
    await relay?.kill();
  });

  test('the host registers without listening and prints a readable code', () => {
    assert.equal(host.url, '', 'no signaling port');
    assert.match(host.code ?? '', /^[0-9a-hjkmnp-tv-z]{8}-\d{8}$/);
    assert.equal(host.code?.split('-')[1], host.pin);
  });

  test('two clients at once find the host by its code; 16 MiB each, byte-exact; paths reported', { timeout: 60_000 }, async () => {
    const a = await clientOptions(host.code ?? '');
    const b = await clientOptions((host.code ?? '').toUpperCase()); // read aloud, typed in capitals
    const [ca, cb] = await Promise.all([start(a), start(b)]);
    for (const c of [ca, cb]) {
      assert.match(c.path()?.kind ?? '', /^(host|prflx)$/);
      assert.equal(c.path()?.relayed, false);
    }
    assert.ok(await eventually(() => host.paths().length === 2, 5000), 'the host reports both');
    const results = await Promise.all([a, b].map((o, i) => echoRoundTrip(o.forwards[0]?.port ?? 0, 16 * MiB, 20 + i)));
    for (const r of results) {
      assert.equal(r.received, 16 * MiB);
      assert.equal(r.receivedHash, r.sentHash);
    }
    await Promise.all([ca.close(), cb.close()]);
    clients.length = 0;
    assert.ok(await eventually(() => host.peers() === 0, 5000), 'the host saw both leave');
  });

  test('the relay restarts under a live session: the session goes on, the host registers again, new clients find it', { timeout: 60_000 }, async () => {
    const options = await clientOptions(host.code ?? '');
    const live = await start(options);
    await relay.kill();
    await relay.restart();
    assert.ok(live.connected(), 'the session does not need the relay');
    const r = await echoRoundTrip(options.forwards[0]?.port ?? 0, 4 * MiB, 30);
    assert.equal(r.receivedHash, r.sentHash);
    assert.ok(await eventually(() => hostLog.some((l) => /registered again at the rendezvous relay/.test(l)), 20_000), `the host registered again; log: ${hostLog.join('')}`);
    const after = await clientOptions(host.code ?? '');
    await start(after);
    const r2 = await echoRoundTrip(after.forwards[0]?.port ?? 0, 4 * MiB, 31);
    assert.equal(r2.receivedHash, r2.sentHash);
  });

  test('an unknown code is UNKNOWN_CODE within a few seconds', { timeout: 30_000 }, async () => {
    const started = Date.now();
    const err = await refused(startClient(await clientOptions('zzzzzzzz-12345678')), 'UNKNOWN_CODE', async (c) => { clients.push(c as ClientHandle); });
    assert.match(err.message, /no host is registered under the code zzzzzzzz/);
    assert.doesNotMatch(err.message, /12345678/, 'the PIN is never shown');
    assert.ok(Date.now() - started < 12_000, `took ${Date.now() - started} ms`);
  });

  test('an unreachable relay is RELAY_UNREACHABLE, for host and client', { timeout: 30_000 }, async () => {
    const nowhere = `ws://127.0.0.1:${await unusedPort()}`;
    const e1 = await refused(startHost(hostOptions({ rendezvous: nowhere })), 'RELAY_UNREACHABLE', async (h) => { hosts.push(h as HostHandle); });
    assert.match(e1.message, /cannot reach the rendezvous relay at ws:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
    await refused(startClient({ ...(await clientOptions('abcdefgh-1')), rendezvous: { url: nowhere, code: 'abcdefgh-1' } }), 'RELAY_UNREACHABLE', async (c) => { clients.push(c as ClientHandle); });
    const wrongKey = `${relay.url}?key=nope`;
    const e3 = await refused(startHost(hostOptions({ rendezvous: wrongKey })), 'RELAY_UNREACHABLE', async (h) => { hosts.push(h as HostHandle); });
    assert.match(e3.message, /refused us: Invalid key provided \(check \?key= in the relay URL\)/);
  });

  test('an id already taken is RELAY_ID_TAKEN', { timeout: 30_000 }, async () => {
    const first = await startHost(hostOptions({ rendezvousId: 'fixedid1' }));
    hosts.push(first);
    assert.match(first.code ?? '', /^f1xed1d1-/, 'the id is spelled the one way (i and l read as 1)');
    await refused(startHost(hostOptions({ rendezvousId: 'f1xed1d1' })), 'RELAY_ID_TAKEN', async (h) => { hosts.push(h as HostHandle); });
  });

  test('the guard counts guesses through the relay: fresh relay ids do not escape the global budget', { timeout: 60_000 }, async () => {
    const guarded = await startHost(hostOptions({ pin: '11112222', guard: { maxFailuresGlobal: 3 } }));
    hosts.push(guarded);
    const id = (guarded.code ?? '').split('-')[0] ?? '';
    for (let i = 0; i < 3; i++) await refused(startClient(await clientOptions(`${id}-99990000`)), 'WRONG_PIN', async (c) => { clients.push(c as ClientHandle); });
    // each guess came from a new relay id, so only the global budget can hold: now even the PIN is locked out
    await refused(startClient(await clientOptions(`${id}-11112222`)), 'LOCKED_OUT', async (c) => { clients.push(c as ClientHandle); });
  });
});

describe('a relay that tampers', { timeout: 60_000 }, () => {
  test('an altered message through the relay is refused (the PAKE MACs), and the PIN never crosses it', async () => {
    const relay = await startHostileRelay();
    const echo = await startEchoService();
    const seen: string[] = [];
    let flipped = 0;
    relay.tamper = (msg) => {
      seen.push(JSON.stringify(msg));
      const d = msg.payload?.d;
      if (msg.type !== 'ANSWER' || !d || flipped > 0 || seen.filter((s) => s.includes('"ANSWER"')).length < 2) return [msg];
      flipped++; // the host's second message: its MAC'd welcome
      const bytes = Buffer.from(d, 'base64');
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x01;
      return [{ ...msg, payload: { d: bytes.toString('base64') } }];
    };
    const host = await startHost({ rendezvous: relay.url, pin: '24682468', workers: 1, iceBind: '127.0.0.1', logLevel: 'error', services: { echo: { host: '127.0.0.1', port: echo.port } } });
    try {
      const options: ClientOptions = {
        rendezvous: { url: relay.url, code: host.code ?? '' }, workers: 1, iceBind: '127.0.0.1', logLevel: 'error', reconnect: false,
        forwards: [{ host: '127.0.0.1', port: await unusedPort(), service: 'echo' }],
      };
      await refused(startClient(options), 'SIGNALING_AUTH', async (c) => { await (c as ClientHandle).close(); });
      assert.equal(flipped, 1);
      relay.tamper = (msg) => { seen.push(JSON.stringify(msg)); return [msg]; };
      const good = await startClient(options);
      const r = await echoRoundTrip(options.forwards[0]?.port ?? 0, MiB, 40);
      assert.equal(r.receivedHash, r.sentHash);
      await good.close();
      const all = seen.join('\n') + seen.map((s) => Buffer.from((JSON.parse(s) as { payload?: { d?: string } }).payload?.d ?? '', 'base64').toString('latin1')).join('\n');
      assert.equal(all.includes('24682468'), false, 'the PIN crossed the relay');
    } finally {
      destroyAllSockets();
      await host.close();
      await echo.close();
      await relay.close();
    }
  });
});
