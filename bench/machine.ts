// The machine a run happened on, printed with every table: figures mean little without it. The load
// average is there because other work on the machine makes the figures noisy.

import os from 'node:os';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

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

export function packageVersion(name: string): string {
  try {
    // a package's exports may hide its package.json: walk up from its entry point instead
    let dir = dirname(createRequire(import.meta.url).resolve(name));
    for (let i = 0; i < 6; i++, dir = dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version ?? '?';
      } catch { /* not here */ }
    }
    return '?';
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
