// The systemd units in src/cli/service/systemd: parsed here (sections, the keys a service needs, the PIN as a
// credential and never on the command line), and checked by `systemd-analyze verify` where it exists,
// with the install path pointed at this checkout so that the binaries it names exist.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/cli/config-file.js';
import { EXIT_CONFIG } from '../../src/errors.js';
import { ROOT } from '../support/cli.js';

const T = { timeout: 20_000 };
const INSTALL = '/opt/datachannel-tunnel';

/** A unit file as sections of key -> values (a key may repeat); continuation lines joined. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header?.[1]) {
      current = new Map();
      sections.set(header[1], current);
      return;
    }
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    assert.ok(m?.[1] !== undefined && m[2] !== undefined, `line ${i + 1} is KEY=VALUE: ${raw}`);
    assert.ok(current, `line ${i + 1} is inside a section`);
    const section: Map<string, string[]> = current;
    section.set(m[1], [...(section.get(m[1]) ?? []), m[2]]);
  });
  return sections;
}

for (const side of ['host', 'client'] as const) {
  const file = path.join(ROOT, 'src', 'cli', 'service', 'systemd', `tunnel-${side}.service`);

  test(`tunnel-${side}.service: runs the ${side} from its config file, reloads with SIGHUP, restarts on failure, PIN as a credential`, T, () => {
    const unit = parseUnit(readFileSync(file, 'utf8'));
    assert.deepEqual([...unit.keys()], ['Unit', 'Service', 'Install']);
    const service = unit.get('Service');
    assert.ok(service);
    const one = (key: string) => {
      const values = service.get(key) ?? [];
      assert.equal(values.length, 1, `one ${key}=`);
      return values[0] ?? '';
    };
    const exec = one('ExecStart').split(/\s+/);
    assert.equal(exec[0], `${INSTALL}/node_modules/node/bin/node`, 'the pinned Node, directly (npx would not pass SIGTERM on)');
    assert.equal(exec[1], `${INSTALL}/dist/src/cli.js`);
    assert.equal(exec[2], side);
    assert.equal(exec[exec.indexOf('--config') + 1], `/etc/datachannel-tunnel/${side}.toml`);
    assert.ok(!exec.includes('--pin'), 'no PIN on the command line');
    assert.equal(exec[exec.indexOf('--pin-file') + 1], '%d/pin', 'the PIN from the credentials directory');
    assert.match(one('LoadCredential'), /^pin:\/etc\/datachannel-tunnel\/pin$/);
    assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(one('Restart'), 'on-failure');
    assert.equal(one('RestartPreventExitStatus'), String(EXIT_CONFIG), 'a bad config is not restarted in a loop');
    assert.equal(unit.get('Install')?.get('WantedBy')?.[0], 'multi-user.target');
  });

  test(`tunnel-${side}.service: systemd-analyze verify accepts it`, { ...T, skip: spawnSync('systemd-analyze', ['--version']).status !== 0 && 'systemd-analyze is not installed' }, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tunnel-unit-'));
    try {
      const copy = path.join(dir, `tunnel-${side}.service`);
      writeFileSync(copy, readFileSync(file, 'utf8').replaceAll(INSTALL, ROOT));
      const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 15_000 });
      assert.equal(r.status, 0, `systemd-analyze verify: ${r.stderr}`);
      assert.equal(r.stderr.split('\n').filter((l) => l.includes(`tunnel-${side}.service`)).join('\n'), '', 'no warning about the unit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`src/cli/service/${side}.toml, the file the unit names, is a valid ${side} config`, T, () => {
    parseConfig(readFileSync(path.join(ROOT, 'src', 'cli', 'service', `${side}.toml`), 'utf8'), `src/cli/service/${side}.toml`, side);
  });
}
