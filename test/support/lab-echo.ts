// A small TCP echo and its checker, run as processes inside the network lab's namespaces (the test
// process itself lives in the root namespace and cannot reach them):
//
//   node lab-echo.js serve --port P                       # B: echoes every connection; prints "listening P"
//   node lab-echo.js send --port P --bytes N [--host H]   # A: N random bytes out, the same N back, compared
//                        [--timeout-ms T]                 #    byte for byte; prints one JSON line, exit 0/1
//
// The sender writes under backpressure while it reads, so N is not bounded by any buffer; its result is
// { ok, bytes, ms, error? } (`ms` from connect to the last byte back).

import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    bytes: { type: 'string', default: String(16 * 1024 * 1024) },
    'timeout-ms': { type: 'string', default: '60000' },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`bad --port ${values.port}`);

if (positionals[0] === 'serve') {
  const server = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
  server.listen(port, '0.0.0.0', () => process.stdout.write(`listening ${port}\n`));
} else if (positionals[0] === 'send') {
  const total = Number(values.bytes);
  const timeoutMs = Number(values['timeout-ms']);
  const data = randomBytes(total);
  let start = 0;
  let received = 0;
  let finished = false;
  const finish = (ok: boolean, error?: string) => {
    if (finished) return;
    finished = true;
    process.stdout.write(JSON.stringify({ ok, bytes: received, ms: Date.now() - start, ...(error ? { error } : {}) }) + '\n');
    sock.destroy();
    process.exitCode = ok ? 0 : 1;
    clearTimeout(timer);
  };
  const timer = setTimeout(() => finish(false, `timeout after ${timeoutMs} ms with ${received} of ${total} bytes back`), timeoutMs);
  const sock = net.connect(port, values.host, () => {
    start = Date.now();
    const CHUNK = 64 * 1024;
    let off = 0;
    const write = () => {
      while (off < total) {
        const end = Math.min(off + CHUNK, total);
        const more = sock.write(data.subarray(off, end));
        off = end;
        if (!more) { sock.once('drain', write); return; }
      }
    };
    write();
  });
  sock.on('data', (chunk: Buffer) => {
    if (received + chunk.length > total) { finish(false, `more bytes back than sent (${received + chunk.length} > ${total})`); return; }
    if (!chunk.equals(data.subarray(received, received + chunk.length))) {
      finish(false, `a byte differs in ${received}-${received + chunk.length}`);
      return;
    }
    received += chunk.length;
    if (received === total) finish(true);
  });
  sock.on('error', (err) => finish(false, err.message));
  sock.on('close', () => finish(false, `closed with ${received} of ${total} bytes back`));
} else {
  throw new Error('usage: lab-echo.js serve|send --port P [--bytes N] [--host H] [--timeout-ms T]');
}
