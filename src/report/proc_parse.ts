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
