// The package as a user installs it: `npm pack`, the tarball installed into an empty folder elsewhere
// (dependencies from npm's cache), then `tunnel demo` and `tunnel bench` from there. Before, `files`
// left dist/bench out while the CLI needed it, and both commands failed once installed.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../support/cli.js';

const run = promisify(execFile);

describe('the installed package', { timeout: 180_000 }, () => {
  let dir = '';
  let cli = '';

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tunnel-package-'));
    // --ignore-scripts: pack the dist/ that `npm test` just built, without rebuilding it under the
    // other test files
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, timeout: 60_000 });
    const [packed] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    assert.ok(packed);
    const paths = packed.files.map((f) => f.path);
    assert.ok(paths.includes('dist/bench/main.js'), 'the harness is shipped');
    assert.ok(!paths.some((p) => p.startsWith('dist/test/')), 'the tests are not');
    writeFileSync(path.join(dir, 'package.json'), '{"name":"user-project","private":true}\n');
    await run('npm', ['install', path.join(dir, packed.filename), '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: dir, timeout: 120_000 });
    cli = path.join(dir, 'node_modules', 'datachannel-tunnel', 'dist', 'src', 'cli.js');
    assert.ok(existsSync(cli));
  });

  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('tunnel demo --no-bench moves bytes byte-exact', async () => {
    const { stdout } = await run(process.execPath, [cli, 'demo', '--no-bench'], { cwd: dir, timeout: 60_000 });
    assert.match(stdout, /byte-exact \(SHA-256 match\)/);
  });

  it('tunnel bench starts the installed harness (--help, and the micro-benchmarks)', async () => {
    const help = await run(process.execPath, [cli, 'bench', '--help'], { cwd: dir, timeout: 30_000 });
    assert.match(help.stdout, /^Usage: tunnel bench/);
    const micro = await run(process.execPath, [cli, 'bench', '--micro', '--quick'], { cwd: dir, timeout: 60_000 });
    assert.match(micro.stdout, /dispatcher: route/);
  });
});
