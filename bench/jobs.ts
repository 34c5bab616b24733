// Every message between the benchmark harness and its child processes (load generator, service, raw
// DataChannel peers), in one place. They travel over Node's IPC channel as JSON.

/** Latency samples reduced in the child: microseconds. */
export interface LatencySummary { n: number; p50: number; p99: number; max: number; mean: number }

export type LoadJob =
  /** `streams` connections at once; each moves `bytesPerStream` (up: to the sink, down: from the source). */
  | { t: 'bulk'; port: number; dir: 'up' | 'down'; streams: number; bytesPerStream: number; timeoutMs: number; slowReaderBytesPerSecond?: number }
  /** One connection; `count` round trips of `size` bytes after `warmup` unmeasured ones; `stamps`:
   *  also return when each measured one started and ended (process.hrtime.bigint, as strings). */
  | { t: 'latency'; port: number; size: number; count: number; warmup: number; timeoutMs: number; stamps?: boolean }
  /** Open, exchange `size` bytes, close; `inflight` at a time, `total` in all or until the timeout. */
  | { t: 'churn'; port: number; size: number; total: number; inflight: number; timeoutMs: number }
  /** Open `n` connections (at most `opening` handshakes at a time), exchange `size` bytes each, hold them. */
  | { t: 'many'; port: number; n: number; size: number; opening: number; timeoutMs: number }
  /** End every held connection and wait for them to close. */
  | { t: 'release'; timeoutMs: number }
  /** The lab's bulk: `streams` connections to the pattern service at `host`, each moving the checked
   *  pattern for `seconds` (down: from it, up: to it), the MB/s of every second; an upload then waits up
   *  to `drainMs` for the service's final count. */
  | { t: 'timed'; host: string; port: number; dir: 'up' | 'down'; streams: number; seconds: number; drainMs: number; timeoutMs: number }
  /** The lab's ping-pong: one connection to the echo at `host`, `size`-byte round trips started for
   *  `seconds` (at most `warmup` + `maxCount`), the first `warmup` left out unless they are all there
   *  is; one still out at `timeoutMs` counts with its time so far. */
  | { t: 'pings'; host: string; port: number; size: number; seconds: number; maxCount: number; warmup: number; timeoutMs: number };

export interface BulkResult { ok: boolean; bytes: number; ms: number; failed: number; error?: string }
export interface LatencyResult { ok: boolean; latency: LatencySummary; error?: string; stamps?: [string, string][] }
export interface ChurnResult { ok: boolean; done: number; failed: number; ms: number; error?: string }
export interface ManyResult { ok: boolean; opened: number; exchanged: number; failed: number; ms: number; error?: string }
export interface ReleaseResult { closed: number; ms: number }
export interface TimedResult {
  ok: boolean;
  /** MB/s (10^6 B) of each whole second, in order */
  perSecond: number[];
  /** bytes moved in the window (down: received and checked; up: counted by the service) */
  bytes: number;
  ms: number;
  /** up: every byte written was counted by the service before the drain ended */
  drained?: boolean;
  error?: string;
}
export interface PingsResult {
  ok: boolean;
  latency: LatencySummary;
  /** pings still out at the end, counted with their time so far (so p99 is then a lower bound) */
  unanswered: number;
  error?: string;
}

export type ServiceJob =
  | { t: 'ports' }
  /** connections the service holds open right now */
  | { t: 'count' }
  /** Watchdog: SIGKILL these processes if the harness dies (even by SIGKILL, which it cannot catch). */
  | { t: 'watch'; pid: number }
  | { t: 'unwatch'; pid: number };
export interface ServicePorts { sink: number; source: number; echo: number; /** the checked stream for time-bounded runs (service.ts) */ pattern?: number }

export type RawJob =
  /** offerer: create the channel; answerer: wait for it. Resolves once it is open. */
  | { t: 'open'; timeoutMs: number }
  /** Resolves once `bytes` more bulk bytes have arrived. */
  | { t: 'expect'; bytes: number; timeoutMs: number }
  /** Sends `bytes` in full-size messages under the DataChannel backpressure marks. */
  | { t: 'send'; bytes: number; timeoutMs: number }
  | { t: 'ping'; size: number; count: number; warmup: number; timeoutMs: number }
  /** process.cpuUsage(): user + system microseconds, all threads */
  | { t: 'cpu' }
  | { t: 'close' };

/** SDP and candidates relayed by the harness between the two raw peers. */
export type RawSignal =
  | { t: 'signal'; sdp: string; type: string }
  | { t: 'signal'; cand: string; mid: string };
