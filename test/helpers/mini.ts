/**
 * Hand-built nodes for allocator tests: zones of chosen sizes whose pages all start
 * reserved; tests then free exactly the ranges they want and set pageblock types, so
 * the expected outcome can be worked out from the kernel's rules by hand.
 */
import { createMemMap, Owner, PG, MigrateType, setPageblockMigratetype, PAGEBLOCK_NR_PAGES, resetPages } from '../../src/guest/mm/memmap.js';
import { type PgData, createPgData, createZone, ZoneType } from '../../src/guest/mm/mmzone.js';
import { freeBootBlock, drainAllPages, setupPagesets } from '../../src/guest/mm/page_alloc.js';
import { defaultCostTable } from '../../src/sim/cost.js';
import { getProcess, faultAnonPages, unmapAnonPages } from '../../src/guest/mm/process.js';
import { createRng } from '../../src/sim/rng.js';
import { type KernelProfile, KERNEL_6_1 } from '../../src/guest/mm/kernel_era.js';

/**
 * A node with DMA empty, DMA32 = [0, dma32Pages), Normal = [dma32Pages, dma32Pages + normalPages).
 * All pageblocks MOVABLE, all pages reserved, watermarks zero.
 */
export function miniNode(dma32Pages: number, normalPages = 0, cpus = 1, kernel: KernelProfile = KERNEL_6_1): PgData {
  const map = createMemMap(dma32Pages + normalPages);
  const pgdat = createPgData(map, cpus, defaultCostTable(), kernel);
  pgdat.zones = [
    createZone(map, ZoneType.dma, 0, 0, 0, cpus),
    createZone(map, ZoneType.dma32, 0, dma32Pages, dma32Pages, cpus),
    createZone(map, ZoneType.normal, dma32Pages, normalPages, normalPages, cpus),
  ];
  for (const z of pgdat.zones) z.kernel = kernel;
  resetPages(map, 0, map.nrPages, Owner.reserved, PG.reserved);
  pgdat.ownerPages[Owner.reserved] = map.nrPages;
  for (let p = 0; p < map.nrPages; p += PAGEBLOCK_NR_PAGES) setPageblockMigratetype(map, p, MigrateType.movable);
  return pgdat;
}

/** Frees [start, start + 2^order) into the buddy (as memblock_free_all does) and refreshes pagesets. */
export function giveBlock(pgdat: PgData, start: number, order: number): void {
  freeBootBlock(pgdat, start, order);
  setupPagesets(pgdat);
}

/** Pageblock migratetypes of the whole node, as a string: U, M, R, H, I per block. */
export function blockTypes(pgdat: PgData): string {
  let s = '';
  for (let b = 0; b < pgdat.map.pageblock.length; b++) s += 'UMRHI'[pgdat.map.pageblock[b]! & 7];
  return s;
}

/** Free blocks of a zone per (order, migratetype) as "order:type" -> count (non-zero only). */
export function freeBlocks(pgdat: PgData, zi: number): Record<string, number> {
  const z = pgdat.zones[zi]!;
  const out: Record<string, number> = {};
  for (let o = 0; o < 11; o++) for (let mt = 0; mt < 5; mt++) {
    const n = z.nrFreeMt[o * 5 + mt]!;
    if (n) out[`${o}:${'UMRHI'[mt]}`] = n;
  }
  return out;
}

/**
 * Fragments a guest the way the tests and benchmarks do: one process faults small
 * pages until free memory is down to its high watermarks plus `slack` pages, then
 * unmaps every other page in physical order; the pcp lists are drained.
 */
export function fragmentWithProcess(pg: PgData, pid: number, seed: number, slack = 2048): void {
  const thp = pg.sysctl.thp.enabled;
  pg.sysctl.thp.enabled = 'never';
  const proc = getProcess(pg.tasks.procs, pid);
  const high = pg.zones.reduce((n, z) => n + z.watermark[2]!, 0);
  while (pg.zones.reduce((n, z) => n + z.vmStat[0]!, 0) > high + slack) faultAnonPages(pg, proc, 1024);
  unmapAnonPages(pg, createRng(seed), proc, 0.5, 'alternate');
  drainAllPages(pg, null);
  pg.sysctl.thp.enabled = thp;
}
