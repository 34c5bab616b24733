// The rendezvous code a host prints and a person reads out to whoever runs the client: the host's id
// at the relay and the PIN, in one short string.
//
//     k7m2x9qa-48213905
//     └─ id ─┘ └─ PIN ┘
//
// The id is 8 characters of Crockford's base32 (40 random bits; read back in any case, with o read
// as 0 and i, l as 1, so it survives being spoken); the PIN is the host's (8 random digits unless
// --pin chose one; it may itself contain '-', so the code splits at the first one). The id is not a
// secret, only hard to guess; the PIN is, and never crosses the relay (the PAKE). A code without
// the '-PIN' part names the host only, and the PIN comes from --pin, --pin-file or TUNNEL_PIN.
//
// Also here: the relay URL a user gives (--rendezvous), and the ids this tool registers under there.

import { randomInt } from 'node:crypto';
import { tunnelError } from '../errors.js';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
/** Characters of a random id: 40 bits, so ids of different hosts on one relay do not collide. */
export const ID_CHARS = 8;
/** Prefix of every id this tool registers at a relay that other PeerJS applications may share. */
const HOST_PREFIX = 'tunnel-';
const CLIENT_PREFIX = 'tunnel-client-';

export function randomId(chars = ID_CHARS): string {
  let id = '';
  for (let i = 0; i < chars; i++) id += ALPHABET[randomInt(ALPHABET.length)];
  return id;
}

/** An id as typed or read aloud, in its one spelling; BAD_FLAG if it is not one. */
export function normalizeId(text: string, what = 'the code'): string {
  const id = text.trim().toLowerCase().replace(/o/g, '0').replace(/[il]/g, '1');
  if (!/^[0-9a-hjkmnp-tv-z]{4,32}$/.test(id)) {
    throw tunnelError('BAD_FLAG', `${what}: '${text}' is not a rendezvous id (4-32 letters and digits, as the host printed it)`);
  }
  return id;
}

export function makeCode(id: string, pin: string): string {
  return `${id}-${pin}`;
}

/** "k7m2x9qa-48213905" -> the id and the PIN; "k7m2x9qa" -> the id alone. */
export function parseCode(text: string): { id: string; pin: string | undefined } {
  const code = text.trim();
  const dash = code.indexOf('-');
  if (dash === 0 || dash === code.length - 1) throw tunnelError('BAD_FLAG', '--code: expected ID-PIN as the host printed it, e.g. k7m2x9qa-48213905');
  const id = normalizeId(dash < 0 ? code : code.slice(0, dash), '--code');
  return { id, pin: dash < 0 ? undefined : code.slice(dash + 1) };
}

/** The host's id at the relay. */
export const hostRelayId = (id: string) => `${HOST_PREFIX}${id}`;
/** A client's id at the relay: random, new for each attempt. */
export const clientRelayId = () => `${CLIENT_PREFIX}${randomId(16)}`;

export interface RelayAddress {
  /** how the relay is named in messages (without the key) */
  name: string;
  /** the WebSocket URL up to the query: ws[s]://HOST:PORT/PATH/peerjs */
  socket: string;
  key: string;
}

/**
 * --rendezvous: "ws://relay.example:9000", "wss://relay.example/myapp?key=secret", or the same with
 * http(s)://. The PeerJS server listens at <its --path>/peerjs; its --key (default "peerjs") goes in
 * ?key=.
 */
export function parseRelayUrl(text: string): RelayAddress {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw tunnelError('BAD_FLAG', `--rendezvous: '${text}' is not a URL (e.g. ws://relay.example:9000)`);
  }
  const scheme = { 'ws:': 'ws:', 'http:': 'ws:', 'wss:': 'wss:', 'https:': 'wss:' }[url.protocol];
  if (!scheme) throw tunnelError('BAD_FLAG', `--rendezvous: '${text}' must be a ws://, wss://, http:// or https:// URL`);
  const key = url.searchParams.get('key') ?? 'peerjs';
  const path = url.pathname.replace(/\/+$/, '');
  const name = `${scheme}//${url.host}${path}`;
  return { name, socket: `${name}/peerjs`, key };
}
