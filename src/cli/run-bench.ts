// `tunnel bench`: the benchmark harness (bench/, shipped in the package) runs as its own process: the
// library does not import its harness, and a run's children stay in the harness's process tree.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tunnelError } from '../errors.js';

export function runBench(args: string[]): Promise<number> {
  const entry = fileURLToPath(new URL('../../bench/main.js', import.meta.url));
  if (!existsSync(entry)) throw tunnelError('BAD_FLAG', `the benchmark harness is not installed (${entry} is missing)`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [entry, ...args], { stdio: 'inherit' });
    child.once('error', (err) => { process.stderr.write(`tunnel bench: ${err.message}\n`); resolve(1); });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

