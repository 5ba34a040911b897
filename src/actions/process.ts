/**
 * Actions of processes in the guest: anonymous memory faulted in (THP where allowed),
 * unmapped in part, written at a rate; page cache read or written through a file; exit.
 */
import { defineAction, ActionError } from './action.js';
import { int, num, bool, oneOf, size, time } from './fields.js';
import { Owner, PAGE_SIZE, pageOwner, pageMapping, pageOrder } from '../guest/mm/memmap.js';
import { PageWrite } from '../guest/mm/mmzone.js';
import { type Process, type ProcessTable, getProcess, faultAnonPages, unmapAnonPages, exitProcess, readFilePages, processPages, PID_MAX } from '../guest/mm/process.js';
import { VmEvent } from '../guest/mm/vmstat_items.js';
import { simAfter } from '../sim/clock.js';
import { rngBelow } from '../sim/rng.js';

const pidField = int('Process id; the process is created by its first process_fault or process_file', { min: 1, max: PID_MAX });

export const processFault = defineAction({
  name: 'process_fault',
  doc: 'A process faults in anonymous memory (THP where enabled allows, falling back to 4 KiB pages)',
  fields: {
    pid: pidField,
    size: size('Anonymous memory to fault in, e.g. 3GiB'),
    madvise_hugepage: bool('The memory is madvise(MADV_HUGEPAGE)d: THP with enabled=madvise, direct compaction with defrag=madvise', { default: false }),
  },
  model: (ctx, a) => {
    const pgdat = ctx.vm.guest.pgdat;
    const proc = getProcess(ctx.vm.guest.procs, a.pid);
    if (a.madvise_hugepage) proc.madvised = true;
    const want = Math.ceil(a.size / PAGE_SIZE);
    const alloc0 = pgdat.events[VmEvent.thp_fault_alloc]!, fallback0 = pgdat.events[VmEvent.thp_fault_fallback]!;
    const got = faultAnonPages(pgdat, proc, want);
    const out = {
      thp_fault_alloc: pgdat.events[VmEvent.thp_fault_alloc]! - alloc0,
      thp_fault_fallback: pgdat.events[VmEvent.thp_fault_fallback]! - fallback0,
      pid: a.pid, requested_pages: want, faulted_pages: got, rss_pages: proc.rssAnon,
    };
    // the OOM killer chose this very process while it faulted: it is gone
    return ctx.vm.guest.procs.has(a.pid) ? out : { ...out, killed: true };
  },
});

function liveProcess(procs: ProcessTable, pid: number, hint: string): Process {
  const proc = procs.get(pid);
  if (!proc) throw new ActionError(`no process ${pid} at this time${hint}`);
  return proc;
}

export const processFree = defineAction({
  name: 'process_free',
  doc: 'A process unmaps a share of its anonymous memory',
  fields: {
    pid: pidField,
    fraction: num('Share of the process\'s anonymous pages to unmap (0..1)', { min: 0, max: 1, default: 0.5 }),
    pick: oneOf('alternate: every other page in physical order (fragments memory); random; lowest; highest', ['alternate', 'random', 'lowest', 'highest'], { default: 'alternate' }),
  },
  model: (ctx, a) => {
    const proc = liveProcess(ctx.vm.guest.procs, a.pid, ' (start it with process_fault)');
    return { pid: a.pid, freed_pages: unmapAnonPages(ctx.vm.guest.pgdat, ctx.rng, proc, a.fraction, a.pick), rss_pages: proc.rssAnon };
  },
});

export const processExit = defineAction({
  name: 'process_exit',
  doc: 'A process exits: its anonymous memory is freed (its page cache stays cached)',
  fields: { pid: pidField },
  model: (ctx, a) => {
    const proc = liveProcess(ctx.vm.guest.procs, a.pid, '');
    return { pid: a.pid, freed_pages: exitProcess(ctx.vm.guest.pgdat, ctx.vm.guest.procs, proc) };
  },
});

export const processFile = defineAction({
  name: 'process_file',
  doc: 'A process reads (or, with dirty, writes) page cache through its file',
  fields: {
    pid: pidField,
    size: size('Page cache to read or write, e.g. 512MiB'),
    dirty: bool('Written, not read: the pages are dirty until written back', { default: false }),
  },
  model: (ctx, a) => {
    const proc = getProcess(ctx.vm.guest.procs, a.pid);
    const want = Math.ceil(a.size / PAGE_SIZE);
    return { pid: a.pid, requested_pages: want, cached_pages: readFilePages(ctx.vm.guest.pgdat, proc, want, a.dirty) };
  },
});

/** process_write's tick: the writes of 10 ms at a time. */
const WRITE_TICK_NS = 10_000_000;

export const processWrite = defineAction({
  name: 'process_write',
  doc: 'A process keeps writing random pages of its anonymous memory at `rate` bytes per second for `duration` (dirtying them for migration)',
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
    const tick = () => {
      if (!procs.has(pid)) return;
      if (++ticks % 100 === 0) pages = processPages(pgdat, proc); // reclaim and compaction move pages
      carry += perTick;
      let n = Math.floor(carry);
      carry -= n;
      for (let tries = 0; n > 0 && pages.length > 0 && tries < 4 * n + 16; tries++) {
        let pfn = pages[rngBelow(ctx.rng, pages.length)]!;
        if (pageOwner(map, pfn) !== Owner.anon || pageMapping(map, pfn) !== pid) continue;
        if (pageOrder(map, pfn) > 0) pfn += rngBelow(ctx.rng, 1 << pageOrder(map, pfn));
        pgdat.hooks.pageWrite?.(pfn, 1, PageWrite.data);
        n--;
      }
      if (sim.now + WRITE_TICK_NS <= end) simAfter(sim, WRITE_TICK_NS, tick);
    };
    simAfter(sim, 0, tick);
    return { pid, rate_bytes_per_s: a.rate, duration_ns: a.duration, process_pages: pages.length };
  },
});
