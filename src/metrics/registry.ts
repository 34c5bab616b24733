// The Prometheus metrics of one side (prom-client). Nothing here runs per packet: the shards count in
// plain fields (workers/service-counters.ts), and each scrape reads one stats round from the data
// plane (every collect() of the scrape shares it) and sets the metrics from it. README, "Metrics",
// lists every metric; a test parses the exposition with a real text-format parser.
//
// Labels stay low in cardinality: service names (from the configuration; a host's stream that named
// no exposed service is service="(none)", never the name the peer sent), reset reason codes, shard
// indexes, the path kind. Never a socket id, a peer number or an address.

import type { OutageCounters } from '../dataplane/outages.js';
import client from 'prom-client';
import type { ServiceStats, ShardStats } from '../shared/thread-messages.js';
import type { DataPlaneStats } from '../dataplane/data-plane.js';
import type { SessionPath } from '../webrtc/path.js';
import type { GuardCounts } from '../signaling/guard.js';
import { createAggregator, type Totals } from './aggregate.js';

/** What one side reports at a scrape. */
export interface SideStats extends DataPlaneStats {
  peers: number;
  paths: (SessionPath | null)[];
  /** host only */
  pin?: GuardCounts;
  /** resumes after a lost path (both sides) */
  outages?: OutageCounters;
}

export interface MetricsSource {
  side: 'host' | 'client';
  version: string;
  stats(): Promise<SideStats>;
}

/** The label of streams that named no exposed service (host). */
export const NO_SERVICE_LABEL = '(none)';

/** A scrape's collect() calls share one stats round for this long (ms). */
const SNAPSHOT_TTL_MS = 250;

export interface Metrics {
  registry: client.Registry;
  /** A configuration reload was tried. */
  reloaded(ok: boolean): void;
}

export function createMetrics(source: MetricsSource): Metrics {
  const registry = new client.Registry();
  // the main thread's event-loop histogram samples every 100 ms, not prom-client's 10: each sample wakes
  // the thread, and an idle tunnel paid ~1 ms CPU per second for it (a stall still shows in full)
  client.collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  // gauges named like counters: against the naming conventions (promtool lints them); the same
  // figures stay without the suffix (nodejs_active_handles, ...)
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  const aggregator = createAggregator();
  let cached: { at: number; round: Promise<{ stats: SideStats; totals: Totals }> } | null = null;

  /** The scrape's stats round (one per scrape, whichever metric asks first). */
  function round(): Promise<{ stats: SideStats; totals: Totals }> {
    const now = Date.now();
    if (!cached || now - cached.at > SNAPSHOT_TTL_MS) {
      cached = { at: now, round: source.stats().then((stats) => ({ stats, totals: aggregator.update(stats.shards) })) };
    }
    return cached.round;
  }

  const registers = [registry];
  const label = (service: string) => (service === '' ? NO_SERVICE_LABEL : service);

  /** A metric set from the scrape's round; `fill` sets its values. */
  function gauge(name: string, help: string, labelNames: string[], fill: (g: client.Gauge, r: { stats: SideStats; totals: Totals }) => void): void {
    new client.Gauge({ name, help, labelNames, registers, async collect() { const r = await round(); this.reset(); fill(this, r); } });
  }
  function counter(name: string, help: string, labelNames: string[], fill: (c: client.Counter, r: { stats: SideStats; totals: Totals }) => void): void {
    new client.Counter({ name, help, labelNames, registers, async collect() { const r = await round(); this.reset(); fill(this, r); } });
  }
  const perService = (pick: (s: ServiceStats) => number) => (m: client.Counter | client.Gauge, r: { totals: Totals }) => {
    for (const [name, s] of r.totals.services) m.inc({ service: label(name) }, pick(s));
  };
  const perServiceCode = (pick: (s: ServiceStats) => Record<string, number>) => (m: client.Counter, r: { totals: Totals }) => {
    for (const [name, s] of r.totals.services) for (const [reason, n] of Object.entries(pick(s))) m.inc({ service: label(name), reason }, n);
  };

  new client.Gauge({ name: 'tunnel_build_info', help: 'Always 1; the labels say which tunnel this is.', labelNames: ['version', 'side'], registers })
    .set({ version: source.version, side: source.side }, 1);

  // ---- peers and the path ----
  const pathOf = (p: SessionPath | null) => (!p ? 'unknown' : p.kind === 'websocket' ? 'websocket' : p.relayed ? 'relayed' : 'direct');
  gauge('tunnel_peers', 'Peers connected (with an open DataChannel), by the path ICE selected: direct, relayed (TURN) or unknown.', ['path'], (g, { stats }) => {
    for (const path of ['direct', 'relayed']) g.set({ path }, 0);
    for (const p of stats.paths) g.inc({ path: pathOf(p) });
  });
  gauge('tunnel_peer_rtt_seconds', 'Round-trip time of the selected ICE pair, by path; with several peers on one path, the largest.', ['path'], (g, { stats }) => {
    const worst = new Map<string, number>();
    for (const p of stats.paths) if (p?.rttMs != null) worst.set(pathOf(p), Math.max(worst.get(pathOf(p)) ?? 0, p.rttMs / 1000));
    for (const [path, s] of worst) g.set({ path }, s);
  });

  counter('tunnel_resumes_total', 'Outages (a lost path) after which the peer came back and its streams resumed.', [], (c, { stats }) => c.inc(stats.outages?.resumes ?? 0));
  counter('tunnel_resume_expired_total', 'Outages that outlasted --resume-timeout: their streams were reset.', [], (c, { stats }) => c.inc(stats.outages?.expired ?? 0));
  counter('tunnel_outage_seconds_total', 'Seconds spent in outages that ended (resumed or expired).', [], (c, { stats }) => c.inc(stats.outages?.outageSeconds ?? 0));

  // ---- streams, per service ----
  gauge('tunnel_streams_open', 'Streams open now, by service.', ['service'], perService((s) => s.open));
  counter('tunnel_streams_opened_total', 'Streams opened, by service.', ['service'], perService((s) => s.opened));
  counter('tunnel_streams_closed_total', 'Streams closed cleanly (both directions finished), by service.', ['service'], perService((s) => s.closed));
  counter('tunnel_streams_reset_total', 'Streams reset, by service and reason code.', ['service', 'reason'], perServiceCode((s) => s.reset));
  counter('tunnel_stream_received_bytes_total', 'Stream bytes received from the peer and written to local TCP connections, by service.', ['service'], perService((s) => s.bytesIn));
  counter('tunnel_stream_sent_bytes_total', 'Stream bytes read from local TCP connections and sent to the peer, by service.', ['service'], perService((s) => s.bytesOut));
  counter('tunnel_dials_refused_total', 'Streams whose service could not be reached, by service and reason: UNKNOWN_SERVICE, DIAL_FAILED, TOO_MANY_STREAMS (client: as the host answered).', ['service', 'reason'], (c, r) => {
    perServiceCode((s) => s.refused)(c, r);
    if (source.side === 'host' && r.stats.dispatcher.refused > 0) c.inc({ service: NO_SERVICE_LABEL, reason: 'TOO_MANY_STREAMS' }, r.stats.dispatcher.refused);
  });

  // ---- the PIN (host) ----
  if (source.side === 'host') {
    counter('tunnel_pin_failures_total', 'Signaling attempts that failed the PIN (wrong, or ended without a verdict).', [], (c, { stats }) => c.inc(stats.pin?.failures ?? 0));
    counter('tunnel_pin_lockouts_total', 'Lockouts begun, of one address or of everyone (the global budget).', [], (c, { stats }) => c.inc(stats.pin?.lockouts ?? 0));
    counter('tunnel_pin_refused_total', 'Signaling attempts turned away by a lockout or the guess budget, before any PIN check.', [], (c, { stats }) => c.inc(stats.pin?.refused ?? 0));
  }

  // ---- the DataChannel ----
  gauge('tunnel_datachannel_buffered_bytes', 'Bytes waiting in the DataChannels (libdatachannel bufferedAmount), all peers.', [], (g, { stats }) => g.set(stats.bufferedBytes));
  gauge('tunnel_dispatcher_queued_bytes', 'Bytes queued by the dispatcher above the DataChannel high-water mark, all peers.', [], (g, { stats }) => g.set(stats.queuedBytes));
  counter('tunnel_datachannel_received_bytes_total', 'Bytes of DataChannel messages received.', [], (c, { stats }) => c.inc(stats.dispatcher.bytesIn));
  counter('tunnel_datachannel_sent_bytes_total', 'Bytes of DataChannel messages sent.', [], (c, { stats }) => c.inc(stats.dispatcher.bytesOut));
  counter('tunnel_datachannel_received_messages_total', 'DataChannel messages received.', [], (c, { stats }) => c.inc(stats.dispatcher.messagesIn));
  counter('tunnel_datachannel_sent_messages_total', 'DataChannel messages sent.', [], (c, { stats }) => c.inc(stats.dispatcher.messagesOut));
  counter('tunnel_datachannel_copies_total', 'Small interactive DATA messages sent a second time over an idle lane (paths of 5 ms or more).', [], (c, { stats }) => c.inc(stats.dispatcher.copiesOut));
  counter('tunnel_packets_dropped_total', 'Packets dropped quietly: late for a closed stream, unroutable, or too short to route.', [], (c, { stats, totals }) => c.inc(stats.dispatcher.dropped + totals.lateDropped));

  // ---- shards ----
  const shardGauge = (name: string, help: string, pick: (s: ShardStats) => number) => gauge(name, help, ['shard'], (g, { totals }) => {
    totals.shards.forEach((s, i) => { if (s) g.set({ shard: String(i) }, pick(s)); });
  });
  shardGauge('tunnel_shard_streams', 'Streams open in each shard (worker thread; shard 0 is the main thread with --workers 0).', (s) => s.streams);
  shardGauge('tunnel_shard_event_loop_lag_p99_seconds', "99th percentile of each shard's event-loop delay since the previous scrape.", (s) => s.loopDelay.p99Ms / 1000);
  shardGauge('tunnel_shard_event_loop_lag_max_seconds', "Largest event-loop delay of each shard since the previous scrape.", (s) => s.loopDelay.maxMs / 1000);
  gauge('tunnel_shards_answering', 'Shards that answered this scrape\'s stats request in time (1 s); fewer than the workers means one is stuck or restarting.', [], (g, { stats }) => g.set(stats.shards.filter((s) => s !== null).length));
  counter('tunnel_worker_restarts_total', 'Worker threads restarted after a crash.', [], (c, { stats }) => c.inc(stats.workerRestarts));

  // ---- configuration reloads ----
  const reloads = new client.Counter({ name: 'tunnel_config_reloads_total', help: 'Configuration reloads (SIGHUP), by result: success or failure (the old configuration stays).', labelNames: ['result'], registers });
  const lastOk = new client.Gauge({ name: 'tunnel_config_last_reload_successful', help: '1 if the last reload succeeded (or none was tried), 0 if it failed.', registers });
  const lastOkAt = new client.Gauge({ name: 'tunnel_config_last_reload_success_timestamp_seconds', help: 'When the configuration was last loaded successfully (start or reload), Unix time.', registers });
  reloads.inc({ result: 'success' }, 0);
  reloads.inc({ result: 'failure' }, 0);
  lastOk.set(1);
  lastOkAt.set(Date.now() / 1000);

  return {
    registry,
    reloaded(ok) {
      reloads.inc({ result: ok ? 'success' : 'failure' });
      lastOk.set(ok ? 1 : 0);
      if (ok) lastOkAt.set(Date.now() / 1000);
    },
  };
}
