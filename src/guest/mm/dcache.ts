/**
 * The slab objects behind the page cache (fs/dcache.c, fs/inode.c, fs/super.c,
 * fs/buffer.c, lib/xarray.c, Linux 6.1) on the model's one root file system, an ext4
 * with 4 KiB blocks, and the superblock shrinker that reclaims dentries and inodes.
 *
 * What a page-cache fill costs in slab (readFilePages → vfsFilePagesAdded):
 * - a new file: a dentry (d_alloc), an ext4 inode (ext4_alloc_inode) with its LSM blob
 *   (lsm_inode_cache, unreclaimable, freed with the inode) and one extent-status entry;
 * - its page tree (the mapping's i_pages xarray): no node for a file of one page (the
 *   entry sits in xa_head), then one radix_tree_node per 64 pages and one per 64 of
 *   those above (xaNodes);
 * - a written page: one buffer_head (ext4 attaches a block's buffer to a page it writes
 *   through the buffer layer; a read through mpage does not), kept while the page is
 *   cached, dirty or clean.
 * When pages leave the page cache (reclaim, drop_caches, truncation: vfsFilePageFreed)
 * the set's buffer_heads and xarray nodes go with them in proportion (the model does not
 * know which page had a buffer; no workingset shadow entries keep nodes alive).
 *
 * The model's files are grouped in file sets, one per pid that reads or writes through
 * readFilePages (the pages carry the pid): a set knows how many files, positive dentries,
 * cached pages and objects it has; its objects are kept oldest first in rings of slab ids
 * (slab.ts ObjRing), so the objects that go are the right set's, oldest first.
 *
 * The superblock shrinker (super_cache_count / super_cache_scan): dentries are unused
 * once their file is closed — every file dentry of the model is on the dentry LRU,
 * pruned oldest first (prune_dcache_sb, no DCACHE_REFERENCED second chances); an inode
 * is on the inode LRU only when its dentry is gone and its page cache is empty, as 6.1's
 * __inode_add_lru (mapping_shrinkable) wants: within a set the oldest files lose their
 * dentries and their pages first, so the set's reclaimable inodes are its files less
 * those that keep either. The count is scaled by vm.vfs_cache_pressure
 * (vfs_pressure_ratio) and the scan split between the two LRUs in proportion, dentries
 * first, batch 1024. Deleting a set's files (truncateInodePages: rm) evicts their inodes
 * at once and leaves their dentries on the LRU as negative dentries (d_delete).
 *
 * Boot's dentries and inodes (the initramfs, sysfs, proc: pinned or in use) are pinned
 * objects of their caches; a real 1 GiB guest's echo 2 > drop_caches after boot frees
 * none of them either (docs/fidelity.md).
 */
import type { PgData, Shrinker } from './mmzone.js';
import { GFP_KERNEL, GFP_NOFS, __GFP_NOFAIL } from './gfp.js';
import type { FileSet, KmemCache, ObjRing, SuperBlock, StdCaches } from './slab_types.js';
import { FreeFrom, objRingCreate, slabAllocTo, slabFreeFrom } from './slab.js';

/** XA_CHUNK_SHIFT: 64 slots per xarray node. */
export const XA_CHUNK_SHIFT = 6;
/** DEFAULT_SEEKS. */
export const DEFAULT_SEEKS = 2;
/** s_shrink.batch of every superblock (alloc_super). */
export const SUPER_SHRINK_BATCH = 1024;

/** xarray nodes a file of `pages` pages (indices 0 .. pages-1) needs: none for one page, then one per 64 slots per level. */
export function xaNodes(pages: number): number {
  if (pages <= 1) return 0;
  let nodes = 0;
  for (let span = 1 << XA_CHUNK_SHIFT, below = 1; below < pages; span *= 1 << XA_CHUNK_SHIFT, below *= 1 << XA_CHUNK_SHIFT) {
    nodes += Math.ceil(pages / span);
  }
  return nodes;
}

/**
 * @kernel fs/super.c alloc_super (the root file system's mount)
 * The root superblock: its dentry LRU, no files yet, and its shrinker registered
 * (register_shrinker); installs the page-cache hook readFilePages calls.
 */
export function vfsInit(pgdat: PgData): SuperBlock {
  const sb: SuperBlock = {
    sets: new Map(), dentryLru: objRingCreate(64), runPid: [], runGen: [], runCount: [], runHead: 0, negDentries: 0,
  };
  pgdat.slab.sb = sb;
  pgdat.shrinkers.push(superShrinker());
  pgdat.hooks.pageCacheAdd = vfsFilePagesAdded;
  return sb;
}

function fileSet(sb: SuperBlock, pid: number): FileSet {
  let s = sb.sets.get(pid);
  if (s === undefined) {
    s = {
      pid, gen: 0, files: 0, dentries: 0, pending: 0, growPages: -1, pagesTotal: 0, filesTotal: 0, cachedPages: 0,
      inodes: objRingCreate(16), lsm: objRingCreate(16), es: objRingCreate(16), bh: objRingCreate(64), xa: objRingCreate(16),
      bhOwed: 0, xaOwed: 0,
    };
    sb.sets.set(pid, s);
  }
  return s;
}

/** d_alloc + iget of n new files of set s (a dentry on the LRU, an inode with its LSM blob and extent). */
function createFiles(pgdat: PgData, std: StdCaches, sb: SuperBlock, s: FileSet, n: number): void {
  // ext4_alloc_inode: alloc_inode_sb(GFP_NOFS); a file the model could not give an inode is no file
  let i = slabAllocTo(pgdat, std.inode, n, s.inodes, GFP_NOFS);
  const l = slabAllocTo(pgdat, std.lsmInode, i, s.lsm, GFP_NOFS);
  const e = slabAllocTo(pgdat, std.extentStatus, i, s.es, GFP_NOFS);
  if (l < i || e < i) {
    // out of memory half way: the files that did not get all three are not made
    const k = Math.min(l, e);
    slabFreeFrom(pgdat, std.inode, s.inodes, i - k, FreeFrom.newest);
    slabFreeFrom(pgdat, std.lsmInode, s.lsm, l - k, FreeFrom.newest);
    slabFreeFrom(pgdat, std.extentStatus, s.es, e - k, FreeFrom.newest);
    i = k;
  }
  s.files += i;
  s.filesTotal += i;
  // d_alloc (GFP_KERNEL): the dentry goes on the LRU when the file is closed (dput); a file
  // without one is a file whose dentry was already pruned. The allocation may reclaim and
  // prune this very set: the new files are pending until their dentries are counted.
  s.pending = i;
  const d = slabAllocTo(pgdat, std.dentry, i, sb.dentryLru, GFP_KERNEL);
  const last = sb.runPid.length - 1;
  if (last >= sb.runHead && sb.runPid[last] === s.pid && sb.runGen[last] === s.gen) sb.runCount[last]! += d;
  else if (d > 0) { sb.runPid.push(s.pid); sb.runGen.push(s.gen); sb.runCount.push(d); }
  s.dentries += d;
  s.pending = 0;
}

/**
 * The VFS side of readFilePages: `pages` pages of set `pid` entered the page cache,
 * written (dirty) or read. They fill the set's last file up to `filePages` pages, then
 * go to new files of that many pages each (the last one shorter, filled up by the next
 * call), so that many small reads of one tree make as many files as one big read;
 * without `filePages` the set has one file that grows (a log, a dd output file).
 */
export function vfsFilePagesAdded(pgdat: PgData, pid: number, pages: number, dirty: boolean, filePages: number | undefined): void {
  const std = pgdat.slab.std, sb = pgdat.slab.sb;
  if (std === null || sb === null || pages <= 0) return;
  const s = fileSet(sb, pid);
  const size = filePages !== undefined && filePages > 0 ? filePages : Infinity;
  let left = pages, nodes = 0;
  if (s.growPages >= 0 && s.growPages < size) {
    // the last file grows
    const t = Math.min(left, size - s.growPages);
    nodes += xaNodes(s.growPages + t) - xaNodes(s.growPages);
    s.growPages += t;
    left -= t;
  }
  if (left > 0) {
    const full = size === Infinity ? 0 : Math.floor(left / size);
    const rest = left - full * (size === Infinity ? 0 : size);
    createFiles(pgdat, std, sb, s, full + (rest > 0 ? 1 : 0));
    nodes += (full > 0 ? full * xaNodes(size) : 0) + xaNodes(rest);
    s.growPages = rest > 0 ? rest : size;
  }
  s.pagesTotal += pages;
  // Reclaim inside readFilePages' own allocations may have taken some of these pages
  // already (vfsFilePageFreed counted them below zero): only what is still cached gets
  // buffer_heads and nodes.
  s.cachedPages += pages;
  if (s.cachedPages > 0) {
    // xas_nomem: radix_tree_node with the mapping's gfp (GFP_NOFS for a file system's pages)
    slabAllocTo(pgdat, std.radixTreeNode, nodes, s.xa, GFP_NOFS);
    // create_empty_buffers: alloc_page_buffers(retry) is GFP_NOFS | __GFP_NOFAIL
    if (dirty) slabAllocTo(pgdat, std.bufferHead, Math.min(pages, s.cachedPages - s.bh.len), s.bh, GFP_NOFS | __GFP_NOFAIL);
  }
  // ... and these allocations may have reclaimed more of the set's pages as they went
  const cached = Math.max(0, s.cachedPages);
  if (s.bh.len > cached) slabFreeFrom(pgdat, std.bufferHead, s.bh, s.bh.len - cached, FreeFrom.newest);
  if (cached === 0) slabFreeFrom(pgdat, std.radixTreeNode, s.xa, s.xa.len);
}

/**
 * @kernel fs/buffer.c try_to_free_buffers, mm/filemap.c page_cache_delete (one page)
 * A page of set `pid` left the page cache (reclaimed, dropped, truncated): its share of
 * the set's buffer_heads and xarray nodes is freed.
 */
export function vfsFilePageFreed(pgdat: PgData, pid: number): void {
  const sb = pgdat.slab.sb, std = pgdat.slab.std;
  if (sb === null || std === null) return;
  const s = sb.sets.get(pid);
  if (s === undefined) return;
  const c = s.cachedPages;
  s.cachedPages = c - 1;
  // a page of a fill still in readFilePages (reclaimed by its own allocations): vfsFilePagesAdded settles it
  if (c <= 0) return;
  if (c === 1) {
    slabFreeFrom(pgdat, std.bufferHead, s.bh, s.bh.len);
    slabFreeFrom(pgdat, std.radixTreeNode, s.xa, s.xa.len);
    s.bhOwed = s.xaOwed = 0;
    return;
  }
  s.bhOwed += s.bh.len / c;
  s.xaOwed += s.xa.len / c;
  if (s.bhOwed >= 1) { const k = Math.floor(s.bhOwed); s.bhOwed -= k; slabFreeFrom(pgdat, std.bufferHead, s.bh, k); }
  if (s.xaOwed >= 1) { const k = Math.floor(s.xaOwed); s.xaOwed -= k; slabFreeFrom(pgdat, std.radixTreeNode, s.xa, k); }
}

/**
 * @kernel fs/namei.c vfs_unlink (d_delete), fs/inode.c iput_final, evict
 * Set `pid`'s files are deleted (after their pages were truncated): the inodes are
 * evicted at once, the dentries stay on the LRU as negative dentries.
 */
export function vfsDeleteFiles(pgdat: PgData, pid: number): void {
  const sb = pgdat.slab.sb, std = pgdat.slab.std;
  if (sb === null || std === null) return;
  const s = sb.sets.get(pid);
  if (s === undefined) return;
  evictInodes(pgdat, std, s, s.files);
  sb.negDentries += s.dentries;
  s.dentries = 0;
  s.gen++;
  s.growPages = -1;
}

function evictInodes(pgdat: PgData, std: StdCaches, s: FileSet, n: number): void {
  slabFreeFrom(pgdat, std.inode, s.inodes, n);
  slabFreeFrom(pgdat, std.lsmInode, s.lsm, n);
  slabFreeFrom(pgdat, std.extentStatus, s.es, n);
  s.files -= n;
}

/** Files of the set that still have page cache: the newest ones, at the set's mean file size. */
function filesWithPages(s: FileSet): number {
  if (s.cachedPages <= 0 || s.files === 0) return 0;
  return Math.min(s.files, Math.ceil((s.cachedPages * s.filesTotal) / s.pagesTotal));
}

/** The set's inodes on the inode LRU: files with neither a dentry nor page cache. */
export function inodeLruCount(s: FileSet): number {
  return Math.max(0, s.files - s.pending - Math.max(s.dentries, filesWithPages(s)));
}

/** list_lru_shrink_count(&sb->s_inode_lru). */
export function superInodeLru(sb: SuperBlock): number {
  let n = 0;
  for (const s of sb.sets.values()) n += inodeLruCount(s);
  return n;
}

/**
 * @kernel fs/dcache.c prune_dcache_sb
 * Frees up to nr of the oldest unused dentries. Returns the dentries freed.
 */
export function pruneDcacheSb(pgdat: PgData, nr: number): number {
  const sb = pgdat.slab.sb, std = pgdat.slab.std;
  if (sb === null || std === null) return 0;
  let freed = 0;
  while (freed < nr && sb.runHead < sb.runPid.length) {
    const h = sb.runHead;
    const t = Math.min(nr - freed, sb.runCount[h]!);
    slabFreeFrom(pgdat, std.dentry, sb.dentryLru, t);
    const s = sb.sets.get(sb.runPid[h]!);
    if (s !== undefined && s.gen === sb.runGen[h]) s.dentries -= t; // positive: dentry_kill → iput
    else sb.negDentries -= t;
    freed += t;
    if ((sb.runCount[h] = sb.runCount[h]! - t) === 0) sb.runHead++;
  }
  if (sb.runHead > 1024 && sb.runHead * 2 > sb.runPid.length) {
    sb.runPid.splice(0, sb.runHead); sb.runGen.splice(0, sb.runHead); sb.runCount.splice(0, sb.runHead);
    sb.runHead = 0;
  }
  return freed;
}

/**
 * @kernel fs/inode.c prune_icache_sb
 * Evicts up to nr inodes of the inode LRU, the oldest sets' first. Returns the inodes freed.
 */
export function pruneIcacheSb(pgdat: PgData, nr: number): number {
  const sb = pgdat.slab.sb, std = pgdat.slab.std;
  if (sb === null || std === null) return 0;
  let freed = 0;
  for (const s of sb.sets.values()) {
    if (freed >= nr) break;
    const t = Math.min(inodeLruCount(s), nr - freed);
    if (t <= 0) continue;
    evictInodes(pgdat, std, s, t);
    freed += t;
  }
  return freed;
}

/**
 * @kernel fs/super.c super_cache_count (vfs_pressure_ratio)
 * The dentries and inodes on the superblock's LRUs, scaled by vm.vfs_cache_pressure / 100.
 */
export function superCacheCount(pgdat: PgData): number {
  const sb = pgdat.slab.sb;
  if (sb === null) return 0;
  const total = sb.dentryLru.len + superInodeLru(sb);
  return Math.floor((total * pgdat.sysctl.vfsCachePressure) / 100);
}

/**
 * @kernel fs/super.c super_cache_scan
 * Scans nrToScan objects, split between the dentry and inode LRUs in proportion to
 * their lengths (at least one of each), dentries first since they pin inodes.
 */
export function superCacheScan(pgdat: PgData, nrToScan: number): number {
  const sb = pgdat.slab.sb;
  if (sb === null) return -1;
  const inodes = superInodeLru(sb), dentries = sb.dentryLru.len;
  const total = dentries + inodes + 1;
  const d = Math.floor((nrToScan * dentries) / total);
  const i = Math.floor((nrToScan * inodes) / total);
  return pruneDcacheSb(pgdat, d + 1) + pruneIcacheSb(pgdat, i + 1);
}

/** The root superblock's s_shrink. */
export function superShrinker(): Shrinker {
  return { name: 'super_cache_scan', countObjects: superCacheCount, scanObjects: superCacheScan, seeks: DEFAULT_SEEKS, batch: SUPER_SHRINK_BATCH, nrDeferred: 0 };
}

/** Every ring of slab ids the superblock keeps, with its cache (for the checker). */
export function vfsRings(pgdat: PgData): Array<[KmemCache, ObjRing]> {
  const sb = pgdat.slab.sb, std = pgdat.slab.std;
  if (sb === null || std === null) return [];
  const out: Array<[KmemCache, ObjRing]> = [[std.dentry, sb.dentryLru]];
  for (const s of sb.sets.values()) {
    out.push([std.inode, s.inodes], [std.lsmInode, s.lsm], [std.extentStatus, s.es], [std.bufferHead, s.bh], [std.radixTreeNode, s.xa]);
  }
  return out;
}

/** Objects the superblock holds: [dentries on the LRU (negative ones included), inodes, on the inode LRU, buffer_heads, xarray nodes]. */
export function vfsCounts(sb: SuperBlock): { dentries: number; negativeDentries: number; inodes: number; inodeLru: number; bufferHeads: number; xaNodes: number } {
  let inodes = 0, bh = 0, xa = 0;
  for (const s of sb.sets.values()) { inodes += s.files; bh += s.bh.len; xa += s.xa.len; }
  return { dentries: sb.dentryLru.len, negativeDentries: sb.negDentries, inodes, inodeLru: superInodeLru(sb), bufferHeads: bh, xaNodes: xa };
}
