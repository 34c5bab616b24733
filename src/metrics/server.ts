// The metrics endpoint (`--metrics ADDR:PORT`): GET /metrics in Prometheus text format, and
// GET /healthz for a container or systemd check: 200 while this side serves (host: its signaling
// server listens; client: connected to the host), 503 otherwise, each with a one-line JSON reason.
// Off by default; the CLI binds it to 127.0.0.1 unless told another address.

import http from 'node:http';
import { listenError } from '../errors.js';
import type { Logger } from '../shared/log.js';
import type { Metrics } from './registry.js';

export interface Health {
  ok: boolean;
  /** one line of JSON, e.g. {"status":"ok","peers":1} */
  body: Record<string, unknown>;
}

export interface MetricsServer {
  /** http://ADDR:PORT (the port actually bound, when 0 was asked) */
  url: string;
  port: number;
  /** Where /metrics and /healthz read from, once the side has started (before: 503 "starting"). */
  serve(metrics: Metrics, health: () => Health): void;
  close(): Promise<void>;
}

export async function startMetricsServer(host: string, port: number, log: Logger): Promise<MetricsServer> {
  let metrics: Metrics | null = null;
  let health: () => Health = () => ({ ok: false, body: { status: 'starting' } });
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
    } else if (path === '/healthz') {
      const h = health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(h.body)}\n`);
    } else if (path === '/metrics') {
      if (!metrics) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('starting\n');
        return;
      }
      const registry = metrics.registry;
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => {
          log.warn('metrics scrape failed', { error: err.message });
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
        },
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('try /metrics or /healthz\n');
    }
  });
  server.keepAliveTimeout = 65_000; // longer than a scraper's interval, so its connection is reused
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(host, port, err)));
    server.listen(port, host, () => resolve());
  });
  server.on('error', (err) => log.error('metrics server error', { error: err.message }));
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    serve(m, h) { metrics = m; health = h; },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
