/**
 * Whole-file page-cache operations the workloads need (mm/truncate.c, fs/drop_caches.c).
 * They walk the page map: they are for occasional events (deleting a tree, `echo 3 >
 * drop_caches`), not for hot paths. Every page that leaves the page cache takes its
 * share of the files' buffer_heads and xarray nodes with it (dcache.ts).
 */
import { Owner, PG, pageFlags, pageOwner, pageMapping } from './memmap.js';
import { accountPageCleaned } from './page_writeback.js';
import type { PgData } from './mmzone.js';
import { VmEvent } from './vmstat_items.js';
import { delPageFromLruList } from './lru.js';
import { freePages } from './page_alloc.js';
import { dropSlab } from './vmscan.js';
import { vfsFilePageFreed, vfsDeleteFiles } from './dcache.js';
import type { Process } from './process.js';

/** Frees one page-cache page on the LRU. */
function dropFilePage(pgdat: PgData, pfn: number): void {
  delPageFromLruList(pgdat, pfn);
  const pid = pageMapping(pgdat.map, pfn);
  const proc = pgdat.tasks.procs.get(pid);
  if (proc) proc.filePages--;
  vfsFilePageFreed(pgdat, pid);
  freePages(pgdat, pfn, 0);
}

/**
 * @kernel mm/truncate.c truncate_inode_pages (then fs/namei.c vfs_unlink)
 * The process's file is deleted: every page of it leaves the page cache, dirty or
 * not (pages isolated by reclaim or compaction at this instant are left), then its
 * files' inodes are evicted and their dentries turn negative. Returns the pages freed.
 */
export function truncateInodePages(pgdat: PgData, proc: Process): number {
  const map = pgdat.map;
  let n = 0;
  for (let pfn = 0; pfn < map.nrPages; pfn++) {
    if (pageOwner(map, pfn) !== Owner.file || pageMapping(map, pfn) !== proc.pid) continue;
    if (!(pageFlags(map, pfn) & PG.lru)) continue;
    // truncation cancels the dirt of a page never written (cancel_dirty_page)
    if (pageFlags(map, pfn) & PG.dirty) accountPageCleaned(pgdat, pfn, false);
    dropFilePage(pgdat, pfn);
    n++;
  }
  vfsDeleteFiles(pgdat, proc.pid);
  return n;
}

/**
 * @kernel fs/sync.c ksys_sync (the page-cache part)
 * `sync`: every dirty page-cache page is written back (pgpgout, nr_written) and stays
 * cached, clean. Returns the pages written.
 */
export function syncPagecache(pgdat: PgData): number {
  const map = pgdat.map;
  let written = 0;
  for (let pfn = 0; pfn < map.nrPages; pfn++) {
    if (pageOwner(map, pfn) !== Owner.file) continue;
    const f = pageFlags(map, pfn);
    if (!(f & PG.lru) || !(f & PG.dirty)) continue;
    accountPageCleaned(pgdat, pfn, true);
    written++;
  }
  return written;
}

/**
 * @kernel fs/drop_caches.c drop_pagecache_sb
 * `echo 1 > /proc/sys/vm/drop_caches`: every clean, unmapped page-cache page on the
 * LRU is freed (dirty ones stay). Returns the pages freed.
 */
export function dropPagecache(pgdat: PgData): number {
  const map = pgdat.map;
  let n = 0;
  for (let pfn = 0; pfn < map.nrPages; pfn++) {
    if (pageOwner(map, pfn) !== Owner.file) continue;
    const f = pageFlags(map, pfn);
    if (!(f & PG.lru) || (f & PG.dirty)) continue;
    dropFilePage(pgdat, pfn);
    n++;
  }
  return n;
}

/**
 * `sync; echo 3 > /proc/sys/vm/drop_caches`'s page-cache half: dirty page cache is
 * written back, then every unmapped page-cache page is freed. Returns the pages freed.
 */
export function syncAndDropCaches(pgdat: PgData): number {
  syncPagecache(pgdat);
  return dropPagecache(pgdat);
}

/** What a write to /proc/sys/vm/drop_caches freed. */
export type DropCachesResult = {
  /** Page-cache pages freed (value 1 or 3). */
  pages: number;
  /** Slab objects the shrinkers freed (value 2 or 3). */
  objects: number;
};

/**
 * @kernel fs/drop_caches.c drop_caches_sysctl_handler
 * `echo value > /proc/sys/vm/drop_caches`: 1 drops the clean page cache (drop_pagecache),
 * 2 the reclaimable slab objects through the shrinkers (drop_slab), 3 both.
 */
export function dropCachesSysctlHandler(pgdat: PgData, value: 1 | 2 | 3): DropCachesResult {
  const r: DropCachesResult = { pages: 0, objects: 0 };
  if (value & 1) {
    r.pages = dropPagecache(pgdat);
    pgdat.events[VmEvent.drop_pagecache] = pgdat.events[VmEvent.drop_pagecache]! + 1;
  }
  if (value & 2) {
    r.objects = dropSlab(pgdat);
    pgdat.events[VmEvent.drop_slab] = pgdat.events[VmEvent.drop_slab]! + 1;
  }
  return r;
}
