// Resume on loopback, in this process: the client drops its PeerConnection (as a broken path does)
// in the middle of transfers; every stream goes on byte-exact over the next one. The cut by a real
// network (nft in the lab) is in lab-resume.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPair, releaseAtEnd } from '../support/pair.js';
import { openFlow, MiB } from '../support/traffic.js';

releaseAtEnd();

const within = <T>(p: Promise<T>, ms: number, what: string) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms))]);

describe('resume (loopback)', { timeout: 90_000 }, () => {
  test('8 streams echoing 4 MiB each survive a dropped PeerConnection byte-exact', { timeout: 60_000 }, async () => {
    const pair = await startPair({ client: { reconnect: true } });
    try {
      const flows = Array.from({ length: 8 }, (_, i) => openFlow(pair.port.echo ?? 0, 100 + i, { bytes: 4 * MiB }));
      await within(new Promise<void>((resolve) => { const t = setInterval(() => { if ((flows[0]?.received() ?? 0) > MiB / 2) { clearInterval(t); resolve(); } }, 5); }), 20_000, 'data to flow');
      const cutAt = Date.now();
      pair.client.dropPath('test: path dropped');
      await within(pair.client.whenConnected(), 20_000, 'the client to reconnect');
      const backMs = Date.now() - cutAt;
      const results = await within(Promise.all(flows.map((f) => f.finish())), 40_000, 'the flows to finish');
      for (const r of results) {
        assert.equal(r.received, 4 * MiB);
        assert.equal(r.receivedHash, r.sentHash);
      }
      const stats = await pair.client.stats();
      assert.equal(stats.outages.resumes, 1);
      assert.deepEqual(Object.keys(stats.shards[0]?.resets ?? {}), []);
      console.log(`# resumed in ${backMs} ms`);
    } finally {
      await pair.close();
    }
  });
});
