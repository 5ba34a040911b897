/**
 * Actions of processes in the guest: anonymous memory faulted in (THP where allowed),
 * unmapped in part, written at a rate; page cache read or written through a file; exit.
 */
import { defineAction, ActionError, type RealContext, type ModelContext } from './action.js';
import { type BurstResult, schedBurst } from '../guest/sched.js';
import { int, num, bool, oneOf, size, time } from './fields.js';
import { Owner, PAGE_SIZE, pageOwner, pageMapping, pageOrder } from '../guest/mm/memmap.js';
import { PageWrite, type PgData } from '../guest/mm/mmzone.js';
import { type Process, type ProcessTable, type ThpAdvice, forkProcess, mmapAnon, faultRange, brkGrow, HPAGE_PMD_NR, unmapAnonPages, unmapVirtualPages, virtualCandidates, followPage, shareOf, exitProcess, readFilePages, processPages, PID_MAX, anonFaultNs, unmapFreeNs } from '../guest/mm/process.js';
import { VmEvent } from '../guest/mm/vmstat_items.js';
import { simAfter } from '../sim/clock.js';
import { rngBelow, createSplitmix64 } from '../sim/rng.js';
import { vcpuStoreNs } from '../machine/machine.js';
import { fileStep, fileEntryPages, NEW_STREAM } from './file_layout.js';

const THP_ADVICE = ['hugepage', 'nohugepage', 'default'] as const;

const pidField = int('Process id; the process is created by its first process_fault or process_file', { min: 1, max: PID_MAX });

/** glibc's default M_MMAP_THRESHOLD: a chunk this large (or larger) is mmapped on its own. */
const GLIBC_MMAP_THRESHOLD = 128 * 1024;

/**
 * bl-mem's bookkeeping for a new mapping of `pages`: `calloc(pages, 1)`, one byte per
 * page, which its touch loop sets right after touching each page. glibc (malloc.c
 * request2size, sysmalloc) serves a chunk of at least M_MMAP_THRESHOLD by mmap of its
 * own: the chunk header (16 bytes before the array) is written at once, so the
 * mapping's first page is faulted before the loop, and byte p lies at offset 16 + p,
 * so its page j (j >= 1) is first written, and faulted, right after the mapping's page
 * 4096 j - 16. Those faults take their pages from the same per-cpu list as the
 * mapping's: every 4096 pages, one page of the mapping's physical run goes to kept[]
 * (the real guest's /proc/self/pagemap shows its runs break there: bl-mem layout).
 * A smaller array comes from the heap, whose top calloc clears (memset) before the
 * loop: its pages are faulted up front, none in the loop. `prefault` does what comes
 * before the loop (on the process's vCPU, in its first burst), `nextAt` is the mapping's
 * page after which kept[] faults next (Infinity: none), `fault` takes that fault; both
 * return the pages they faulted.
 */
type KeptArray = { prefault: () => number; nextAt: () => number; fault: () => number };
function keptArray(pgdat: PgData, proc: Process, pages: number): KeptArray {
  const nb = Math.max(32, (pages + 8 + 15) & ~15); // request2size on x86-64
  if (nb < GLIBC_MMAP_THRESHOLD) {
    const heapPages = Math.ceil(pages / PAGE_SIZE);
    return {
      prefault: () => {
        const h = brkGrow(proc, heapPages);
        h.bookkeeping = true;
        return faultRange(pgdat, proc, h, h.end - heapPages, heapPages);
      },
      nextAt: () => Infinity,
      fault: () => 0,
    };
  }
  const keptPages = Math.ceil((nb + 8) / PAGE_SIZE);
  const m = mmapAnon(pgdat, proc, keptPages, 'default', { bookkeeping: true });
  const vma = m?.vma, start = m?.start ?? 0;
  let j = 1;
  return {
    prefault: () => (vma === undefined ? 0 : faultRange(pgdat, proc, vma, start, 1)),
    nextAt: () => (vma !== undefined && j < keptPages && j * PAGE_SIZE - 16 < pages ? j * PAGE_SIZE - 16 : Infinity),
    fault: () => { j++; return vma === undefined ? 0 : faultRange(pgdat, proc, vma, start + j - 1, 1); },
  };
}

/** A process_fault's THP advice for its new mapping: `madvise`, or `madvise_hugepage: true` (the older spelling of hugepage). */
export function faultAdvice(a: { madvise?: ThpAdvice | undefined; madvise_hugepage: boolean }): ThpAdvice {
  return a.madvise ?? (a.madvise_hugepage ? 'hugepage' : 'default');
}

/** `bl-mem NAME ...` in the qemu guest: its one key=value line as numbers (and strings). */
async function blMem(ctx: RealContext, pid: number, args: string, timeoutNs = 600e9): Promise<{ status: number; f: Record<string, string>; n: (k: string) => number; output: string }> {
  const r = await ctx.shell(`bl-mem p${pid} ${args}`, timeoutNs);
  const line = r.output.trim().split('\n').filter((l) => l.includes('=')).pop() ?? '';
  const f: Record<string, string> = {};
  for (const kv of line.split(' ')) { const i = kv.indexOf('='); if (i > 0) f[kv.slice(0, i)] = kv.slice(i + 1); }
  return { status: r.status, f, n: (k) => Number(f[k] ?? 0), output: r.output };
}

/** Two vmstat counters of the real guest. */
async function thpCounters(ctx: RealContext): Promise<[number, number]> {
  const r = await ctx.shell("grep -E '^thp_fault_(alloc|fallback) ' /proc/vmstat", 30e9);
  const v = (k: string) => Number(new RegExp(`^${k} (\\d+)$`, 'm').exec(r.output)?.[1] ?? 0);
  return [v('thp_fault_alloc'), v('thp_fault_fallback')];
}

/** The real side refuses what bl-mem cannot do the model's way. */
function realFreeRefusal(a: { order: 'physical' | 'virtual' }): string | null {
  return a.order === 'physical' ? 'a real process frees by virtual address (madvise MADV_DONTNEED per page): set order: virtual' : null;
}

/** What a process_fault's event says when the touching is done (absent if the run ended first). */
type FaultDone = { thp_fault_alloc: number; thp_fault_fallback: number; faulted_pages: number; rss_pages: number; elapsed_ns: number; killed: boolean };

export const processFault = defineAction({
  name: 'process_fault',
  doc: 'A process maps new anonymous memory and faults it in, in address order (THP where enabled and the mapping\'s madvise allow, falling back to 4 KiB pages)',
  fields: {
    pid: pidField,
    size: size('Anonymous memory to fault in, e.g. 3GiB: one new mapping'),
    madvise: oneOf('madvise() of the new mapping: hugepage (MADV_HUGEPAGE: THP with enabled=madvise, direct compaction with defrag=madvise), nohugepage (MADV_NOHUGEPAGE: no THP, khugepaged leaves it alone), default (neither); default: default', THP_ADVICE, { optional: true }),
    madvise_hugepage: bool('The same as madvise: hugepage (the older spelling; not together with madvise)', { default: false }),
  },
  refine: (a) => (a.madvise !== undefined && a.madvise_hugepage ? { field: 'madvise_hugepage', message: `give madvise (${a.madvise}) or madvise_hugepage, not both` } : null),
  model: (ctx, a) => {
    const { pgdat, procs, sched, sim } = ctx.vm.guest;
    const proc = forkProcess(pgdat, a.pid, ctx.vm.guest.config.seed);
    const want = Math.ceil(a.size / PAGE_SIZE);
    // as bl-mem maps it: 2 MiB-aligned, a PROT_NONE guard page either side (so it merges with no neighbour)
    const m = mmapAnon(pgdat, proc, want, faultAdvice(a), { align: HPAGE_PMD_NR, guard: true });
    if (m === null) throw new ActionError(`mmap of ${want * PAGE_SIZE} bytes failed: ENOMEM (vm.overcommit_memory 0 refuses a mapping larger than RAM and swap together)`);
    const { vma, start } = m;
    const kept = keptArray(pgdat, proc, want);
    const alloc0 = pgdat.events[VmEvent.thp_fault_alloc]!, fallback0 = pgdat.events[VmEvent.thp_fault_fallback]!;
    const t0 = sim.now;
    const finish = ctx.defer();
    // The touching goes on over virtual time, one 2 MiB range (a PMD's worth, a THP or
    // 512 faults) a burst on the process's vCPU, so that kswapd, the balloon's worker
    // and other tasks run in between, as they do while a real program faults.
    let done = 0, got = 0, failed = false;
    const burst = () => {
      if (!procs.has(a.pid)) { failed = true; return 0; }
      const end = Math.min(done + HPAGE_PMD_NR, want);
      const f0 = pgdat.events[VmEvent.pgfault]!;
      let mapped = 0, own = done === 0 ? kept.prefault() : 0;
      while (done < end && !failed) {
        // up to and including the page after which the loop's store into kept[] first
        // reaches a new page of it (that page's fault comes between two of the mapping's)
        const at = kept.nextAt();
        const stop = Math.min(end, at + 1);
        const n = stop - done;
        const got1 = faultRange(pgdat, proc, vma, start + done, n);
        mapped += got1;
        done = stop;
        // a THP fault maps its whole 2 MiB at once: the rest of it maps nothing more
        if (got1 < n && followPage(proc, start + stop - 1) < 0) failed = true;
        if (stop === at + 1 && procs.has(a.pid)) own += kept.fault();
      }
      got += mapped;
      return anonFaultNs(pgdat, pgdat.events[VmEvent.pgfault]! - f0, mapped + own);
    };
    const after = (r: BurstResult) => {
      proc.cpu = r.cpu;
      if (!failed && done < want && procs.has(a.pid)) { schedBurst(sched, proc.cpu, burst, after); return; }
      const out = {
        thp_fault_alloc: pgdat.events[VmEvent.thp_fault_alloc]! - alloc0,
        thp_fault_fallback: pgdat.events[VmEvent.thp_fault_fallback]! - fallback0,
        faulted_pages: got, rss_pages: proc.rssAnon, elapsed_ns: sim.now - t0,
      };
      // the OOM killer chose this very process while it faulted: it is gone
      finish(procs.has(a.pid) ? out : { ...out, killed: true });
    };
    schedBurst(sched, proc.cpu, burst, after);
    const ev: { pid: number; requested_pages: number } & Partial<FaultDone> = { pid: a.pid, requested_pages: want };
    return ev;
  },
  real: {
    // bl-mem in the qemu guest: a new anonymous mapping, madvise()d, one byte written per page in address order
    engines: ['qemu'],
    run: async (ctx, a) => {
      const [alloc0, fallback0] = await thpCounters(ctx);
      // align=2M: the model's mappings start on a 2 MiB boundary (every whole 2 MiB of one can be a THP)
      const t0 = ctx.now();
      const r = await blMem(ctx, a.pid, `fault ${Math.ceil(a.size / PAGE_SIZE) * PAGE_SIZE} ${faultAdvice(a)} align=2M`);
      // wall time of the bl-mem command, the agent's shell round trip included
      const elapsed = ctx.now() - t0;
      const [alloc1, fallback1] = await thpCounters(ctx);
      const want = Math.ceil(a.size / PAGE_SIZE);
      const out = { pid: a.pid, requested_pages: want, thp_fault_alloc: alloc1 - alloc0, thp_fault_fallback: fallback1 - fallback0, faulted_pages: r.status === 0 ? r.n('pages') : 0, rss_pages: Math.round(r.n('rss_anon_kb') / 4), elapsed_ns: Math.round(elapsed) };
      if (r.status === 0) return out;
      // the daemon died while faulting (the OOM killer) or bl-mem failed: which one, its stat says
      const st = await blMem(ctx, a.pid, 'stat', 30e9);
      if (st.status !== 0) return { ...out, killed: true };
      throw new ActionError(`bl-mem fault failed in the real guest (exit ${r.status}): ${r.output.trim().slice(0, 200)}`);
    },
  },
});

/**
 * Runs `work` as one burst on the process's vCPU (sched.ts: when the bursts before it are
 * done) and holds the timeline until its vCPU time has passed; the event gets `work`'s
 * fields and `elapsed_ns`. A process gone by then (the OOM killer) does nothing: `killed`.
 */
function onVcpu<F extends object>(ctx: ModelContext, proc: Process, first: { pid: number }, work: () => { ns: number; fields: F }): { pid: number } & Partial<F & { elapsed_ns: number; killed: boolean }> {
  const { sched, sim, procs } = ctx.vm.guest;
  const finish = ctx.defer();
  const t0 = sim.now;
  let fields: F | null = null;
  schedBurst(sched, proc.cpu, () => {
    if (procs.get(proc.pid) !== proc) return 0;
    const r = work();
    fields = r.fields;
    return r.ns;
  }, (r) => {
    proc.cpu = r.cpu;
    finish(fields === null ? { killed: true, elapsed_ns: sim.now - t0 } : { ...fields, elapsed_ns: sim.now - t0 });
  });
  const ev: { pid: number } & Partial<F & { elapsed_ns: number; killed: boolean }> = { ...first } as { pid: number } & Partial<F & { elapsed_ns: number; killed: boolean }>;
  return ev;
}

function liveProcess(procs: ProcessTable, pid: number, hint: string): Process {
  const proc = procs.get(pid);
  if (!proc) throw new ActionError(`no process ${pid} at this time${hint}`);
  return proc;
}

/** Whether a fraction has at most nine decimals (bl-mem's FRACTION, read as billionths). */
function nineDecimals(f: number): boolean {
  return Math.abs(f * 1e9 - Math.round(f * 1e9)) < 1e-6;
}

export const processFree = defineAction({
  name: 'process_free',
  doc: 'A process unmaps a share of its anonymous memory, picked in physical order (a THP counts once) or, as a real program would, by virtual index over its 4 KiB pages (madvise(MADV_DONTNEED) per page)',
  fields: {
    pid: pidField,
    fraction: num('Share of the process\'s pages to unmap (0..1); with order virtual, K = round-half-up(N x fraction) of the N candidates, at most nine decimals', { min: 0, max: 1, default: 0.5 }),
    pick: oneOf('alternate: every other candidate (physical order: fragments memory); lowest; highest; random (physical order: the scenario\'s random stream; virtual order: splitmix64 from seed)', ['alternate', 'random', 'lowest', 'highest'], { default: 'alternate' }),
    order: oneOf('physical: the candidates are the process\'s pages and THPs in physical order; virtual: its 4 KiB pages in ascending virtual address order (a THP is 512; unmapping part of one splits its PMD and queues it for the deferred split), as bl-mem frees them', ['physical', 'virtual'], { default: 'physical' }),
    seed: int('The splitmix64 seed of pick random with order virtual (bl-mem\'s random:SEED); required there, refused elsewhere', { min: 0, max: Number.MAX_SAFE_INTEGER, optional: true }),
  },
  refine: (a) => {
    const randomVirtual = a.order === 'virtual' && a.pick === 'random';
    if (randomVirtual && a.seed === undefined) return { field: 'seed', message: 'order virtual with pick random needs a seed (the splitmix64 seed the real guest\'s helper takes as random:SEED)' };
    if (!randomVirtual && a.seed !== undefined) return { field: 'seed', message: 'seed is used only by pick random with order virtual (physical order draws from the scenario\'s random stream)' };
    if (a.order === 'virtual' && !nineDecimals(a.fraction)) return { field: 'fraction', message: `order virtual takes a fraction with at most nine decimals, got ${a.fraction}` };
    return null;
  },
  model: (ctx, a) => {
    const pgdat = ctx.vm.guest.pgdat;
    const proc = liveProcess(ctx.vm.guest.procs, a.pid, ' (start it with process_fault)');
    // on the process's vCPU, when it gets it; the timeline waits for the unmapping's time
    return onVcpu(ctx, proc, { pid: a.pid }, () => {
      const r = a.order === 'physical'
        ? unmapAnonPages(pgdat, ctx.rng, proc, a.fraction, a.pick)
        : unmapVirtualPages(pgdat, proc, a.fraction, a.pick === 'random' ? { pick: 'random', gen: createSplitmix64(a.seed ?? 0) } : { pick: a.pick });
      // order virtual is bl-mem's one madvise(MADV_DONTNEED) a page (the zap and the
      // free included); physical order unmaps in bulk
      const k = shareOf(r.candidates, a.fraction), calls = a.pick === 'alternate' ? Math.min(k, Math.ceil(r.candidates / 2)) : k;
      const ns = a.order === 'virtual' ? calls * pgdat.costs.madvisePage : unmapFreeNs(pgdat, r.freed);
      return { ns, fields: { freed_pages: r.freed, rss_pages: proc.rssAnon, candidates: r.candidates } };
    });
  },
  real: {
    engines: ['qemu'],
    refuse: (a) => realFreeRefusal(a),
    run: async (ctx, a) => {
      const pick = a.pick === 'random' ? `random:${a.seed}` : a.pick;
      const r = await blMem(ctx, a.pid, `free ${a.fraction.toFixed(9).replace(/\.?0+$/, '')} ${pick}`);
      if (r.status !== 0) throw new ActionError(`bl-mem free failed in the real guest (exit ${r.status}): ${r.output.trim().slice(0, 200)}`);
      return { pid: a.pid, freed_pages: r.n('freed'), rss_pages: Math.round(r.n('rss_anon_kb') / 4), candidates: r.n('candidates') };
    },
  },
});

export const processExit = defineAction({
  name: 'process_exit',
  doc: 'A process exits: its anonymous memory is freed (its page cache stays cached)',
  fields: { pid: pidField },
  model: (ctx, a) => {
    const { pgdat, procs } = ctx.vm.guest;
    const proc = liveProcess(procs, a.pid, '');
    return onVcpu(ctx, proc, { pid: a.pid }, () => {
      const freed = exitProcess(pgdat, procs, proc);
      return { ns: unmapFreeNs(pgdat, freed), fields: { freed_pages: freed } };
    });
  },
  real: {
    engines: ['qemu'],
    run: async (ctx, a) => {
      const r = await blMem(ctx, a.pid, 'exit');
      if (r.status !== 0) throw new ActionError(`no process ${a.pid} in the real guest (bl-mem exit: ${r.output.trim().slice(0, 160)})`);
      // what it held: its resident pages (mincore) when it unmapped everything
      return { pid: a.pid, freed_pages: r.n('resident') };
    },
  },
});

/** What process_layout reports: bl-mem layout's figures, the same way on both sides. */
export type ProcessLayout = {
  present_pages: number; pfn_runs: number; even_pfns: number; odd_pfns: number;
  runs_1: number; runs_2_63: number; runs_64_511: number; runs_512_4095: number; runs_4096: number;
};

/**
 * Where a process's held pages lie in physical memory, as bl-mem layout computes it
 * from /proc/self/pagemap: over the pages it may free (virtualCandidates) in ascending
 * virtual order, a run is a maximal sequence whose pfns advance exactly as their
 * virtual pages do; a page not present (swapped) ends a run and is not counted.
 */
export function processLayout(proc: Process): ProcessLayout {
  const out: ProcessLayout = { present_pages: 0, pfn_runs: 0, even_pfns: 0, odd_pfns: 0, runs_1: 0, runs_2_63: 0, runs_64_511: 0, runs_512_4095: 0, runs_4096: 0 };
  let len = 0, lastPfn = 0, lastVpn = 0;
  const end = () => {
    if (len === 0) return;
    if (len === 1) out.runs_1++; else if (len < 64) out.runs_2_63++; else if (len < 512) out.runs_64_511++; else if (len < 4096) out.runs_512_4095++; else out.runs_4096++;
    len = 0;
  };
  const cand = virtualCandidates(proc);
  for (let i = 0; i < cand.length; i++) {
    const vpn = cand[i]!, pfn = followPage(proc, vpn);
    if (pfn < 0) { end(); continue; }
    out.present_pages++;
    if ((pfn & 1) === 0) out.even_pfns++; else out.odd_pfns++;
    if (len > 0 && pfn === lastPfn + (vpn - lastVpn)) len++;
    else { end(); out.pfn_runs++; len = 1; }
    lastPfn = pfn; lastVpn = vpn;
  }
  end();
  return out;
}

export const processLayoutAction = defineAction({
  name: 'process_layout',
  doc: 'Records where a process\'s held pages lie physically (bl-mem layout, from /proc/self/pagemap on the qemu guest): runs of pages whose pfns advance as their virtual addresses do, by length, and pfn parity',
  fields: { pid: pidField },
  model: (ctx, a) => {
    const proc = liveProcess(ctx.vm.guest.procs, a.pid, ' (start it with process_fault)');
    return { pid: a.pid, ...processLayout(proc) };
  },
  real: {
    engines: ['qemu'],
    run: async (ctx, a) => {
      const r = await blMem(ctx, a.pid, 'layout', 120e9);
      if (r.status !== 0) throw new ActionError(`bl-mem layout failed in the real guest (exit ${r.status}): ${r.output.trim().slice(0, 200)}`);
      return {
        pid: a.pid, present_pages: r.n('present'), pfn_runs: r.n('runs'), even_pfns: r.n('even_pfns'), odd_pfns: r.n('odd_pfns'),
        runs_1: r.n('runs_1'), runs_2_63: r.n('runs_2_63'), runs_64_511: r.n('runs_64_511'), runs_512_4095: r.n('runs_512_4095'), runs_4096: r.n('runs_4096'),
      };
    },
  },
});

/** The most pages (16 GiB) and files (2^20) one process_file entry may take on the qemu guest. */
export const SCRATCH_MAX_PAGES = 4 * 2 ** 20, SCRATCH_MAX_FILES = 2 ** 20;

export const processFile = defineAction({
  name: 'process_file',
  doc: 'A process reads (or, with dirty, writes) page cache through its file, or through files of file_size each; each file costs a dentry and an inode, its pages xarray nodes and, written, buffer_heads. On the qemu guest: bl-file on a scratch ext4 (virtio-blk), a read reading pages the host put on the disk before boot',
  fields: {
    pid: pidField,
    size: size('Page cache to read or write, e.g. 512MiB (at most 2TiB: the model reads page by page, recycling the cache)', { max: 2 ** 41 }),
    dirty: bool('Written, not read: the pages are dirty until written back', { default: false }),
    file_size: size('The size of the files (rounded up to whole pages): the pages fill the process\'s last file up to it, then new files; without it they extend the process\'s one file', { min: 1, optional: true }),
  },
  model: (ctx, a) => {
    const proc = forkProcess(ctx.vm.guest.pgdat, a.pid, ctx.vm.guest.config.seed);
    const want = Math.ceil(a.size / PAGE_SIZE);
    const filePages = a.file_size === undefined ? undefined : Math.ceil(a.file_size / PAGE_SIZE);
    return { pid: a.pid, requested_pages: want, cached_pages: readFilePages(ctx.vm.guest.pgdat, proc, want, a.dirty, filePages) };
  },
  real: {
    // bl-file on the qemu guest's scratch ext4: buffered writes, or reads of pages the host put on the disk before boot
    engines: ['qemu'],
    refuse: (a) => {
      const { pages, filePages } = fileEntryPages(a);
      const files = filePages === undefined ? 1 : Math.ceil(pages / filePages);
      if (pages > SCRATCH_MAX_PAGES) return `the qemu guest's scratch disk takes at most ${SCRATCH_MAX_PAGES * PAGE_SIZE / 2 ** 30} GiB an entry (a TCG guest writes ~100 MiB/s)`;
      if (files > SCRATCH_MAX_FILES) return `at most ${SCRATCH_MAX_FILES} files an entry on the qemu guest (give a larger file_size)`;
      return null;
    },
    run: async (ctx, a) => {
      const fs = ctx.files;
      if (fs === undefined) throw new ActionError('the real guest has no scratch file system for process_file');
      const { pages, filePages } = fileEntryPages(a);
      const step = fileStep(fs.streams.get(a.pid) ?? NEW_STREAM, pages, filePages);
      // ~20 MiB/s at least (TCG, virtio-blk), and a minute
      const timeoutNs = Math.max(60e9, (pages * PAGE_SIZE / (20 * 2 ** 20)) * 1e9);
      const r = await ctx.shell(`bl-file ${a.dirty ? 'write' : 'read'} ${fs.dir} p${a.pid} ${step.first} ${step.off} ${pages} ${filePages ?? 0}`, timeoutNs);
      const m = /pages=(\d+)/.exec(r.output);
      if (r.status !== 0 || !m) throw new ActionError(`bl-file ${a.dirty ? 'write' : 'read'} failed in the real guest (exit ${r.status}): ${r.output.trim().slice(0, 200)}`);
      fs.streams.set(a.pid, step.next);
      return { pid: a.pid, requested_pages: pages, cached_pages: Number(m[1]) };
    },
  },
});


/** process_write's tick: the writes of 10 ms at a time. */
const WRITE_TICK_NS = 10_000_000;

export const processWrite = defineAction({
  name: 'process_write',
  doc: 'A process keeps writing random pages of its anonymous memory at `rate` bytes per second for `duration` (dirtying them for migration); under host.accel tcg no faster than its vCPU can store (tcgGuestStore)',
  fields: {
    pid: pidField,
    rate: size('Bytes written per second'),
    duration: time('How long the writing goes on'),
  },
  model: (ctx, a) => {
    const { pgdat, procs, sim } = ctx.vm.guest;
    const pid = a.pid;
    if (!procs.has(pid)) throw new ActionError(`no process ${pid} at this time (start it with process_fault)`);
    const perTick = (a.rate / PAGE_SIZE) * (WRITE_TICK_NS / 1e9);
    const end = sim.now + a.duration;
    const proc = procs.get(pid)!;
    let pages = processPages(pgdat, proc);
    let carry = 0, ticks = 0;
    const map = pgdat.map;
    // Under TCG the writer's vCPU has WRITE_TICK_NS a tick to spend on its stores: a
    // writer asked for more than that falls behind (bl-mem's writer keeps catching up,
    // i.e. runs flat out); what it could not do is dropped. KVM: no bound.
    const tcg = ctx.vm.host.accel === 'tcg';
    const tick = () => {
      if (!procs.has(pid)) return;
      if (++ticks % 100 === 0) pages = processPages(pgdat, proc); // reclaim and compaction move pages
      carry += perTick;
      let n = Math.floor(carry);
      carry -= n;
      let vcpuNs = WRITE_TICK_NS;
      for (let tries = 0; n > 0 && pages.length > 0 && tries < 4 * n + 16; tries++) {
        let pfn = pages[rngBelow(ctx.rng, pages.length)]!;
        if (pageOwner(map, pfn) !== Owner.anon || pageMapping(map, pfn) !== pid) continue;
        if (pageOrder(map, pfn) > 0) pfn += rngBelow(ctx.rng, 1 << pageOrder(map, pfn));
        if (tcg) {
          const ns = vcpuStoreNs(ctx.vm, pfn);
          if (ns > vcpuNs) { carry = 0; break; }
          vcpuNs -= ns;
        }
        pgdat.hooks.pageWrite?.(pfn, 1, PageWrite.data);
        n--;
      }
      if (sim.now + WRITE_TICK_NS <= end) simAfter(sim, WRITE_TICK_NS, tick);
    };
    simAfter(sim, 0, tick);
    const out = { pid, rate_bytes_per_s: a.rate, duration_ns: a.duration, process_pages: pages.length };
    // TCG: the most this writer's vCPU can store, at tcgGuestStore a page
    return tcg ? { ...out, tcg_max_rate_bytes_per_s: Math.floor((PAGE_SIZE * 1e9) / ctx.vm.costs.tcgGuestStore) } : out;
  },
  real: {
    // bl-mem's writer thread: random held pages, one store each, at the rate (it returns at once)
    engines: ['qemu'],
    run: async (ctx, a) => {
      const r = await blMem(ctx, a.pid, `write ${a.rate} ${Math.round(a.duration / 1e6)} ${a.pid}`);
      if (r.status !== 0) throw new ActionError(`bl-mem write failed in the real guest (exit ${r.status}): ${r.output.trim().slice(0, 200)}`);
      return { pid: a.pid, rate_bytes_per_s: a.rate, duration_ns: a.duration, process_pages: r.n('candidates') };
    },
  },
});
