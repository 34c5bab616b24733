// From the shards' stats to one side's totals, kept monotonic: a shard restarted after a crash counts
// from zero again, so what it had counted before is kept here ("retired") and added to what it counts
// now; a shard that did not answer a stats request in time is taken at its last answer. Pure, and
// unit-tested.

import type { ServiceStats, ShardStats } from '../shared/thread-messages.js';

export interface Totals {
  services: Map<string, ServiceStats>;
  /** by shard index: its last answer (null: never answered) */
  shards: (ShardStats | null)[];
  lateDropped: number;
}

const emptyService = (): ServiceStats => ({ open: 0, opened: 0, closed: 0, reset: {}, refused: {}, bytesIn: 0, bytesOut: 0 });

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

/** Adds `from`'s counters (not its open gauge) into `into`. */
function addService(into: ServiceStats, from: ServiceStats, withOpen: boolean): void {
  into.opened += from.opened;
  into.closed += from.closed;
  into.bytesIn += from.bytesIn;
  into.bytesOut += from.bytesOut;
  addCounts(into.reset, from.reset);
  addCounts(into.refused, from.refused);
  if (withOpen) into.open += from.open;
}

export function createAggregator() {
  const last: (ShardStats | null)[] = [];
  const retired = new Map<string, ServiceStats>();
  let retiredLate = 0;

  /** Folds one stats round in (null entries: shards that did not answer) and returns the totals. */
  function update(shards: (ShardStats | null)[]): Totals {
    shards.forEach((now, index) => {
      const before = last[index] ?? null;
      if (!now) return; // keep its last answer
      if (before && before.startedAt !== now.startedAt) {
        // restarted: what the old one counted stays counted
        for (const [name, s] of Object.entries(before.services)) {
          let r = retired.get(name);
          if (!r) retired.set(name, (r = emptyService()));
          addService(r, s, false);
        }
        retiredLate += before.lateDropped;
      }
      last[index] = now;
    });
    const services = new Map<string, ServiceStats>();
    for (const [name, r] of retired) {
      const s = emptyService();
      addService(s, r, false);
      services.set(name, s);
    }
    let lateDropped = retiredLate;
    for (const shard of last) {
      if (!shard) continue;
      lateDropped += shard.lateDropped;
      for (const [name, s] of Object.entries(shard.services)) {
        let t = services.get(name);
        if (!t) services.set(name, (t = emptyService()));
        addService(t, s, true);
      }
    }
    return { services, shards: [...last], lateDropped };
  }

  return { update };
}
