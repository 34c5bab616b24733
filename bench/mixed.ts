// The mixed scenario (tunnel bench --mixed): 8 bulk downloads alone, then the same 8 beside one
// more download whose reader takes ~1 MiB/s. Flow control must keep the slow stream from holding up
// the others: the bulk streams should keep >= 70% of what they get alone. Host and client run as
// separate processes; each figure is the median of --runs runs; the peak RSS of both is reported.

import { startApps, startTunnel, bulk } from './tunnel.js';
import { rssKiB } from './proc.js';

const SLOW_BYTES_PER_SECOND = 1024 * 1024;
const STREAMS = 8;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

export async function mixed(options: { runs: number; workers: number; bytes: number; tunnelArgs: string[] }): Promise<number> {
  const apps = await startApps();
  const alone: number[] = [];
  const beside: number[] = [];
  const peakRss = { host: 0, client: 0 };
  try {
    const t = await startTunnel(options.workers, apps, 0, {}, options.tunnelArgs);
    const sample = setInterval(() => {
      peakRss.host = Math.max(peakRss.host, rssKiB(t.host.pid));
      peakRss.client = Math.max(peakRss.client, rssKiB(t.client.pid));
    }, 100);
    try {
      for (let run = 1; run <= options.runs; run++) {
        process.stderr.write(`[mixed ${run}/${options.runs}] 8 streams alone\n`);
        alone.push((await bulk(apps, t, 'down', STREAMS, options.bytes, 60000)).mbps);
        process.stderr.write(`[mixed ${run}/${options.runs}] 8 streams beside a 1 MiB/s reader\n`);
        beside.push((await bulk(apps, t, 'down', STREAMS, options.bytes, 60000, SLOW_BYTES_PER_SECOND)).mbps);
      }
    } finally {
      clearInterval(sample);
      await t.close();
    }
  } finally {
    await apps.close();
  }
  const a = median(alone);
  const b = median(beside);
  const result = { workers: options.workers, streams: STREAMS, aloneMBps: a, besideSlowReaderMBps: b, ratio: b / a, peakRssKiB: peakRss, runs: options.runs };
  process.stdout.write(`mixed (--workers ${options.workers}, median of ${options.runs}): 8 downloads alone ${a.toFixed(1)} MB/s; beside a 1 MiB/s reader ${b.toFixed(1)} MB/s = ${(b / a).toFixed(2)} x (target >= 0.70)\n`);
  process.stdout.write(`peak RSS: host ${(peakRss.host / 1024).toFixed(1)} MiB, client ${(peakRss.client / 1024).toFixed(1)} MiB\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return b / a >= 0.7 ? 0 : 1;
}
