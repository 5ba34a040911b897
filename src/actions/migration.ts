/**
 * Live migration actions: QMP migrate with its parameters, query-migrate, and whether
 * migration uses the balloon's free page hints.
 */
import { defineAction, ActionError, type EventBase } from './action.js';
import { oneOf, size, time } from './fields.js';
import { type MigrationState, type QueryMigrate, queryMigrate } from '../host/migration.js';
import { hostMigrate } from '../host/vm.js';
import { hasFeature } from '../virtio/transport.js';
import { VIRTIO_BALLOON_F_FREE_PAGE_HINT } from '../virtio/virtio_balloon.js';
import { InvariantError } from '../guest/mm/check.js';
import type { Vm } from '../machine/machine.js';
import { needBalloon } from './balloon.js';

/** The event a finished migration adds: query-migrate at completion and the destination check. */
export type MigrationCompletedEvent = EventBase & { kind: 'migration_completed'; destination_ok: boolean } & QueryMigrate;

/** Whether the guest's driver negotiated FREE_PAGE_HINT (migration can use hints). */
export function hintNegotiated(vm: Vm): boolean {
  return vm.driver !== null && hasFeature(vm.driver.features, VIRTIO_BALLOON_F_FREE_PAGE_HINT);
}

export const migrate = defineAction({
  name: 'migrate',
  doc: 'QMP migrate (pre-copy) with migrate-set-parameters\' max-bandwidth and downtime-limit, over a link of link_bandwidth',
  fields: {
    max_bandwidth: size('max-bandwidth, bytes per second (QEMU\'s default 128MiB; `migrate_set_speed 100G` = 100GiB)', { min: 1, default: 128 * 1024 * 1024 }),
    downtime_limit: time('downtime-limit (QEMU\'s default 300ms)', { default: 300_000_000 }),
    link_bandwidth: size('The network between source and destination, bytes per second (default 10 Gbit/s)', { min: 1, default: 1_250_000_000 }),
    wait: time('Wait until the migration completes, up to this long (polling query-migrate); later actions start after', { optional: true }),
  },
  model: (ctx, a) => {
    const host = ctx.vm.host;
    if (host.migration && host.migration.status !== 'completed') throw new ActionError('a migration is already in progress');
    const m = hostMigrate(host, { maxBandwidth: a.max_bandwidth, downtimeLimitMs: a.downtime_limit / 1e6, linkBandwidth: a.link_bandwidth, freePageHint: ctx.useHints });
    m.onComplete = (done: MigrationState) => {
      const bad = done.destinationCheck ?? null;
      const ev: MigrationCompletedEvent = { t_ns: done.endNs, kind: 'migration_completed', ...queryMigrate(done), destination_ok: bad === null };
      ctx.emit(ev);
      if (ctx.check && bad !== null) throw new InvariantError(`migration destination check: ${bad}`);
    };
    const out = { 'max-bandwidth': a.max_bandwidth, 'downtime-limit': a.downtime_limit / 1e6, link_bandwidth: a.link_bandwidth, free_page_hint: m.hinting };
    if (a.wait === undefined) return out;
    return { ...out, wait: ctx.hold(() => m.status === 'completed' || m.status === 'failed', a.wait) };
  },
});

export const queryMigrateAction = defineAction({
  name: 'query_migrate',
  doc: 'QMP query-migrate: records the answer',
  fields: {},
  model: (ctx) => ({ qmp: { return: ctx.vm.host.migration ? queryMigrate(ctx.vm.host.migration) : {} } }),
});

export const balloonFreePageHint = defineAction({
  name: 'balloon_free_page_hint',
  doc: 'Whether the next migration uses the balloon\'s free page hints (on by default when FREE_PAGE_HINT was negotiated)',
  fields: { value: oneOf('on or off', ['on', 'off']) },
  model: (ctx, a) => {
    const dev = needBalloon(ctx);
    if (a.value === 'on' && !hintNegotiated(ctx.vm)) throw new ActionError('on needs FREE_PAGE_HINT negotiated (set balloon.free_page_hint: true)');
    ctx.useHints = a.value === 'on';
    return { value: a.value, negotiated: hasFeature(dev.t.driverFeatures, VIRTIO_BALLOON_F_FREE_PAGE_HINT) };
  },
});

/** The result document's `migration`: query-migrate's fields, flat, plus the hints and the destination check. */
export function migrationResult(m: MigrationState) {
  const q = queryMigrate(m);
  const ram = q.ram;
  return {
    status: q.status, 'total-time': q['total-time'], downtime: q.downtime ?? null, 'setup-time': q['setup-time'],
    transferred: ram.transferred, remaining: ram.remaining, total: ram.total, duplicate: ram.duplicate, normal: ram.normal,
    'normal-bytes': ram['normal-bytes'], 'dirty-sync-count': ram['dirty-sync-count'], mbps: ram.mbps, 'dirty-pages-rate': ram['dirty-pages-rate'],
    'free-page-hint': { enabled: m.hinting, hinted_pages: m.hintedPages, skipped_pages: m.skippedPages },
    iterations: m.iterations, 'cpu-time': Math.round(m.cpuNs / 1e6),
    // taken at the instant of completion: the guest runs on (and writes) afterwards
    destination_check: m.destinationCheck === undefined ? null : m.destinationCheck ?? 'ok',
  };
}
