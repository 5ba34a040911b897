/**
 * The workloads (src/workloads) on small guests: what a kernel build, stress-highalloc,
 * a balloon cycle and an idle guest do to the page map, the counters and the host,
 * checked page by page; then the two published experiments, shrunk, run end to end
 * twice for byte-identical result documents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createVm, checkVm, type Vm } from '../../src/machine/machine.js';
import { defaultGuestConfig } from '../../src/guest/guest.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { createRng } from '../../src/sim/rng.js';
import { physPfn } from '../../src/guest/mm/layout.js';
import { Owner, PG, pageFlags, pageMapping, pageOwner } from '../../src/guest/mm/memmap.js';
import { type PgData, totalramPages } from '../../src/guest/mm/mmzone.js';
import { walkPageTables } from '../../src/guest/mm/process.js';
import { globalNodePageState, globalZonePageState } from '../../src/guest/mm/vmstat.js';
import { NodeStat, VmEvent, ZoneStat } from '../../src/guest/mm/vmstat_items.js';
import { type KernelBuild, type KernelBuildParams, PID_RANGE, startKernelBuild } from '../../src/workloads/kernel_build.js';
import { startStressHighalloc } from '../../src/workloads/stress_highalloc.js';
import { startBalloonCycle } from '../../src/workloads/balloon_cycle.js';
import { startIdle, PROC_OBJECTS_PER_UNIT } from '../../src/workloads/idle.js';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
const root = new URL('../../../', import.meta.url);

function vmOf(memoryBytes: number, balloon = false): Vm {
  return createVm({ guest: defaultGuestConfig({ memoryBytes }), balloon: balloon ? { device: {}, driver: {} } : null, memPrealloc: false });
}

/** A small make -j2: 20 units of 2-8 MiB heap and 50-200 ms of CPU over a 16 MiB tree. */
const SMALL_BUILD: Partial<KernelBuildParams> = {
  jobs: 2, units: 20, sourceBytes: 16 * MiB, objectBytes: 16 * MiB, ccHeapMinBytes: 2 * MiB, ccHeapMaxBytes: 8 * MiB,
  ccCpuMinNs: 50e6, ccCpuMaxNs: 200e6, rewrite: 0.5, untar: false, firstPid: 1000, compiler: 'uniform',
};

/** Pids of the build's compilers still in the process table. */
function compilerPids(vm: Vm, b: KernelBuild): number[] {
  const out: number[] = [];
  for (const pid of vm.guest.procs.keys()) if (pid > b.params.firstPid && pid < b.params.firstPid + PID_RANGE) out.push(pid);
  return out;
}

/** Page-cache pages of a process's file, and how many of them are dirty (a memmap walk). */
function filePagesOf(pg: PgData, pid: number): { pages: number; dirty: number } {
  let pages = 0, dirty = 0;
  for (let pfn = 0; pfn < pg.map.nrPages; pfn++) {
    if (pageOwner(pg.map, pfn) !== Owner.file || pageMapping(pg.map, pfn) !== pid) continue;
    pages++;
    if (pageFlags(pg.map, pfn) & PG.dirty) dirty++;
  }
  return { pages, dirty };
}

const reclaimed = (pg: PgData) => pg.events[VmEvent.pgsteal_kswapd]! + pg.events[VmEvent.pgsteal_direct]!;

test('kernel-build: every unit built, compilers gone, page cache holds the tree and the dirty objects, anon memory back where it was', () => {
  const vm = vmOf(256 * MiB);
  const g = vm.guest, pg = g.pgdat;
  const anon0 = globalNodePageState(pg, NodeStat.nr_anon_pages), anonOwned0 = pg.ownerPages[Owner.anon]!;
  const file0 = globalNodePageState(pg, NodeStat.nr_file_pages), dirtied0 = pg.nodeStat[NodeStat.nr_dirtied]!, written0 = pg.nodeStat[NodeStat.nr_written]!;
  const writes0 = vm.host.ram.writes;
  const b = startKernelBuild(g, createRng(7), SMALL_BUILD);
  const p = b.params;
  let doneCalls = 0;
  b.onDone = (x) => { assert.equal(x, b); doneCalls++; };
  // while it runs: never more than `jobs` compilers, each one a process of the table
  let maxRunning = 0;
  for (let t = 100e6; b.endNs === null && t <= 10e9; t += 100e6) {
    simRunUntil(vm.sim, t);
    assert.equal(compilerPids(vm, b).length, b.running, `at ${t} ns`);
    maxRunning = Math.max(maxRunning, b.running);
  }
  assert.equal(maxRunning, p.jobs, 'make -j2 keeps two compilers going');
  simRunUntil(vm.sim, vm.sim.now + 1e9);

  assert.notEqual(b.endNs, null);
  assert.equal(doneCalls, 1);
  assert.equal(b.unitsDone, p.units);
  assert.equal(b.unitsStarted, p.units);
  assert.equal(b.running, 0);
  assert.deepEqual(compilerPids(vm, b), [], 'every compiler exited');
  assert.equal(g.procs.get(p.firstPid), b.tree, 'the tree outlives its compilers');
  assert.equal(b.tree.rssAnon, 0);

  // page cache: each unit reads its share of the source and writes its object
  const share = (bytes: number) => p.units * Math.ceil(bytes / PAGE / p.units);
  assert.equal(b.sourcePagesRead, share(p.sourceBytes));
  assert.equal(b.objectPagesWritten, share(p.objectBytes));
  const cached = b.sourcePagesRead + b.objectPagesWritten;
  assert.ok(b.tree.filePages <= cached);
  assert.equal(reclaimed(pg), 0, 'a 256 MiB guest has room for the whole build: nothing was reclaimed');
  assert.equal(b.tree.filePages, cached, 'with nothing reclaimed, all of it is still cached');
  assert.equal(globalNodePageState(pg, NodeStat.nr_file_pages) - file0, cached);
  const tree = filePagesOf(pg, p.firstPid);
  assert.equal(tree.pages, b.tree.filePages, 'the page walk agrees with the process counter');
  // objects are written (dirty), sources only read (clean)
  assert.equal(pg.nodeStat[NodeStat.nr_dirtied]! - dirtied0, b.objectPagesWritten);
  const flushed = pg.nodeStat[NodeStat.nr_written]! - written0;
  assert.equal(tree.dirty + flushed, b.objectPagesWritten, 'the object pages are dirty page cache, or the flusher wrote them back');
  assert.equal(pg.nodeStat[NodeStat.nr_dirty], tree.dirty);

  // anonymous memory: every heap freed on exit
  assert.equal(globalNodePageState(pg, NodeStat.nr_anon_pages), anon0);
  assert.equal(pg.ownerPages[Owner.anon], anonOwned0);

  // heaps: uniform in [min, max] per unit, rewritten by `rewrite` of their size
  assert.ok(b.heapPagesFaulted >= (p.units * p.ccHeapMinBytes) / PAGE, `${b.heapPagesFaulted} heap pages`);
  assert.ok(b.heapPagesFaulted <= Math.ceil((p.units * p.ccHeapMaxBytes) / PAGE), `${b.heapPagesFaulted} heap pages`);
  // per slice the rewrite rounds (<= 1/2 page off), and a unit has at most ceil(200/50) = 4 slices
  const slack = (p.units * 4) / 2;
  assert.ok(Math.abs(b.pagesRewritten - p.rewrite * b.heapPagesFaulted) <= slack, `${b.pagesRewritten} rewritten of ${b.heapPagesFaulted}`);

  // time: CPU time per unit in [min, max]; with no stalls, elapsed is about user over
  // the compilers that can run at once: -j2 on one vCPU shares it (sched.ts)
  assert.ok(b.userNs >= p.units * p.ccCpuMinNs && b.userNs <= p.units * p.ccCpuMaxNs);
  assert.equal(b.sysNs, 0, 'no allocation stalled');
  const elapsed = b.endNs! - b.startNs;
  const ideal = b.userNs / Math.min(p.jobs, g.config.vcpus);
  assert.equal(g.config.vcpus, 1);
  assert.ok(elapsed >= 0.95 * ideal && elapsed <= 1.1 * ideal, `elapsed ${elapsed} ns vs user/min(jobs, vcpus) ${ideal} ns`);

  // the host saw every page written: heaps, rewrites, sources read in, objects written
  assert.ok(vm.host.ram.writes - writes0 >= b.heapPagesFaulted + b.pagesRewritten + cached, `${vm.host.ram.writes - writes0} writes`);
  assert.equal(checkVm(vm), null);
});

test('kernel-build: a unit takes at least its CPU time, so elapsed x jobs >= user (regression: the last CPU slice was not waited for)', () => {
  // Each unit's wall time is its CPU time plus its stalls (kernel_build.ts). Jobs run at
  // most `jobs` at a time, so elapsed x jobs >= the sum of CPU times (userNs).
  for (const [lo, hi] of [[50e6, 200e6], [40e6, 40e6]] as const) {
    const vm = vmOf(256 * MiB);
    const b = startKernelBuild(vm.guest, createRng(7), { ...SMALL_BUILD, ccCpuMinNs: lo, ccCpuMaxNs: hi });
    simRunUntil(vm.sim, 10e9);
    assert.notEqual(b.endNs, null);
    assert.equal(b.sysNs, 0);
    // cpu 50-200 ms, seed 7: elapsed 0.9 s, user 2.13 s over 2 jobs; cpu 40 ms: elapsed 0
    assert.ok((b.endNs! - b.startNs) * b.params.jobs >= b.userNs, `cpu ${lo}-${hi} ns: elapsed ${b.endNs! - b.startNs} ns x ${b.params.jobs} jobs < user ${b.userNs} ns`);
  }
});

test('kernel-build: a migration dirty log running during the build catches the compilers\' writes', () => {
  const vm = vmOf(256 * MiB);
  const g = vm.guest;
  const b = startKernelBuild(g, createRng(11), SMALL_BUILD);
  simRunUntil(vm.sim, 300e6);
  const countDirty = () => vm.host.ram.dirty.reduce((n, d) => n + d, 0);
  assert.equal(countDirty(), 0, 'nothing is logged before logging starts');
  vm.host.ram.dirtyLogging = true;
  const w0 = vm.host.ram.writes;
  simRunUntil(vm.sim, 600e6);
  vm.host.ram.dirtyLogging = false;
  const written = vm.host.ram.writes - w0;
  const dirty = countDirty();
  assert.ok(b.endNs === null && b.running > 0, 'the build is still running at the end of the window');
  assert.ok(dirty > 0, 'the log caught the build');
  assert.ok(dirty <= written, `${dirty} pages logged from ${written} writes`);
  // the running compilers' heaps are in the log: each has a page written in the window
  for (const pid of compilerPids(vm, b)) {
    const cc = g.procs.get(pid)!;
    const held: number[] = [];
    walkPageTables(cc, (_vpn, e, huge) => { if (e >= 0) for (let i = 0; i < (huge ? 512 : 1); i++) held.push(e + i); });
    const logged = held.some((pfn) => vm.host.ram.dirty[physPfn(g.layout, pfn)] === 1);
    assert.ok(logged, `compiler ${pid} wrote its heap in the window`);
  }
  // logging is off again: further writes leave the log alone
  simRunUntil(vm.sim, 900e6);
  assert.equal(countDirty(), dirty);
  simRunUntil(vm.sim, 10e9);
  assert.equal(b.unitsDone, b.params.units);
  assert.equal(checkVm(vm), null);
});

test('stress-highalloc: three passes in order, each asking for percent of MemTotal at the request rate, every block freed; the rested pass after the builds stopped', () => {
  const vm = vmOf(512 * MiB);
  const g = vm.guest, pg = g.pgdat;
  const percent = 50, mbPerSec = 64, blockPages = 512;
  const memTotal = totalramPages(pg);
  const minFree0 = pg.sysctl.minFreeKbytes;
  const s = startStressHighalloc(g, createRng(3), {
    warmupNs: 5e9, cooldownNs: 2e9, builds: 1, percent, mbPerSec,
    build: { units: 100000, sourceBytes: 32 * MiB, objectBytes: 16 * MiB, ccHeapMinBytes: 2 * MiB, ccHeapMaxBytes: 8 * MiB },
  });
  assert.equal(s.builds.length, 1);
  const build = s.builds[0]!;
  let doneCalls = 0;
  s.onDone = () => { doneCalls++; };
  // kernel pages outside the passes; while a pass runs, exactly its successes are held on top
  let kernelBase = -1;
  const seen = { compilersDuringPass: [0, 0, 0], compilersAtRestedStart: -1, minFreeAtRestedStart: -1 };
  for (let t = 0; s.phase !== 'done' && t <= 120e9; t += 25e6) {
    simRunUntil(vm.sim, t);
    const n = s.passes.length;
    if (n === 0) { kernelBase = pg.ownerPages[Owner.kernel]!; continue; }
    const cur = s.passes[n - 1]!;
    if (cur.end_ns === 0) {
      assert.equal(pg.ownerPages[Owner.kernel]! - kernelBase, cur.succeeded * blockPages, `${cur.name} at ${t} ns holds its successes`);
      seen.compilersDuringPass[n - 1] = Math.max(seen.compilersDuringPass[n - 1]!, compilerPids(vm, build).length);
    } else assert.equal(pg.ownerPages[Owner.kernel], kernelBase, `after ${cur.name}, at ${t} ns, its blocks are freed`);
    if (n === 3 && seen.compilersAtRestedStart < 0) {
      seen.compilersAtRestedStart = compilerPids(vm, build).length;
      seen.minFreeAtRestedStart = pg.sysctl.minFreeKbytes;
    }
  }
  assert.equal(s.phase, 'done');
  assert.equal(doneCalls, 1);
  assert.equal(s.endNs, s.passes[2]!.end_ns);
  assert.deepEqual(s.passes.map((x) => x.name), ['Pass 1', 'Pass 2', 'while Rested']);

  assert.equal(totalramPages(pg), memTotal, 'no balloon: MemTotal never changed');
  const requested = Math.floor(((memTotal * PAGE) / (2 * MiB)) * (percent / 100));
  const delayNs = ((2 * MiB) / (mbPerSec * MiB)) * 1e9;
  for (const x of s.passes) {
    assert.equal(x.requested, requested, x.name);
    assert.ok(x.succeeded >= 0 && x.succeeded <= x.requested, x.name);
    assert.equal(x.success_pct, Math.round((x.succeeded * 10000) / x.requested) / 100, x.name);
    // one attempt every delay, each delayed further by what it stalled and its own vCPU time
    assert.ok(x.end_ns - x.start_ns >= (x.requested - 1) * delayNs + x.stall_ns, `${x.name}: ${x.end_ns - x.start_ns} ns for ${x.requested} attempts`);
    assert.ok(Math.abs(x.end_ns - x.start_ns - ((x.requested - 1) * delayNs + x.stall_ns + x.run_ns)) <= 1, x.name);
    assert.ok(x.run_ns >= x.requested * pg.costs.pageAllocBuddy, `${x.name}: each attempt took its own time on a vCPU`);
  }
  assert.equal(s.passes[0]!.start_ns, 5e9, 'Pass 1 after the warm-up');
  assert.equal(s.passes[1]!.start_ns, s.passes[0]!.end_ns + 5e9, 'Pass 2 five seconds later');
  assert.ok(s.passes[2]!.start_ns >= s.passes[1]!.end_ns + 2e9, 'the rested pass after the cool-down');

  // the builds were loading the guest during passes 1 and 2, and were gone for the rested pass
  assert.equal(seen.compilersDuringPass[0], 1, 'make -j1 was compiling during Pass 1');
  assert.equal(seen.compilersDuringPass[1], 1, 'make -j1 was compiling during Pass 2');
  assert.equal(seen.compilersAtRestedStart, 0, 'no compiler was alive when the rested pass started');
  assert.ok(build.stopped && build.running === 0 && build.endNs !== null && build.endNs <= s.passes[2]!.start_ns);
  assert.ok(build.unitsDone > 0 && build.unitsDone < build.params.units, 'the build was killed part way');
  assert.equal(g.procs.has(build.params.firstPid), false, 'the tree was deleted');
  assert.equal(filePagesOf(pg, build.params.firstPid).pages, 0, 'and its page cache with it');
  assert.equal(seen.minFreeAtRestedStart, 1024, 'min_free_kbytes was 1024 for the rested pass');
  assert.equal(pg.sysctl.minFreeKbytes, 1024);
  assert.notEqual(minFree0, 1024);
  assert.equal(pg.ownerPages[Owner.kernel], kernelBase, 'every block from the passes was freed');
  assert.equal(checkVm(vm), null);
});

test('balloon-cycle: the target climbs to size one step per period, comes back to zero, and again', () => {
  const vm = vmOf(256 * MiB, true);
  const dev = vm.host.balloon!;
  const t0 = vm.sim.now, period = 1e9, until = t0 + 20e9;
  const stepPages = (16 * MiB) / PAGE;
  assert.equal(startBalloonCycle(dev, vm.sim, 64 * MiB, 16 * MiB, period, until), 8);
  const targets: number[] = [];
  const actuals: number[] = [];
  for (let k = 0; k <= 22; k++) {
    simRunUntil(vm.sim, t0 + k * period);
    targets.push(dev.numPages / stepPages);
    simRunUntil(vm.sim, t0 + k * period + 0.9 * period);
    actuals.push(dev.actual / stepPages);
  }
  const cycle = [1, 2, 3, 4, 3, 2, 1, 0];
  const expected = Array.from({ length: 21 }, (_, k) => cycle[k % 8]!);
  // moves at t0, t0 + 1 s, ..., until (t0 + 20 s); then the target stays where it was
  assert.deepEqual(targets, [...expected, expected[20]!, expected[20]!]);
  assert.deepEqual(actuals, targets, 'the driver reaches each target within the period');
  assert.equal(vm.driver!.numPages, dev.numPages);
  assert.equal(checkVm(vm), null);

  // a size that is not a multiple of the step: the last step up stops at size
  const vm2 = vmOf(256 * MiB, true);
  assert.equal(startBalloonCycle(vm2.host.balloon!, vm2.sim, 40 * MiB, 16 * MiB, period, 6e9), 6);
  const t2: number[] = [];
  for (let k = 0; k <= 6; k++) { simRunUntil(vm2.sim, k * period); t2.push(vm2.host.balloon!.numPages * PAGE / MiB); }
  assert.deepEqual(t2, [16, 32, 40, 32, 16, 0, 16]);

  const dev3 = vmOf(256 * MiB, true).host.balloon!;
  for (const [size, step, per] of [[64 * MiB, 0, 1e9], [64 * MiB, -1, 1e9], [8 * MiB, 16 * MiB, 1e9], [64 * MiB, 16 * MiB, 0], [64 * MiB, NaN, 1e9], [64 * MiB, 16 * MiB, NaN]] as const) {
    assert.throws(() => startBalloonCycle(dev3, dev3.sim, size, step, per, 10e9), RangeError, `size ${size} step ${step} period ${per}`);
  }
  assert.equal(dev3.numPages, 0, 'a rejected cycle sets no target');
});

test('idle: 30 s of daemon activity barely moves free memory; the journal grows', () => {
  const vm = vmOf(256 * MiB);
  const g = vm.guest, pg = g.pgdat;
  const free0 = globalZonePageState(pg, ZoneStat.nr_free_pages);
  const slab0 = pg.ownerPages[Owner.slabReclaimable]!;
  startIdle(g, createRng(5), 30e9);
  for (let t = 0; t <= 31e9; t += 1e9) {
    simRunUntil(vm.sim, t);
    const free = globalZonePageState(pg, ZoneStat.nr_free_pages);
    assert.ok(Math.abs(free - free0) <= free0 * 0.01, `at ${t} ns: nr_free_pages ${free} vs ${free0}`);
  }
  const journal = g.procs.get(500);
  assert.ok(journal && journal.filePages > 0, 'the journal wrote page cache');
  assert.equal(filePagesOf(pg, 500).pages, journal.filePages);
  assert.ok(journal.filePages <= 31, 'at most a page per tick');
  assert.equal(g.procs.has(501), false, 'the helper process exited');
  // only the last tick's proc dentries and inodes are held (and the journal's file: its dentry, inode, xarray nodes, buffer_heads)
  const std = pg.slab.std!;
  assert.ok(std.dentry.lru.len <= 11 * PROC_OBJECTS_PER_UNIT && std.procInode.lru.len <= 11 * PROC_OBJECTS_PER_UNIT);
  const most = Math.ceil((11 * PROC_OBJECTS_PER_UNIT) / std.dentry.objects) + Math.ceil((11 * PROC_OBJECTS_PER_UNIT) / std.procInode.objects) * (1 << std.procInode.order);
  assert.ok(pg.ownerPages[Owner.slabReclaimable]! - slab0 <= most + 8, `slab grew by ${pg.ownerPages[Owner.slabReclaimable]! - slab0} pages`);
  // it stopped at `until`: nothing more changes
  const free1 = globalZonePageState(pg, ZoneStat.nr_free_pages), log1 = journal.filePages;
  simRunUntil(vm.sim, 60e9);
  assert.equal(globalZonePageState(pg, ZoneStat.nr_free_pages), free1);
  assert.equal(journal.filePages, log1);
  assert.equal(checkVm(vm), null);
});

/** The bundled file's first variant, with what the shrunk run keeps from it. */
function firstVariant(file: string) {
  const sf = loadScenarioText(readFileSync(new URL(`scenarios/${file}`, root), 'utf8'), file);
  assert.ok(sf.variants.length >= 1, `${file} has variants`);
  return sf.variants[0]!;
}

test('kernel-build with compiler gcc12: each cc1 replays a traced 6.1 compile, its quires merging into a few mappings, with page tables, mostly 4 KiB pages', () => {
  const vm = vmOf(2048 * MiB);
  const g = vm.guest;
  const b = startKernelBuild(g, createRng(3), { ...SMALL_BUILD, compiler: 'gcc12', jobs: 1, units: 3 });
  let seen = 0, maxVmas = 0, maxRss = 0, maxTables = 0, maxHuge = 0;
  for (let t = 200e6; b.endNs === null && t <= 120e9; t += 200e6) {
    simRunUntil(vm.sim, t);
    for (const pid of compilerPids(vm, b)) {
      const cc = g.procs.get(pid)!;
      seen++;
      maxVmas = Math.max(maxVmas, cc.mm.vmas.length);
      maxRss = Math.max(maxRss, cc.rssAnon);
      maxTables = Math.max(maxTables, cc.mm.nrPgtables);
      let huge = 0;
      for (const pmd of cc.mm.pmds.values()) if (pmd.pte === null) huge++;
      maxHuge = Math.max(maxHuge, huge);
    }
    assert.equal(checkVm(vm), null);
  }
  assert.notEqual(b.endNs, null, 'the three units finished');
  assert.equal(b.unitsDone, 3);
  assert.ok(seen > 0);
  // 6.1 trace: cc1 had at most 6-10 separate regions of anonymous memory (hundreds of mmaps merged)
  assert.ok(maxVmas >= 2 && maxVmas <= 16, `mappings at most ${maxVmas}`);
  assert.ok(maxRss * 4096 >= 20 * MiB, `cc1 held ${maxRss} pages at most`);
  assert.ok(maxTables >= maxRss / 512, `one page table per 2 MiB touched at least (${maxTables} tables for ${maxRss} pages)`);
  assert.ok(maxHuge * 512 < maxRss / 2, `most of cc1's memory in 4 KiB pages (${maxHuge} THPs of ${maxRss} pages)`);
  assert.deepEqual(compilerPids(vm, b), []);
});

for (const kernel of ['3.6', '6.1'] as const) test(`stress-highalloc-balloon on Linux ${kernel}, shrunk to a 512 MiB guest: deterministic, three passes explained, the balloon cycles`, () => {
  const v = firstVariant('stress-highalloc-balloon.yaml');
  assert.equal(v.name, '3.6-compaction-off');
  const s0 = v.scenario;
  assert.equal(s0.guest.kernel, '3.6');
  assert.equal(s0.balloon === false ? null : s0.balloon.compaction, false);
  assert.ok(s0.timeline.some((a) => a.action === 'stress_highalloc') && s0.timeline.some((a) => a.action === 'balloon_cycle'));
  const text = `
name: ${s0.name}-small
seed: ${s0.seed}
guest:
  memory: 512MiB
  vcpus: ${s0.guest.vcpus}
  swap: 128MiB
  kernel: '${kernel}'
balloon:
  compaction: false
duration: 60s
timeline:
  - at: 0s
    action: stress_highalloc
    percent: 95
    mb_per_sec: 64
    warmup: 5s
    cooldown: 2s
    builds: 1
    build_units: 100000
    build_source: 32MiB
    build_objects: 16MiB
    cc_heap_min: 2MiB
    cc_heap_max: 8MiB
    compiler: uniform
  - at: 1s
    action: balloon_cycle
    size: 64MiB
    step: 16MiB
    period: 2s
  - at: 60s
    action: snapshot
    label: end
`;
  const s = loadScenarioText(text, 'stress-highalloc-small.yaml').base;
  const a = runScenario(s, {});
  const b = runScenario(s, {});
  assert.equal(JSON.stringify(a.doc), JSON.stringify(b.doc));
  const doc = a.doc;
  assert.deepEqual(doc.highalloc?.passes.map((p) => p.name), ['Pass 1', 'Pass 2', 'while Rested']);
  for (const p of doc.highalloc!.passes) {
    assert.ok(p.requested > 0 && p.succeeded <= p.requested, p.name);
    assert.equal(p.success_pct, Math.round((p.succeeded * 10000) / p.requested) / 100, p.name);
    // every attempt is explained once: a success by its path, a failure by its reason
    const e = p.explain;
    assert.equal(e.from_free_lists + e.after_compaction + e.after_reclaim, p.succeeded, p.name);
    assert.equal(e.failed_compaction + e.failed_deferred + e.failed_skipped, p.requested - p.succeeded, p.name);
    assert.ok(e.by_fallback <= p.succeeded);
    assert.equal(e.blocks.reduce((x, y) => x + y, 0), doc.final.pageblocks && Object.values(doc.final.pageblocks).reduce((x, y) => x + y, 0), 'every pageblock counted once');
    assert.ok(e.mixed_blocks.every((n, i) => n <= e.blocks[i]!), 'a mixed block is one of its type');
  }
  assert.equal(doc.kernel.version, kernel);
  if (kernel === '3.6') {
    // 3.6's /proc/vmstat names, none of 6.1's newer ones; no kcompactd, no boost, no pcp high orders
    assert.ok('compact_blocks_moved' in doc.vmstat && 'allocstall' in doc.vmstat && !('compact_migrate_scanned' in doc.vmstat) && !('balloon_inflate' in doc.vmstat));
    assert.equal(doc.kernel.activity.kcompactdRuns + doc.kernel.activity.proactiveRuns + doc.kernel.activity.watermarkBoosts + doc.kernel.activity.pcpHighOrderAllocs + doc.kernel.activity.nofragmentRetries, 0);
    assert.ok(doc.kernel.activity.kswapdCompactions > 0, 'kswapd compacted for the passes\' order-9 requests');
    assert.ok(doc.final.pageblocks.Reserve! > 0 && doc.final.pageblocks.HighAtomic === undefined);
  } else {
    assert.ok('compact_migrate_scanned' in doc.vmstat && !('compact_blocks_moved' in doc.vmstat));
    assert.equal(doc.kernel.activity.kswapdCompactions + doc.kernel.activity.freeScannerWraps, 0);
  }
  const done = doc.events.filter((e) => e.kind === 'stress_highalloc_done');
  assert.equal(done.length, 1, 'the test finished within the run');
  assert.deepEqual(done[0]!.passes, doc.highalloc!.passes);
  assert.equal(doc.events.find((e) => e.kind === 'balloon_cycle')!.steps_per_cycle, 8);
  assert.ok(doc.balloon.inflated > 0 && doc.balloon.deflated > 0, 'the balloon went up and down');
  assert.ok(doc.workloads && doc.workloads.user_s > 0, 'the builds ran');
  assert.equal(checkVm(a.vm), null);
});

const MIGRATION_SMALL = (name: string, seed: number, vcpus: number, hint: string) => `
name: ${name}-small
seed: ${seed}
guest:
  memory: 512MiB
  vcpus: ${vcpus}
balloon:
  free_page_hint: true
duration: 30s
timeline:
  - { at: 0s, action: kernel_build, label: make -j4, jobs: 4, units: 400, source: 32MiB, objects: 32MiB, cc_heap_min: 2MiB, cc_heap_max: 8MiB, cc_cpu_min: 50ms, cc_cpu_max: 200ms, compiler: uniform }
  - { at: 1s, action: balloon_free_page_hint, value: '${hint}' }
  - { at: 2s, action: migrate, max_bandwidth: 100GiB, downtime_limit: 2s }
`;

function migrationKernelBuildSmall() {
  const v = firstVariant('migration-kernel-build.yaml');
  assert.equal(v.name, 'legacy');
  const s0 = v.scenario;
  const hint = s0.timeline.find((a) => a.action === 'balloon_free_page_hint');
  assert.ok(hint && hint.action === 'balloon_free_page_hint' && hint.value === 'off', 'the legacy variant migrates without hints');
  return loadScenarioText(MIGRATION_SMALL(s0.name, s0.seed, s0.guest.vcpus, hint.value), 'migration-kernel-build-small.yaml').base;
}

test('migration-kernel-build, shrunk to a 512 MiB guest: deterministic, the migration completes mid-build, the build finishes', () => {
  const s = migrationKernelBuildSmall();
  const a = runScenario(s, {});
  const b = runScenario(s, {});
  assert.equal(JSON.stringify(a.doc), JSON.stringify(b.doc));
  const doc = a.doc;
  assert.equal(doc.migration?.status, 'completed');
  assert.deepEqual(doc.migration!['free-page-hint'], { enabled: false, hinted_pages: 0, skipped_pages: 0 });
  const kb = doc.workloads!.kernel_build[0]!;
  assert.equal(kb.units, 400);
  assert.equal(kb.units_done, kb.units);
  const completed = doc.events.find((e) => e.kind === 'migration_completed')!;
  const built = doc.events.find((e) => e.kind === 'kernel_build_done')!;
  assert.ok(completed.t_ns < built.t_ns, 'the migration finished while the build ran');
  assert.equal(completed.destination_ok, true, 'at completion the destination has every page');
  assert.ok((doc.migration!['dirty-sync-count'] as number) >= 2, 'the build dirtied pages that were sent again');
  assert.equal(checkVm(a.vm), null);
});

test('migration-kernel-build, shrunk: the result document\'s destination_check is the check at completion (regression: it was taken at the end of the run)', () => {
  const { doc } = runScenario(migrationKernelBuildSmall(), {});
  const completed = doc.events.find((e) => e.kind === 'migration_completed')!;
  assert.equal(completed.destination_ok, true);
  // seed 1: '13104 pages differ at the destination: guest-physical page 12294: source data gen 275523, destination data gen 154416 ...'
  assert.equal(doc.migration!.destination_check, 'ok');
});
