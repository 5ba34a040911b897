/**
 * `balloonlab bench compaction`: a full compact_memory of a fragmented 8 GiB guest.
 *
 * Method: boot the guest, let one process fault in 85 % of memory as order-0 anonymous
 * pages and unmap every other one in physical order (half of its memory free, in 4 KiB
 * holes), then time compactMemory. Each run is a fresh guest; figures are medians of
 * `runs` runs after one untimed warm-up run. scan_pages_per_s counts the pages both
 * scanners looked at per wall-clock second.
 */
import { createGuest, defaultGuestConfig } from '../src/guest/guest.js';
import { median } from './stats.js';
import { getProcess, faultAnonPages, unmapAnonPages } from '../src/guest/mm/process.js';
import { compactMemory } from '../src/guest/mm/compaction.js';
import { drainAllPages } from '../src/guest/mm/page_alloc.js';
import { checkPgdat } from '../src/guest/mm/check.js';
import { createRng } from '../src/sim/rng.js';
import { MAX_ORDER } from '../src/guest/mm/memmap.js';

export type CompactionBenchResult = {
  bench: 'compaction';
  pages: number;
  memory_bytes: number;
  compact_memory_ms: number;
  compact_memory_ms_runs: number[];
  scan_pages_per_s: number;
  migrate_scanned: number;
  free_scanned: number;
  migrated: number;
  /** Free blocks of order >= 9 before and after (the point of compacting). */
  huge_blocks_before: number;
  huge_blocks_after: number;
  /** Virtual time the kernel would have spent (cost table), in ms. */
  virtual_ms: number;
  invariants_ok: boolean;
};


function hugeBlocks(zones: { nrFree: Int32Array }[]): number {
  let n = 0;
  for (const z of zones) for (let o = 9; o < MAX_ORDER; o++) n += z.nrFree[o]!;
  return n;
}

export function benchCompaction(runs = 5, memoryBytes = 8 * 1024 ** 3, now: () => number = () => performance.now()): CompactionBenchResult {
  const times: number[] = [];
  type RunFigures = Omit<CompactionBenchResult, 'compact_memory_ms' | 'compact_memory_ms_runs' | 'scan_pages_per_s'>;
  let last: RunFigures | null = null;
  let invariantsOk = true;
  let scanned = 0;
  for (let run = -1; run < runs; run++) {
    const g = createGuest(defaultGuestConfig({ memoryBytes, seed: 1 + Math.max(run, 0) }));
    const pg = g.pgdat;
    pg.sysctl.thp.enabled = 'never'; // small pages, so unmapping every other one fragments memory
    const proc = getProcess(g.procs, 100);
    faultAnonPages(pg, proc, Math.floor(pg.map.nrPages * 0.85));
    unmapAnonPages(pg, createRng(7), proc, 0.5, 'alternate');
    drainAllPages(pg, null);
    const before = hugeBlocks(pg.zones);
    const t0 = now();
    const rep = compactMemory(pg);
    const dt = now() - t0;
    if (run < 0) continue;
    times.push(dt);
    if (run === 0) invariantsOk = checkPgdat(pg) === null;
    scanned = rep.migrateScanned + rep.freeScanned;
    last = {
      bench: 'compaction', pages: pg.map.nrPages, memory_bytes: memoryBytes,
      migrate_scanned: rep.migrateScanned, free_scanned: rep.freeScanned, migrated: rep.migrated,
      huge_blocks_before: before, huge_blocks_after: hugeBlocks(pg.zones), virtual_ms: Math.round(rep.costNs / 1e6),
      invariants_ok: invariantsOk,
    };
  }
  const ms = median(times);
  return {
    ...last!,
    compact_memory_ms: Math.round(ms * 10) / 10,
    compact_memory_ms_runs: times.map((t) => Math.round(t * 10) / 10),
    scan_pages_per_s: Math.round(scanned / (ms / 1000)),
  };
}
