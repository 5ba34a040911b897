/**
 * The QEMU side: a scenario's timeline run on a real x86-64 Linux 6.1 (Debian's
 * cloud kernel) under QEMU 10 with QEMU's own virtio-balloon-pci device, TCG (no
 * KVM here). Actions reach the guest through a RealContext: QMP to QEMU, and the
 * guest's agent (a shell: bl-mem for processes, /proc/bl_alloc for the kernel's
 * allocator). A `migrate` starts a second QEMU on 127.0.0.1 with -incoming and the
 * context follows the guest there.
 *
 * What of the scenario applies: `guest.memory` (-m), `guest.vcpus` (-smp),
 * `guest.kaslr`, `init_on_alloc`, `init_on_free` (the kernel command line),
 * `min_free_kbytes`, `thp`, `thp_defrag` (written before the timeline starts),
 * `balloon:` mapped to the device's properties (deflate-on-oom, free-page-hint with
 * an iothread, free-page-reporting, page-poison; guest-stats-polling-interval by
 * qom-set), `host.mem_prealloc`. What the real guest cannot be is refused before boot
 * with the field named (checkQemuScenario).
 */
import type { Scenario } from '../../scenario/schema.js';
import { ScenarioError, freePageHintDesign } from '../../scenario/schema.js';
import { formatSize } from '../../scenario/units.js';
import { checkSides } from '../../scenario/runner.js';
import type { RealContext } from '../../actions/action.js';
import { parseMeminfo, parseVmstat, diffProbe, DIFF_PROBE_COMMAND_SLAB, splitProbeOutput } from '../../report/proc_parse.js';
import { BALLOON_QOM_PATH } from '../../host/qmp.js';
import { runRealTimeline, type RealRunResult, type RealEvent } from '../real/runner.js';
import { type QemuImage, type QemuLaunch, QemuVm, QemuError, freePort, delay } from './qemu.js';
import { planScratch, type FileStream, type ScratchPlan } from '../../actions/file_layout.js';

const MiB = 2 ** 20, GiB = 2 ** 30;
export const QEMU_MEMORY_MIN = 128 * MiB;
/** What a TCG guest (and, migrating, its twin) can have on a 24 GiB, 2-core host. */
export const QEMU_MEMORY_MAX = 8 * GiB;
export const QEMU_VCPUS_MAX = 8;

export type QemuRunResult = RealRunResult & {
  engine: 'qemu';
  /** QEMU's version, the image's kernel release, what `uname -r` said in the guest, the kernel command line words added, the balloon -device. */
  qemu: { version: string; kernel: string; uname: string; cmdline: string[]; device: string | null };
  /** With the trace option: the guest kernel's trace buffer over the timeline (TRACE_EVENTS), as tracefs prints it. */
  trace?: string;
};

/**
 * The tracepoints `real-guest --trace` turns on in the guest for the timeline: the
 * compaction and reclaim events the model's `run --trace` writes too.
 */
export const TRACE_EVENTS = [
  'compaction/mm_compaction_try_to_compact_pages', 'compaction/mm_compaction_begin', 'compaction/mm_compaction_end',
  'compaction/mm_compaction_deferred', 'compaction/mm_compaction_defer_compaction', 'compaction/mm_compaction_wakeup_kcompactd',
  'vmscan/mm_vmscan_kswapd_wake', 'vmscan/mm_vmscan_direct_reclaim_begin',
] as const;
const TRACEFS = '/sys/kernel/debug/tracing';

/** The scratch disk the scenario's process_file entries need, or null (file_layout.ts planScratch). */
export function qemuScratchPlan(s: Scenario): ScratchPlan | null {
  return planScratch(s.timeline.flatMap((a) => (a.action === 'process_file' ? [a] : [])));
}

/** Refuses, before boot, what the QEMU side cannot be or do: memory, vCPUs, options the real kernel or QEMU's device do not have, actions it has no run for. */
export function checkQemuScenario(s: Scenario, source: string): void {
  const bad = (field: string, msg: string) => new ScenarioError(`${source}: ${field}: ${msg}`);
  const m = s.guest.memory;
  if (m < QEMU_MEMORY_MIN || m > QEMU_MEMORY_MAX) throw bad('guest.memory', `the qemu real guest takes ${formatSize(QEMU_MEMORY_MIN)} to ${formatSize(QEMU_MEMORY_MAX)} (TCG on this host), got ${formatSize(m)}`);
  if (s.guest.vcpus > QEMU_VCPUS_MAX) throw bad('guest.vcpus', `at most ${QEMU_VCPUS_MAX} under TCG, got ${s.guest.vcpus}`);
  if (s.host.accel !== 'tcg') throw bad('host.accel', 'the qemu real guest runs under TCG (this host has no usable KVM): set host: { accel: tcg } so the model tracks dirty pages and charges stores as TCG does');
  if (s.guest.kernel_image !== undefined) throw bad('guest.kernel_image', 'the real guest runs Debian\'s 6.1 cloud kernel as it is (leave kernel_image out)');
  if (s.guest.swap !== 0) throw bad('guest.swap', 'the qemu guest image has no swap device (use swap: 0)');
  if (s.guest.page_poison) throw bad('guest.page_poison', 'Debian\'s cloud kernel is built without CONFIG_PAGE_POISONING');
  const b = s.balloon;
  if (b !== false) {
    if (!b.compaction) throw bad('balloon.compaction', 'Debian\'s kernel has CONFIG_BALLOON_COMPACTION=y (compaction: false models an older kernel)');
    if (b.must_tell_host) throw bad('balloon.must_tell_host', 'QEMU\'s device never offers MUST_TELL_HOST');
    if (!b.stats_vq) throw bad('balloon.stats_vq', 'QEMU\'s device always offers STATS_VQ');
    if (b.free_page_hint === 'v33') throw bad('balloon.free_page_hint', 'Linux 6.1 and QEMU 10 hint free pages the upstream way (true or upstream); v33 is the model\'s only');
    if (b.hint_action !== 'clear-bitmap') throw bad('balloon.hint_action', 'QEMU clears hinted pages from the migration bitmap (clear-bitmap)');
    if (b.hint_ack_on_stop) throw bad('balloon.hint_ack_on_stop', 'QEMU sends DONE when the migration ends, not on STOP');
    if (b.actual !== 'driver') throw bad('balloon.actual', 'with QEMU the driver writes actual (driver)');
    if (b.inhibited) throw bad('balloon.inhibited', 'nothing inhibits ballooning in the test QEMU (no VFIO, no postcopy)');
    if ((b.page_type ?? 'offline') !== 'offline') throw bad('balloon.page_type', 'the real guest runs Linux 6.1, whose balloon pages are PG_offline');
    if (b.stats_tags !== 'v6.1') throw bad('balloon.stats_tags', 'the real guest\'s driver is Linux 6.1\'s: set stats_tags: v6.1 so the model sends the same tags');
    if (b.oom_pages !== 256) throw bad('balloon.oom_pages', 'the real driver is loaded with its default oom_pages (256)');
    if (b.stats_polling_interval % 1e9 !== 0) throw bad('balloon.stats_polling_interval', 'QEMU takes whole seconds');
  }
  checkSides(s, 'qemu', source);
  s.timeline.forEach((a, i) => {
    if (a.action === 'migrate' && a.wait === undefined) throw new ScenarioError(`${source}: timeline[${i}] (migrate): on the qemu real guest give wait: (the run follows the migration to the destination)`);
  });
  const plan = qemuScratchPlan(s);
  if (plan) {
    const m = s.timeline.findIndex((a) => a.action === 'migrate');
    if (m >= 0) throw new ScenarioError(`${source}: timeline[${m}] (migrate): not with process_file on the qemu real guest (its scratch disk is not migrated)`);
    if (plan.bytes > SCRATCH_MAX_BYTES) throw bad('timeline', `the process_file entries need a ${formatSize(plan.bytes)} scratch disk; the qemu real guest makes at most ${formatSize(SCRATCH_MAX_BYTES)}`);
  }
}

/** The largest scratch disk image a run makes (sparse, in the run's temporary directory). */
export const SCRATCH_MAX_BYTES = 64 * GiB;
/** Where /init mounts the scratch ext4. */
export const SCRATCH_MOUNT = '/mnt/scratch';

/** The kernel command line words the guest options set. */
export function qemuCmdline(s: Scenario): string[] {
  const out: string[] = [];
  if (!s.guest.kaslr) out.push('nokaslr');
  out.push(`init_on_alloc=${s.guest.init_on_alloc ?? true ? 1 : 0}`, `init_on_free=${s.guest.init_on_free ? 1 : 0}`);
  // /init loads virtio_blk and mounts the scratch ext4 (only when a process_file needs it)
  if (qemuScratchPlan(s)) out.push('bl.scratch=1');
  return out;
}

/** The launch of the scenario's QEMU. */
export function qemuLaunch(s: Scenario): QemuLaunch {
  const b = s.balloon;
  const onOff = (v: boolean) => (v ? 'on' : 'off');
  const scratch = qemuScratchPlan(s);
  return {
    ...(scratch ? { scratch } : {}),
    memoryBytes: s.guest.memory, vcpus: s.guest.vcpus, cmdline: qemuCmdline(s), memPrealloc: s.host.mem_prealloc,
    iothread: freePageHintDesign(b) !== 'off',
    balloon: b === false ? null : {
      'deflate-on-oom': onOff(b.deflate_on_oom), 'free-page-hint': onOff(freePageHintDesign(b) !== 'off'),
      'free-page-reporting': onOff(b.free_page_reporting), 'page-poison': onOff(b.page_poison),
    },
  };
}

/** The shell text that sets the guest's mm options as the model guest has them. */
export function guestSetupCommand(s: Scenario): string {
  const g = s.guest;
  const cmds = [
    `echo ${g.thp} > /sys/kernel/mm/transparent_hugepage/enabled`,
    `echo ${g.thp_defrag ?? 'madvise'} > /sys/kernel/mm/transparent_hugepage/defrag`,
  ];
  if (g.min_free_kbytes !== 'auto') cmds.push(`echo ${g.min_free_kbytes} > /proc/sys/vm/min_free_kbytes`);
  return cmds.join(' && ');
}

/** A RealContext over a running QEMU (which a migration replaces with its destination). */
export class QemuContext implements RealContext {
  readonly engine = 'qemu' as const;
  balloonTargetPages: number | null = null;
  files?: { dir: string; streams: Map<number, FileStream> };
  private t0 = performance.now();
  private dest: QemuVm | null = null;
  /** Every QEMU this context started (to stop them all at the end). */
  readonly vms: QemuVm[];
  constructor(public vm: QemuVm, private readonly img: QemuImage, private readonly launch: QemuLaunch, readonly ramSize: number) {
    this.vms = [vm];
    if (launch.scratch) this.files = { dir: SCRATCH_MOUNT, streams: new Map() };
  }
  qmp = (cmd: Parameters<RealContext['qmp']>[0]) => this.vm.qmp.execute(cmd);
  shell = (cmd: string, timeoutNs: number) => this.vm.agent.run(cmd, Math.ceil(timeoutNs / 1e6));
  now = () => Math.round((performance.now() - this.t0) * 1e6);
  sleep = (ns: number) => delay(ns / 1e6);
  async waitUntil(cond: () => boolean | Promise<boolean>, timeoutNs: number) {
    const start = this.now();
    for (;;) {
      if (await cond()) return { reached: true, waited_ns: this.now() - start };
      if (this.now() - start >= timeoutNs) return { reached: false, waited_ns: this.now() - start };
      if (this.vm.exited) throw new QemuError(this.vm.exited);
      await delay(50);
    }
  }
  hostRssBytes = () => this.vm.guestRamRssBytes(this.ramSize);
  async migrationTarget(): Promise<string> {
    if (this.dest) throw new QemuError('a migration destination is already running');
    const port = await freePort();
    const uri = `tcp:127.0.0.1:${port}`;
    this.dest = await QemuVm.start(this.img, { ...this.launch, incoming: uri }, 'destination');
    this.vms.push(this.dest);
    return uri;
  }
  async migrationEnded(completed: boolean): Promise<void> {
    const d = this.dest;
    this.dest = null;
    if (!d) return;
    if (!completed) { await d.stop(); return; }
    const src = this.vm;
    this.vm = d;
    await src.stop();
    await d.agent.ping(30_000);
  }
}

export type QemuRunOptions = {
  bootTimeoutMs?: number;
  /** Called as each entry's event is recorded. */
  onEntry?: (i: number, ev: RealEvent) => void;
  /** Read the diff probe (/proc/meminfo, vmstat, buddyinfo, pagetypeinfo) after each entry. */
  probe?: boolean;
  /** Record TRACE_EVENTS over the timeline (the source guest's: a migration's destination is not traced). */
  trace?: boolean;
};

/** Boots the QEMU guest, sets it up as the scenario says, runs the timeline, reads /proc at the end. */
export async function runQemuScenario(s: Scenario, img: QemuImage, opts: QemuRunOptions = {}): Promise<QemuRunResult> {
  const w0 = performance.now();
  const launch = qemuLaunch(s);
  const vm = await QemuVm.start(img, launch, 'source', opts.bootTimeoutMs !== undefined ? { bootTimeoutMs: opts.bootTimeoutMs } : {});
  const bootMs = performance.now() - w0;
  const ctx = new QemuContext(vm, img, launch, s.guest.memory);
  const must = async (cmd: string, what: string) => {
    const r = await ctx.shell(cmd, 60e9);
    if (r.status !== 0) throw new QemuError(`${what} failed in the qemu guest (exit ${r.status}): ${r.output.trim().slice(0, 200)}`);
    return r.output;
  };
  try {
    await must(launch.balloon ? 'test -e /sys/bus/virtio/drivers/virtio_balloon/virtio0' : '! ls /sys/bus/virtio/drivers/virtio_balloon | grep -q "^virtio"', 'virtio_balloon binding check');
    if (launch.scratch) await must(`grep -q '^/dev/vda ${SCRATCH_MOUNT} ext4 ' /proc/mounts`, `the scratch ext4 on ${SCRATCH_MOUNT} (/init mounts it)`);
    await must(guestSetupCommand(s), 'guest setup (THP, min_free_kbytes)');
    if (s.balloon !== false && s.balloon.stats_polling_interval > 0) {
      const r = await ctx.qmp({ execute: 'qom-set', arguments: { path: BALLOON_QOM_PATH, property: 'guest-stats-polling-interval', value: s.balloon.stats_polling_interval / 1e9 } });
      if ('error' in r) throw new QemuError(`qom-set guest-stats-polling-interval: ${JSON.stringify(r.error)}`);
    }
    const uname = (await must('uname -r', 'uname -r')).trim();
    const memtotal0 = parseMeminfo(await must('cat /proc/meminfo', 'cat /proc/meminfo')).MemTotal ?? 0;
    if (opts.trace === true) await must(`cd ${TRACEFS} && echo 0 > tracing_on && echo > trace && ${TRACE_EVENTS.map((e) => `echo 1 > events/${e}/enable`).join(' && ')} && echo 1 > tracing_on`, 'turning the tracepoints on');
    const w1 = performance.now();
    const timeline = await runRealTimeline(s, ctx, {
      ...(opts.onEntry ? { onEntry: opts.onEntry } : {}),
      ...(opts.probe !== false ? { probe: async () => diffProbe(splitProbeOutput(await must(DIFF_PROBE_COMMAND_SLAB, 'reading /proc'))) } : {}),
    });
    const w2 = performance.now();
    const trace = opts.trace === true ? await must(`cd ${TRACEFS} && echo 0 > tracing_on && cat trace`, 'reading the trace buffer') : undefined;
    const vmstat = parseVmstat(await must('cat /proc/vmstat', 'cat /proc/vmstat'));
    const meminfo = parseMeminfo(await must('cat /proc/meminfo', 'cat /proc/meminfo'));
    const dev = launch.balloon ? ['virtio-balloon-pci', ...Object.entries(launch.balloon).map(([k, v]) => `${k}=${v}`)].join(',') : null;
    return {
      engine: 'qemu', scenario: s.name, memory_bytes: s.guest.memory, timeline, device: null,
      guest: { vmstat, meminfo, memtotal_start_kib: memtotal0 },
      timings: { boot_ms: Math.round(bootMs), timeline_ms: Math.round(w2 - w1), total_ms: Math.round(performance.now() - w0) },
      qemu: { version: img.manifest.qemu.version, kernel: img.manifest.kernel.release, uname, cmdline: launch.cmdline, device: dev },
      ...(trace !== undefined ? { trace } : {}),
    };
  } finally {
    for (const v of ctx.vms) await v.stop();
  }
}
