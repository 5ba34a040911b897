/**
 * Actions on the guest's memory manager: what the allocator holds (snapshot), raw
 * allocations and frees the way mmtests' highalloc allocator made them, draining the
 * per-cpu lists, /proc/sys/vm/compact_memory, and the invariant check.
 */
import { defineAction, ActionError, type RealContext } from './action.js';
import { int, num, oneOf, str, gfp } from './fields.js';
import { NO_PAGE, Owner, MAX_ORDER, PAGE_SIZE } from '../guest/mm/memmap.js';
import { GFP_KERNEL, gfpFlagNames } from '../guest/mm/gfp.js';
import { allocPages, freePages, drainAllPages } from '../guest/mm/page_alloc.js';
import { compactMemory } from '../guest/mm/compaction.js';
import { syncPagecache, dropCachesSysctlHandler } from '../guest/mm/filemap.js';
import { globalZonePageState, globalNodePageState } from '../guest/mm/vmstat.js';
import { ZoneStat, NodeStat, VmEvent } from '../guest/mm/vmstat_items.js';
import { rngBelow, createSplitmix64, splitmix64Mod } from '../sim/rng.js';
import { ramRssBytes } from '../host/ram.js';
import { assertVm } from '../machine/machine.js';
import { schedBurst, schedSliceNs } from '../guest/sched.js';
import { freeBlocksPerOrder, pageblockCounts, procMeminfo } from '../report/proc.js';
import { parseBuddyinfo, parsePageblockCounts, parseVmstat, parseMeminfo } from '../report/proc_parse.js';

/** Owners an `alloc_pages` action may allocate for (what the pages stand for). */
export const ALLOC_OWNERS = ['kernel', 'slab_unreclaimable', 'slab_reclaimable', 'kernel_stack', 'page_table', 'anon', 'file', 'shmem'] as const;

const OWNER_BY_NAME: Readonly<Record<(typeof ALLOC_OWNERS)[number], Owner>> = {
  kernel: Owner.kernel,
  slab_unreclaimable: Owner.slabUnreclaimable,
  slab_reclaimable: Owner.slabReclaimable,
  kernel_stack: Owner.kernelStack,
  page_table: Owner.pageTable,
  anon: Owner.anon,
  file: Owner.file,
  shmem: Owner.shmem,
};

const cpuField = int('The cpu the allocations run on (its per-cpu lists)', { min: 0, default: 0 });

/** The shell text that prints the /proc files a snapshot reads, each after a marker line. */
const PROC_FILES = ['buddyinfo', 'pagetypeinfo', 'vmstat', 'meminfo'] as const;
function procDumpCommand(): string {
  return PROC_FILES.map((f) => `echo '@@ ${f}'; cat /proc/${f}`).join('; ');
}
function splitProcDump(out: string): Record<(typeof PROC_FILES)[number], string> {
  const parts = { buddyinfo: '', pagetypeinfo: '', vmstat: '', meminfo: '' };
  let cur: keyof typeof parts | null = null;
  for (const line of out.split('\n')) {
    const m = /^@@ (\w+)$/.exec(line);
    if (m && m[1]! in parts) { cur = m[1] as keyof typeof parts; continue; }
    if (cur) parts[cur] += line + '\n';
  }
  return parts;
}

/** Reads the real guest's buddyinfo, pagetypeinfo and vmstat in one round trip. */
async function readProc(ctx: RealContext): Promise<{ freeBlocks: number[]; pageblocks: Record<string, number>; vmstat: Record<string, number>; meminfo: Record<string, number> }> {
  const r = await ctx.shell(procDumpCommand(), 30e9);
  if (r.status !== 0) throw new ActionError(`reading /proc in the real guest failed (exit ${r.status}): ${r.output.slice(0, 200)}`);
  const p = splitProcDump(r.output);
  return { freeBlocks: parseBuddyinfo(p.buddyinfo), pageblocks: parsePageblockCounts(p.pagetypeinfo), vmstat: parseVmstat(p.vmstat), meminfo: parseMeminfo(p.meminfo) };
}

/** MemTotal, MemFree and MemAvailable (kB) from a parsed /proc/meminfo, as snapshot events carry them. */
function memFigures(m: Record<string, number>): { MemTotal: number; MemFree: number; MemAvailable: number } {
  return { MemTotal: m.MemTotal ?? 0, MemFree: m.MemFree ?? 0, MemAvailable: m.MemAvailable ?? 0 };
}

export const snapshot = defineAction({
  name: 'snapshot',
  doc: 'Records free pages, free blocks per order (buddyinfo), pageblocks per migratetype (pagetypeinfo), host RSS and the balloon',
  fields: {},
  model: (ctx) => {
    const { guest, host } = ctx.vm;
    const dev = host.balloon;
    return {
      nr_free_pages: globalZonePageState(guest.pgdat, ZoneStat.nr_free_pages),
      free_blocks: freeBlocksPerOrder(guest),
      pageblocks: pageblockCounts(guest),
      host_rss_bytes: ramRssBytes(host.ram),
      ...(dev ? { balloon_target_pages: dev.numPages, balloon_actual_pages: dev.actual } : {}),
      ...memFigures(parseMeminfo(procMeminfo(guest))),
    };
  },
  real: {
    engines: ['v86', 'qemu'],
    run: async (ctx) => {
      const p = await readProc(ctx);
      const q = await ctx.qmp({ execute: 'query-balloon' });
      const actual = 'return' in q ? (q.return as { actual: number }).actual : null;
      const rss = ctx.hostRssBytes();
      return {
        nr_free_pages: p.vmstat.nr_free_pages ?? 0,
        free_blocks: p.freeBlocks,
        pageblocks: p.pageblocks,
        host_rss_bytes: rss ?? 0,
        ...(actual !== null ? { balloon_target_pages: ctx.balloonTargetPages ?? 0, balloon_actual_pages: (ctx.ramSize - actual) / PAGE_SIZE } : {}),
        ...memFigures(p.meminfo),
      };
    },
  },
});

export const allocPagesAction = defineAction({
  name: 'alloc_pages',
  doc: 'alloc_pages() `count` times with a GFP mask and order, as mmtests\' highalloc allocator did; the blocks are held under `tag`',
  fields: {
    count: int('How many blocks to allocate', { min: 1, max: 1 << 26 }),
    order: int('Block order (0 = 4 KiB ... 10 = 4 MiB)', { min: 0, max: MAX_ORDER - 1, default: 0 }),
    gfp: gfp('GFP mask, kernel names joined by | (e.g. GFP_HIGHUSER_MOVABLE|__GFP_NOWARN)', { default: GFP_KERNEL }),
    owner: oneOf('What the pages stand for (the counters they feed)', ALLOC_OWNERS, { default: 'kernel' }),
    tag: str('Names this set of blocks so a later free_pages can release them', { default: 'default' }),
    cpu: cpuField,
  },
  model: (ctx, a) => {
    const guest = ctx.vm.guest;
    setCpu(guest.config.vcpus, a.cpu);
    const { pgdat, sched, sim } = guest;
    let held = ctx.tags.get(a.tag);
    if (!held) { held = { pfns: [], orders: [] }; ctx.tags.set(a.tag, held); }
    const h = held;
    const owner = OWNER_BY_NAME[a.owner];
    // The allocations run as bl_alloc's loop does, in the writing task on its (pinned)
    // vCPU, with cond_resched() after each: a burst goes on until an allocation took
    // the slow path (the kswapd it woke, and kcompactd, then get their turn) or its
    // vCPU time reaches the scheduler's slice; the timeline waits for the last.
    const slice = schedSliceNs(guest.config.vcpus);
    const tasks = pgdat.tasks, fast = pgdat.costs.pageAllocFast;
    const finish = ctx.defer();
    const t0 = sim.now;
    let i = 0, ok = 0;
    const burst = () => {
      let ns = 0;
      const stall0 = tasks.stallNs;
      while (i < a.count) {
        const epoch = tasks.slowpathEpoch;
        const pfn = allocPages(pgdat, a.gfp, a.order, owner);
        i++;
        ns += fast;
        if (pfn !== NO_PAGE) { h.pfns.push(pfn); h.orders.push(a.order); ok++; }
        if (tasks.slowpathEpoch !== epoch || ns + tasks.stallNs - stall0 >= slice) break;
      }
      return ns;
    };
    const after = () => {
      if (i < a.count) { schedBurst(sched, a.cpu, burst, after, { pinned: true }); return; }
      finish({ succeeded: ok, failed: a.count - ok, success_pct: +(100 * ok / a.count).toFixed(2), ns: sim.now - t0 });
    };
    schedBurst(sched, a.cpu, burst, after, { pinned: true });
    const ev: { requested: number; order: number; succeeded?: number; failed?: number; success_pct?: number; ns?: number } = { requested: a.count, order: a.order };
    return ev;
  },
  real: {
    // the bl_alloc module in the qemu guest: alloc_pages(gfp, order) count times, held by tag
    engines: ['qemu'],
    refuse: (a) => (a.owner !== 'kernel' ? `owner ${a.owner}: the real module's blocks are plain kernel allocations (owner: kernel)` : tagProblem(a.tag)),
    run: async (ctx, a) => {
      const r = await blAlloc(ctx, `alloc ${a.tag} ${a.order} ${gfpFlagNames(a.gfp)} ${a.count}`, a.cpu);
      const ok = r.succeeded ?? 0;
      return { requested: a.count, order: a.order, succeeded: ok, failed: a.count - ok, success_pct: +(100 * ok / a.count).toFixed(2), ns: r.ns ?? 0 };
    },
  },
});

/** bl_alloc's tags: 1..31 of [A-Za-z0-9_.-]. */
function tagProblem(tag: string): string | null {
  return /^[A-Za-z0-9_.-]{1,31}$/.test(tag) ? null : `tag "${tag}": the real module takes 1 to 31 of A-Z a-z 0-9 _ . -`;
}

/**
 * One command to the qemu guest's bl_alloc module (/proc/bl_alloc), written from a
 * shell pinned to `cpu` (the allocations run in the writer's context, on its cpu's
 * per-cpu lists), and its result line as numbers.
 */
async function blAlloc(ctx: RealContext, cmd: string, cpu: number): Promise<Record<string, number>> {
  const r = await ctx.shell(`taskset -c ${cpu} sh -c 'echo "${cmd}" > /proc/bl_alloc'; cat /proc/bl_alloc`, 600e9);
  const line = r.output.trim().split('\n').pop() ?? '';
  const f: Record<string, string> = {};
  for (const kv of line.split(' ')) { const i = kv.indexOf('='); if (i > 0) f[kv.slice(0, i)] = kv.slice(i + 1); }
  if (r.status !== 0 || f.op === 'error' || f.op === undefined) throw new ActionError(`bl_alloc "${cmd}" failed in the real guest (exit ${r.status}): ${r.output.trim().slice(0, 200)}`);
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(f)) if (/^-?\d+$/.test(v)) out[k] = Number(v);
  return out;
}

function setCpu(vcpus: number, cpu: number): void {
  if (cpu >= vcpus) throw new ActionError(`cpu ${cpu} does not exist (the guest has ${vcpus} vcpus)`);
}

export const freePagesAction = defineAction({
  name: 'free_pages',
  doc: 'Frees a share of the blocks alloc_pages holds under `tag`',
  fields: {
    tag: str('The alloc_pages tag', { default: 'default' }),
    fraction: num('Share of the tag\'s blocks to free (0..1)', { min: 0, max: 1, default: 1 }),
    pick: oneOf('Which blocks: random (seeded), oldest first, newest first, or every other one', ['random', 'oldest', 'newest', 'alternate'], { default: 'random' }),
    seed: int('pick random: draw from splitmix64 with this seed (bl_alloc\'s random:SEED, so a real guest frees the same blocks) instead of the scenario\'s random stream', { min: 0, max: Number.MAX_SAFE_INTEGER, optional: true }),
    cpu: cpuField,
  },
  refine: (a) => (a.seed !== undefined && a.pick !== 'random' ? { field: 'seed', message: 'seed is used only by pick random' } : null),
  model: (ctx, a) => {
    const guest = ctx.vm.guest;
    setCpu(guest.config.vcpus, a.cpu);
    guest.pgdat.tasks.cpu = a.cpu;
    const held = ctx.tags.get(a.tag);
    if (!held) throw new ActionError(`no allocations are tagged "${a.tag}" at this time`);
    const n = held.pfns.length;
    const want = Math.round(n * a.fraction);
    const keep = new Uint8Array(n).fill(1);
    if (a.pick === 'random') {
      // partial Fisher-Yates over indices: the first `want` of a seeded shuffle
      const idx = Int32Array.from({ length: n }, (_, i) => i);
      const gen = a.seed !== undefined ? createSplitmix64(a.seed) : null;
      for (let i = 0; i < want; i++) {
        const j = i + (gen ? splitmix64Mod(gen, n - i) : rngBelow(ctx.rng, n - i));
        const t = idx[i]!; idx[i] = idx[j]!; idx[j] = t;
        keep[idx[i]!] = 0;
      }
    } else if (a.pick === 'oldest') keep.fill(0, 0, want);
    else if (a.pick === 'newest') keep.fill(0, n - want, n);
    else for (let i = 0, k = 0; i < n && k < want; i += 2, k++) keep[i] = 0;
    let pages = 0, freed = 0;
    const pfns: number[] = [], orders: number[] = [];
    for (let i = 0; i < n; i++) {
      if (keep[i]) { pfns.push(held.pfns[i]!); orders.push(held.orders[i]!); continue; }
      freePages(guest.pgdat, held.pfns[i]!, held.orders[i]!);
      pages += 1 << held.orders[i]!;
      freed++;
    }
    held.pfns = pfns;
    held.orders = orders;
    return { freed, pages };
  },
  real: {
    engines: ['qemu'],
    refuse: (a) => (a.pick === 'random' && a.seed === undefined ? 'pick random without seed draws from the model\'s random stream, which the real module cannot follow: give seed: N (both sides then free the same blocks)' : tagProblem(a.tag)),
    run: async (ctx, a) => {
      const r = await blAlloc(ctx, `free ${a.tag} ${a.fraction.toFixed(9).replace(/\.?0+$/, '')} ${a.pick === 'random' ? `random:${a.seed}` : a.pick}`, a.cpu);
      return { freed: r.freed ?? 0, pages: r.pages ?? 0 };
    },
  },
});

export const drainPcp = defineAction({
  name: 'drain_pcp',
  doc: 'Returns every per-cpu list\'s pages to the buddy allocator (drain_all_pages)',
  fields: {},
  model: (ctx) => {
    const pg = ctx.vm.guest.pgdat;
    const before = globalZonePageState(pg, ZoneStat.nr_free_pages);
    drainAllPages(pg, null);
    return { pages: globalZonePageState(pg, ZoneStat.nr_free_pages) - before };
  },
});

/** The compaction counters a compact_memory event reports, as deltas. */
const COMPACT_COUNTERS = ['compact_migrate_scanned', 'compact_free_scanned', 'compact_isolated', 'pgmigrate_success', 'pgmigrate_fail'] as const;

export const compactMemoryAction = defineAction({
  name: 'compact_memory',
  doc: 'echo 1 > /proc/sys/vm/compact_memory: full compaction of every zone; free blocks before and after',
  fields: {},
  model: (ctx) => {
    const guest = ctx.vm.guest;
    const before = freeBlocksPerOrder(guest);
    const e0 = guest.pgdat.events.slice();
    const rep = compactMemory(guest.pgdat);
    const delta = (k: VmEvent) => guest.pgdat.events[k]! - e0[k]!;
    return {
      free_blocks_before: before,
      free_blocks_after: freeBlocksPerOrder(guest),
      compact_migrate_scanned: delta(VmEvent.compact_migrate_scanned),
      compact_free_scanned: delta(VmEvent.compact_free_scanned),
      compact_isolated: delta(VmEvent.compact_isolated),
      pgmigrate_success: delta(VmEvent.pgmigrate_success),
      pgmigrate_fail: delta(VmEvent.pgmigrate_fail),
      cost_ns: rep.costNs,
    };
  },
  real: {
    engines: ['v86', 'qemu'],
    run: async (ctx) => {
      const p0 = await readProc(ctx);
      const t0 = ctx.now();
      const r = await ctx.shell('echo 1 > /proc/sys/vm/compact_memory', 600e9);
      if (r.status !== 0) throw new ActionError(`echo 1 > /proc/sys/vm/compact_memory failed in the real guest (exit ${r.status}): ${r.output.trim()}`);
      const cost = ctx.now() - t0;
      const p1 = await readProc(ctx);
      const d = (k: (typeof COMPACT_COUNTERS)[number]) => (p1.vmstat[k] ?? 0) - (p0.vmstat[k] ?? 0);
      return {
        free_blocks_before: p0.freeBlocks,
        free_blocks_after: p1.freeBlocks,
        compact_migrate_scanned: d('compact_migrate_scanned'),
        compact_free_scanned: d('compact_free_scanned'),
        compact_isolated: d('compact_isolated'),
        pgmigrate_success: d('pgmigrate_success'),
        pgmigrate_fail: d('pgmigrate_fail'),
        cost_ns: cost,
      };
    },
  },
});

export const check = defineAction({
  name: 'check',
  doc: 'Runs the invariant checker over the page map, the balloon and the host (a violation ends the run, exit 1)',
  fields: {},
  model: (ctx) => {
    assertVm(ctx.vm, `at t=${ctx.vm.sim.now}ns`);
    return { ok: true };
  },
});

export const dropCaches = defineAction({
  name: 'drop_caches',
  doc: 'sync; echo value > /proc/sys/vm/drop_caches: dirty page cache written back, then 1 frees every unmapped page-cache page, 2 the reclaimable slab objects (dentries, inodes) through the shrinkers, 3 both; the pages freed and the reclaimable slab pages given back',
  fields: {
    value: int('What to write: 1 page cache, 2 slab objects, 3 both', { min: 1, max: 3, default: 3 }),
  },
  model: (ctx, a) => {
    const pg = ctx.vm.guest.pgdat;
    const slab0 = globalNodePageState(pg, NodeStat.nr_slab_reclaimable);
    syncPagecache(pg);
    const r = dropCachesSysctlHandler(pg, a.value as 1 | 2 | 3);
    return { value: a.value, freed_pages: r.pages, slab_reclaimable_freed_pages: slab0 - globalNodePageState(pg, NodeStat.nr_slab_reclaimable) };
  },
  real: {
    engines: ['v86', 'qemu'],
    run: async (ctx, a) => {
      const before = (await readProc(ctx)).vmstat;
      const r = await ctx.shell(`sync; echo ${a.value} > /proc/sys/vm/drop_caches`, 120e9);
      if (r.status !== 0) throw new ActionError(`echo ${a.value} > /proc/sys/vm/drop_caches failed in the real guest (exit ${r.status}): ${r.output.trim()}`);
      const after = (await readProc(ctx)).vmstat;
      const d = (k: string) => (before[k] ?? 0) - (after[k] ?? 0);
      return { value: a.value, freed_pages: d('nr_file_pages'), slab_reclaimable_freed_pages: d('nr_slab_reclaimable') };
    },
  },
});
