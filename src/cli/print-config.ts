// `tunnel host --print-config` / `tunnel client --print-config`: the effective configuration (flags
// over file over defaults) as a config file would say it, so it can be read, diffed, or saved as a
// file. The PIN itself is never printed: a PIN given inline shows masked, one from a file or the
// environment shows where it comes from.

import { stringify } from 'smol-toml';
import { forwardKey, type Settings } from './settings.js';
import { formatDuration, formatSize } from './units.js';

export const MASK = '********';

export function renderConfig(s: Settings): string {
  const doc: Record<string, unknown> = {};
  const comments: string[] = [`# effective configuration of tunnel ${s.side}${s.config ? ` (file ${s.config}, then flags)` : ' (flags)'}`];
  if (s.side === 'host') {
    if (s.listen) doc.listen = s.listen;
    if (s.rendezvous) doc.rendezvous = s.rendezvous;
    if (s.rendezvousId) doc['rendezvous-id'] = s.rendezvousId;
  } else {
    if (s.connect) doc.connect = s.connect;
    if (s.rendezvous) doc.rendezvous = s.rendezvous;
    // a code holds the PIN: its id is shown, the PIN masked
    if (s.code?.from === 'env') comments.push('# code: from the environment (TUNNEL_CODE), not shown');
    else if (s.code) doc.code = `${s.code.value.split('-')[0] ?? ''}-${MASK}`;
  }
  if (!s.pin) comments.push('# pin: none given; a random 8-digit PIN is generated at start');
  else if (s.pin.path) doc['pin-file'] = s.pin.path;
  else if (s.pin.from === 'env') comments.push('# pin: from the environment (TUNNEL_PIN), not shown');
  else doc.pin = MASK;
  doc.workers = s.workers;
  doc['ice-servers'] = s.iceServers;
  if (s.iceBind) doc['ice-bind'] = s.iceBind;
  if (s.iceRelayOnly) doc['ice-relay-only'] = true;
  if (s.icePortRange) doc['ice-port-range'] = `${s.icePortRange.min}-${s.icePortRange.max}`;
  doc.fallback = s.fallback;
  if (s.mtu !== undefined) doc.mtu = s.mtu;
  doc.lanes = s.lanes;
  if (s.window === undefined) comments.push('# window: automatic (starts at 256KiB, grows per round trip up to 16MiB)');
  else doc.window = formatSize(s.window);
  doc.keepalive = formatDuration(s.keepalive);
  doc['resume-timeout'] = formatDuration(s.resumeTimeout);
  doc['log-level'] = s.logLevel;
  doc['log-format'] = s.logFormat;
  if (s.metrics) doc.metrics = forwardKey(s.metrics);
  doc.quiet = s.quiet;
  if (s.pidFile) doc['pid-file'] = s.pidFile;
  if (s.side === 'host') {
    if (s.tls) { doc['tls-cert'] = s.tls.cert; doc['tls-key'] = s.tls.key; }
    doc.services = Object.fromEntries(Object.entries(s.services).map(([name, t]) => [name, forwardKey(t)]));
  } else {
    if (s.ca) doc.ca = s.ca;
    doc.forwards = Object.fromEntries(s.forwards.map((f) => [forwardKey(f), f.service]));
  }
  return `${comments.join('\n')}\n${stringify(doc)}\n`;
}
