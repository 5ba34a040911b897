/**
 * The scenario runner: boots the guest, schedules the timeline's actions on the
 * simulation clock, runs to the end, and builds the result document (CLI.md).
 *
 * Deterministic: the only sources of variation are the scenario and its seed. Wall
 * time is measured only through the clock the caller passes in (the core has no
 * access to a real clock), and is left out of the document when no clock is given.
 */
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { simAt, simRunUntil } from '../sim/clock.js';
import { type Rng, rngBelow, rngFork } from '../sim/rng.js';
import { type Guest, createGuest } from '../guest/guest.js';
import { DEFAULT_BOOT } from '../guest/mm/boot.js';
import { MAX_ORDER, MIGRATE_TYPES, MIGRATETYPE_NAMES, NO_PAGE, Owner, PAGE_SIZE, PAGEBLOCK_NR_PAGES, getPageblockMigratetype } from '../guest/mm/memmap.js';
import { allocPages, freePages, drainAllPages } from '../guest/mm/page_alloc.js';
import { assertPgdat } from '../guest/mm/check.js';
import { getProcess, faultAnonPages, unmapAnonPages, exitProcess, readFilePages } from '../guest/mm/process.js';
import { compactMemory } from '../guest/mm/compaction.js';
import { vmstatObject, globalZonePageState } from '../guest/mm/vmstat.js';
import { ZoneStat, VmEvent } from '../guest/mm/vmstat_items.js';
import { type Scenario, type Action, type AllocPagesAction, type FreePagesAction, ScenarioError, validateScenarioFile, type ScenarioFile } from './schema.js';
import { VERSION } from '../version.js';

/** One timeline event in the result document. */
export type ResultEvent = { t_ns: number; kind: string; label?: string } & Record<string, unknown>;

/** The result document of `balloonlab run --json` (CLI.md). */
export type ResultDocument = {
  balloonlab: string;
  scenario: string;
  seed: number;
  guest: { memory_bytes: number; vcpus: number };
  duration_ns: number;
  wall_ms: number;
  vmstat: Record<string, number>;
  balloon: { target_pages: number; actual_pages: number; inflated: number; deflated: number; migrated: number };
  events: ResultEvent[];
};

export type RunOptions = {
  /** Overrides the scenario's seed. */
  seed?: number;
  /** Run the invariant checker after boot and after every action. */
  check?: boolean;
  /** Stop at this virtual time (ns) instead of the scenario's duration (proc --at). */
  until?: number;
  /** Called as virtual time advances: (now_ns, end_ns). */
  onProgress?: (now: number, end: number) => void;
  /** A wall clock in milliseconds (performance.now); without it wall_ms is 0. */
  wallClock?: () => number;
};

export type RunResult = { doc: ResultDocument; guest: Guest };

/** Parses YAML scenario text; `where` names the file in messages. */
export function loadScenarioText(text: string, where: string): ScenarioFile {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    if (e instanceof YAMLParseError) throw new ScenarioError(`${where}: not valid YAML: ${e.message.split('\n')[0]}`);
    throw e;
  }
  return validateScenarioFile(doc, where);
}

/** Free blocks of each order 0..10, summed over zones (buddyinfo summed). */
export function freeBlocksPerOrder(guest: Guest): number[] {
  const out = new Array<number>(MAX_ORDER).fill(0);
  for (const z of guest.pgdat.zones) for (let o = 0; o < MAX_ORDER; o++) out[o] = out[o]! + z.nrFree[o]!;
  return out;
}

/** Pageblocks of each migratetype over all zones, by the names pagetypeinfo uses. */
export function pageblockCounts(guest: Guest): Record<string, number> {
  const counts = new Array<number>(MIGRATE_TYPES).fill(0);
  const map = guest.pgdat.map;
  for (const z of guest.pgdat.zones) {
    const end = z.zoneStartPfn + z.spannedPages;
    for (let pfn = z.zoneStartPfn & ~(PAGEBLOCK_NR_PAGES - 1); pfn < end; pfn += PAGEBLOCK_NR_PAGES) {
      counts[getPageblockMigratetype(map, pfn)]!++;
    }
  }
  const out: Record<string, number> = {};
  MIGRATETYPE_NAMES.forEach((n, i) => { out[n] = counts[i]!; });
  return out;
}

const OWNER_BY_NAME: Readonly<Record<AllocPagesAction['owner'], Owner>> = {
  kernel: Owner.kernel,
  slab_unreclaimable: Owner.slabUnreclaimable,
  slab_reclaimable: Owner.slabReclaimable,
  kernel_stack: Owner.kernelStack,
  page_table: Owner.pageTable,
  anon: Owner.anon,
  file: Owner.file,
  shmem: Owner.shmem,
};

/** Blocks a scenario holds under a tag: (pfn, order) pairs. */
type Held = { pfns: number[]; orders: number[] };

type RunState = { guest: Guest; rng: Rng; tags: Map<string, Held>; events: ResultEvent[]; check: boolean };

function setCpu(st: RunState, cpu: number): void {
  if (cpu >= st.guest.config.vcpus) throw new ScenarioError(`cpu ${cpu} does not exist (the guest has ${st.guest.config.vcpus} vcpus)`);
  st.guest.pgdat.cpu = cpu;
}

function doAllocPages(st: RunState, a: AllocPagesAction, ev: ResultEvent): void {
  setCpu(st, a.cpu);
  let held = st.tags.get(a.tag);
  if (!held) { held = { pfns: [], orders: [] }; st.tags.set(a.tag, held); }
  const owner = OWNER_BY_NAME[a.owner];
  let ok = 0;
  for (let i = 0; i < a.count; i++) {
    const pfn = allocPages(st.guest.pgdat, a.gfp, a.order, owner);
    if (pfn === NO_PAGE) continue;
    held.pfns.push(pfn);
    held.orders.push(a.order);
    ok++;
  }
  Object.assign(ev, { requested: a.count, order: a.order, succeeded: ok, failed: a.count - ok, success_pct: +(100 * ok / a.count).toFixed(2) });
}

function doFreePages(st: RunState, a: FreePagesAction, ev: ResultEvent): void {
  setCpu(st, a.cpu);
  const held = st.tags.get(a.tag);
  if (!held) throw new ScenarioError(`free_pages: no allocations are tagged "${a.tag}" at this time`);
  const n = held.pfns.length;
  const want = Math.round(n * a.fraction);
  const keep = new Uint8Array(n).fill(1);
  if (a.pick === 'random') {
    // partial Fisher-Yates over indices: the first `want` of a seeded shuffle
    const idx = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < want; i++) {
      const j = i + rngBelow(st.rng, n - i);
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
    freePages(st.guest.pgdat, held.pfns[i]!, held.orders[i]!);
    pages += 1 << held.orders[i]!;
    freed++;
  }
  held.pfns = pfns;
  held.orders = orders;
  Object.assign(ev, { freed, pages });
}

function snapshot(st: RunState, ev: ResultEvent): void {
  Object.assign(ev, {
    nr_free_pages: globalZonePageState(st.guest.pgdat, ZoneStat.nr_free_pages),
    free_blocks: freeBlocksPerOrder(st.guest),
    pageblocks: pageblockCounts(st.guest),
  });
}

function runAction(st: RunState, a: Action): void {
  const ev: ResultEvent = { t_ns: st.guest.sim.now, kind: a.action };
  if (a.label !== undefined) ev.label = a.label;
  switch (a.action) {
    case 'snapshot': snapshot(st, ev); break;
    case 'alloc_pages': doAllocPages(st, a, ev); break;
    case 'free_pages': doFreePages(st, a, ev); break;
    case 'drain_pcp': {
      const before = globalZonePageState(st.guest.pgdat, ZoneStat.nr_free_pages);
      drainAllPages(st.guest.pgdat, null);
      ev.pages = globalZonePageState(st.guest.pgdat, ZoneStat.nr_free_pages) - before;
      break;
    }
    case 'check': assertPgdat(st.guest.pgdat, `at t=${st.guest.sim.now}ns`); ev.ok = true; break;
    case 'process_fault': {
      const proc = getProcess(st.guest.procs, a.pid);
      if (a.madvise_hugepage) proc.madvised = true;
      const want = Math.ceil(a.size / PAGE_SIZE);
      const e0 = st.guest.pgdat.events.slice();
      const got = faultAnonPages(st.guest.pgdat, proc, want);
      ev.thp_fault_alloc = st.guest.pgdat.events[VmEvent.thp_fault_alloc]! - e0[VmEvent.thp_fault_alloc]!;
      ev.thp_fault_fallback = st.guest.pgdat.events[VmEvent.thp_fault_fallback]! - e0[VmEvent.thp_fault_fallback]!;
      Object.assign(ev, { pid: a.pid, requested_pages: want, faulted_pages: got, rss_pages: proc.rssAnon });
      break;
    }
    case 'process_file': {
      const proc = getProcess(st.guest.procs, a.pid);
      const want = Math.ceil(a.size / PAGE_SIZE);
      Object.assign(ev, { pid: a.pid, requested_pages: want, cached_pages: readFilePages(st.guest.pgdat, proc, want, a.dirty) });
      break;
    }
    case 'process_free': {
      const proc = st.guest.procs.get(a.pid);
      if (!proc) throw new ScenarioError(`process_free: no process ${a.pid} at this time (start it with process_fault)`);
      Object.assign(ev, { pid: a.pid, freed_pages: unmapAnonPages(st.guest.pgdat, st.rng, proc, a.fraction, a.pick), rss_pages: proc.rssAnon });
      break;
    }
    case 'process_exit': {
      const proc = st.guest.procs.get(a.pid);
      if (!proc) throw new ScenarioError(`process_exit: no process ${a.pid} at this time`);
      Object.assign(ev, { pid: a.pid, freed_pages: exitProcess(st.guest.pgdat, st.guest.procs, proc) });
      break;
    }
    case 'compact_memory': {
      const before = freeBlocksPerOrder(st.guest);
      const e0 = st.guest.pgdat.events.slice();
      const rep = compactMemory(st.guest.pgdat);
      const delta = (k: VmEvent) => st.guest.pgdat.events[k]! - e0[k]!;
      Object.assign(ev, {
        free_blocks_before: before,
        free_blocks_after: freeBlocksPerOrder(st.guest),
        compact_migrate_scanned: delta(VmEvent.compact_migrate_scanned),
        compact_free_scanned: delta(VmEvent.compact_free_scanned),
        compact_isolated: delta(VmEvent.compact_isolated),
        pgmigrate_success: delta(VmEvent.pgmigrate_success),
        pgmigrate_fail: delta(VmEvent.pgmigrate_fail),
        cost_ns: rep.costNs,
      });
      break;
    }
  }
  st.events.push(ev);
  if (st.check) assertPgdat(st.guest.pgdat, `after ${a.action} at t=${st.guest.sim.now}ns`);
}

/** The virtual time a scenario ends at: its duration, or just past its last action. */
export function scenarioEnd(s: Scenario): number {
  if (s.duration !== undefined) return s.duration;
  let last = 0;
  for (const a of s.timeline) last = Math.max(last, a.at);
  return last;
}

/** Runs a scenario to its end (or opts.until) and returns the result document and the guest. */
export function runScenario(s: Scenario, opts: RunOptions = {}): RunResult {
  const t0 = opts.wallClock?.();
  const seed = opts.seed ?? s.seed;
  const guest = createGuest({
    memoryBytes: s.guest.memory,
    vcpus: s.guest.vcpus,
    seed,
    swapBytes: s.guest.swap,
    boot: {
      ...DEFAULT_BOOT,
      kaslr: s.guest.kaslr,
      kernelImageBytes: s.guest.kernel_image ?? DEFAULT_BOOT.kernelImageBytes,
      minFreeKbytes: s.guest.min_free_kbytes === 'auto' ? null : s.guest.min_free_kbytes,
      thp: s.guest.thp,
      thpDefrag: s.guest.thp_defrag,
    },
  });
  const st: RunState = { guest, rng: rngFork(guest.rng), tags: new Map(), events: [], check: opts.check ?? false };
  if (st.check) assertPgdat(guest.pgdat, 'after boot');
  const end = Math.min(opts.until ?? Infinity, scenarioEnd(s));
  const sim = guest.sim;
  for (const a of s.timeline) {
    if (a.at > end) continue;
    simAt(sim, a.at, () => {
      runAction(st, a);
      opts.onProgress?.(sim.now, end);
    });
  }
  simRunUntil(sim, end);
  opts.onProgress?.(end, end);
  const ev = guest.pgdat.events;
  const doc: ResultDocument = {
    balloonlab: VERSION,
    scenario: s.name,
    seed,
    guest: { memory_bytes: s.guest.memory, vcpus: s.guest.vcpus },
    duration_ns: end,
    wall_ms: t0 === undefined || !opts.wallClock ? 0 : Math.round((opts.wallClock() - t0) * 1000) / 1000,
    vmstat: vmstatObject(guest.pgdat),
    balloon: {
      target_pages: 0,
      actual_pages: 0,
      inflated: ev[VmEvent.balloon_inflate]!,
      deflated: ev[VmEvent.balloon_deflate]!,
      migrated: ev[VmEvent.balloon_migrate]!,
    },
    events: st.events,
  };
  return { doc, guest };
}
