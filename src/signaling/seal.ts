// The WebSocket fallback's protection. On ws:// the signaling connection is plain TCP, while the
// DataChannel it stands in for was DTLS-encrypted under fingerprints the PAKE authenticated; so every
// data-plane message on the fallback is sealed with AES-256-GCM under a key only the two PIN holders
// derived (HKDF from CPace's ISK, one key per direction: ./pake.ts), and a nonce that is a message
// counter each side keeps for itself and never sends:
//
//   sealed message = ciphertext (as long as the message) || GCM tag (16 bytes)
//   nonce (96 bits) = 4 zero bytes || counter (64-bit big-endian): 0, 1, 2, … in each direction
//
// The WebSocket is reliable and ordered, so the receiver's counter is always the sender's: a message
// that was replayed, dropped, reordered, cut or altered fails its tag, and the session ends. A
// (key, nonce) pair is never used twice: a key per direction and per session, a counter that only grows.

import { createCipheriv, createDecipheriv } from 'node:crypto';

export const TAG_BYTES = 16;
const NONCE_BYTES = 12;

export class SealError extends Error {
  readonly code = 'SEAL_FAILED';
}

function nonce(counter: number): Buffer {
  const n = Buffer.alloc(NONCE_BYTES);
  n.writeUInt32BE(Math.floor(counter / 2 ** 32), 4);
  n.writeUInt32BE(counter >>> 0, 8);
  return n;
}

function checkKey(key: Uint8Array): void {
  if (key.byteLength !== 32) throw new RangeError('a seal key is 32 bytes');
}

/** Seals the messages of one direction, in order. */
export function createSealer(key: Uint8Array): (message: Uint8Array) => Buffer {
  checkKey(key);
  let counter = 0;
  return (message) => {
    const cipher = createCipheriv('aes-256-gcm', key, nonce(counter++), { authTagLength: TAG_BYTES });
    return Buffer.concat([cipher.update(message), cipher.final(), cipher.getAuthTag()]);
  };
}

/** Opens the messages of the other direction, in order; throws SealError for any that does not
 *  verify (and nothing of it is returned). After a failure the stream is unusable: end the session. */
export function createOpener(key: Uint8Array): (sealed: Uint8Array) => Buffer {
  checkKey(key);
  let counter = 0;
  let broken = false;
  return (sealed) => {
    if (broken) throw new SealError('the fallback stream already failed authentication');
    if (sealed.byteLength < TAG_BYTES) {
      broken = true;
      throw new SealError(`a sealed message of ${sealed.byteLength} bytes is shorter than its tag`);
    }
    const cut = sealed.byteLength - TAG_BYTES;
    const decipher = createDecipheriv('aes-256-gcm', key, nonce(counter), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(sealed.subarray(cut));
    const plain = decipher.update(sealed.subarray(0, cut));
    try {
      decipher.final();
    } catch {
      broken = true;
      throw new SealError('a fallback message failed authentication (tampered, replayed, reordered or cut)');
    }
    counter++;
    return plain;
  };
}
