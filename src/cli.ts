#!/usr/bin/env node
// Entry point of `tunnel`. It checks the Node version before loading anything else, so an old Node
// gets one plain sentence rather than a syntax or API error from deep inside.

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`tunnel needs Node.js 22.12 or newer (this is ${process.versions.node}): the client's listeners share ports with reusePort.\nRun it through npm (npm start, npx tunnel) to use the Node that npm ci installed.\n`);
  process.exit(1);
}

(await import('./gc.js')).tuneGarbageCollector();
const { main } = await import('./cli/commands.js');
// exit explicitly: a failed start-up may leave a half-opened server or PeerConnection behind
process.exit(await main(process.argv.slice(2)));
