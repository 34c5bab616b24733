// CPace (balanced PAKE) over ristretto255 with SHA-512, cipher suite CPACE-RISTR255-SHA512,
// as specified in draft-irtf-cfrg-cpace-21 (sections 6-8.3, appendix A), initiator-responder setting.
//
//   client = initiator (A)                          host = responder (B)
//   PRS=PIN, CI                                      PRS=PIN, CI, picks sid (16 random bytes)
//                        <------------- sid (clear) --
//   g  = calculate_generator(PRS,CI,sid)             g  = calculate_generator(PRS,CI,sid)
//   ya = sample_scalar(); Ya = ya*g                  yb = sample_scalar(); Yb = yb*g
//                        -------------- Ya, ADa ---->
//                        <------------- Yb, ADb -----
//   K = scalar_mult_vfy(ya,Yb)  (abort if K = I)     K = scalar_mult_vfy(yb,Ya)  (abort if K = I)
//   ISK = SHA-512(lv_cat(DSI||"_ISK", sid, K) || lv_cat(Ya,ADa) || lv_cat(Yb,ADb))
//   deriveKeys(ISK) -> confirmation values + MAC key (application layer, draft section 10.4)
//
// ADa/ADb travel in clear next to Ya/Yb; framing them is the caller's job (the draft leaves
// the wire encoding to the application), they only enter the ISK transcript here.

import { ristretto255, ristretto255_hasher } from '@noble/curves/ed25519.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { randomBytes, utf8ToBytes, concatBytes } from '@noble/hashes/utils.js';

export const CPACE_SUITE = 'CPACE-RISTR255-SHA512';

const Point = ristretto255.Point;
const ORDER = Point.Fn.ORDER;
const DSI = utf8ToBytes('CPaceRistretto255'); // G_Ristretto255.DSI
const DSI_ISK = utf8ToBytes('CPaceRistretto255_ISK');
const S_IN_BYTES = 128; // SHA-512 input block size: zero padding fills the first block
const POINT_BYTES = 32;
const IDENTITY = new Uint8Array(POINT_BYTES); // G.I: ristretto255 encoding of the neutral element

export type PakeErrorCode = 'PAKE_INVALID_POINT' | 'PAKE_INVALID_INPUT';

export class PakeError extends Error {
  readonly code: PakeErrorCode;
  constructor(code: PakeErrorCode, message: string) {
    super(message);
    this.name = 'PakeError';
    this.code = code;
  }
}

export interface CpaceStart {
  scalar: Uint8Array; // 32-byte little-endian secret scalar; never reuse, never send
  message: Uint8Array; // Ya (initiator) or Yb (responder), 32-byte ristretto255 encoding
}

/** LEB128 length prefix (draft A.1.1). */
export function prependLen(data: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = data.length;
  do {
    len.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return concatBytes(Uint8Array.from(len), data);
}

/** Length-value concatenation (draft A.1.3). */
export function lvCat(...parts: Uint8Array[]): Uint8Array {
  return concatBytes(...parts.map(prependLen));
}

/** generator_string (draft 8.1 / A.2). */
export function generatorString(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  // PRS + padding occupy whole hash blocks so the hashing cost does not leak the PIN length.
  const zpad = Math.max(0, S_IN_BYTES - 1 - prependLen(prs).length - prependLen(DSI).length);
  return lvCat(DSI, prs, new Uint8Array(zpad), ci, sid);
}

// Internal representation _g; kept private because g is password-derived.
function generatorPoint(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array) {
  // draft 8.3: H.hash(gen_str, 2*32) then RFC 9496 element derivation (one-way map of 64 bytes).
  return ristretto255_hasher.deriveToCurve!(sha512(generatorString(prs, ci, sid)));
}

/** Encoded generator g, exposed only so tests can check the draft's B.3.1 vector. */
export function calculateGenerator(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array): Uint8Array {
  return generatorPoint(prs, ci, sid).toBytes();
}

function scalarFromBytes(bytes: Uint8Array): bigint {
  if (bytes.length !== 32) throw new PakeError('PAKE_INVALID_INPUT', 'scalar must be 32 bytes');
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  n %= ORDER;
  if (n === 0n) throw new PakeError('PAKE_INVALID_INPUT', 'scalar is zero');
  return n;
}

/** sample_scalar (draft 8.3): 32 random bytes with the bits above 2^252 cleared, little-endian. */
function sampleScalar(): Uint8Array {
  for (;;) {
    const s = randomBytes(32);
    s[31] = s[31]! & 0x0f;
    if (s.some((b) => b !== 0)) return s; // zero would give the identity; practically never hit
  }
}

function decodePoint(X: Uint8Array) {
  try {
    return Point.fromBytes(X); // RFC 9496 decode: rejects non-canonical and off-group encodings
  } catch {
    return undefined;
  }
}

/** scalar_mult_vfy (draft 8.3): G.I if X does not decode, else encode(y * decode(X)). */
export function scalarMultVfy(scalar: Uint8Array, X: Uint8Array): Uint8Array {
  const P = decodePoint(X);
  if (!P || P.is0()) return IDENTITY.slice();
  return P.multiply(scalarFromBytes(scalar)).toBytes();
}

/** First half of a CPace run: derive g from the PIN and produce this side's share. */
export function cpaceStart(prs: Uint8Array, ci: Uint8Array, sid: Uint8Array, scalar?: Uint8Array): CpaceStart {
  const y = scalar ? Uint8Array.from(scalar) : sampleScalar();
  const message = generatorPoint(prs, ci, sid).multiply(scalarFromBytes(y)).toBytes();
  return { scalar: y, message };
}

/**
 * Second half: verify the peer share and derive ISK (64 bytes) with the initiator-responder
 * transcript. K itself is never returned (draft 10.3: leaking K enables offline guessing).
 */
export function cpaceFinish(
  role: 'initiator' | 'responder',
  own: CpaceStart,
  peerMessage: Uint8Array,
  ad: { a: Uint8Array; b: Uint8Array },
  sid: Uint8Array,
): Uint8Array {
  if (peerMessage.length !== POINT_BYTES) throw new PakeError('PAKE_INVALID_POINT', 'peer share must be 32 bytes');
  const K = scalarMultVfy(own.scalar, peerMessage);
  if (equalBytes(K, IDENTITY)) throw new PakeError('PAKE_INVALID_POINT', 'peer share is invalid or the identity');
  const [Ya, Yb] = role === 'initiator' ? [own.message, peerMessage] : [peerMessage, own.message];
  const transcript = concatBytes(lvCat(Ya, ad.a), lvCat(Yb, ad.b)); // transcript_ir
  const isk = sha512(concatBytes(lvCat(DSI_ISK, sid, K), transcript));
  K.fill(0);
  return isk;
}

// HKDF "info" labels; the suite name keeps these keys apart from any other use of ISK.
const LABEL_CONFIRM_I = utf8ToBytes(`${CPACE_SUITE} confirm initiator`);
const LABEL_CONFIRM_R = utf8ToBytes(`${CPACE_SUITE} confirm responder`);
const LABEL_MAC = utf8ToBytes(`${CPACE_SUITE} mac key`);
const LABEL_SEAL_I = utf8ToBytes(`${CPACE_SUITE} fallback seal initiator to responder`);
const LABEL_SEAL_R = utf8ToBytes(`${CPACE_SUITE} fallback seal responder to initiator`);
const LABEL_RESUME = utf8ToBytes(`${CPACE_SUITE} resumption`);

/**
 * Keys for the application layer (the draft leaves key confirmation to it, section 10.4),
 * each HKDF-SHA512(ikm = ISK, salt = empty, info = label, 32 bytes).
 * The initiator sends confirmInitiator and the responder confirmResponder; each side checks
 * the other's with equalBytes. ISK already binds sid and both messages, so these do too.
 */
export function deriveKeys(isk: Uint8Array): {
  confirmInitiator: Uint8Array; confirmResponder: Uint8Array; macKey: Uint8Array;
  /** AES-256-GCM keys of the WebSocket fallback, one per direction (../signaling/seal.ts) */
  sealInitiator: Uint8Array; sealResponder: Uint8Array;
  /** proves, in a later session, that its client held this one (../signaling/resumption.ts) */
  resumeKey: Uint8Array;
} {
  if (isk.length !== 64) throw new PakeError('PAKE_INVALID_INPUT', 'ISK must be 64 bytes');
  return {
    confirmInitiator: hkdf(sha512, isk, undefined, LABEL_CONFIRM_I, 32),
    confirmResponder: hkdf(sha512, isk, undefined, LABEL_CONFIRM_R, 32),
    macKey: hkdf(sha512, isk, undefined, LABEL_MAC, 32),
    sealInitiator: hkdf(sha512, isk, undefined, LABEL_SEAL_I, 32),
    sealResponder: hkdf(sha512, isk, undefined, LABEL_SEAL_R, 32),
    resumeKey: hkdf(sha512, isk, undefined, LABEL_RESUME, 32),
  };
}

/** HMAC-SHA256, 32-byte tag. */
export function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(sha256, key, data);
}

/** Constant-time for equal lengths (lengths are public). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
