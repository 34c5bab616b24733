// Changing a running side's services (host) or forwards (client), as a reload asks: what was added
// starts at once, what was removed stops taking new connections while its open streams finish
// untouched, and what changed is both. Streams of everything else never notice.
//
// Host: a removed service's next CONNECT is refused like any unknown name; a changed one's next
// CONNECT dials its new address. Client: a removed forward's listeners close (accepted connections
// go on); a new one is first checked with a plain listen (as at start-up: reusePort would silently
// share a port another process holds), then every shard listens; a kept address whose service
// changed sends its next connections to the new service without closing its listener (no gap).

import net from 'node:net';
import { listenError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { Forward, Service } from '../shared/thread-messages.js';
import type { DataPlane } from './data-plane.js';

export interface Diff<T> { added: T[]; removed: T[]; changed: { from: T; to: T }[] }

export function diffByKey<T>(from: T[], to: T[], key: (x: T) => string, same: (a: T, b: T) => boolean): Diff<T> {
  const before = new Map(from.map((x) => [key(x), x]));
  const after = new Map(to.map((x) => [key(x), x]));
  const diff: Diff<T> = { added: [], removed: [], changed: [] };
  for (const [k, x] of after) {
    const old = before.get(k);
    if (old === undefined) diff.added.push(x);
    else if (!same(old, x)) diff.changed.push({ from: old, to: x });
  }
  for (const [k, x] of before) if (!after.has(k)) diff.removed.push(x);
  return diff;
}

export const isEmpty = (d: Diff<unknown>) => d.added.length + d.removed.length + d.changed.length === 0;

type Named = { name: string } & Service;
const named = (services: Record<string, Service>): Named[] => Object.entries(services).map(([name, s]) => ({ name, ...s }));
const address = (x: { host: string; port: number }) => `${x.host.includes(':') ? `[${x.host}]` : x.host}:${x.port}`;

/** Host: the services its shards may dial from now on. */
export function changeServices(plane: DataPlane, from: Record<string, Service>, to: Record<string, Service>, log: Logger): Diff<Named> {
  const diff = diffByKey(named(from), named(to), (s) => s.name, (a, b) => a.host === b.host && a.port === b.port);
  if (isEmpty(diff)) return diff;
  plane.setServices(to);
  for (const s of diff.added) log.info('service added', { service: s.name, target: address(s) });
  for (const s of diff.removed) log.info('service removed: no new streams; open ones go on', { service: s.name });
  for (const { from: a, to: b } of diff.changed) log.info('service changed: new streams go to the new address; open ones go on', { service: b.name, was: address(a), now: address(b) });
  return diff;
}

/** Client: the forwards its shards listen on from now on. Rejects (changing nothing) when a new
 *  forward's port is taken. */
export async function changeForwards(plane: DataPlane, from: Forward[], to: Forward[], log: Logger): Promise<Diff<Forward>> {
  const diff = diffByKey(from, to, address, (a, b) => a.service === b.service);
  if (isEmpty(diff)) return diff;
  for (const f of diff.added) await checkPortFree(f);
  try {
    await plane.setForwards(to);
  } catch (err) {
    await plane.setForwards(from).catch(() => {}); // a shard could not listen after all: back to what was
    throw err;
  }
  for (const f of diff.added) log.info(`forwarding ${address(f)} -> ${f.service}`);
  for (const f of diff.removed) log.info('forward removed: no new connections; open ones go on', { address: address(f), service: f.service });
  for (const { from: a, to: b } of diff.changed) log.info('forward changed: new connections go to the new service; open ones go on', { address: address(b), was: a.service, now: b.service });
  return diff;
}

/** A plain (non-reusePort) listen from the main thread: reusePort would silently share a port that
 *  another process holds, so "in use" is detected here first. */
export function checkPortFree(forward: Forward): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(forward.host, forward.port, err)));
    server.listen({ host: forward.host, port: forward.port, exclusive: true }, () => server.close(() => resolve()));
  });
}
