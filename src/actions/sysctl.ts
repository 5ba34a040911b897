/**
 * The `sysctl` action: writes one memory-management tunable as `echo V > file` would,
 * on the model (the kernel's handler for that file, run on the model's state) and on a
 * real guest (the file itself, then read back). Only the tunables the model honours are
 * offered: each changes what the model's allocator, compaction, THP or hugetlb pool do.
 */
import { defineAction, ActionError, type RealContext } from './action.js';
import { oneOf, scalar } from './fields.js';
import type { PgData } from '../guest/mm/mmzone.js';
import { THP_ENABLED_MODES, THP_DEFRAG_MODES, type ThpEnabled, type ThpDefrag } from '../guest/mm/sysctl.js';
import { minFreeKbytesSysctlHandler, MIN_FREE_KBYTES_MAX } from '../guest/mm/page_alloc.js';
import { compactionProactivenessSysctlHandler } from '../guest/mm/compaction.js';
import { enabledStore, defragStore } from '../guest/mm/huge_memory.js';
import { hugetlbSysctlHandler } from '../guest/mm/hugetlb.js';
import { VmEvent } from '../guest/mm/vmstat_items.js';
import { parseVmstat } from '../report/proc_parse.js';

/** INT_MAX: the bound of the proc_dointvec_minmax tunables. */
const INT_MAX = 0x7fffffff;

/** `absent`: why the guest's kernel has no such file (its era lacks the mechanism), or null. */
type NumericSysctl = { file: string; min: number; max: number; read(pg: PgData): number; write(pg: PgData, v: number): void; absent?(pg: PgData): string | null };
type ModeSysctl = { file: string; modes: readonly string[]; read(pg: PgData): string; write(pg: PgData, v: string): void; absent?(pg: PgData): string | null };

/** The tunables: their file, what a write may say, and the model's read and write (the kernel's handler). */
export const SYSCTLS = {
  'vm.min_free_kbytes': {
    file: '/proc/sys/vm/min_free_kbytes', min: 0, max: MIN_FREE_KBYTES_MAX,
    read: (pg) => pg.sysctl.minFreeKbytes,
    write: (pg, v) => minFreeKbytesSysctlHandler(pg, v),
  } satisfies NumericSysctl,
  'vm.nr_hugepages': {
    file: '/proc/sys/vm/nr_hugepages', min: 0, max: Number.MAX_SAFE_INTEGER,
    read: (pg) => pg.hugetlb.maxHugePages,
    write: (pg, v) => hugetlbSysctlHandler(pg, v),
  } satisfies NumericSysctl,
  'kernel.mm.transparent_hugepage.enabled': {
    file: '/sys/kernel/mm/transparent_hugepage/enabled', modes: THP_ENABLED_MODES,
    read: (pg) => pg.sysctl.thp.enabled,
    write: (pg, v) => enabledStore(pg, v as ThpEnabled),
  } satisfies ModeSysctl,
  'kernel.mm.transparent_hugepage.defrag': {
    file: '/sys/kernel/mm/transparent_hugepage/defrag', modes: THP_DEFRAG_MODES,
    read: (pg) => pg.sysctl.thp.defrag,
    write: (pg, v) => defragStore(pg, v as ThpDefrag),
  } satisfies ModeSysctl,
  'vm.compaction_proactiveness': {
    file: '/proc/sys/vm/compaction_proactiveness', min: 0, max: 100,
    read: (pg) => pg.sysctl.compactionProactiveness,
    write: (pg, v) => compactionProactivenessSysctlHandler(pg, v),
    absent: (pg) => (pg.kernel.proactiveCompaction ? null : 'proactive compaction arrived in Linux 5.9'),
  } satisfies NumericSysctl,
  'vm.vfs_cache_pressure': {
    // proc_dointvec_minmax (extra1 = 0): super_cache_count scales by it at its next call
    file: '/proc/sys/vm/vfs_cache_pressure', min: 0, max: INT_MAX,
    read: (pg) => pg.sysctl.vfsCachePressure,
    write: (pg, v) => { pg.sysctl.vfsCachePressure = v; },
  } satisfies NumericSysctl,
  'vm.watermark_boost_factor': {
    // proc_dointvec_minmax: the next boost (boost_watermark) uses it; nothing else changes
    file: '/proc/sys/vm/watermark_boost_factor', min: 0, max: INT_MAX,
    read: (pg) => pg.sysctl.watermarkBoostFactor,
    write: (pg, v) => { pg.sysctl.watermarkBoostFactor = v; },
    absent: (pg) => (pg.kernel.watermarkBoost ? null : 'watermark boosting arrived in Linux 5.0'),
  } satisfies NumericSysctl,
  'vm.dirty_ratio': {
    // dirty_ratio_handler: the next balance_dirty_pages uses it
    file: '/proc/sys/vm/dirty_ratio', min: 0, max: 100,
    read: (pg) => pg.sysctl.dirtyRatio,
    write: (pg, v) => { pg.sysctl.dirtyRatio = v; },
  } satisfies NumericSysctl,
  'vm.dirty_background_ratio': {
    file: '/proc/sys/vm/dirty_background_ratio', min: 0, max: 100,
    read: (pg) => pg.sysctl.dirtyBackgroundRatio,
    write: (pg, v) => { pg.sysctl.dirtyBackgroundRatio = v; },
  } satisfies NumericSysctl,
  'vm.dirty_expire_centisecs': {
    file: '/proc/sys/vm/dirty_expire_centisecs', min: 0, max: INT_MAX,
    read: (pg) => pg.sysctl.dirtyExpireCentisecs,
    write: (pg, v) => { pg.sysctl.dirtyExpireCentisecs = v; },
  } satisfies NumericSysctl,
  'vm.dirty_writeback_centisecs': {
    // dirty_writeback_centisecs_handler: the flusher's next periodic run is that far off (0: none)
    file: '/proc/sys/vm/dirty_writeback_centisecs', min: 0, max: INT_MAX,
    read: (pg) => pg.sysctl.dirtyWritebackCentisecs,
    write: (pg, v) => { pg.sysctl.dirtyWritebackCentisecs = v; },
  } satisfies NumericSysctl,
} as const;

export type SysctlName = keyof typeof SYSCTLS;
export const SYSCTL_NAMES = Object.keys(SYSCTLS) as [SysctlName, ...SysctlName[]];

function spec(name: SysctlName): NumericSysctl | ModeSysctl {
  return SYSCTLS[name];
}

function isModes(s: NumericSysctl | ModeSysctl): s is ModeSysctl {
  return 'modes' in s;
}

/** What is wrong with writing `value` to `name`, or null. */
export function sysctlValueProblem(name: SysctlName, value: number | string): string | null {
  const s = spec(name);
  if (isModes(s)) return typeof value === 'string' && s.modes.includes(value) ? null : `${name} takes one of ${s.modes.join(', ')}, got ${JSON.stringify(value)}`;
  if (typeof value !== 'number' || !Number.isInteger(value)) return `${name} takes a whole number, got ${JSON.stringify(value)}`;
  if (value < s.min || value > s.max) return `${name} takes ${s.min} to ${s.max}, got ${value}`;
  return null;
}

/** The event of a sysctl entry: the value read back after the write and the one before; nr_hugepages adds the pool's figures. */
export type SysctlEvent = {
  name: SysctlName;
  value: number | string;
  previous: number | string;
  /** vm.nr_hugepages: the count written, the pool's size after, and the htlb_buddy_alloc_* counters' deltas. */
  requested?: number;
  nr_hugepages?: number;
  htlb_buddy_alloc_success?: number;
  htlb_buddy_alloc_fail?: number;
};

/** The mode in brackets of a THP sysfs file ("always [madvise] never"), or the number a /proc/sys file holds. */
export function parseSysctlFile(name: SysctlName, text: string): number | string {
  if (isModes(spec(name))) {
    const m = /\[([^\]]+)\]/.exec(text);
    if (!m) throw new ActionError(`${spec(name).file} in the real guest reads ${JSON.stringify(text.trim())}: no mode in brackets`);
    return m[1]!;
  }
  const v = Number(text.trim());
  if (!Number.isFinite(v) || text.trim() === '') throw new ActionError(`${spec(name).file} in the real guest reads ${JSON.stringify(text.trim())}, not a number`);
  return v;
}

/** Reads a tunable's file (and /proc/vmstat when asked) in the real guest in one round trip. */
async function readReal(ctx: RealContext, name: SysctlName, vmstat: boolean): Promise<{ value: number | string; vmstat: Record<string, number> }> {
  const file = spec(name).file;
  const r = await ctx.shell(`echo '@@ value'; cat ${file}${vmstat ? "; echo '@@ vmstat'; cat /proc/vmstat" : ''}`, 30e9);
  if (r.status !== 0) throw new ActionError(`cat ${file} failed in the real guest (exit ${r.status}): ${r.output.trim().slice(0, 200)}`);
  const parts: Record<string, string> = { value: '', vmstat: '' };
  let cur: string | null = null;
  for (const line of r.output.split('\n')) {
    const m = /^@@ (value|vmstat)$/.exec(line);
    if (m) { cur = m[1]!; continue; }
    if (cur !== null) parts[cur] += line + '\n';
  }
  return { value: parseSysctlFile(name, parts.value!), vmstat: vmstat ? parseVmstat(parts.vmstat!) : {} };
}

export const sysctl = defineAction({
  name: 'sysctl',
  doc: 'echo value > the tunable\'s file (/proc/sys/vm/..., /sys/kernel/mm/transparent_hugepage/...): the kernel\'s handler runs (min_free_kbytes sets the watermarks again, THP enabled raises or recomputes min_free_kbytes, nr_hugepages grows or shrinks the hugetlb pool, compaction_proactiveness wakes kcompactd, vfs_cache_pressure scales what the superblock shrinker offers); the value read back and the one before',
  fields: {
    name: oneOf('The tunable, by its sysctl name (the THP knobs by their /sys/kernel/mm path)', SYSCTL_NAMES),
    value: scalar('What to write: a whole number (vm.*) or a mode (transparent_hugepage enabled: always|madvise|never; defrag: always|defer|defer+madvise|madvise|never)'),
  },
  refine: (a) => {
    const bad = sysctlValueProblem(a.name, a.value);
    return bad === null ? null : { field: 'value', message: bad };
  },
  model: (ctx, a): SysctlEvent => {
    const pg = ctx.vm.guest.pgdat;
    const s = spec(a.name);
    const absent = s.absent?.(pg) ?? null;
    if (absent !== null) throw new ActionError(`${s.file} does not exist in the guest's Linux ${pg.kernel.version}: ${absent}`);
    const previous = s.read(pg);
    const ok0 = pg.events[VmEvent.htlb_buddy_alloc_success]!, fail0 = pg.events[VmEvent.htlb_buddy_alloc_fail]!;
    if (isModes(s)) s.write(pg, a.value as string);
    else s.write(pg, a.value as number);
    const value = s.read(pg);
    const ev: SysctlEvent = { name: a.name, value, previous };
    if (a.name === 'vm.nr_hugepages') {
      ev.requested = a.value as number;
      ev.nr_hugepages = pg.hugetlb.maxHugePages;
      ev.htlb_buddy_alloc_success = pg.events[VmEvent.htlb_buddy_alloc_success]! - ok0;
      ev.htlb_buddy_alloc_fail = pg.events[VmEvent.htlb_buddy_alloc_fail]! - fail0;
    }
    return ev;
  },
  real: {
    engines: ['v86', 'qemu'],
    run: async (ctx, a): Promise<SysctlEvent> => {
      const hugepages = a.name === 'vm.nr_hugepages';
      const file = spec(a.name).file;
      const before = await readReal(ctx, a.name, hugepages);
      const w = await ctx.shell(`echo ${a.value} > ${file}`, hugepages ? 600e9 : 30e9);
      if (w.status !== 0) throw new ActionError(`echo ${a.value} > ${file} failed in the real guest (exit ${w.status}): ${w.output.trim().slice(0, 200)}`);
      const after = await readReal(ctx, a.name, hugepages);
      const ev: SysctlEvent = { name: a.name, value: after.value, previous: before.value };
      if (hugepages) {
        const d = (k: string) => (after.vmstat[k] ?? 0) - (before.vmstat[k] ?? 0);
        ev.requested = a.value as number;
        ev.nr_hugepages = after.value as number;
        ev.htlb_buddy_alloc_success = d('htlb_buddy_alloc_success');
        ev.htlb_buddy_alloc_fail = d('htlb_buddy_alloc_fail');
      }
      return ev;
    },
  },
});
