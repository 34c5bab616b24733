// A side as the CLI runs it, for minutes or for weeks: the host or client itself, and around it what
// a service manager and a monitoring system need — the metrics endpoint, SIGHUP reloads, a PID file,
// the banner (plain lines on stdout, or JSON records with --log-format json), the status line on a
// terminal, and a clean stop on SIGINT/SIGTERM.

import { writeFileSync, rmSync } from 'node:fs';
import { startHost } from '../host.js';
import { startClient } from '../client.js';
import { tunnelError } from '../errors.js';
import { createLogger, type Logger } from '../shared/log.js';
import { releaseDataChannelLibrary } from '../webrtc/peer.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { createMetrics, type MetricsSource } from '../metrics/registry.js';
import { VERSION } from '../version.js';
import { startStatusLine } from './status-line.js';
import { readFlagFile } from './flags.js';
import { createReloader, type Reloadable } from './reload.js';
import type { Said, Settings } from './settings.js';
import type { DataPlaneConfig } from '../shared/limits.js';
import type { SideOptions } from '../options.js';
import { describePath, shortPath } from '../webrtc/path.js';
import type { PeerInfo } from '../host.js';

/** What both sides pass startHost / startClient from their settings. */
function sideOptions(settings: Settings, log: Logger): SideOptions {
  // a window given is fixed: it starts at that size and does not grow
  const window: Partial<DataPlaneConfig> = settings.window === undefined ? {} : { windowBytes: settings.window, initialWindowBytes: settings.window };
  return {
    workers: settings.workers,
    iceServers: settings.iceServers, iceBind: settings.iceBind, iceRelayOnly: settings.iceRelayOnly, icePortRange: settings.icePortRange,
    fallback: settings.fallback,
    mtu: settings.mtu,
    lanes: settings.lanes,
    logLevel: settings.logLevel, logFormat: settings.logFormat, log, measureLoop: settings.metrics !== undefined,
    config: { ...window, keepaliveMs: settings.keepalive, peerTimeoutMs: 5 * settings.keepalive, resumeTimeoutMs: settings.resumeTimeout },
  };
}

/** The host's status-line paths: how many clients take each kind ("direct/host 2, websocket 1"). */
function hostPaths(peers: PeerInfo[]): string {
  const count = new Map<string, number>();
  for (const p of peers) count.set(shortPath(p.path), (count.get(shortPath(p.path)) ?? 0) + 1);
  return [...count].map(([kind, n]) => `${kind} ${n}`).join(', ') || '-';
}

/** What the banner says: stdout lines for a person, or log records with --log-format json. */
function bannerFor(settings: Settings, log: Logger): (line: string, msg: string, fields?: Record<string, unknown>) => void {
  return settings.logFormat === 'json' ? (_line, msg, fields) => log.info(msg, fields) : (line) => process.stdout.write(`${line}\n`);
}

/** Runs until SIGINT/SIGTERM; a second signal exits at once. */
function untilSignal(close: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = () => {
      if (stopping) process.exit(130);
      stopping = true;
      const force = setTimeout(() => process.exit(0), 2000);
      force.unref();
      close().finally(() => {
        releaseDataChannelLibrary();
        resolve(0);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** The parts both sides share around the tunnel itself. */
async function frame(settings: Settings, flags: Said, log: Logger) {
  // SIGHUP's default ends the process: take it over before anything starts
  let onHup: () => void = () => log.warn('SIGHUP before start-up finished: ignored');
  const hup = () => onHup();
  process.on('SIGHUP', hup);
  let server: MetricsServer | null = null;
  if (settings.metrics) server = await startMetricsServer(settings.metrics.host, settings.metrics.port, log);
  return {
    server,
    /** Once started: metrics, reloads, the PID file. Returns what closing needs done. */
    started(source: MetricsSource, health: () => { ok: boolean; body: Record<string, unknown> }, side: Reloadable, say: ReturnType<typeof bannerFor>): () => Promise<void> {
      const metrics = server ? createMetrics(source) : null;
      if (server && metrics) {
        server.serve(metrics, health);
        say(`metrics on ${server.url}/metrics (health: ${server.url}/healthz)`, 'metrics listening', { url: `${server.url}/metrics` });
      }
      const reloader = createReloader(settings, flags, side, log, (ok) => metrics?.reloaded(ok));
      onHup = () => {
        log.info('SIGHUP: reading the configuration again');
        void reloader.reload();
      };
      if (settings.pidFile) {
        try {
          writeFileSync(settings.pidFile, `${process.pid}\n`);
        } catch (err) {
          log.warn('cannot write the PID file', { path: settings.pidFile, error: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
        }
      }
      return async () => {
        process.off('SIGHUP', hup);
        if (settings.pidFile) rmSync(settings.pidFile, { force: true });
        await server?.close();
      };
    },
    async abort(): Promise<void> {
      process.off('SIGHUP', hup);
      await server?.close();
    },
  };
}

export async function runHost(settings: Settings, flags: Said): Promise<number> {
  const log = createLogger('host', settings.logLevel, undefined, settings.logFormat);
  const say = bannerFor(settings, log);
  const tls = settings.tls ? { cert: readFlagFile(settings.tls.cert, 'tls-cert'), key: readFlagFile(settings.tls.key, 'tls-key') } : undefined;
  const f = await frame(settings, flags, log);
  let handle: Awaited<ReturnType<typeof startHost>>;
  try {
    handle = await startHost({
      ...sideOptions(settings, log),
      tls, pin: settings.pin?.value, services: settings.services, listen: settings.listen,
      rendezvous: settings.rendezvous, rendezvousId: settings.rendezvousId,
      onPeer: (p) => say(`client ${p.peer} from ${p.address}: path: ${describePath(p.path)}`, 'client path', { peer: p.peer, address: p.address, path: describePath(p.path) }),
    });
  } catch (err) {
    await f.abort();
    throw err;
  }
  if (handle.url) {
    say(`tunnel host listening on ${handle.url}`, 'listening', { url: handle.url });
    if (settings.pin === undefined) say(`PIN: ${handle.pin} (generated; pass --pin or --pin-file to choose one)`, 'PIN generated (pass --pin-file to choose one)', { pin: handle.pin });
    else if (settings.logFormat === 'text') say(`PIN: ${handle.pin}`, '');
  }
  if (handle.code) {
    say(`tunnel host registered at the rendezvous relay ${settings.rendezvous ?? ''}`, 'registered', { relay: settings.rendezvous });
    say(`code: ${handle.code}`, 'code', { code: handle.code });
  }
  for (const [name, s] of Object.entries(settings.services)) say(`exposing ${name} -> ${s.host}:${s.port}`, 'exposing', { service: name, target: `${s.host}:${s.port}` });
  const closeFrame = f.started(
    { side: 'host', version: VERSION, stats: () => handle.stats() },
    () => (handle.listening()
      ? { ok: true, body: { status: 'ok', side: 'host', listening: handle.url || undefined, registered: handle.code !== undefined || undefined, peers: handle.peers() } }
      : { ok: false, body: { status: 'unavailable', side: 'host', reason: 'shutting down' } }),
    handle, say,
  );
  const stopStatus = settings.quiet ? () => {} : startStatusLine({ ...handle, path: () => hostPaths(handle.paths()) });
  return untilSignal(async () => { stopStatus(); await handle.close(); await closeFrame(); });
}

export async function runClient(settings: Settings, flags: Said): Promise<number> {
  const log = createLogger('client', settings.logLevel, undefined, settings.logFormat);
  const say = bannerFor(settings, log);
  const pin = settings.pin?.value;
  if (pin === undefined && settings.code === undefined) throw tunnelError('BAD_FLAG', 'the host\'s PIN is needed');
  const ca = settings.ca ? readFlagFile(settings.ca, 'ca') : undefined;
  const f = await frame(settings, flags, log);
  let fatal: (code: number) => void = () => {};
  let handle: Awaited<ReturnType<typeof startClient>>;
  try {
    handle = await startClient({
      ...sideOptions(settings, log),
      ca, connect: settings.connect, pin, forwards: settings.forwards,
      rendezvous: settings.rendezvous !== undefined && settings.code !== undefined ? { url: settings.rendezvous, code: settings.code.value } : undefined,
      onReconnect: (path) => say(`path: ${describePath(path)}`, 'path', { path: describePath(path) }),
      onFatal: (err) => {
        if (settings.logFormat === 'json') log.error(err.message, { code: err.code });
        else process.stderr.write(`tunnel client: ${err.message}\n`);
        fatal(1);
      },
    });
  } catch (err) {
    await f.abort();
    throw err;
  }
  say(`path: ${describePath(handle.path())}`, 'path', { path: describePath(handle.path()) });
  for (const fw of settings.forwards) say(`forwarding ${fw.host}:${fw.port} -> ${fw.service}`, 'forwarding', { listen: `${fw.host}:${fw.port}`, service: fw.service });
  const closeFrame = f.started(
    { side: 'client', version: VERSION, stats: () => handle.stats() },
    () => (handle.connected()
      ? { ok: true, body: { status: 'ok', side: 'client', connected: true, forwards: handle.forwards().length } }
      : { ok: false, body: { status: 'unavailable', side: 'client', reason: 'not connected to the host (reconnecting)' } }),
    handle, say,
  );
  const stopStatus = settings.quiet ? () => {} : startStatusLine({ stats: () => handle.stats(), peers: () => (handle.connected() ? 1 : 0), path: () => (handle.reconnecting() ? 'reconnecting' : shortPath(handle.path(), true)) });
  const close = async () => { stopStatus(); await handle.close(); await closeFrame(); };
  return Promise.race([
    untilSignal(close),
    new Promise<number>((resolve) => {
      fatal = (code) => void close().finally(() => { releaseDataChannelLibrary(); resolve(code); });
    }),
  ]);
}
