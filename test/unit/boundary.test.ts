// The runtime boundaries, held by a test rather than a comment: walking the TypeScript sources' imports
// (type-only ones included), the worker entry reaches nothing but workers/ and src/shared/ (above all
// never node-datachannel, which aborts the process when a second thread loads it), src/shared/
// imports nothing outside itself, and nothing in src/ or workers/ imports the benchmark harness.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { builtinModules } from 'node:module';
import { ROOT } from '../support/cli.js';

const T = { timeout: 10_000 };
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'|(?:^|\n)\s*import\s+'([^']+)'|import\(\s*'([^']+)'\s*\)/g;

/** The specifiers a source file imports. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3] ?? '').filter(Boolean);
}

/** A relative specifier ('./x.js') as the .ts file it names. */
function resolve(from: string, specifier: string): string {
  return path.resolve(path.dirname(from), specifier).replace(/\.js$/, '.ts');
}

/** Every file reachable from `entry`, and every package it imports (by name). */
function walk(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const todo = [entry];
  for (let file = todo.pop(); file; file = todo.pop()) {
    if (files.has(file)) continue;
    files.add(file);
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) todo.push(resolve(file, spec));
      else packages.add(spec);
    }
  }
  return { files, packages };
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? sources(full) : full.endsWith('.ts') ? [full] : [];
  });
}

const rel = (file: string) => path.relative(ROOT, file);
const isBuiltin = (spec: string) => spec.startsWith('node:') || builtinModules.includes(spec);

test('the import walk sees through every kind of import (so the tests below mean something)', T, () => {
  const { files, packages } = walk(path.join(ROOT, 'src', 'host.ts'));
  assert.ok(packages.has('node-datachannel'), 'host.ts reaches node-datachannel');
  assert.ok(files.has(path.join(ROOT, 'workers', 'shard.ts')), 'host.ts reaches the shard through the pool');
});

test('the worker entry reaches only workers/ and src/shared/, and no package but Node\'s own', T, () => {
  const { files, packages } = walk(path.join(ROOT, 'workers', 'entry.ts'));
  const outside = [...files].map(rel).filter((f) => !f.startsWith(`workers${path.sep}`) && !f.startsWith(path.join('src', 'shared') + path.sep));
  assert.deepEqual(outside, [], 'main-thread modules reached from the worker entry');
  assert.deepEqual([...packages].filter((p) => !isBuiltin(p)), [], 'packages reached from the worker entry');
});

test('src/shared/ imports nothing outside itself', T, () => {
  for (const file of sources(path.join(ROOT, 'src', 'shared'))) {
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) assert.ok(resolve(file, spec).startsWith(path.join(ROOT, 'src', 'shared') + path.sep), `${rel(file)} imports ${spec}`);
      else assert.ok(isBuiltin(spec), `${rel(file)} imports the package ${spec}`);
    }
  }
});

test('neither src/ nor workers/ imports bench/ (the harness is a separate process)', T, () => {
  for (const file of [...sources(path.join(ROOT, 'src')), ...sources(path.join(ROOT, 'workers'))]) {
    for (const spec of importsOf(file)) {
      if (spec.startsWith('.')) assert.ok(!rel(resolve(file, spec)).startsWith(`bench${path.sep}`), `${rel(file)} imports ${spec}`);
    }
  }
});

test('only src/webrtc/ loads node-datachannel at run time', T, () => {
  for (const file of sources(path.join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    const runtime = /(?:^|\n)\s*import\s+(?!type\b)[^'"]*from\s+'node-datachannel'/.test(text);
    if (runtime) assert.ok(rel(file).startsWith(path.join('src', 'webrtc') + path.sep), `${rel(file)} loads node-datachannel`);
  }
});
