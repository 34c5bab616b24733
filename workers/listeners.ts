// Client side of a shard: it listens on every forward with reusePort (the kernel spreads accepted
// connections over the shards), gives each connection a stream id, and holds connections accepted
// while no host is connected until one is (bounded in count and time).
//
// A reload hands it the new set of forwards: it stops listening on the ones gone (server.close()
// stops accepting; the connections it accepted, streams or waiting, go on untouched), starts on the
// new ones, and a kept one whose service changed sends its next connections to the new service.

import net from 'node:net';
import { streamIdFor, nextStreamId, ID_HASH_MASK } from '../src/shared/stream-id.js';
import type { Forward, ShardLink } from '../src/shared/thread-messages.js';
import type { Logger } from '../src/shared/log.js';

const addressOf = (f: Forward) => `${f.host}:${f.port}`;

/** Connections accepted while no peer is up, per shard; past it new ones are closed at once. */
const MAX_WAITING_CONNECTIONS = 1024;

export interface ListenerEnv {
  index: number;
  forwards: Forward[];
  /** how long a connection accepted during an outage waits for the host (ms) */
  outageWaitMs: number;
  link: ShardLink;
  log: Logger;
  /** a host is connected */
  peerUp(): boolean;
  /** this id may not be given out: a stream holds it, or it is quarantined */
  idTaken(id: number): boolean;
  /** the connection becomes a stream */
  open(socket: net.Socket, streamId: number, service: string): void;
}

export function startListeners(env: ListenerEnv) {
  const { index, log } = env;
  /** by listen address; `forward` is replaced in place when only its service changes */
  const servers = new Map<string, { server: net.Server; forward: Forward }>();
  const waiting = new Map<net.Socket, () => void>();
  let stopping = false;

  function accept(socket: net.Socket, service: string): void {
    if (stopping) {
      socket.destroy();
      return;
    }
    if (!env.peerUp()) {
      wait(socket, service);
      return;
    }
    let id = streamIdFor(index, socket.remoteAddress ?? '', socket.remotePort ?? 0, socket.localAddress ?? '', socket.localPort ?? 0);
    // linear probing past ids still in use or quarantined; the shard index stays in the top bits
    for (let i = 0; env.idTaken(id); i++) {
      if (i > ID_HASH_MASK) {
        log.error('stream id space exhausted');
        socket.destroy();
        return;
      }
      id = nextStreamId(id);
    }
    env.open(socket, id, service);
  }

  function wait(socket: net.Socket, service: string): void {
    if (waiting.size >= MAX_WAITING_CONNECTIONS) {
      log.warn('no peer: connection closed', { service });
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => {
      waiting.delete(socket);
      log.warn('no peer within the wait: connection closed', { service, waitedMs: env.outageWaitMs });
      socket.destroy();
    }, env.outageWaitMs);
    socket.once('close', () => { waiting.delete(socket); clearTimeout(timer); });
    waiting.set(socket, () => {
      clearTimeout(timer);
      waiting.delete(socket);
      if (!socket.destroyed) accept(socket, service);
    });
  }

  function listen(forward: Forward): void {
    const entry = { server: net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => accept(socket, entry.forward.service)), forward };
    entry.server.on('error', (err) => env.link.post({ t: 'listening', forward, error: err.message }));
    entry.server.listen({ host: forward.host, port: forward.port, reusePort: true }, () => env.link.post({ t: 'listening', forward }));
    servers.set(addressOf(forward), entry);
  }

  /** The forwards from now on. */
  function update(forwards: Forward[]): void {
    if (stopping) return;
    const next = new Map(forwards.map((f) => [addressOf(f), f]));
    for (const [address, entry] of servers) {
      if (next.has(address)) continue;
      entry.server.close();
      servers.delete(address);
      log.info('stopped listening (forward removed)', { address, service: entry.forward.service });
    }
    for (const [address, forward] of next) {
      const entry = servers.get(address);
      if (!entry) listen(forward);
      else entry.forward = forward;
    }
  }

  for (const forward of env.forwards) listen(forward);

  return {
    /** A host is up: the connections that waited for it become streams. */
    peerUp(): void {
      for (const start of [...waiting.values()]) start();
    },
    update,
    stop(): void {
      stopping = true;
      for (const { server } of servers.values()) server.close();
      for (const socket of waiting.keys()) socket.destroy();
    },
  };
}
