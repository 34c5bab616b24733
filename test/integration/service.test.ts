// The tunnel as a service, as a user runs it: `tunnel host --config` and `tunnel client --config` as
// processes driven by TOML files (the host logging JSON, both serving /metrics), reloaded with SIGHUP
// and `tunnel reload` while transfers run across the reload, scraped with a real Prometheus
// text-format parser, and health-checked until the host goes away.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, type Child } from '../support/cli.js';
import { startEchoService, unusedPort, type Service } from '../support/services.js';
import { within } from '../support/timing.js';
import { connect, destroyAllSockets, echoExact, echoRoundTrip, whenEnded, byteSource } from '../support/traffic.js';
import { pacedEcho, scrape, sample, stderrLine } from '../support/service.js';

const MiB = 1024 * 1024;
const PIN = '31415926';

describe('host and client run from config files, as services', { timeout: 150_000 }, () => {
  let dir = '';
  let echo: Service;
  let host: Child;
  let client: Child;
  let hostMetrics = '';
  let clientMetrics = '';
  const ports = { a: 0, b: 0, c: 0, d: 0 };
  const hostToml = () => path.join(dir, 'host.toml');
  const clientToml = () => path.join(dir, 'client.toml');

  const writeHost = (services: Record<string, number>, extra = '') => writeFileSync(hostToml(), [
    '# host.toml', 'listen = "127.0.0.1:0"', 'pin-file = "pin"', 'ice-bind = "127.0.0.1"', 'workers = 2',
    'window = "1MiB"', 'keepalive = "1s"', 'log-format = "json"', 'log-level = "info"', 'metrics = "127.0.0.1:0"', extra,
    '[services]', ...Object.entries(services).map(([name, port]) => `${name} = "127.0.0.1:${port}"`), '',
  ].join('\n'));
  const writeClient = (url: string, forwards: Record<number, string>) => writeFileSync(clientToml(), [
    '# client.toml', `connect = "${url}"`, 'pin-file = "pin"', 'ice-bind = "127.0.0.1"', 'workers = 2', 'window = "512KiB"',
    'metrics = "0"', '[forwards]', ...Object.entries(forwards).map(([port, service]) => `${port} = "${service}"`), '',
  ].join('\n'));

  /** The value of a JSON record's field on the host's stderr (the first record with that msg). */
  const hostRecord = (msg: string): Record<string, unknown> | undefined => host.stderr().split('\n').filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.msg === msg);

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tunnel-service-'));
    writeFileSync(path.join(dir, 'pin'), `${PIN}\n`);
    echo = await startEchoService();
    writeHost({ echo: echo.port, 'echo-b': echo.port, gone: echo.port });
    host = runCli(['host', '--config', hostToml(), '--pid-file', path.join(dir, 'host.pid')]);
    await stderrLine(host, /"msg":"metrics listening"/, 20_000);
    const url = String(hostRecord('listening')?.url ?? '');
    hostMetrics = String(hostRecord('metrics listening')?.url ?? '');
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    assert.match(hostMetrics, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    for (const k of ['a', 'b', 'c', 'd'] as const) ports[k] = await unusedPort();
    writeClient(url, { [ports.a]: 'echo', [ports.b]: 'echo-b', [ports.c]: 'gone' });
    // a flag overrides the file: the file says 2 workers, the flag 1
    client = runCli(['client', '--config', clientToml(), '--pid-file', path.join(dir, 'client.pid'), '--workers', '1']);
    clientMetrics = (await client.line(/metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/, 30_000))[1] ?? '';
  }, { timeout: 60_000 });

  after(async () => {
    destroyAllSockets();
    await client?.stop();
    await host?.stop();
    await echo?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, { timeout: 30_000 });

  test('every forward carries bytes byte-exact; the flag overrode the file', { timeout: 30_000 }, async () => {
    const results = await Promise.all([ports.a, ports.b, ports.c].map((port, i) => echoRoundTrip(port, 2 * MiB, 700 + i)));
    for (const r of results) assert.equal(r.receivedHash, r.sentHash);
    const { families } = await scrape(clientMetrics);
    assert.equal(families.get('tunnel_shard_streams')?.metrics.length, 1, 'one worker (--workers 1 over the file\'s 2)');
  });

  test('/metrics: a Prometheus text-format parser reads both sides; names, types and labels follow the conventions', { timeout: 20_000 }, async () => {
    for (const [side, url] of [['host', hostMetrics], ['client', clientMetrics]] as const) {
      const { families, contentType, text } = await scrape(url);
      assert.match(contentType, /^text\/plain; version=0\.0\.4/);
      for (const [name, family] of families) {
        assert.match(name, /^[a-z_][a-z0-9_]*$/, name);
        if (family.type === 'COUNTER') assert.match(name, /_total$/, `${name}: a counter ends in _total`);
        else assert.doesNotMatch(name, /_total$/, `${name}: only counters end in _total`);
        assert.doesNotMatch(name, /_(ms|milliseconds|kb|mb|kib|mib)(_|$)/, `${name}: base units`);
        for (const m of family.metrics) {
          for (const label of Object.keys(m.labels ?? {})) assert.ok(!/id$|socket|stream|peer|address/.test(label), `${name}: no high-cardinality label (${label})`);
        }
      }
      const want: Record<string, string> = {
        tunnel_build_info: 'GAUGE', tunnel_peers: 'GAUGE', tunnel_peer_rtt_seconds: 'GAUGE', tunnel_streams_open: 'GAUGE',
        tunnel_streams_opened_total: 'COUNTER', tunnel_streams_closed_total: 'COUNTER', tunnel_streams_reset_total: 'COUNTER',
        tunnel_stream_received_bytes_total: 'COUNTER', tunnel_stream_sent_bytes_total: 'COUNTER', tunnel_dials_refused_total: 'COUNTER',
        tunnel_datachannel_buffered_bytes: 'GAUGE', tunnel_dispatcher_queued_bytes: 'GAUGE', tunnel_shard_streams: 'GAUGE',
        tunnel_shard_event_loop_lag_p99_seconds: 'GAUGE', tunnel_worker_restarts_total: 'COUNTER', tunnel_config_reloads_total: 'COUNTER',
        process_resident_memory_bytes: 'GAUGE', nodejs_heap_size_used_bytes: 'GAUGE',
        ...(side === 'host' ? { tunnel_pin_failures_total: 'COUNTER', tunnel_pin_lockouts_total: 'COUNTER' } : {}),
      };
      for (const [name, type] of Object.entries(want)) assert.equal(families.get(name)?.type, type, `${side}: ${name}`);
      assert.equal(sample(families, 'tunnel_build_info', { side }), 1);
      assert.equal(sample(families, 'tunnel_peers', { path: 'direct' }), 1, `${side}: one peer, on a direct path`);
      assert.ok(sample(families, 'tunnel_peer_rtt_seconds', { path: 'direct' }) >= 0, `${side}: an RTT`);
      assert.ok(sample(families, 'tunnel_streams_opened_total', { service: 'echo' }) >= 1);
      assert.ok(sample(families, 'tunnel_stream_sent_bytes_total', { service: 'echo-b' }) >= 2 * MiB, `${side}: bytes sent for echo-b`);
      assert.ok(sample(families, 'tunnel_stream_received_bytes_total', { service: 'gone' }) >= 2 * MiB, `${side}: bytes received for gone`);
      assert.ok(sample(families, 'process_resident_memory_bytes') > 0);
      const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      if (promtool.error === undefined) assert.equal(promtool.status, 0, `promtool check metrics (${side}): ${promtool.stdout}${promtool.stderr}`);
    }
  });

  test('/healthz: 200 with a one-line JSON reason on both sides', { timeout: 10_000 }, async () => {
    for (const url of [hostMetrics, clientMetrics]) {
      const res = await fetch(url.replace(/\/metrics$/, '/healthz'));
      assert.equal(res.status, 200);
      const body = await res.text();
      assert.equal(body.trimEnd().split('\n').length, 1);
      assert.equal((JSON.parse(body) as { status: string }).status, 'ok');
    }
  });

  test('reload while transfers run: added start at once, removed stop taking new connections while theirs finish, unchanged never notice', { timeout: 40_000 }, async () => {
    // three transfers of 2 MiB, each spread over ~3 s: on A (nothing changes), on B (its forward goes),
    // on C (its service goes from the host)
    const CHUNKS = 64;
    const CHUNK = 32 * 1024;
    const transfers = [ports.a, ports.b, ports.c].map((port, i) => pacedEcho(port, 900 + i, CHUNKS, CHUNK, 45));
    await within((async () => { while (transfers.some((t) => t.received() === 0)) await new Promise((r) => setTimeout(r, 20)); })(), 5000, 'transfers under way');

    const hostMark = host.stderr().length;
    writeHost({ echo: echo.port, 'echo-b': echo.port, new: echo.port });
    host.proc.kill('SIGHUP');
    await stderrLine(host, /"msg":"configuration reloaded"/, 5000, hostMark);
    assert.match(host.stderr().slice(hostMark), /"msg":"service removed: no new streams; open ones go on","service":"gone"/);

    const clientMark = client.stderr().length;
    writeClient(String(hostRecord('listening')?.url), { [ports.a]: 'echo', [ports.c]: 'gone', [ports.d]: 'new' });
    const reload = runCli(['reload', '--pid-file', path.join(dir, 'client.pid')]);
    assert.equal((await within(reload.exited, 10_000, 'tunnel reload')).code, 0, reload.stderr());
    await stderrLine(client, /configuration reloaded/, 5000, clientMark);
    const midway = transfers.map((t) => t.received());
    assert.ok(midway.every((n) => n < CHUNKS * CHUNK), `the reloads happened while every transfer was running (bytes back so far: ${midway.join(', ')})`);

    // the new forward to the new service works at once; the removed forward takes no connection
    await echoExact(ports.d, byteSource(77)(256 * 1024));
    const refused = await whenEnded(connect(ports.b));
    assert.equal(refused.code, 'ECONNREFUSED');
    // a new connection to the service the host removed is refused by the host (a reset, no bytes)
    const toGone = connect(ports.c);
    toGone.on('connect', () => toGone.write('hello'));
    const ended = await within(whenEnded(toGone), 5000, 'a connection to the removed service');
    assert.equal(ended.received, 0);

    // every transfer that was running finishes byte-exact
    const results = await within(Promise.all(transfers.map((t) => t.done)), 20_000, 'the transfers across the reload');
    results.forEach((r, i) => {
      assert.equal(r.received, CHUNKS * CHUNK, `transfer ${i}: every byte back`);
      assert.equal(r.receivedHash, r.sentHash, `transfer ${i}: SHA-256`);
    });
    const h = (await scrape(hostMetrics)).families;
    assert.equal(sample(h, 'tunnel_config_reloads_total', { result: 'success' }), 1);
    assert.ok(sample(h, 'tunnel_dials_refused_total', { service: '(none)', reason: 'UNKNOWN_SERVICE' }) >= 1);
    const c = (await scrape(clientMetrics)).families;
    assert.ok(sample(c, 'tunnel_dials_refused_total', { service: 'gone', reason: 'UNKNOWN_SERVICE' }) >= 1, 'the client counts the refusal for its forward\'s service');
  });

  test('a reload with a bad file changes nothing and logs why', { timeout: 20_000 }, async () => {
    const mark = host.stderr().length;
    writeFileSync(hostToml(), '# host.toml\nlisten = "127.0.0.1:0"\n[services]\necho = "127.0.0.1"\n');
    host.proc.kill('SIGHUP');
    await stderrLine(host, /reload failed, nothing changed: .*host\.toml, line 4: key 'services\.echo'/, 5000, mark);
    await echoExact(ports.d, byteSource(78)(64 * 1024)); // 'new' is still exposed
    const h = (await scrape(hostMetrics)).families;
    assert.equal(sample(h, 'tunnel_config_reloads_total', { result: 'failure' }), 1);
    assert.equal(sample(h, 'tunnel_config_last_reload_successful'), 0);
  });

  test('--log-format json: every line the host wrote is one JSON object with time, level, name, msg', { timeout: 5_000 }, () => {
    const lines = host.stderr().split('\n').filter(Boolean);
    assert.ok(lines.length > 5);
    for (const line of lines) {
      const record = JSON.parse(line) as Record<string, unknown>;
      assert.deepEqual(Object.keys(record).slice(0, 4), ['time', 'level', 'name', 'msg'], line);
    }
    assert.equal(host.stdout(), '', 'nothing besides the JSON records');
  });

  test('/healthz on the client: 503 with a JSON reason once the host is gone', { timeout: 20_000 }, async () => {
    host.proc.kill('SIGKILL');
    await host.exited;
    const health = clientMetrics.replace(/\/metrics$/, '/healthz');
    let res = await fetch(health);
    for (let i = 0; i < 100 && res.status === 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      res = await fetch(health);
    }
    assert.equal(res.status, 503);
    const body = JSON.parse(await res.text()) as { status: string; reason: string };
    assert.equal(body.status, 'unavailable');
    assert.match(body.reason, /not connected/);
  });
});
