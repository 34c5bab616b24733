// The config file: what a good one says, the one sentence a bad one gets (file, line, key), flags
// over the file, --print-config's masking, and the examples shipped in src/cli/service/ and README.md.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig, lineOf } from '../../src/cli/config-file.js';
import { merge, settingsFor, type Said } from '../../src/cli/settings.js';
import { saidByFlags } from '../../src/cli/flags.js';
import { renderConfig, MASK } from '../../src/cli/print-config.js';
import { TunnelError } from '../../src/errors.js';
import { DEFAULT_BULK_LANES } from '../../src/webrtc/channels.js';
import { ROOT } from '../support/cli.js';

const T = { timeout: 5_000 };

const HOST = `# a host
listen = "0.0.0.0:8765"
pin = "24681357"
workers = 0
lanes = 8
ice-servers = ["stun:stun.example.org:3478", "turn:u:p@turn.example.org"]
window = "4MiB"
keepalive = "500ms"
log-level = "debug"
log-format = "json"
metrics = "9464"
pid-file = "run/host.pid"

[services]
web = "127.0.0.1:8080"
"db.main" = "[::1]:5432"
`;

/** The error `fn` throws: a BAD_CONFIG TunnelError. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof TunnelError, `a TunnelError, got ${String(err)}`);
    assert.equal(err.code, 'BAD_CONFIG');
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return err.message;
  }
  assert.fail('no error');
}

test('a host file: every key read, sizes and durations converted, paths relative to the file', T, () => {
  const said = parseConfig(HOST, '/etc/tunnel/host.toml', 'host');
  assert.deepEqual(said, {
    listen: '0.0.0.0:8765', pin: '24681357', workers: 0, lanes: 8,
    iceServers: ['stun:stun.example.org:3478', 'turn:u:p@turn.example.org'],
    window: 4 * 1024 * 1024, keepalive: 500, logLevel: 'debug', logFormat: 'json',
    metrics: { host: '127.0.0.1', port: 9464 }, pidFile: '/etc/tunnel/run/host.pid',
    services: { web: { host: '127.0.0.1', port: 8080 }, 'db.main': { host: '::1', port: 5432 } },
  });
});

test('a client file: forwards keyed by [ADDR:]PORT', T, () => {
  const said = parseConfig('connect = "wss://h.example.org:8765"\npin-file = "pin"\nca = "/ca.pem"\n[forwards]\n9000 = "web"\n"127.0.0.2:15432" = "db"\n', '/x/client.toml', 'client');
  assert.deepEqual(said, {
    connect: 'wss://h.example.org:8765', pinFile: '/x/pin', ca: '/ca.pem',
    forwards: [{ host: '127.0.0.1', port: 9000, service: 'web' }, { host: '127.0.0.2', port: 15432, service: 'db' }],
  });
});

test('a bad file: one sentence with the file, the line and the key', T, () => {
  const cases: [string, RegExp][] = [
    ['listen = "127.0.0.1:1"\n\nwindw = 4\n', /^host\.toml, line 3: unknown key 'windw'; a host config knows .*window/],
    ['connect = "ws://x:1"\n', /^host\.toml, line 1: unknown key 'connect' \(it is a client setting\)/],
    ['workers = "two"\n', /^host\.toml, line 1: key 'workers' must be an integer, got string "two"/],
    ['lanes = 9\n', /^host\.toml, line 1: key 'lanes': must be from 1 to 8, got 9/],
    ['# c\nwindow = "4 MB/s"\n', /^host\.toml, line 2: key 'window': '4 MB\/s' is not a size/],
    ['keepalive = true\n', /^host\.toml, line 1: key 'keepalive' must be milliseconds or a duration/],
    ['log-level = "loud"\n', /^host\.toml, line 1: key 'log-level': must be error, warn, info or debug/],
    ['metrics = "[::1]"\n', /^host\.toml, line 1: key 'metrics': /],
    ['ice-servers = "stun:x"\n', /^host\.toml, line 1: key 'ice-servers' must be an array of strings/],
    ['[services]\nweb = "127.0.0.1:80"\ndb = "nowhere"\n', /^host\.toml, line 3: key 'services\.db': expected HOST:PORT, got 'nowhere'/],
    ['[services]\n"b a d" = "127.0.0.1:80"\n', /^host\.toml, line 2: key 'services\.b a d': service name 'b a d' must be/],
    ['[services]\nweb = { host = "x" }\n', /^host\.toml, line 2: key 'services\.web' must be a string, got a table/],
    ['services = 1\n', /^host\.toml, line 1: key 'services' must be a table/],
    ['listen = "x\n', /^host\.toml, line 1: not valid TOML: /],
    ['a = 1\na = 2\n', /^host\.toml, line 2: not valid TOML: /],
  ];
  for (const [text, want] of cases) assert.match(configError(() => parseConfig(text, 'host.toml', 'host')), want, text);
  assert.match(configError(() => parseConfig('[forwards]\n0 = "web"\n', 'c.toml', 'client')), /^c\.toml, line 2: key 'forwards\."0"': the port must be explicit/);
  assert.match(configError(() => parseConfig('connect = "http://x"\n', 'c.toml', 'client')), /^c\.toml, line 1: key 'connect': must be a ws:\/\/ or wss:\/\/ URL/);
});

test('lineOf finds keys in tables, dotted keys and quoted keys', T, () => {
  const text = 'a = 1\n[t]\nx = 1\n"q k" = 2\n[u.v]\nw.z = 3\n';
  assert.equal(lineOf(text, ['a']), 1);
  assert.equal(lineOf(text, ['t']), 2);
  assert.equal(lineOf(text, ['t', 'q k']), 4);
  assert.equal(lineOf(text, ['u', 'v', 'w', 'z']), 6);
  assert.equal(lineOf(text, ['t', 'missing']), 2, 'the table, when the key itself is not there');
  assert.equal(lineOf(text, ['nowhere']), undefined);
});

test('flags override the file: scalars replace, services merge by name, forwards by listen address', T, () => {
  const file = parseConfig(HOST, '/etc/host.toml', 'host');
  const flags = saidByFlags({ workers: '2', window: '512KiB', lanes: '2', expose: ['web=127.0.0.1:9090', 'api=127.0.0.1:7000'] });
  const s = merge('host', flags, file);
  assert.equal(s.workers, 2);
  assert.equal(s.lanes, 2);
  assert.equal(merge('client', {}, { connect: 'ws://h:1', pin: '1', forwards: [{ host: '127.0.0.1', port: 9000, service: 'web' }] }).lanes, DEFAULT_BULK_LANES);
  for (const bad of ['0', '9', '2.5']) assert.throws(() => saidByFlags({ lanes: bad }), { code: 'BAD_FLAG', message: `--lanes must be an integer from 1 to 8, got '${bad}'` });
  assert.equal(s.window, 512 * 1024);
  assert.equal(s.keepalive, 500, 'from the file');
  assert.deepEqual(s.services, { web: { host: '127.0.0.1', port: 9090 }, 'db.main': { host: '::1', port: 5432 }, api: { host: '127.0.0.1', port: 7000 } });
  const client = merge('client', saidByFlags({ forward: ['9000=other'], pin: '1' }), parseConfig('connect = "ws://h:1"\n[forwards]\n9000 = "web"\n9001 = "db"\n', 'c', 'client'));
  assert.deepEqual(client.forwards.map((f) => `${f.port}=${f.service}`).sort(), ['9000=other', '9001=db']);
  assert.equal(client.pin?.from, 'flag');
});

test('the PIN: flag, then TUNNEL_PIN, then the file; both pin and pin-file in one source is refused', T, () => {
  const file: Said = { pin: 'from-file', services: { a: { host: 'h', port: 1 } } };
  const saved = process.env.TUNNEL_PIN;
  try {
    delete process.env.TUNNEL_PIN;
    assert.equal(merge('host', {}, file).pin?.value, 'from-file');
    process.env.TUNNEL_PIN = 'from-env';
    assert.equal(merge('host', {}, file).pin?.value, 'from-env');
    assert.equal(merge('host', { pin: 'from-flag' }, file).pin?.value, 'from-flag');
    assert.throws(() => merge('host', {}, { ...file, pinFile: '/x' }), /keep one/);
  } finally {
    if (saved === undefined) delete process.env.TUNNEL_PIN; else process.env.TUNNEL_PIN = saved;
  }
});

test('--print-config: masks an inline PIN, names a PIN file, and reads back as the same settings', T, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tunnel-config-'));
  try {
    const saved = process.env.TUNNEL_PIN;
    delete process.env.TUNNEL_PIN;
    const file = path.join(dir, 'host.toml');
    writeFileSync(file, HOST);
    const s = settingsFor('host', {}, file);
    const printed = renderConfig(s);
    assert.ok(!printed.includes('24681357'), 'the PIN is not printed');
    assert.match(printed, new RegExp(`^pin = "${MASK.replace(/\*/g, '\\*')}"$`, 'm'));
    // what it prints is a valid config file that says the same (the masked PIN aside)
    const again = merge('host', {}, parseConfig(printed, 'printed.toml', 'host'));
    assert.deepEqual({ ...again, pin: undefined, config: undefined }, { ...s, pin: undefined, config: undefined });
    writeFileSync(path.join(dir, 'pin'), '13579246\n');
    const withFile = settingsFor('client', { connect: 'ws://h:1', pinFile: path.join(dir, 'pin'), forwards: [{ host: '127.0.0.1', port: 9, service: 'a' }] }, undefined);
    assert.equal(withFile.pin?.value, '13579246');
    const text = renderConfig(withFile);
    assert.ok(text.includes(`pin-file = "${path.join(dir, 'pin')}"`) && !text.includes('13579246'));
    if (saved !== undefined) process.env.TUNNEL_PIN = saved;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the examples in src/cli/service/ and README.md are valid config files', T, () => {
  for (const side of ['host', 'client'] as const) {
    const said = parseConfig(readFileSync(path.join(ROOT, 'src', 'cli', 'service', `${side}.toml`), 'utf8'), `src/cli/service/${side}.toml`, side);
    assert.ok(side === 'host' ? Object.keys(said.services ?? {}).length > 0 : (said.forwards ?? []).length > 0, `src/cli/service/${side}.toml says what to carry`);
  }
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  assert.ok(blocks.length >= 2, 'README has the host and client examples');
  for (const block of blocks) {
    const side = /^# (host|client)\.toml/.exec(block)?.[1];
    assert.ok(side === 'host' || side === 'client', `a README toml block names its side in its first line: ${block.slice(0, 40)}`);
    parseConfig(block, `README.md (${side}.toml)`, side);
  }
});
