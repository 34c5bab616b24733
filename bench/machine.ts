// The machine a run happened on, printed with every table: figures mean little without it. The load
// average is there because other work on the machine makes the figures noisy.

import os from 'node:os';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface Machine {
  cpuModel: string;
  cores: number;
  availableParallelism: number;
  memoryGiB: number;
  platform: string;
  kernel: string;
  node: string;
  nodeDatachannel: string;
  loadAverage: number[];
  fdLimit: { soft: number; hard: number } | null;
  date: string;
}

function packageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    const path = require.resolve(`${name}/package.json`);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return '?';
  }
}

export function describeMachine(fdLimit: { soft: number; hard: number } | null): Machine {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    node: process.versions.node,
    nodeDatachannel: packageVersion('node-datachannel'),
    loadAverage: os.loadavg().map((v) => Math.round(v * 100) / 100),
    fdLimit,
    date: new Date().toISOString(),
  };
}

export function machineLine(m: Machine): string {
  return `machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.platform} ${m.kernel}; Node ${m.node}, node-datachannel ${m.nodeDatachannel}; `
    + `load average ${m.loadAverage.join(' ')}; open files ${m.fdLimit ? `${m.fdLimit.soft}/${m.fdLimit.hard}` : '?'}`;
}
