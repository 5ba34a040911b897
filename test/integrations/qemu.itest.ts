/**
 * The QEMU suite: a real x86-64 Linux 6.1 under QEMU 10 (TCG) with QEMU's own
 * virtio-balloon, the bundled differential scenarios of scenarios/real/ run on it and
 * on the model. Run with `npm run test:real-guest` after
 * scripts/real-guest/build-qemu-image.sh; skipped unless BALLOONLAB_REAL_GUEST=1.
 *
 * What it proves: the real side's figures are the kernel's own (read from its /proc,
 * with counters the model does not produce), the device binds and balloons exactly
 * the pages asked for on both sides, the fragmentation scenario and a migration run
 * through --diff end to end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { loadScenarioText } from '../../src/scenario/runner.js';
import type { Scenario } from '../../src/scenario/schema.js';
import { checkQemuScenario, runQemuScenario } from '../../src/integrations/qemu/side.js';
import { qemuImage, type QemuImage } from '../../src/integrations/qemu/qemu.js';
import { runModelSide, formatRealReport, diffRows } from '../../src/integrations/real/diff.js';
import { eventsOfKind, type ResultEvent } from '../../src/actions/index.js';

const SKIP = process.env.BALLOONLAB_REAL_GUEST === '1' ? false : 'real guest: run `npm run test:real-guest` (sets BALLOONLAB_REAL_GUEST=1)';
const root = fileURLToPath(new URL('../../../', import.meta.url));
const MiB = 2 ** 20;

function load(file: string, variant?: string): Scenario {
  const sf = loadScenarioText(readFileSync(join(root, file), 'utf8'), file);
  const s = variant ? sf.variants.find((v) => v.name === variant)!.scenario : sf.base;
  checkQemuScenario(s, file);
  return s;
}

function image(needs: { scratch?: boolean } = {}): QemuImage {
  const img = qemuImage(join(root, '.cache/real-guest-qemu'), needs);
  assert.ok(!('missing' in img), `run scripts/real-guest/build-qemu-image.sh first (${'missing' in img ? img.missing.join(', ') : ''})`);
  return img as QemuImage;
}

/** The scenario on the real guest and on the model, the report of both, the timings as a diagnostic. */
async function runBoth(t: { diagnostic(m: string): void }, file: string, variant?: string) {
  const s = load(file, variant);
  const real = await runQemuScenario(s, image({ scratch: s.timeline.some((a) => a.action === 'process_file') }));
  const model = runModelSide(s);
  const report = formatRealReport(real, model);
  t.diagnostic(`qemu: boot ${real.timings.boot_ms} ms, timeline ${real.timings.timeline_ms} ms; model ${model.wall_ms} ms`);
  assert.ok(real.timeline.ok, `${real.timeline.problems.join('\n')}\n${report}`);
  return { s, real, model, report };
}

test('qemu-inflate: virtio_balloon binds to QEMU\'s device; the kernel\'s balloon_inflate/deflate are the pages asked for, on both sides; MemTotal stays (deflate-on-oom)', { timeout: 240_000, skip: SKIP }, async (t) => {
  const { real, model, report } = await runBoth(t, 'scenarios/real/qemu-inflate.yaml');
  assert.equal(real.qemu.kernel.startsWith('6.1.'), true);
  for (const [name, vmstat] of [['real', real.guest.vmstat], ['model', model.doc.vmstat]] as const) {
    assert.equal(vmstat.balloon_inflate, 256 * MiB / 4096, `${name}: balloon_inflate\n${report}`);
    assert.equal(vmstat.balloon_deflate, 256 * MiB / 4096, `${name}: balloon_deflate\n${report}`);
  }
  const snaps = eventsOfKind(real.timeline.events as ResultEvent[], 'snapshot');
  assert.deepEqual(snaps.map((e) => e.balloon_actual_pages), [0, 65536, 0]);
  // deflate-on-oom: the balloon's pages stay in MemTotal (the driver does not adjust managed pages)
  assert.ok(snaps.every((e) => e.MemTotal === real.guest.memtotal_start_kib), report);
  // the kernel's own figures: counters the model does not keep, and values of its own
  assert.equal(real.qemu.uname, real.qemu.kernel, 'the guest that answered runs the image\'s kernel');
  assert.notDeepEqual(real.timeline.probes[0], model.probes[0], 'the real side is not the model');
  // the stats the real 6.1 driver sent reach QMP's guest-stats
  const stats = eventsOfKind(real.timeline.events as ResultEvent[], 'guest_stats')[0]!;
  const st = (stats.qmp as { return: { stats: Record<string, number> } }).return.stats;
  assert.equal(st['stat-total-memory'], real.guest.memtotal_start_kib * 1024);
  assert.ok(diffRows(real, model).some((r) => r.what === 'guest balloon_inflate' && r.delta === '='), report);
});

test('qemu-fragmentation: fragment, balloon, release, compact on the real kernel and the model; the compaction moved pages on both', { timeout: 300_000, skip: SKIP }, async (t) => {
  const { real, model, report } = await runBoth(t, 'scenarios/real/qemu-fragmentation.yaml');
  for (const [name, events] of [['real', real.timeline.events as ResultEvent[]], ['model', model.doc.events]] as const) {
    const c = eventsOfKind(events, 'compact_memory')[0]!;
    assert.ok(c.pgmigrate_success > 0, `${name}: compaction migrated pages\n${report}`);
    const huge = (fb: number[]) => fb[9]! + 2 * fb[10]!;
    assert.ok(huge(c.free_blocks_after) > huge(c.free_blocks_before), `${name}: more 2 MiB blocks after compaction\n${report}`);
  }
  assert.equal(real.guest.vmstat.balloon_inflate, model.doc.vmstat.balloon_inflate);
});

test('qemu-highalloc: 280 order-9 GFP_HIGHUSER_MOVABLE requests into half-free memory; both sides get the free blocks and more, and both compact, fail some and reclaim directly; the fill\'s pagemap layout agrees', { timeout: 300_000, skip: SKIP }, async (t) => {
  const { real, model, report } = await runBoth(t, 'scenarios/real/qemu-highalloc.yaml');
  const got = (events: ResultEvent[]) => eventsOfKind(events, 'alloc_pages')[0]!;
  const r = got(real.timeline.events as ResultEvent[]), m = got(model.doc.events);
  // the free 4 MiB blocks alone give about 144 of the 280; compaction makes some of the
  // rest and, as 6.1 compacts (fast scanners, skip hints, async skip_on_failure), not all
  for (const [name, e] of [['real', r], ['model', m]] as const) assert.ok(e.succeeded !== undefined && e.succeeded > 144 && e.succeeded < 280, `${name}: ${e.succeeded}/280\n${report}`);
  const rv = real.guest.vmstat as Record<string, number>, mv = model.doc.vmstat;
  for (const [name, v] of [['real', rv], ['model', mv]] as const) {
    assert.ok(v.compact_stall! > 0 && v.compact_fail! > 0, `${name}: compaction ran and failed (stall ${v.compact_stall}, fail ${v.compact_fail})\n${report}`);
    assert.ok(v.allocstall_movable! > 0, `${name}: a failed compaction leads to direct reclaim\n${report}`);
  }
  // pages migrated (real counters run from boot and take in kcompactd's proactive runs)
  assert.ok(rv.pgmigrate_success! > mv.pgmigrate_success! / 2, `pgmigrate_success real ${rv.pgmigrate_success} model ${mv.pgmigrate_success}\n${report}`);
  // the fill's physical layout (bl-mem layout from /proc/self/pagemap): bl-mem's kept[]
  // takes a page every 4096 of the fill on both sides, so both have ~38 runs of 4096 or
  // more and the half left after the free has both pfn parities
  const lay = (events: ResultEvent[]) => eventsOfKind(events, 'process_layout');
  const [rf, rh] = lay(real.timeline.events as ResultEvent[]), [mf, mh] = lay(model.doc.events);
  assert.ok(Math.abs(rf!.runs_4096 - mf!.runs_4096) <= 3, `runs of 4096+: real ${rf!.runs_4096} model ${mf!.runs_4096}\n${report}`);
  for (const [name, h] of [['real', rh!], ['model', mh!]] as const) assert.ok(Math.abs(h.even_pfns - h.odd_pfns) < h.present_pages / 8, `${name}: even ${h.even_pfns} odd ${h.odd_pfns}\n${report}`);
});

test('qemu-thp-split: unmapping every other 4 KiB of 128 THPs splits their PMDs and queues them on both sides; pressure runs the deferred split', { timeout: 300_000, skip: SKIP }, async (t) => {
  const { real, model, report } = await runBoth(t, 'scenarios/real/qemu-thp-split.yaml');
  const rv = real.guest.vmstat as Record<string, number>, mv = model.doc.vmstat;
  assert.equal(mv.thp_fault_alloc, 128, report);
  assert.equal(mv.thp_split_pmd, 128, report);
  assert.equal(mv.thp_deferred_split_page, 128, report);
  assert.ok(mv.thp_split_page! >= 128, report);
  // the real kernel (its counters run from boot): at least the same splits
  for (const k of ['thp_fault_alloc', 'thp_split_pmd', 'thp_deferred_split_page', 'thp_split_page']) assert.ok(rv[k]! >= 128, `${k} ${rv[k]}\n${report}`);
  // the free moved no memory on either side: the THPs stay allocated until the split
  const frees = (events: ResultEvent[]) => eventsOfKind(events, 'snapshot').map((e) => e.nr_free_pages);
  for (const [name, f] of [['real', frees(real.timeline.events as ResultEvent[])], ['model', frees(model.doc.events)]] as const) {
    assert.ok(Math.abs(f[1]! - f[0]!) < 1024, `${name}: MemFree unchanged by the partial unmap (${f[0]} -> ${f[1]})\n${report}`);
  }
});

test('qemu-migrate-idle (hinting): a loopback migration to a second QEMU completes; the guest runs on at the destination; both sides report the migration', { timeout: 300_000, skip: SKIP }, async (t) => {
  const { s, real, model, report } = await runBoth(t, 'scenarios/real/qemu-migrate-idle.yaml', 'hinting');
  const m = eventsOfKind(real.timeline.events as ResultEvent[], 'migrate')[0]!;
  const q = m['query-migrate'] as { status: string; 'total-time': number; ram: { total: number; transferred: number } };
  assert.equal(q.status, 'completed');
  assert.ok(m.free_page_hint, 'QEMU\'s device has free-page-hint');
  assert.ok(q.ram.total >= s.guest.memory, 'query-migrate counts all of guest RAM');
  // the snapshot after the migration was taken on the destination's guest
  const after = eventsOfKind(real.timeline.events as ResultEvent[], 'snapshot').at(-1)!;
  assert.ok(after.nr_free_pages > 0);
  assert.equal(model.doc.migration?.status, 'completed');
  assert.ok(diffRows(real, model).some((r) => r.what === 'migration transferred'), report);
});

test('qemu-file-cache: page cache and its slab on a real ext4 grow by what was written and read, on both sides; anonymous pressure reclaims the file pages on both', { timeout: 400_000, skip: SKIP }, async (t) => {
  const { real, model, report } = await runBoth(t, 'scenarios/real/qemu-file-cache.yaml');
  const written = 65536, files = 4097;
  for (const [name, events, probes] of [['real', real.timeline.events as ResultEvent[], real.timeline.probes], ['model', model.doc.events, model.probes]] as const) {
    const pf = eventsOfKind(events, 'process_file');
    assert.deepEqual(pf.map((e) => e.cached_pages), [16384, 49152, 16384, 49152], `${name}: every page went through the page cache\n${report}`);
    const at = (label: string) => probes[events.findIndex((e) => e.label === label)]!;
    const booted = at('booted'), w = at('written'), dropped = at('dropped'), read = at('read'), pressed = at('after the pressure');
    const near = (what: string, got: number, want: number, tol = 0.03) => assert.ok(Math.abs(got - want) <= tol * want, `${name}: ${what} ${got}, want ~${want}\n${report}`);
    // the writes: the page cache grew by what was written; a dentry and an ext4 inode per file, a buffer_head per page
    near('nr_file_pages grown by the writes', w['vmstat.nr_file_pages']! - booted['vmstat.nr_file_pages']!, written);
    near('nr_dirtied by the writes', w['vmstat.nr_dirtied']! - booted['vmstat.nr_dirtied']!, written);
    near('dentries', w['slab.dentry']! - booted['slab.dentry']!, files, 0.01);
    near('ext4 inodes', w['slab.ext4_inode_cache']! - booted['slab.ext4_inode_cache']!, files, 0.01);
    near('buffer_heads', w['slab.buffer_head']! - booted['slab.buffer_head']!, written);
    assert.ok(w['vmstat.nr_slab_reclaimable']! - booted['vmstat.nr_slab_reclaimable']! > 3500, `${name}: SReclaimable grew\n${report}`);
    // sync + drop_caches 3: the page cache and the files' dentries and inodes are gone, written back first
    near('nr_written by the end of the drop', dropped['vmstat.nr_written']! - booted['vmstat.nr_written']!, written);
    assert.ok(dropped['vmstat.nr_file_pages']! < booted['vmstat.nr_file_pages']! + 500, `${name}: page cache dropped\n${report}`);
    assert.ok(dropped['slab.ext4_inode_cache']! < booted['slab.ext4_inode_cache']! + 100, `${name}: inodes dropped\n${report}`);
    // the reads came from the disk (pgpgin, KiB) into the page cache
    near('pgpgin of the reads (KiB)', read['vmstat.pgpgin']! - dropped['vmstat.pgpgin']!, written * 4);
    near('nr_file_pages grown by the reads', read['vmstat.nr_file_pages']! - dropped['vmstat.nr_file_pages']!, written);
    // (the real drop leaves a few dozen written inodes, which go while the reads run)
    near('ext4 inodes after the reads', read['slab.ext4_inode_cache']! - booted['slab.ext4_inode_cache']!, files, 0.01);
    // 800 MiB of anonymous memory without swap: reclaim takes the file pages
    const stolen = pressed['vmstat.pgsteal_file']! - read['vmstat.pgsteal_file']!;
    assert.ok(stolen > 30000, `${name}: pgsteal_file ${stolen}\n${report}`);
    assert.ok(pressed['vmstat.nr_file_pages']! < 0.5 * read['vmstat.nr_file_pages']!, `${name}: file pages shrank under the pressure\n${report}`);
  }
  // the real kernel's own: kswapd's shrink_slab pruned dentries of files whose pages went (the model's direct reclaim did not: docs/fidelity.md)
  const rp = real.timeline.probes, re = real.timeline.events;
  const ri = (label: string) => rp[re.findIndex((e) => e.label === label)]!;
  assert.ok(ri('after the pressure')['vmstat.slabs_scanned']! > ri('read')['vmstat.slabs_scanned']!, report);
  assert.ok(ri('after the pressure')['slab.dentry']! < ri('read')['slab.dentry']!, report);
  // the report shows the slab caches side by side
  assert.ok(diffRows(real, model).some((r) => r.what.trim() === 'slabinfo buffer_head active_objs' && r.real !== '-' && r.model !== '-'), report);
});
