// A stand-in for net.Socket with just what a stream handler uses, for unit tests: it records what
// is written and how it ends, and the test drives its events (reads, end, drain, connect, errors).

import { EventEmitter } from 'node:events';

export class FakeSocket extends EventEmitter {
  written: Buffer[] = [];
  /** write() returns false while this many bytes or more are waiting (the socket's high-water mark) */
  highWater = Infinity;
  writableLength = 0;
  paused = true;
  ended = false;
  /** how it was torn down: an RST (resetAndDestroy), a plain destroy, or not at all */
  teardown: 'reset' | 'destroy' | null = null;
  connecting = false;
  destroyed = false;
  writableEnded = false;
  noDelay = false;

  setNoDelay(on = true): this { this.noDelay = on; return this; }
  pause(): this { this.paused = true; return this; }
  resume(): this { this.paused = false; return this; }

  write(data: Uint8Array): boolean {
    this.written.push(Buffer.from(data));
    this.writableLength += data.byteLength;
    return this.writableLength < this.highWater;
  }

  end(): this {
    this.ended = true;
    this.writableEnded = true;
    return this;
  }

  resetAndDestroy(): this { this.teardown = 'reset'; this.destroyed = true; return this; }
  destroy(): this { this.teardown ??= 'destroy'; this.destroyed = true; return this; }

  /** Everything written so far, as one buffer. */
  bytes(): Buffer { return Buffer.concat(this.written); }

  /** The kernel took the buffered bytes: 'drain'. */
  flushed(): void {
    this.writableLength = 0;
    this.emit('drain');
  }

  /** The application wrote `data` (only delivered while not paused, like a real socket). */
  read(data: Uint8Array): void {
    if (this.paused) throw new Error('read while paused');
    this.emit('data', Buffer.from(data));
  }
}
