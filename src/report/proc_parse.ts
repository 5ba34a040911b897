/**
 * Reading a real guest's /proc files back into the figures the model's events carry
 * (the real side of `snapshot`, `compact_memory`, the differential reports): the
 * formats are the kernel's (proc.ts writes the same ones for the model guest), so a
 * parser here reads either. Zones are summed as the model's events sum them; a line
 * that does not parse is skipped, never guessed at.
 */
import { MAX_ORDER, MIGRATETYPE_NAMES } from '../guest/mm/memmap.js';

/** /proc/buddyinfo: free blocks of each order 0..10 summed over zones. */
export function parseBuddyinfo(text: string): number[] {
  const out = new Array<number>(MAX_ORDER).fill(0);
  for (const line of text.split('\n')) {
    const m = /^Node\s+\d+,\s+zone\s+\S+\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const counts = m[1]!.trim().split(/\s+/).map(Number);
    counts.forEach((c, o) => { if (o < MAX_ORDER && Number.isFinite(c)) out[o] = out[o]! + c; });
  }
  return out;
}

/** /proc/pagetypeinfo's "Number of blocks type" table, summed over zones, by migratetype name. */
export function parsePageblockCounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of MIGRATETYPE_NAMES) out[n] = 0;
  let header: string[] | null = null;
  for (const line of text.split('\n')) {
    const h = /^Number of blocks type\s+(.*)$/.exec(line);
    if (h) { header = h[1]!.trim().split(/\s+/); continue; }
    if (!header) continue;
    const m = /^Node\s+\d+,\s+zone\s+\S+\s+(.*)$/.exec(line.trim());
    if (!m) { if (line.trim() === '') header = null; continue; }
    const counts = m[1]!.trim().split(/\s+/).map(Number);
    header.forEach((name, i) => { if (Number.isFinite(counts[i])) out[name] = (out[name] ?? 0) + counts[i]!; });
  }
  return out;
}

/** /proc/vmstat: counter name -> value. */
export function parseVmstat(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([a-z_0-9]+) (-?\d+)$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** /proc/meminfo: field -> value in kB (or pages for the HugePages_ counts). */
export function parseMeminfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_()0-9]+):\s+(\d+)(?: kB)?$/.exec(line.trim());
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** /proc/pagetypeinfo's free lists: free base pages of each migratetype (sum over zones and orders of count × 2^order). */
export function parseFreePagesByType(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of MIGRATETYPE_NAMES) out[n] = 0;
  for (const line of text.split('\n')) {
    const m = /^Node\s+\d+,\s+zone\s+\S+,\s+type\s+(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const counts = m[2]!.trim().split(/\s+/).map(Number);
    let pages = 0;
    counts.forEach((c, o) => { if (Number.isFinite(c)) pages += c * 2 ** o; });
    out[m[1]!] = (out[m[1]!] ?? 0) + pages;
  }
  return out;
}

/** /proc/zoneinfo: per populated zone, its free pages, watermarks and page counts, as `<zone>.<field>` (free, min, low, high, spanned, present, managed). */
export function parseZoneinfo(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  let zone: string | null = null;
  for (const line of text.split('\n')) {
    const z = /^Node\s+\d+,\s+zone\s+(\S+)/.exec(line);
    if (z) { zone = z[1]!; continue; }
    if (!zone) continue;
    const f = /^\s+pages free\s+(\d+)$/.exec(line) ?? /^\s+(min|low|high|spanned|present|managed)\s+(\d+)$/.exec(line);
    if (!f) continue;
    if (f.length === 2) out[`${zone}.free`] = Number(f[1]);
    else out[`${zone}.${f[1]}`] = Number(f[2]);
  }
  const empty = new Set(Object.keys(out).filter((k) => k.endsWith('.present') && out[k] === 0).map((k) => k.split('.')[0]));
  for (const k of Object.keys(out)) if (empty.has(k.split('.')[0])) delete out[k];
  return out;
}

/** The vmstat counters a differential report follows (those that say what mm did). */
export const DIFF_VMSTAT = /^(balloon_|compact_|pgmigrate_|thp_|allocstall_|pgscan_|pgsteal_|oom_kill$|htlb_|nr_free_pages$|nr_anon_pages$|nr_anon_transparent_hugepages$|nr_file_pages$|nr_page_table_pages$|nr_dirty$|nr_writeback$|nr_dirtied$|nr_written$|nr_slab_reclaimable$|nr_slab_unreclaimable$|slabs_scanned$|pswp|kswapd_|drop_pagecache$|drop_slab$|pginodesteal$|pgpgin$|pgpgout$|pgalloc_|pgfree$)/;

/** The slab caches a differential report follows (/proc/slabinfo's active_objs): those of the page cache and the VFS. */
export const DIFF_SLAB_CACHES = ['dentry', 'ext4_inode_cache', 'inode_cache', 'lsm_inode_cache', 'ext4_extent_status', 'buffer_head', 'radix_tree_node'] as const;

/** /proc/slabinfo (version 2.1): active_objs and num_objs of each cache, by name. */
export function parseSlabinfo(text: string): Record<string, { active: number; total: number }> {
  const out: Record<string, { active: number; total: number }> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s+\d+/.exec(line);
    if (m) out[m[1]!] = { active: Number(m[2]), total: Number(m[3]) };
  }
  return out;
}

/**
 * What a differential run reads after every entry, the same way on both sides, from
 * the /proc texts (the model renders them, the real guest cats them): MemTotal,
 * MemFree, MemAvailable (kB); `vmstat.<counter>` for DIFF_VMSTAT; `free.<type>` free
 * pages per migratetype; `blocks.<type>` pageblocks per migratetype; `order.<n>` free
 * blocks per order; `zone.<zone>.<field>` free pages, watermarks and page counts of
 * each populated zone (zoneinfo); with slabinfo, `slab.<cache>` active objects of
 * DIFF_SLAB_CACHES.
 */
export function diffProbe(p: { meminfo: string; vmstat: string; buddyinfo: string; pagetypeinfo: string; zoneinfo: string; slabinfo?: string }): Record<string, number> {
  const m = parseMeminfo(p.meminfo);
  const out: Record<string, number> = { MemTotal: m.MemTotal ?? 0, MemFree: m.MemFree ?? 0, MemAvailable: m.MemAvailable ?? 0 };
  for (const [k, v] of Object.entries(parseVmstat(p.vmstat))) if (DIFF_VMSTAT.test(k)) out[`vmstat.${k}`] = v;
  for (const [k, v] of Object.entries(parseFreePagesByType(p.pagetypeinfo))) out[`free.${k}`] = v;
  for (const [k, v] of Object.entries(parsePageblockCounts(p.pagetypeinfo))) out[`blocks.${k}`] = v;
  parseBuddyinfo(p.buddyinfo).forEach((c, o) => { out[`order.${o}`] = c; });
  for (const [k, v] of Object.entries(parseZoneinfo(p.zoneinfo))) out[`zone.${k}`] = v;
  if (p.slabinfo) {
    const si = parseSlabinfo(p.slabinfo);
    for (const c of DIFF_SLAB_CACHES) if (si[c]) out[`slab.${c}`] = si[c].active;
  }
  return out;
}

/** The shell command that prints the four files diffProbe reads, each after a marker line. */
export const DIFF_PROBE_COMMAND = ['meminfo', 'vmstat', 'buddyinfo', 'pagetypeinfo', 'zoneinfo'].map((f) => `echo '@@ ${f}'; cat /proc/${f}`).join('; ');

/** DIFF_PROBE_COMMAND and the lines of /proc/slabinfo of DIFF_SLAB_CACHES (the qemu guest's probe). */
export const DIFF_PROBE_COMMAND_SLAB = `${DIFF_PROBE_COMMAND}; echo '@@ slabinfo'; grep -E '^(${DIFF_SLAB_CACHES.join('|')}) ' /proc/slabinfo`;

/** Splits DIFF_PROBE_COMMAND's (or DIFF_PROBE_COMMAND_SLAB's) output into its files. */
export function splitProbeOutput(out: string): { meminfo: string; vmstat: string; buddyinfo: string; pagetypeinfo: string; zoneinfo: string; slabinfo: string } {
  const parts = { meminfo: '', vmstat: '', buddyinfo: '', pagetypeinfo: '', zoneinfo: '', slabinfo: '' };
  let cur: keyof typeof parts | null = null;
  for (const line of out.split('\n')) {
    const mm = /^@@ (\w+)$/.exec(line);
    if (mm && mm[1]! in parts) { cur = mm[1] as keyof typeof parts; continue; }
    if (cur) parts[cur] += line + '\n';
  }
  return parts;
}
