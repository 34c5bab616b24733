// Sizes and durations as flags and the config file take them: human units, exact arithmetic, and a
// refusal (never a guess) for anything else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSize, parseDuration, formatSize, formatDuration } from '../../src/cli/units.js';
import { size } from '../../src/cli/flags.js';
import { TunnelError } from '../../src/errors.js';

const T = { timeout: 5_000 };

test('parseSize: bytes, binary and decimal units, any case, optional space', T, () => {
  const cases: [string, number][] = [
    ['0', 0], ['1048576', 1048576], ['1B', 1], ['512KiB', 512 * 1024], ['512 KiB', 512 * 1024], ['4MiB', 4 * 1024 ** 2],
    ['4mib', 4 * 1024 ** 2], ['1GiB', 1024 ** 3], ['1.5MiB', 1.5 * 1024 ** 2], ['64kB', 64_000], ['64KB', 64_000],
    ['2MB', 2_000_000], ['1GB', 1e9], [' 8MiB ', 8 * 1024 ** 2],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize(text), bytes, text);
});

test('parseSize: refuses what it would have to guess', T, () => {
  for (const text of ['', 'MiB', '4M', '4K', '4 mb/s', '-1', '4MiBs', '1e6', '0x10', '1.0000001KiB', '4 Mi B', '99999999999GiB']) {
    assert.throws(() => parseSize(text), RangeError, text);
  }
});

test('parseDuration: ms by default, ms / s / m / h', T, () => {
  const cases: [string, number][] = [['1000', 1000], ['500ms', 500], ['1s', 1000], ['1.5s', 1500], ['2m', 120_000], ['1h', 3_600_000], ['10 ms', 10]];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  for (const text of ['', 's', '1d', '1.0001ms', '-5s', '1 sec']) assert.throws(() => parseDuration(text), RangeError, text);
});

test('formatSize / formatDuration write the shortest exact form, and parse back', T, () => {
  for (const [bytes, text] of [[1024 * 1024, '1MiB'], [1536 * 1024, '1536KiB'], [4 * 1024 ** 3, '4GiB'], [1000, '1000'], [65537, '65537']] as const) {
    assert.equal(formatSize(bytes), text);
    assert.equal(parseSize(text), bytes);
  }
  for (const [ms, text] of [[1000, '1s'], [1500, '1500ms'], [120_000, '2m'], [7_200_000, '2h']] as const) {
    assert.equal(formatDuration(ms), text);
    assert.equal(parseDuration(text), ms);
  }
});

test('--window: a unit or bytes; below one full packet or malformed is BAD_FLAG naming the flag', T, () => {
  assert.equal(size('4MiB', '--window', 65536), 4 * 1024 ** 2);
  assert.equal(size('262144', '--window', 65536), 262144);
  for (const text of ['32KiB', 'big', '4 M']) {
    assert.throws(() => size(text, '--window', 65536), (err: unknown) => err instanceof TunnelError && err.code === 'BAD_FLAG' && err.message.startsWith('--window'), text);
  }
});
