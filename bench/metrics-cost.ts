// What the metrics cost (tunnel bench --metrics-cost): the same bulk and churn measurements on a tunnel
// without metrics and on one started with `--metrics 127.0.0.1:0` whose /metrics endpoints (host and
// client) are scraped once a second throughout, as Prometheus would. Both in one run, alternating which
// goes first from run to run, each on a fresh pair of processes; figures are medians of --runs runs,
// with their run-to-run spread beside them (read the on/off ratio against it).

import { startApps, startTunnel, bulk, churn, serviceIdle, type Apps, type Tunnel } from './tunnel.js';
import { median } from './stats.js';
import { describeMachine, machineLine } from './machine.js';
import { readLimits, cpuMs } from './proc.js';

/** How often the scraper reads /metrics (ms): a common Prometheus scrape interval is 15 s, 1 s is harsh. */
const SCRAPE_INTERVAL_MS = 1000;
/** The idle measurement: host + client CPU while nothing moves (ms), with or without the scrapes. CPU
 *  time, unlike throughput, barely depends on what else the machine runs. */
const IDLE_MS = 8000;

export interface MetricsCostOptions {
  runs: number;
  workers: number[];
  streams: number[];
  bytes: number;
  scenarios: string[];
  churnTotal: number;
  churnInflight: number;
  tunnelArgs: string[];
}

type Variant = 'off' | 'on';
interface Cell { label: string; unit: string; workers: number; values: Record<Variant, number[]> }

/** Scrapes both endpoints every second until stopped; counts scrapes and their time. */
function startScraper(t: Tunnel): { stop(): { scrapes: number; failures: number; meanMs: number } } {
  let scrapes = 0;
  let failures = 0;
  let totalMs = 0;
  const urls = t.metrics ? [t.metrics.host, t.metrics.client] : [];
  const timer = setInterval(() => {
    for (const url of urls) {
      const started = performance.now();
      fetch(url).then((res) => res.text().then(() => {
        if (res.status === 200) { scrapes++; totalMs += performance.now() - started; } else failures++;
      })).catch(() => { failures++; });
    }
  }, SCRAPE_INTERVAL_MS);
  return { stop: () => { clearInterval(timer); return { scrapes, failures, meanMs: scrapes ? totalMs / scrapes : Number.NaN }; } };
}

export async function metricsCost(o: MetricsCostOptions): Promise<number> {
  process.stdout.write(`${machineLine(describeMachine(readLimits('self')))}\n`);
  process.stdout.write(`metrics cost: workers ${o.workers.join(',')}; ${o.runs} run(s), median; bulk ${o.bytes / 1e6} MB over ${o.streams.join('/')} streams each way; `
    + `churn ${o.churnTotal} x ${o.churnInflight} in flight; 'on' = --metrics 127.0.0.1:0 on both processes, both scraped every ${SCRAPE_INTERVAL_MS} ms\n`);
  const cells = new Map<string, Cell>();
  const record = (label: string, unit: string, workers: number, variant: Variant, value: number) => {
    const k = `${label}|${workers}`;
    let cell = cells.get(k);
    if (!cell) cells.set(k, (cell = { label, unit, workers, values: { off: [], on: [] } }));
    cell.values[variant].push(value);
  };
  const errors: string[] = [];
  const scrapeStats: { scrapes: number; failures: number; meanMs: number }[] = [];
  const apps = await startApps();
  try {
    for (let run = 1; run <= o.runs; run++) {
      for (const workers of o.workers) {
        const order: Variant[] = run % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
        for (const variant of order) {
          const tag = `[run ${run}/${o.runs}, workers ${workers}, metrics ${variant}]`;
          process.stderr.write(`${tag} starting host + client\n`);
          let t: Tunnel | null = null;
          let scraper: ReturnType<typeof startScraper> | null = null;
          try {
            t = await startTunnel(workers, apps, 0, {}, [...o.tunnelArgs, ...(variant === 'on' ? ['--metrics', '127.0.0.1:0'] : [])]);
            if (variant === 'on') scraper = startScraper(t);
            await measure(apps, t, o, workers, variant, tag, record);
          } catch (err) {
            errors.push(`${tag} ${(err as Error).message}`);
          } finally {
            if (scraper) scrapeStats.push(scraper.stop());
            await t?.close();
            await serviceIdle(apps, 10000).catch(() => false);
          }
        }
      }
    }
  } finally {
    await apps.close();
  }
  process.stdout.write(`\n${renderCost([...cells.values()], o.runs)}`);
  const scrapes = scrapeStats.reduce((n, s) => n + s.scrapes, 0);
  const failures = scrapeStats.reduce((n, s) => n + s.failures, 0);
  process.stdout.write(`scrapes while measuring: ${scrapes} answered (${failures} failed), median time to answer ${median(scrapeStats.map((s) => s.meanMs)).toFixed(1)} ms\n`);
  if (errors.length) process.stdout.write(`\n${errors.length} measurement(s) failed:\n${errors.map((e) => `  ${e}`).join('\n')}\n`);
  process.stdout.write(`${JSON.stringify({ metricsCost: [...cells.values()], scrapes, failures })}\n`);
  return errors.length ? 1 : 0;
}

async function measure(apps: Apps, t: Tunnel, o: MetricsCostOptions, workers: number, variant: Variant, tag: string,
  record: (label: string, unit: string, workers: number, variant: Variant, value: number) => void): Promise<void> {
  if (o.scenarios.includes('bulk')) {
    for (const dir of ['up', 'down'] as const) {
      for (const streams of o.streams) {
        process.stderr.write(`${tag} ${dir === 'up' ? 'upload' : 'download'}, ${streams} stream(s)\n`);
        const f = await bulk(apps, t, dir, streams, o.bytes, 60000);
        if (!f.ok) throw new Error(`bulk ${dir} ${streams}: ${f.error ?? 'failed'}`);
        const name = `${dir === 'up' ? 'upload' : 'download'}, ${streams} stream${streams === 1 ? '' : 's'}`;
        record(name, 'MB/s', workers, variant, f.mbps);
        record(`CPU, ${name}`, 'ms/MB', workers, variant, f.cpuMsPerMB);
      }
    }
  }
  process.stderr.write(`${tag} idle for ${IDLE_MS / 1000} s\n`);
  const cpu0 = cpuMs(t.host.pid) + cpuMs(t.client.pid);
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
  record('idle tunnel: host + client CPU', 'ms/s', workers, variant, (cpuMs(t.host.pid) + cpuMs(t.client.pid) - cpu0) / (IDLE_MS / 1000));
  if (o.scenarios.includes('churn')) {
    process.stderr.write(`${tag} churn\n`);
    const c = await churn(apps, t, 1024, o.churnTotal, o.churnInflight, 30000);
    if (!c.ok) throw new Error(`churn: ${c.error ?? 'failed'}`);
    record(`churn, ${o.churnInflight} in flight`, 'conn/s', workers, variant, c.perS);
    record('CPU per churned connection', 'µs', workers, variant, c.cpuUsPerConn);
    await serviceIdle(apps, 10000);
  }
}

function renderCost(cells: Cell[], runs: number): string {
  const spread = (v: number[]) => (v.length > 1 ? `${((100 * (Math.max(...v) - Math.min(...v))) / median(v)).toFixed(0)} %` : '-');
  const fmt = (x: number, unit: string) => (Number.isNaN(x) ? '-' : unit === 'ms/MB' || unit === 'ms/s' ? x.toFixed(2) : unit === 'MB/s' ? x.toFixed(1) : x.toFixed(0));
  const header = ['scenario', 'unit', 'w', 'off', 'on', 'on/off', 'spread off', 'spread on'];
  const rows = cells.map((c) => {
    const off = median(c.values.off);
    const on = median(c.values.on);
    return [c.label, c.unit, String(c.workers), fmt(off, c.unit), fmt(on, c.unit), Number.isNaN(on / off) ? '-' : (on / off).toFixed(3), spread(c.values.off), spread(c.values.on)];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return `${[line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')}\n`
    + `medians of ${runs} run(s); on/off > 1 is faster with metrics for MB/s and conn/s, slower for CPU; spread = (max - min) / median over the runs; `
    + `idle: CPU of both processes per second of doing nothing (with 'on', one scrape of each per second)\n`;
}
