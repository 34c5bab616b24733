// --log-format json: one JSON object per line with stable field names (time, level, name, msg, then
// the record's own fields), for journald and Loki; text stays the plain line a terminal shows.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, jsonRecord } from '../../src/shared/log.js';

const T = { timeout: 5_000 };

test('json: one object per line, the four stable fields first, then the record\'s own', T, () => {
  const lines: string[] = [];
  const log = createLogger('host[1]', 'info', (l) => lines.push(l), 'json');
  log.info('stream reset', { peer: 3, stream: 'ab12', reason: 'DIAL_FAILED: ECONNREFUSED', skipped: undefined });
  log.debug('not at info');
  log.warn('line\nbreak "quoted"', { n: 1.5, list: [1, 2], nested: { a: true } });
  assert.equal(lines.length, 2);
  for (const line of lines) {
    assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), 'exactly one line');
  }
  const first = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.deepEqual(Object.keys(first), ['time', 'level', 'name', 'msg', 'peer', 'stream', 'reason']);
  assert.equal(first.level, 'info');
  assert.equal(first.name, 'host[1]');
  assert.equal(first.msg, 'stream reset');
  assert.equal(first.peer, 3);
  assert.match(String(first.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const second = JSON.parse(lines[1] ?? '') as Record<string, unknown>;
  assert.equal(second.msg, 'line\nbreak "quoted"');
  assert.deepEqual(second.nested, { a: true });
});

test('json: a field named like a stable one cannot overwrite it', T, () => {
  const record = JSON.parse(jsonRecord(new Date(0), 'warn', 'client', 'm', { level: 'x', msg: 'y', time: 1, name: 'n', big: 10n })) as Record<string, unknown>;
  assert.equal(record.level, 'warn');
  assert.equal(record.msg, 'm');
  assert.equal(record.time, '1970-01-01T00:00:00.000Z');
  assert.equal(record._level, 'x');
  assert.equal(record._name, 'n');
  assert.equal(record.big, '10');
});

test('text: the plain line, unchanged; setLevel changes the level from then on', T, () => {
  const lines: string[] = [];
  const log = createLogger('client', 'warn', (l) => lines.push(l));
  log.info('hidden');
  log.setLevel?.('debug');
  log.debug('shown', { key: 'two words' });
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /^\d\d:\d\d:\d\d\.\d{3} client debug shown key="two words"\n$/);
});
