import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import {
  CPACE_SUITE,
  PakeError,
  calculateGenerator,
  cpaceFinish,
  cpaceStart,
  deriveKeys,
  equalBytes,
  generatorString,
  lvCat,
  mac,
  prependLen,
  scalarMultVfy,
} from '../../src/signaling/pake.js';

const T = { timeout: 10_000 };
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

// Test vectors from draft-irtf-cfrg-cpace-21 (23 April 2026), Appendix B.3
// "Test vector for CPace using group ristretto255 and hash SHA-512".
const V = {
  PRS: utf8('Password'),
  CI: hex('0b415f696e69746961746f720b425f726573706f6e646572'), // b'\x0bA_initiator\x0bB_responder'
  sid: hex('7e4b4791d6a8ef019b936c79fb7f2c57'),
  genStr: hex(`11435061636552697374726574746f3235350850617373776f726464
    00000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000000000000000000000000000
    00000000000000000000000000000000180b415f696e69746961746f
    720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
    2c57`),
  hash: hex(`da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288b6663af06bf645c93cd1c515
    12307199c80e84908916d983b34af77205f90851a657ee27`),
  g: hex('222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56'),
  ADa: utf8('ADa'),
  ya: hex('da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08'),
  Ya: hex('d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157'),
  ADb: utf8('ADb'),
  yb: hex('d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d'),
  Yb: hex('3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258'),
  K: hex('80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f'),
  transcriptIr: hex(`20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b915703414461
    203ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f725803414462`),
  iskIr: hex(`b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dcae7b35cd
    2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c3fa2068af7900447`),
};

test('string utilities match draft A.1.2 / A.1.4', T, () => {
  assert.equal(toHex(prependLen(new Uint8Array(0))), '00');
  assert.equal(toHex(prependLen(utf8('1234'))), '0431323334');
  const r128 = Uint8Array.from({ length: 128 }, (_, i) => i);
  assert.equal(toHex(prependLen(r128).subarray(0, 3)), '800100');
  assert.equal(toHex(lvCat(utf8('1234'), utf8('5'), new Uint8Array(0), utf8('678'))), '043132333401350003363738');
  assert.equal(CPACE_SUITE, 'CPACE-RISTR255-SHA512');
});

test('B.3.1 generator_string, hash and encoded generator', T, () => {
  const gs = generatorString(V.PRS, V.CI, V.sid);
  assert.equal(gs.length, 170);
  assert.equal(toHex(gs), toHex(V.genStr));
  assert.equal(toHex(sha512(gs)), toHex(V.hash));
  assert.equal(toHex(calculateGenerator(V.PRS, V.CI, V.sid)), toHex(V.g));
});

test('B.3.2 / B.3.3 messages Ya and Yb from the given scalars', T, () => {
  assert.equal(toHex(cpaceStart(V.PRS, V.CI, V.sid, V.ya).message), toHex(V.Ya));
  assert.equal(toHex(cpaceStart(V.PRS, V.CI, V.sid, V.yb).message), toHex(V.Yb));
});

test('B.3.4 secret point K on both sides', T, () => {
  assert.equal(toHex(scalarMultVfy(V.ya, V.Yb)), toHex(V.K));
  assert.equal(toHex(scalarMultVfy(V.yb, V.Ya)), toHex(V.K));
});

test('B.3.5 ISK for the initiator/responder setting', T, () => {
  // transcript_ir layout that cpaceFinish hashes after lv_cat(DSI_ISK, sid, K)
  assert.equal(toHex(new Uint8Array([...lvCat(V.Ya, V.ADa), ...lvCat(V.Yb, V.ADb)])), toHex(V.transcriptIr));
  const a = cpaceStart(V.PRS, V.CI, V.sid, V.ya);
  const b = cpaceStart(V.PRS, V.CI, V.sid, V.yb);
  const ad = { a: V.ADa, b: V.ADb };
  assert.equal(toHex(cpaceFinish('initiator', a, b.message, ad, V.sid)), toHex(V.iskIr));
  assert.equal(toHex(cpaceFinish('responder', b, a.message, ad, V.sid)), toHex(V.iskIr));
});

test('B.3.10 scalar_mult_vfy with valid input', T, () => {
  const s = hex('7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05');
  const X = hex('2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c');
  assert.equal(toHex(scalarMultVfy(s, X)), '7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e');
});

test('B.3.11 invalid / identity points give G.I and abort the protocol', T, () => {
  const s = hex('7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05');
  const invalid = [
    hex('2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c'), // Y_i1: not a valid encoding
    new Uint8Array(32), // Y_i2 == G.I
    new Uint8Array(31), // wrong length
    new Uint8Array(32).fill(0xff), // non-canonical field element
  ];
  const isPointError = (e: unknown) => e instanceof PakeError && e.code === 'PAKE_INVALID_POINT';
  const a = cpaceStart(V.PRS, V.CI, V.sid, V.ya);
  const b = cpaceStart(V.PRS, V.CI, V.sid, V.yb);
  const ad = { a: V.ADa, b: V.ADb };
  for (const Y of invalid) {
    if (Y.length === 32) assert.equal(toHex(scalarMultVfy(s, Y)), '00'.repeat(32));
    assert.throws(() => cpaceFinish('initiator', a, Y, ad, V.sid), isPointError);
    assert.throws(() => cpaceFinish('responder', b, Y, ad, V.sid), isPointError);
  }
});

// One full exchange as the tunnel would run it; returns everything that crosses the wire.
function run(clientPin: string, hostPin: string) {
  const ci = utf8('tunnel-test client|host');
  const ad = { a: utf8('client v1'), b: utf8('host v1') };
  const sid = randomBytes(16); // host -> client in clear
  const client = cpaceStart(utf8(clientPin), ci, sid);
  const host = cpaceStart(utf8(hostPin), ci, sid);
  const iskClient = cpaceFinish('initiator', client, host.message, ad, sid);
  const iskHost = cpaceFinish('responder', host, client.message, ad, sid);
  const kc = deriveKeys(iskClient);
  const kh = deriveKeys(iskHost);
  const wire = [sid, client.message, ad.a, host.message, ad.b, kc.confirmInitiator, kh.confirmResponder];
  return { iskClient, iskHost, kc, kh, wire };
}

test('right PIN on both sides gives equal ISK and matching confirmations', T, () => {
  const r = run('482916', '482916');
  assert.equal(r.iskClient.length, 64);
  assert.ok(equalBytes(r.iskClient, r.iskHost));
  assert.ok(equalBytes(r.kc.confirmInitiator, r.kh.confirmInitiator));
  assert.ok(equalBytes(r.kc.confirmResponder, r.kh.confirmResponder));
  assert.ok(equalBytes(r.kc.macKey, r.kh.macKey));
  assert.ok(!equalBytes(r.kc.confirmInitiator, r.kc.confirmResponder));
  for (const k of [r.kc.confirmInitiator, r.kc.confirmResponder, r.kc.macKey]) assert.equal(k.length, 32);
  const data = utf8('hello');
  assert.equal(mac(r.kc.macKey, data).length, 32);
  assert.ok(equalBytes(mac(r.kc.macKey, data), mac(r.kh.macKey, data)));
});

test('wrong PIN gives different ISK and confirmations', T, () => {
  const r = run('482916', '482917');
  assert.ok(!equalBytes(r.iskClient, r.iskHost));
  assert.ok(!equalBytes(r.kc.confirmInitiator, r.kh.confirmInitiator));
  assert.ok(!equalBytes(r.kc.confirmResponder, r.kh.confirmResponder));
  assert.ok(!equalBytes(r.kc.macKey, r.kh.macKey));
});

test('recorded transcript contains neither the PIN nor SHA-256(PIN)', T, () => {
  const pin = '482916';
  const r = run(pin, pin);
  const transcript = Buffer.concat(r.wire);
  assert.equal(transcript.indexOf(Buffer.from(pin, 'utf8')), -1);
  assert.equal(transcript.indexOf(Buffer.from(sha256(utf8(pin)))), -1);
  // fresh scalars: two runs with the same PIN and CI never produce the same shares
  const r2 = run(pin, pin);
  assert.ok(!equalBytes(r.wire[1]!, r2.wire[1]!));
});

test('equalBytes', T, () => {
  assert.ok(equalBytes(hex('0102'), hex('0102')));
  assert.ok(!equalBytes(hex('0102'), hex('0103')));
  assert.ok(!equalBytes(hex('0102'), hex('010200')));
  assert.ok(equalBytes(new Uint8Array(0), new Uint8Array(0)));
});
