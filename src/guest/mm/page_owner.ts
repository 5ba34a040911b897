/**
 * What page_owner (mm/page_owner.c) tells about pageblocks: which allocated pages sit
 * in a pageblock of another migratetype than they were allocated with. The model has
 * no per-page gfp record; a page's owner says what the kernel allocated it as.
 */
import { MIGRATE_TYPES, PAGEBLOCK_NR_PAGES, MigrateType, Owner, getPageblockMigratetype, pageOwner } from './memmap.js';
import { type PgData, type Zone, zoneEndPfn } from './mmzone.js';

/**
 * The migratetype an owner's pages were allocated with (what page_owner's saved
 * gfp_mask says: gfp_migratetype), or -1 for pages page_owner does not track as
 * allocated (free, on a pcp list, memblock-reserved). Balloon pages are movable only
 * with balloon compaction.
 */
export function ownerAllocMigratetype(pgdat: PgData, owner: number): number {
  switch (owner) {
    case Owner.free: case Owner.pcp: case Owner.reserved: case Owner.compactFree: case Owner.reporting: return -1;
    case Owner.slabReclaimable: return MigrateType.reclaimable;
    case Owner.anon: case Owner.file: case Owner.shmem: return MigrateType.movable;
    case Owner.balloon: return pgdat.movableOps[Owner.balloon] !== null ? MigrateType.movable : MigrateType.unmovable;
    default: return MigrateType.unmovable;
  }
}

/**
 * @kernel mm/page_owner.c pagetypeinfo_showmixedcount_print
 * Pageblocks holding at least one allocated page whose allocation migratetype is not
 * the pageblock's, counted under the pageblock's type (page_owner's "Number of mixed
 * blocks"): Movable blocks polluted by unmovable pages, and the like.
 */
export function mixedBlockCounts(pgdat: PgData, zone: Zone): number[] {
  const count = new Array<number>(MIGRATE_TYPES).fill(0);
  const map = pgdat.map;
  const end = zoneEndPfn(zone);
  for (let block = zone.zoneStartPfn & ~(PAGEBLOCK_NR_PAGES - 1); block < end; block += PAGEBLOCK_NR_PAGES) {
    const bmt = getPageblockMigratetype(map, Math.max(block, zone.zoneStartPfn));
    const last = Math.min(block + PAGEBLOCK_NR_PAGES, end);
    for (let pfn = Math.max(block, zone.zoneStartPfn); pfn < last; pfn++) {
      const mt = ownerAllocMigratetype(pgdat, pageOwner(map, pfn));
      if (mt >= 0 && mt !== bmt) { count[bmt]!++; break; }
    }
  }
  return count;
}


/** Balloon pages by the migratetype of the pageblock they sit in (over all zones). */
export function balloonPagesByBlockType(pgdat: PgData): number[] {
  const count = new Array<number>(MIGRATE_TYPES).fill(0);
  const map = pgdat.map;
  for (let pfn = 0; pfn < map.nrPages; pfn++) if (pageOwner(map, pfn) === Owner.balloon) count[getPageblockMigratetype(map, pfn)]!++;
  return count;
}
