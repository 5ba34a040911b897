/**
 * Whole-file page-cache operations the workloads need (mm/truncate.c, fs/drop_caches.c).
 * Both walk the page map: they are for occasional events (deleting a tree, `echo 3 >
 * drop_caches`), not for hot paths.
 */
import { Owner, PG, pageFlags, pageOwner, pageMapping } from './memmap.js';
import { accountPageCleaned } from './page_writeback.js';
import type { PgData } from './mmzone.js';
import { delPageFromLruList } from './lru.js';
import { freePages } from './page_alloc.js';
import type { Process } from './process.js';

/** Frees one page-cache page on the LRU. */
function dropFilePage(pgdat: PgData, pfn: number): void {
  delPageFromLruList(pgdat, pfn);
  const proc = pgdat.tasks.procs.get(pageMapping(pgdat.map, pfn));
  if (proc) proc.filePages--;
  freePages(pgdat, pfn, 0);
}

/**
 * @kernel mm/truncate.c truncate_inode_pages
 * The process's file is deleted: every page of it leaves the page cache, dirty or
 * not (pages isolated by reclaim or compaction at this instant are left). Returns the
 * pages freed.
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
  return n;
}

/**
 * @kernel fs/drop_caches.c drop_pagecache_sb (after `sync`)
 * `sync; echo 3 > /proc/sys/vm/drop_caches`: dirty page cache is written back
 * (pgpgout), then every unmapped page-cache page is freed. Returns the pages freed.
 */
export function syncAndDropCaches(pgdat: PgData): number {
  const map = pgdat.map;
  let n = 0;
  for (let pfn = 0; pfn < map.nrPages; pfn++) {
    if (pageOwner(map, pfn) !== Owner.file) continue;
    const f = pageFlags(map, pfn);
    if (!(f & PG.lru)) continue;
    if (f & PG.dirty) accountPageCleaned(pgdat, pfn, true);
    dropFilePage(pgdat, pfn);
    n++;
  }
  return n;
}
