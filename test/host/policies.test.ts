/**
 * The auto-balloon policies' decisions on hand-made guest stats and host figures, each
 * test named after the published rule it checks (src/host/policies/* cite the files):
 * oVirt MOM with vdsm's 02-balloon.policy, Proxmox's compute_alg1 and auto_balloning,
 * ChromeOS concierge's LimitCacheBalloonPolicy and BalanceAvailableBalloonPolicy. Then
 * every policy on a small overcommitted host, through QMP, with the checker on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { QmpCommand, QmpResponse } from '../../src/host/qmp.js';
import type { HostMeminfo } from '../../src/host/host.js';
import type { PolicyHost, PolicyVm } from '../../src/host/policies/policy.js';
import { POLICY_NAMES, policyDef } from '../../src/host/policies/index.js';
import { MOM_DEFAULTS, createMomState, momCollect, momEvaluate } from '../../src/host/policies/mom.js';
import { computeAlg1, autoBallooning, PROXMOX_DEFAULTS, type PveVmStatus } from '../../src/host/policies/proxmox.js';
import { type LimitCacheState, limitCacheDelta, limitCacheMaxFree, ARCVM_LIMIT_CACHE_PARAMS, MAX_OOM_MIN_FREE } from '../../src/host/policies/chromeos_limit_cache.js';
import { createBalanceAvailableState, balanceAvailableDelta, CRITICAL_GUEST_AVAILABLE } from '../../src/host/policies/chromeos_balance_available.js';
import { type BalloonStats, parseZoneInfoStats, hostAvailable, defaultMargins } from '../../src/host/policies/chromeos_common.js';
import { loadScenarioText } from '../../src/scenario/runner.js';
import { runHostScenario } from '../../src/scenario/host_runner.js';

const KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

/** A VM that answers QMP from hand-set figures. */
type Fake = { actual: number; free: number; total?: number; caches?: number };
function fakeVm(f: Fake, o: { ramSize?: number; minMemory?: number; shares?: number } = {}): PolicyVm & { sent: QmpCommand[] } {
  const sent: QmpCommand[] = [];
  return {
    name: 'vm', ramSize: o.ramSize ?? 4 * GiB, minMemory: o.minMemory ?? 0, shares: o.shares ?? 1000, sent,
    running: () => true,
    qmp: (cmd: QmpCommand): QmpResponse => {
      sent.push(cmd);
      if (cmd.execute === 'query-balloon') return { return: { actual: f.actual } };
      if (cmd.execute === 'qom-get') return { return: { stats: { 'stat-free-memory': f.free, 'stat-total-memory': f.total ?? f.actual, 'stat-disk-caches': f.caches ?? 0 }, 'last-update': 1 } };
      return { return: {} };
    },
    guestZoneinfo: () => '',
  };
}
function fakeHost(total: number, free: number, extra: Partial<HostMeminfo> = {}): PolicyHost {
  return { now: () => 0, meminfo: () => ({ MemTotal: total, MemFree: free, MemAvailable: free, SwapTotal: 0, SwapFree: 0, AnonPages: total - free, zoneLowSum: 200 * MiB, totalreserve: 300 * MiB, ...extra }) };
}

// ---------------------------------------------------------------------------------
// oVirt MOM, vdsm 02-balloon.policy

/** The policy's targets (KiB) after `samples` monitor samples of these figures. */
function mom(host: PolicyHost, vms: PolicyVm[], samples = 1) {
  const st = createMomState(MOM_DEFAULTS, vms.length);
  for (let i = 0; i < samples; i++) momCollect(st, host, vms);
  return momEvaluate(st);
}

test('MOM shrink_guest: host free below pressure_threshold (0.20) shrinks a roomy guest by max_balloon_change_percent (5 %)', () => {
  const r = mom(fakeHost(100 * GiB, 10 * GiB), [fakeVm({ actual: 4 * GiB, free: 3 * GiB })]);
  assert.deepEqual(r, [{ index: 0, targetKiB: Math.floor((4 * GiB * 0.95) / KiB) }]);
});

test('MOM shrink_guest: the floor is max(balloon_min, used + guest_free_percent x balloon_cur), guest_free_percent = 0.20 x host_free_percent / 0.20 (vdsm max, not balloon.rules min)', () => {
  // used 3.8 GiB, guest_free_percent 0.10: floor 3.8 + 0.4 = 4.2 GiB > the current 4 GiB: no shrink
  assert.deepEqual(mom(fakeHost(100 * GiB, 10 * GiB), [fakeVm({ actual: 4 * GiB, free: 0.2 * GiB })]), []);
  // used 3 GiB: floor 3.4 GiB, above 0.95 x 4 = 3.8? no: 3.4 < 3.8, the 5 % step wins; with used 3.5 GiB the floor 3.9 GiB wins
  assert.deepEqual(mom(fakeHost(100 * GiB, 10 * GiB), [fakeVm({ actual: 4 * GiB, free: 0.5 * GiB })]), [{ index: 0, targetKiB: Math.floor((3.5 * GiB + 0.1 * 4 * GiB) / KiB) }]);
});

test('MOM shrink_guest: at or below pressure_critical (0.05) guest_free_percent = host_free_percent - 0.05 (forces the guest to swap)', () => {
  // host free 4 %: guest_free_percent -0.01, floor used - 0.01 x cur = 3.9 - 0.04 GiB; the 5 % step (3.8 GiB) is below it
  const r = mom(fakeHost(100 * GiB, 4 * GiB), [fakeVm({ actual: 4 * GiB, free: 0.1 * GiB })]);
  assert.deepEqual(r, [{ index: 0, targetKiB: Math.floor((3.9 * GiB - 0.01 * 4 * GiB) / KiB) }]);
});

test('MOM grow_guest: without host pressure a ballooned guest grows by 5 %, capped at balloon_max', () => {
  // host free 25 %: guest_free_percent 0.25, floor 2 + 0.75 GiB is below the 5 % step
  assert.deepEqual(mom(fakeHost(100 * GiB, 25 * GiB), [fakeVm({ actual: 3 * GiB, free: 1 * GiB })]), [{ index: 0, targetKiB: Math.floor((3 * GiB * 1.05) / KiB) }]);
  assert.deepEqual(mom(fakeHost(100 * GiB, 25 * GiB), [fakeVm({ actual: 3.9 * GiB, free: 1 * GiB })]), [{ index: 0, targetKiB: (4 * GiB) / KiB }]);
  // host free 50 %: guest_free_percent 0.5 x ... = 0.5: the floor (2 + 1.5 GiB) is above the step: straight to it
  assert.deepEqual(mom(fakeHost(100 * GiB, 50 * GiB), [fakeVm({ actual: 3 * GiB, free: 1 * GiB })]), [{ index: 0, targetKiB: (3.5 * GiB) / KiB }]);
  assert.deepEqual(mom(fakeHost(100 * GiB, 50 * GiB), [fakeVm({ actual: 4 * GiB, free: 1 * GiB })]), [], 'not ballooned: nothing to grow');
});

test('MOM change_big_enough: a change of at most min_balloon_change_percent (0.25 %) of balloon_cur is not made', () => {
  // 0.2 % below balloon_max: the grow step caps at max, a 0.2 % change
  assert.deepEqual(mom(fakeHost(100 * GiB, 50 * GiB), [fakeVm({ actual: 4 * GiB * 0.998, free: 1 * GiB })]), []);
});

test('MOM guest_qos: a guest below its balloon_min (guaranteed memory) is set back to it, whatever the pressure rule said', () => {
  const r = mom(fakeHost(100 * GiB, 10 * GiB), [fakeVm({ actual: 1 * GiB, free: 0.5 * GiB }, { minMemory: 2 * GiB })]);
  assert.deepEqual(r, [{ index: 0, targetKiB: (2 * GiB) / KiB }]);
});

test('MOM StatAvg: host_free_percent is the moving average of the last 10 samples (sample-history-length), so one dip does not shrink guests', () => {
  const st = createMomState(MOM_DEFAULTS, 1);
  const vm = fakeVm({ actual: 3 * GiB, free: 1 * GiB });
  for (let i = 0; i < 9; i++) momCollect(st, fakeHost(100 * GiB, 22 * GiB), [vm]);
  momCollect(st, fakeHost(100 * GiB, 10 * GiB), [vm]);
  assert.deepEqual(momEvaluate(st), [{ index: 0, targetKiB: Math.floor((3 * GiB * 1.05) / KiB) }], 'average 20.8 %: grow');
  for (let i = 0; i < 10; i++) momCollect(st, fakeHost(100 * GiB, 10 * GiB), [vm]);
  assert.equal(momEvaluate(st)[0]!.targetKiB, Math.floor((3 * GiB * 0.95) / KiB), 'ten dips: shrink');
});

test('MOM cadence: monitors every 5 s, the policy engine every 10 s (mom-balloon.conf): decisions on every second run', () => {
  const p = policyDef('mom')!.create({});
  assert.equal(p.intervalNs, 5e9);
  const host = fakeHost(100 * GiB, 10 * GiB), vm = fakeVm({ actual: 4 * GiB, free: 3 * GiB });
  assert.deepEqual(p.run(host, [vm]), []);
  assert.deepEqual(p.run(host, [vm]), [{ index: 0, value: Math.floor((4 * GiB * 0.95) / KiB) * KiB }]);
});

// ---------------------------------------------------------------------------------
// Proxmox VE compute_alg1 / auto_balloning

const pve = (balloon: number, min: number, free: number | undefined, o: Partial<PveVmStatus> = {}): PveVmStatus => ({ balloon, balloon_min: min, maxmem: 4 * GiB, freemem: free, shares: undefined, ...o });

test('Proxmox compute_alg1: a goal within +-10 MiB changes nothing', () => {
  assert.equal(computeAlg1([pve(4 * GiB, GiB, 2 * GiB)], 9 * MiB, 100 * MiB).size, 0);
  assert.equal(computeAlg1([pve(4 * GiB, GiB, 2 * GiB)], -9 * MiB, 100 * MiB).size, 0);
});

test('Proxmox compute_alg1: to shrink, VMs with enough free memory (freemem > 25 % of balloon_min) give first, at most $maxchange (100 MiB) a run', () => {
  // A is comfortable (2 GiB free), B is not (100 MiB free < 256 MiB): only A shrinks, by the 100 MiB cap
  const r = computeAlg1([pve(4 * GiB, GiB, 2 * GiB), pve(4 * GiB, GiB, 100 * MiB)], -1 * GiB, 100 * MiB);
  assert.deepEqual([...r], [[0, 4 * GiB - 100 * MiB]]);
});

test('Proxmox compute_alg1: to grow, VMs under memory pressure get memory first', () => {
  const r = computeAlg1([pve(2 * GiB, GiB, 2 * GiB), pve(2 * GiB, GiB, 100 * MiB)], 1 * GiB, 100 * MiB);
  assert.deepEqual([...r], [[1, 2 * GiB + 100 * MiB]]);
});

test('Proxmox compute_alg1: the memory above the minimums is split by shares (desired = balloon_min + alloc_new / shares_total x shares)', () => {
  // both under pressure (no freemem); alloc_old 2 GiB + goal 1 GiB = 3 GiB: A (1000 shares) 1 + 0.75, B (3000) 1 + 2.25 GiB
  const r = computeAlg1([pve(2 * GiB, GiB, undefined), pve(2 * GiB, GiB, undefined, { shares: 3000 })], 1 * GiB, 64 * GiB);
  assert.deepEqual([...r].sort((a, b) => a[0] - b[0]), [[0, 1.75 * GiB], [1, 3.25 * GiB]]);
});

test('Proxmox compute_alg1: VMs without a running balloon driver, without balloon_min, with shares 0 or locked for migration are left alone', () => {
  const r = computeAlg1([
    pve(0, GiB, undefined), pve(2 * GiB, 0, undefined), pve(2 * GiB, GiB, undefined, { shares: 0 }), pve(2 * GiB, GiB, undefined, { lock: 'migrate' }),
  ], 1 * GiB, 100 * MiB);
  assert.equal(r.size, 0);
});

test('Proxmox auto_balloning: goal = MemTotal x ballooning-target (80 %) / 100 - memused, targets sent as balloon (logical size) only where they change', () => {
  // 10 GiB host with 1 GiB free: goal 8 - 9 = -1 GiB; the one comfortable VM gives 100 MiB
  const vms = [fakeVm({ actual: 4 * GiB, free: 2 * GiB }, { minMemory: GiB })];
  assert.deepEqual(autoBallooning(PROXMOX_DEFAULTS, fakeHost(10 * GiB, 1 * GiB), vms), [{ index: 0, value: 4 * GiB - 100 * MiB }]);
  // 10 GiB host with 2 GiB free: goal 0: nothing
  assert.deepEqual(autoBallooning(PROXMOX_DEFAULTS, fakeHost(10 * GiB, 2 * GiB), vms), []);
});

// ---------------------------------------------------------------------------------
// ChromeOS concierge

const stats = (free: number, caches: number, actual = 0, total = 4 * GiB): BalloonStats => ({ balloonActual: actual, freeMemory: free, diskCaches: caches, totalMemory: total, sharedMemory: 0, unevictableMemory: 0 });
const lc = (params = ARCVM_LIMIT_CACHE_PARAMS): LimitCacheState => ({ margins: { critical: 400 * MiB, moderate: 2000 * MiB }, hostLwm: 200 * MiB, guest: { sumLow: 200 * MiB, totalreserve: 300 * MiB }, params });

test('ChromeOS LimitCache MaxFree = guest totalreserve + MAX_OOM_MIN_FREE (322 560 KiB); with no cache limits the balloon takes the guest\'s free memory above it', () => {
  const s = lc({ reclaimTargetCache: 0, criticalTargetCache: 0, moderateTargetCache: 0 });
  assert.equal(limitCacheMaxFree(s), 300 * MiB + MAX_OOM_MIN_FREE);
  assert.equal(limitCacheDelta(s, 8 * GiB, stats(limitCacheMaxFree(s) + GiB, 0), 8 * GiB), GiB);
});

test('ChromeOS LimitCache: a small change is skipped while neither the target nor the guest is low (fewer resizes, fewer VM exits)', () => {
  const s = lc({ reclaimTargetCache: 0, criticalTargetCache: 0, moderateTargetCache: 0 });
  assert.equal(limitCacheDelta(s, 8 * GiB, stats(limitCacheMaxFree(s) + 10 * MiB, 0), 8 * GiB), 0);
});

test('ChromeOS LimitCache reclaim_target_cache: when the host nears reclaim the guest free target drops to guest_lwm + host_free - host_lwm, and the balloon takes at most the cache above 322 560 KiB', () => {
  const s = lc();
  // host free 300 MiB: target free 200 + 300 - 200 = 300 MiB; guest free 1 GiB would mean 724 MiB, the cache cap (1 GiB - 315 MiB) is lower
  assert.equal(limitCacheDelta(s, 300 * MiB, stats(GiB, GiB), 8 * GiB), GiB - ARCVM_LIMIT_CACHE_PARAMS.reclaimTargetCache);
  // with little cache (under the target cache) the guest keeps MaxFree: deflate toward it
  assert.equal(limitCacheDelta(s, 300 * MiB, stats(100 * MiB, 100 * MiB), 8 * GiB), 100 * MiB - limitCacheMaxFree(s));
});

test('ChromeOS ParseZoneInfoStats: sum of low watermarks; totalreserve = per zone high x 1.5 + largest protection, in bytes', () => {
  const z = 'Node 0, zone   DMA32\n  pages free     1000\n        min      100\n        low      125\n        high     150\n        spanned  100000\n        protection: (0, 0, 2000, 2000, 2000)\n  pagesets\n    cpu: 0\n              count: 3\n              high:  42\nNode 0, zone   Normal\n        min      200\n        low      250\n        high     300\n        protection: (0, 0, 0, 0, 0)\n';
  assert.deepEqual(parseZoneInfoStats(z), { sumLow: (125 + 250) * 4096, totalreserve: (2000 + 225 + 450) * 4096 });
  assert.equal(parseZoneInfoStats('nothing here'), null);
});

test('ChromeOS BalanceAvailable: the balloon moves half the difference between guest available (free + cache) above 400 MiB and host available above the critical margin', () => {
  const s = createBalanceAvailableState(400 * MiB);
  // guest 2 GiB available: 1648 MiB above; host 1000 MiB: 600 above; (1648 - 600) / 2
  assert.equal(balanceAvailableDelta(s, stats(GiB, GiB), 1000 * MiB), ((2048 - 400) - 600) / 2 * MiB);
  assert.equal(CRITICAL_GUEST_AVAILABLE, 400 * MiB);
});

test('ChromeOS BalanceAvailable: an inflate is capped at the guest\'s available above critical + MAX_CRITICAL_DELTA (10 MiB); a deflate never below a zero balloon', () => {
  const s = createBalanceAvailableState(400 * MiB);
  assert.equal(balanceAvailableDelta(s, stats(500 * MiB, 0), -1600 * MiB), 110 * MiB);
  const d = createBalanceAvailableState(400 * MiB);
  assert.equal(balanceAvailableDelta(d, stats(300 * MiB, 0, 50 * MiB), 4000 * MiB), -50 * MiB);
});

test('ChromeOS BalanceAvailable: no change of 1 % or less of either side\'s margin', () => {
  const s = createBalanceAvailableState(400 * MiB);
  assert.equal(balanceAvailableDelta(s, stats(1400 * MiB, 0), 1400 * MiB), 0);
});

test('ChromeOS resourced available memory: free above totalreserve plus a quarter of min(anon, swap free); margins 5.2 % and 40 % of MemTotal', () => {
  const mi = { MemTotal: 10 * GiB, MemFree: 2 * GiB, MemAvailable: 2 * GiB, SwapTotal: 4 * GiB, SwapFree: 4 * GiB, AnonPages: 8 * GiB, zoneLowSum: 0, totalreserve: 100 * MiB };
  assert.equal(hostAvailable(mi), 2 * GiB - 100 * MiB + GiB);
  assert.deepEqual(defaultMargins(10000), { critical: 520, moderate: 4000 });
});

// ---------------------------------------------------------------------------------
// every policy on a small overcommitted host

const tiny = (policy: string) => `name: tiny
seed: 2
host: { memory: 1100MiB, swap: 128MiB, policy: ${policy} }
guest: { memory: 1GiB, thp: never }
duration: 90s
vms:
  - name: idle
    count: 2
    min_memory: 128MiB
    timeline: [ { at: 0s, action: idle } ]
  - name: burst
    min_memory: 128MiB
    timeline:
      - { at: 20s, action: process_fault, pid: 100, size: 700MiB }
`;

test('every policy runs on an overcommitted host through QMP alone, the checker holding; the ballooning ones move balloons', () => {
  for (const name of POLICY_NAMES) {
    const s = loadScenarioText(tiny(name), 't.yaml').base;
    const d = runHostScenario(s, { check: true }).doc;
    assert.equal(d.host.policy, name);
    const churn = d.vms.reduce((x, v) => x + v.balloon.inflated + v.balloon.deflated, 0);
    if (name === 'none' || name === 'reporting') {
      assert.equal(d.host.balloon_commands, 0, name);
      assert.equal(churn, 0, name);
    } else {
      assert.ok(d.host.policy_runs > 0, `${name} ran`);
      assert.ok(d.host.balloon_commands > 0 && churn > 0, `${name} ballooned (${d.host.balloon_commands} commands, ${churn} pages)`);
    }
    if (name === 'reporting') assert.ok(d.vms.every((v) => v.reported_pages > 0), 'every guest reported free pages');
  }
});
