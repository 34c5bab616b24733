import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkServiceName, parseExpose, parseForward, parseHostPort, parsePort } from '../../src/address.js';
import { TunnelError } from '../../src/errors.js';

const T = { timeout: 5_000 };

function badFlag(fn: () => unknown, input: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof TunnelError, `'${input}': expected TunnelError, got ${String(err)}`);
    assert.equal(err.code, 'BAD_FLAG', `'${input}'`);
    return true;
  }, `'${input}' should be refused`);
}

test('parseExpose: NAME=HOST:PORT', T, () => {
  assert.deepEqual(parseExpose('web=127.0.0.1:8080'), { name: 'web', host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseExpose('db.main_1-x=localhost:5432'), { name: 'db.main_1-x', host: 'localhost', port: 5432 });
  assert.deepEqual(parseExpose('v6=[::1]:65535'), { name: 'v6', host: '::1', port: 65535 });
  assert.deepEqual(parseExpose(`${'a'.repeat(64)}=h:1`), { name: 'a'.repeat(64), host: 'h', port: 1 });
});

test('parseExpose: refuses bad forms with BAD_FLAG', T, () => {
  for (const input of [
    '', 'web', '=127.0.0.1:80', 'web=', 'web=8080', 'web=127.0.0.1', 'web=127.0.0.1:', 'web=:8080',
    'web=127.0.0.1:0', 'web=127.0.0.1:65536', 'web=127.0.0.1:99999', 'web=127.0.0.1:123456',
    'web=127.0.0.1:-1', 'web=127.0.0.1:80a', 'web=127.0.0.1: 80', 'web=[::1]:0', 'web=[::1]:70000',
    'we b=127.0.0.1:80', 'web/x=127.0.0.1:80', 'wéb=127.0.0.1:80', `${'a'.repeat(65)}=h:1`, 'web\n=h:1',
  ]) badFlag(() => parseExpose(input), input);
});

test('parseForward: [ADDR:]PORT=NAME', T, () => {
  assert.deepEqual(parseForward('9000=web'), { host: '127.0.0.1', port: 9000, service: 'web' });
  assert.deepEqual(parseForward('127.0.0.1:9000=web'), { host: '127.0.0.1', port: 9000, service: 'web' });
  assert.deepEqual(parseForward('0.0.0.0:1=db'), { host: '0.0.0.0', port: 1, service: 'db' });
  assert.deepEqual(parseForward('[::1]:9000=web'), { host: '::1', port: 9000, service: 'web' });
  assert.deepEqual(parseForward('65535=a'), { host: '127.0.0.1', port: 65535, service: 'a' });
});

test('parseForward: refuses bad forms with BAD_FLAG (port 0 included)', T, () => {
  for (const input of [
    '', '9000', 'web', '=web', '9000=', '0=web', '127.0.0.1:0=web', '[::1]:0=web', '65536=web', '99999=web',
    '127.0.0.1:70000=web', ':9000=web', '127.0.0.1:=web', 'abc=web', '9000=we b', '9000=web!', `9000=${'x'.repeat(65)}`,
    '-1=web', '9000 =web', '[::1]=web',
  ]) badFlag(() => parseForward(input), input);
});

test('parseHostPort: HOST:PORT, [v6]:PORT, and PORT only with a default host', T, () => {
  assert.deepEqual(parseHostPort('127.0.0.1:8765', '--listen'), { host: '127.0.0.1', port: 8765 });
  assert.deepEqual(parseHostPort('example.org:0', '--listen'), { host: 'example.org', port: 0 });
  assert.deepEqual(parseHostPort('[fe80::1%eth0]:443', '--listen'), { host: 'fe80::1%eth0', port: 443 });
  assert.deepEqual(parseHostPort('8765', '--listen', '0.0.0.0'), { host: '0.0.0.0', port: 8765 });
  for (const input of ['8765', ':8765', 'host:', 'host:65536', 'host:x', '[::1]:', '[::1]:99999', 'host:1:']) {
    badFlag(() => parseHostPort(input, '--listen'), input);
  }
  badFlag(() => parseHostPort('70000', '--listen', '127.0.0.1'), '70000 with a default host');
});

test('the error message names the flag', T, () => {
  assert.throws(() => parseHostPort('x', '--listen'), /--listen/);
  assert.throws(() => parseForward('0=web'), /--forward/);
  assert.throws(() => parseExpose('web=h:0'), /--expose/);
});

test('parsePort and checkServiceName at their edges', T, () => {
  assert.equal(parsePort('0', '--p'), 0);
  assert.equal(parsePort('65535', '--p'), 65535);
  assert.equal(parsePort('00080', '--p'), 80);
  for (const input of ['', '65536', '100000', '1.5', '0x10', ' 1', '1 ', '+1', '1e3']) badFlag(() => parsePort(input, '--p'), input);
  checkServiceName('A-z_0.9', '--x');
  for (const input of ['', 'a b', 'a:b', 'a=b', 'a\u0000', 'x'.repeat(65)]) badFlag(() => checkServiceName(input, '--x'), input);
});

// Known src gap (see the report): the host part is not checked at all, so these reach net.connect /
// listen and fail per stream (or per worker) at run time instead of at startup with BAD_FLAG.
test('malformed hosts are refused with BAD_FLAG', T, () => {
  for (const input of ['web=[]:80', 'web=[::1:80', 'web=::1]:80', 'web=a b:80', 'web=h=x:80', 'web=[::1]]:80']) {
    badFlag(() => parseExpose(input), input);
  }
  for (const input of ['[::1:9000=web', 'a b:9000=web']) badFlag(() => parseForward(input), input);
});
