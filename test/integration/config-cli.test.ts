// The everyday commands as a user types them, through npx: `npx tunnel --version` and the config file's
// start-up checks print nothing but their own output (npm's engine warning used to come with every
// call), a bad file is one sentence with its line and key, and --print-config masks the PIN.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CLI, ROOT } from '../support/cli.js';
import { EXIT_CONFIG } from '../../src/errors.js';

/** `npx tunnel ARGS` in the project, as typed; npm's update notice is not ours, so it is off. */
const npxTunnel = (args: string[]) => run('npx', ['tunnel', ...args]);
/** The same command on this Node directly (npx costs seconds a call on a busy machine). */
const nodeTunnel = (args: string[]) => run(process.execPath, [CLI, ...args]);

function run(command: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${command} ${args.join(' ')}: no exit in 20 s`)); }, 20_000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

describe('npx tunnel: the everyday commands, clean', { timeout: 90_000 }, () => {
  let dir = '';
  before(() => { dir = mkdtempSync(path.join(tmpdir(), 'tunnel-cli-config-')); });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  test('npx tunnel --version: the version, and not a word from npm', { timeout: 25_000 }, async () => {
    const r = await npxTunnel(['--version']);
    const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^tunnel ${version.replace(/\./g, '\\.')} \\(`));
    assert.equal(r.stderr, '', 'nothing on stderr (no EBADENGINE warning)');
  });

  test('a bad config file: exit 78 and one sentence naming the file, the line and the key', { timeout: 25_000 }, async () => {
    const file = path.join(dir, 'host.toml');
    writeFileSync(file, 'listen = "127.0.0.1:0"\npin = "1"\n\n[services]\nweb = "127.0.0.1:8080"\nwbe = 8081\n');
    const r = await npxTunnel(['host', '--config', file]);
    assert.equal(r.code, EXIT_CONFIG);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `tunnel host: ${file}, line 6: key 'services.wbe' must be a string, got number 8081\n`);
  });

  test('--log-format json: a start-up failure is one JSON record too', { timeout: 25_000 }, async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const r = await nodeTunnel(['host', '--log-format', 'json', '--listen', `127.0.0.1:${port}`, '--expose', 'a=127.0.0.1:1', '--pin', '1', '--workers', '0']);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      const record = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
      assert.equal(record.level, 'error');
      assert.equal(record.code, 'PORT_IN_USE');
      assert.match(String(record.msg), /in use/);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  test('--print-config: the file, the flags over it and the defaults; the PIN masked', { timeout: 25_000 }, async () => {
    const file = path.join(dir, 'client.toml');
    writeFileSync(file, 'connect = "ws://127.0.0.1:8765"\npin = "86420864"\nwindow = 2097152\n[forwards]\n9000 = "web"\n');
    const r = await nodeTunnel(['client', '--config', file, '--print-config', '--keepalive', '2s', '--forward', '9001=db']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(!r.stdout.includes('86420864'), 'the PIN is not printed');
    for (const line of ['pin = "********"', 'window = "2MiB"', 'keepalive = "2s"', '"127.0.0.1:9000" = "web"', '"127.0.0.1:9001" = "db"', 'connect = "ws://127.0.0.1:8765"']) {
      assert.ok(r.stdout.split('\n').includes(line), `prints ${line}:\n${r.stdout}`);
    }
  });
});
