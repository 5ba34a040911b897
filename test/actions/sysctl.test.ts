/**
 * The sysctl action: each tunable the model honours is written as `echo V > file`
 * would write it — the kernel's handler runs on the model (watermarks set up again,
 * min_free_kbytes following THP, the hugetlb pool resized, kcompactd woken) — and on a
 * real guest the file is written and read back (a fake guest here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { ScenarioError } from '../../src/scenario/schema.js';
import { eventsOfKind } from '../../src/actions/index.js';
import { ActionError, type RealContext } from '../../src/actions/action.js';
import { sysctl, SYSCTL_NAMES, parseSysctlFile } from '../../src/actions/sysctl.js';
import { Wmark } from '../../src/guest/mm/mmzone.js';
import { nrFreeBufferPages } from '../../src/guest/mm/page_alloc.js';
import { VmEvent } from '../../src/guest/mm/vmstat_items.js';

const MiB = 2 ** 20;
const scenario = (timeline: string[], guest = 'memory: 1GiB') => loadScenarioText(`name: t\nguest: { ${guest} }\ntimeline:\n${timeline.join('\n')}\n`, 't.yaml').base;

function refusal(entry: string): string {
  try {
    scenario([entry]);
  } catch (e) {
    assert.ok(e instanceof ScenarioError, String(e));
    return e.message;
  }
  assert.fail('expected a ScenarioError');
}

test('only the tunables the model honours, each value checked against its file', () => {
  assert.deepEqual(SYSCTL_NAMES, ['vm.min_free_kbytes', 'vm.nr_hugepages', 'kernel.mm.transparent_hugepage.enabled', 'kernel.mm.transparent_hugepage.defrag', 'vm.compaction_proactiveness', 'vm.vfs_cache_pressure', 'vm.watermark_boost_factor', 'vm.dirty_ratio', 'vm.dirty_background_ratio', 'vm.dirty_expire_centisecs', 'vm.dirty_writeback_centisecs']);
  assert.match(refusal('  - { at: 0s, action: sysctl, name: vm.extfrag_threshold, value: 500 }'), /^t\.yaml: timeline\[0\]\.name: .*vm\.min_free_kbytes/);
  assert.equal(refusal('  - { at: 0s, action: sysctl, name: vm.min_free_kbytes, value: always }'), 't.yaml: timeline[0].value: vm.min_free_kbytes takes a whole number, got "always"');
  assert.equal(refusal('  - { at: 0s, action: sysctl, name: vm.min_free_kbytes, value: -1 }'), 't.yaml: timeline[0].value: vm.min_free_kbytes takes 0 to 2147483647, got -1');
  assert.equal(refusal('  - { at: 0s, action: sysctl, name: vm.compaction_proactiveness, value: 101 }'), 't.yaml: timeline[0].value: vm.compaction_proactiveness takes 0 to 100, got 101');
  assert.equal(refusal('  - { at: 0s, action: sysctl, name: vm.nr_hugepages, value: 1.5 }'), 't.yaml: timeline[0].value: vm.nr_hugepages takes a whole number, got 1.5');
  assert.equal(refusal('  - { at: 0s, action: sysctl, name: kernel.mm.transparent_hugepage.enabled, value: sometimes }'), 't.yaml: timeline[0].value: kernel.mm.transparent_hugepage.enabled takes one of always, madvise, never, got "sometimes"');
  assert.match(refusal('  - { at: 0s, action: sysctl, name: kernel.mm.transparent_hugepage.defrag, value: 1 }'), /takes one of always, defer, defer\+madvise, madvise, never, got 1$/);
  assert.match(refusal('  - { at: 0s, action: sysctl, name: vm.min_free_kbytes }'), /^t\.yaml: timeline\[0\]\.value: /);
});

test('vm.min_free_kbytes sets the watermarks and pagesets up again from the value written (min_free_kbytes_sysctl_handler)', () => {
  let seen: { min: number[]; high: number[]; pcpHigh: number; user: number } | null = null;
  const { doc } = runScenario(scenario(['  - { at: 1s, action: sysctl, name: vm.min_free_kbytes, value: 16384 }', '  - { at: 1s, action: check }']), {
    check: true,
    onEntry: (i, _ev, vm) => {
      if (i !== 0) return;
      const pg = vm.guest.pgdat;
      seen = { min: pg.zones.map((z) => z.watermark[Wmark.min]!), high: pg.zones.map((z) => z.watermark[Wmark.high]!), pcpHigh: pg.zones[1]!.pcp[0]!.high, user: pg.sysctl.userMinFreeKbytes };
      // __setup_per_zone_wmarks by hand: min is 16384 KiB in pages, shared by managed size
      const lowmem = pg.zones.reduce((n, z) => n + z.managedPages, 0);
      const want = pg.zones.map((z) => Math.floor(((16384 >> 2) * z.managedPages) / lowmem));
      assert.deepEqual(seen.min, want);
      assert.equal(pg.zones[1]!.pcp[0]!.high, Math.max(Math.floor(pg.zones[1]!.watermark[Wmark.low]!), pg.zones[1]!.pcp[0]!.batch << 2), 'zone_pcp_update: high from the new low mark');
    },
  });
  const [ev] = eventsOfKind(doc.events, 'sysctl');
  assert.deepEqual({ ...ev, t_ns: 0 }, { t_ns: 0, kind: 'sysctl', name: 'vm.min_free_kbytes', value: 16384, previous: 45056 });
  assert.equal(seen!.user, 16384, 'user_min_free_kbytes remembers the write');
});

test('transparent_hugepage/enabled: never recomputes min_free_kbytes, enabling raises it again; defrag only changes the mode', () => {
  const mins: number[] = [];
  let lowmem = 0;
  const { doc } = runScenario(scenario([
    '  - { at: 0s, action: sysctl, name: kernel.mm.transparent_hugepage.enabled, value: never }',
    '  - { at: 0s, action: process_fault, pid: 1, size: 64MiB }',
    '  - { at: 1s, action: sysctl, name: kernel.mm.transparent_hugepage.enabled, value: madvise }',
    '  - { at: 1s, action: process_fault, pid: 1, size: 64MiB }',
    '  - { at: 1s, action: process_fault, pid: 1, size: 64MiB, madvise: hugepage }',
    '  - { at: 2s, action: sysctl, name: vm.min_free_kbytes, value: 60000 }',
    '  - { at: 2s, action: sysctl, name: kernel.mm.transparent_hugepage.enabled, value: never }',
    '  - { at: 3s, action: sysctl, name: kernel.mm.transparent_hugepage.defrag, value: always }',
  ]), { check: true, onBoot: (vm) => { lowmem = nrFreeBufferPages(vm.guest.pgdat); }, onEntry: (i, _e, vm) => { mins[i] = vm.guest.pgdat.sysctl.minFreeKbytes; } });
  const [never, madvise, , never2, defrag] = eventsOfKind(doc.events, 'sysctl');
  assert.deepEqual([never!.previous, never!.value], ['always', 'never']);
  // calculate_min_free_kbytes at run time: sqrt(lowmem KiB x 16) of the pages above the high watermarks
  assert.equal(mins[0], Math.floor(Math.sqrt(lowmem * 4 * 16)), 'back to the plain default');
  assert.ok(mins[0]! < 45056);
  const faults = eventsOfKind(doc.events, 'process_fault');
  assert.deepEqual(faults.map((f) => f.thp_fault_alloc), [0, 0, 32], 'never: no THP; madvise: only the MADV_HUGEPAGE mapping');
  assert.deepEqual([madvise!.previous, madvise!.value], ['never', 'madvise']);
  assert.equal(mins[2], 45056, 'set_recommended_min_free_kbytes raised it again');
  assert.equal(mins[6], 60000, 'a larger value the user wrote is kept when THP goes off');
  assert.deepEqual([never2!.value, defrag!.previous, defrag!.value], ['never', 'madvise', 'always']);
});

test('vm.compaction_proactiveness wakes kcompactd at once (proactive_compact_trigger) instead of at its next period', () => {
  const scanned: number[] = [];
  const timeline = (p: number) => [
    '  - { at: 0s, action: sysctl, name: vm.compaction_proactiveness, value: 0 }',
    '  - { at: 0s, action: process_fault, pid: 1, size: 700MiB }',
    '  - { at: 1s, action: process_free, pid: 1, fraction: 0.5, pick: alternate }',
    '  - { at: 1s, action: drain_pcp }',
    `  - { at: 2200ms, action: sysctl, name: vm.compaction_proactiveness, value: ${p} }`,
    '  - { at: 2210ms, action: check }',
  ];
  const run = (p: number) => {
    const { doc } = runScenario(scenario(timeline(p), 'memory: 1GiB, thp: never'), { onEntry: (i, _e, vm) => { if (i === 5) scanned.push(vm.guest.pgdat.events[VmEvent.compact_daemon_migrate_scanned]!); } });
    return doc;
  };
  run(0);
  const doc = run(90);
  assert.equal(scanned[0], 0, 'at 0 kcompactd stays asleep');
  assert.ok(scanned[1]! > 0, 'written at 2.2 s, proactive compaction ran before 2.21 s (the period would have waited for 2.5 s)');
  assert.deepEqual(eventsOfKind(doc.events, 'sysctl').map((e) => [e.previous, e.value]), [[20, 0], [0, 90]]);
});

test('vm.nr_hugepages: the event has the request, the pool after, and the htlb_buddy_alloc_* deltas; watermark_boost_factor is plain', () => {
  const { doc } = runScenario(scenario([
    '  - { at: 0s, action: sysctl, name: vm.nr_hugepages, value: 64 }',
    '  - { at: 1s, action: sysctl, name: vm.nr_hugepages, value: 100000 }',
    '  - { at: 2s, action: sysctl, name: vm.nr_hugepages, value: 16 }',
    '  - { at: 3s, action: sysctl, name: vm.watermark_boost_factor, value: 0 }',
  ], 'memory: 256MiB'), { check: true });
  const [a, b, c, d] = eventsOfKind(doc.events, 'sysctl');
  assert.deepEqual({ ...a, t_ns: 0 }, { t_ns: 0, kind: 'sysctl', name: 'vm.nr_hugepages', value: 64, previous: 0, requested: 64, nr_hugepages: 64, htlb_buddy_alloc_success: 64, htlb_buddy_alloc_fail: 0 });
  assert.ok(b!.nr_hugepages! > 64 && b!.nr_hugepages! < 128 && b!.value === b!.nr_hugepages);
  assert.equal(b!.htlb_buddy_alloc_success, b!.nr_hugepages! - 64);
  assert.equal(b!.htlb_buddy_alloc_fail, 1);
  assert.deepEqual([c!.value, c!.previous, c!.htlb_buddy_alloc_success, c!.htlb_buddy_alloc_fail], [16, b!.nr_hugepages, 0, 0]);
  assert.deepEqual([d!.name, d!.value, d!.previous], ['vm.watermark_boost_factor', 0, 15000]);
  assert.equal(doc.vmstat.htlb_buddy_alloc_fail, 1);
});

test('vm.vfs_cache_pressure scales what the superblock shrinker offers: 0 keeps every dentry through drop_caches 2', () => {
  const run = (pressure: number) => runScenario(scenario([
    `  - { at: 0s, action: sysctl, name: vm.vfs_cache_pressure, value: ${pressure} }`,
    '  - { at: 0s, action: process_file, pid: 9, size: 4MiB, file_size: 4KiB }',
    '  - { at: 1s, action: drop_caches, value: 2 }',
  ], 'memory: 256MiB'), { check: true }).doc;
  const off = run(0), on = run(100);
  assert.deepEqual(eventsOfKind(on.events, 'sysctl').map((e) => [e.previous, e.value]), [[100, 100]]);
  assert.deepEqual(eventsOfKind(off.events, 'sysctl').map((e) => [e.previous, e.value]), [[100, 0]]);
  assert.equal(eventsOfKind(off.events, 'drop_caches')[0]!.slab_reclaimable_freed_pages, 0);
  assert.ok(eventsOfKind(on.events, 'drop_caches')[0]!.slab_reclaimable_freed_pages > 40, 'the 1024 dentries went');
  assert.ok(on.vmstat.slabs_scanned! > 0 && off.vmstat.slabs_scanned === 0);
});

/** A real guest whose shell knows the tunables' files, /proc/vmstat, and a pool that tops out at `maxPool`. */
function fakeGuest(maxPool: number, failWrites = false): RealContext & { calls: string[] } {
  const files: Record<string, string> = {
    '/proc/sys/vm/nr_hugepages': '0', '/proc/sys/vm/min_free_kbytes': '45056',
    '/sys/kernel/mm/transparent_hugepage/enabled': 'always [madvise] never', '/sys/kernel/mm/transparent_hugepage/defrag': 'always defer defer+madvise [madvise] never',
  };
  const vm = { success: 0, fail: 0 };
  const g = {
    engine: 'qemu' as const, ramSize: 1024 * MiB, balloonTargetPages: null, calls: [] as string[],
    qmp: async () => ({ return: {} }),
    shell: async (cmd: string) => {
      g.calls.push(cmd);
      const w = /^echo (\S+) > (\S+)$/.exec(cmd);
      if (w) {
        if (failWrites) return { output: 'sh: write error: Invalid argument\n', status: 1 };
        const [, v, f] = w;
        if (f === '/proc/sys/vm/nr_hugepages') {
          const want = Number(v), have = Number(files[f]);
          const got = Math.min(want, maxPool);
          if (got > have) vm.success += got - have;
          if (want > maxPool) vm.fail++;
          files[f] = String(got);
        } else if (f!.startsWith('/sys/')) files[f!] = files[f!]!.replace(/[[\]]/g, '').split(' ').map((m) => (m === v ? `[${m}]` : m)).join(' ');
        else files[f!] = v!;
        return { output: '', status: 0 };
      }
      let out = '';
      for (const part of cmd.split('; ')) {
        const e = /^echo '(.*)'$/.exec(part), c = /^cat (\S+)$/.exec(part);
        if (e) out += e[1] + '\n';
        else if (c && c[1] === '/proc/vmstat') out += `nr_free_pages 1000\nhtlb_buddy_alloc_success ${vm.success}\nhtlb_buddy_alloc_fail ${vm.fail}\n`;
        else if (c) out += files[c[1]!] + '\n';
      }
      return { output: out, status: 0 };
    },
    now: () => 0, sleep: async () => {}, waitUntil: async () => ({ reached: true, waited_ns: 0 }), hostRssBytes: () => null,
  };
  return g;
}

test('the real side writes the file, reads it back and, for nr_hugepages, takes the htlb counters from /proc/vmstat; a failed write is an ActionError', async () => {
  const g = fakeGuest(5);
  const hp = await sysctl.real!.run(g, { at: 0, action: 'sysctl', name: 'vm.nr_hugepages', value: 8 });
  assert.deepEqual(hp, { name: 'vm.nr_hugepages', value: 5, previous: 0, requested: 8, nr_hugepages: 5, htlb_buddy_alloc_success: 5, htlb_buddy_alloc_fail: 1 });
  assert.ok(g.calls.includes('echo 8 > /proc/sys/vm/nr_hugepages'));
  const thp = await sysctl.real!.run(g, { at: 0, action: 'sysctl', name: 'kernel.mm.transparent_hugepage.enabled', value: 'never' });
  assert.deepEqual(thp, { name: 'kernel.mm.transparent_hugepage.enabled', value: 'never', previous: 'madvise' });
  assert.deepEqual(await sysctl.real!.run(g, { at: 0, action: 'sysctl', name: 'vm.min_free_kbytes', value: 8192 }), { name: 'vm.min_free_kbytes', value: 8192, previous: 45056 });
  await assert.rejects(sysctl.real!.run(fakeGuest(5, true), { at: 0, action: 'sysctl', name: 'vm.min_free_kbytes', value: 1 }),
    (e: unknown) => e instanceof ActionError && /echo 1 > \/proc\/sys\/vm\/min_free_kbytes failed in the real guest \(exit 1\): sh: write error/.test(e.message));
  assert.deepEqual(sysctl.real!.engines, ['v86', 'qemu']);
  assert.equal(parseSysctlFile('kernel.mm.transparent_hugepage.defrag', 'always defer [defer+madvise] madvise never\n'), 'defer+madvise');
  assert.throws(() => parseSysctlFile('vm.nr_hugepages', 'cat: can\'t open\n'), ActionError);
});
