/**
 * Live migration actions: QMP migrate with its parameters, query-migrate, and whether
 * migration uses the balloon's free page hints.
 */
import { defineAction, ActionError, type EventBase, type WaitResult } from './action.js';
import { BALLOON_QOM_PATH } from '../host/qmp.js';
import { oneOf, size, sizeOrUnlimited, time } from './fields.js';
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

/** migrate's event: the parameters; on a real guest also the URI and query-migrate when the wait ended (the model adds a migration_completed event instead). */
type MigrateEvent = {
  'max-bandwidth': number; 'downtime-limit': number; link_bandwidth: number | 'unlimited'; free_page_hint: boolean;
  wait?: WaitResult; uri?: string; 'query-migrate'?: Record<string, unknown>;
};

const linkText = (b: number): number | 'unlimited' => (b === Infinity ? 'unlimited' : b);

export const migrate = defineAction({
  name: 'migrate',
  doc: 'QMP migrate (pre-copy) with migrate-set-parameters\' max-bandwidth and downtime-limit, over a link of link_bandwidth',
  fields: {
    max_bandwidth: size('max-bandwidth, bytes per second (QEMU\'s default 128MiB; `migrate_set_speed 100G` = 100GiB)', { min: 1, default: 128 * 1024 * 1024 }),
    downtime_limit: time('downtime-limit (QEMU\'s default 300ms)', { default: 300_000_000 }),
    link_bandwidth: sizeOrUnlimited('The network between source and destination, bytes per second (default 10 Gbit/s), or unlimited (loopback: only max-bandwidth and the migration thread limit)', { min: 1, default: 1_250_000_000 }),
    wait: time('Wait until the migration completes, up to this long (polling query-migrate); later actions start after', { optional: true }),
  },
  model: (ctx, a): MigrateEvent => {
    const host = ctx.vm.host;
    if (host.migration && host.migration.status !== 'completed') throw new ActionError('a migration is already in progress');
    const m = hostMigrate(host, { maxBandwidth: a.max_bandwidth, downtimeLimitMs: a.downtime_limit / 1e6, linkBandwidth: a.link_bandwidth, freePageHint: ctx.useHints });
    m.onComplete = (done: MigrationState) => {
      const bad = done.destinationCheck ?? null;
      const ev: MigrationCompletedEvent = { t_ns: done.endNs, kind: 'migration_completed', ...queryMigrate(done), destination_ok: bad === null };
      ctx.emit(ev);
      if (ctx.check && bad !== null) throw new InvariantError(`migration destination check: ${bad}`);
    };
    const out = { 'max-bandwidth': a.max_bandwidth, 'downtime-limit': a.downtime_limit / 1e6, link_bandwidth: linkText(a.link_bandwidth), free_page_hint: m.hinting };
    if (a.wait === undefined) return out;
    return { ...out, wait: ctx.hold(() => m.status === 'completed' || m.status === 'failed', a.wait) };
  },
  real: {
    // QEMU: a second QEMU on this host with -incoming; loopback TCP has no link limit of its own
    engines: ['qemu'],
    refuse: (a) => (a.wait === undefined ? 'give wait: (the real run follows the migration to its end, then talks to the destination)' : null),
    run: async (ctx, a): Promise<MigrateEvent> => {
      if (!ctx.migrationTarget || !ctx.migrationEnded) throw new ActionError(`the ${ctx.engine} real guest cannot migrate`);
      const uri = await ctx.migrationTarget();
      const params = { 'max-bandwidth': a.max_bandwidth, 'downtime-limit': Math.round(a.downtime_limit / 1e6) };
      const set = await ctx.qmp({ execute: 'migrate-set-parameters', arguments: params });
      if ('error' in set) { await ctx.migrationEnded(false); throw new ActionError(`migrate-set-parameters: ${set.error.class}: ${set.error.desc}`); }
      const go = await ctx.qmp({ execute: 'migrate', arguments: { uri } });
      if ('error' in go) { await ctx.migrationEnded(false); throw new ActionError(`migrate: ${go.error.class}: ${go.error.desc}`); }
      const hint = await ctx.qmp({ execute: 'qom-get', arguments: { path: BALLOON_QOM_PATH, property: 'free-page-hint' } });
      let last: Record<string, unknown> = {};
      const done = () => last.status === 'completed' || last.status === 'failed' || last.status === 'cancelled';
      const wait = await ctx.waitUntil(async () => {
        const q = await ctx.qmp({ execute: 'query-migrate' });
        if ('return' in q) last = q.return as Record<string, unknown>;
        return done();
      }, a.wait ?? 0);
      if (!done()) await ctx.qmp({ execute: 'migrate_cancel' });
      await ctx.migrationEnded(last.status === 'completed');
      return { ...params, link_bandwidth: linkText(a.link_bandwidth), free_page_hint: 'return' in hint && hint.return === true, wait, uri, 'query-migrate': last };
    },
  },
});

export const queryMigrateAction = defineAction({
  name: 'query_migrate',
  doc: 'QMP query-migrate: records the answer',
  fields: {},
  model: (ctx) => ({ qmp: { return: ctx.vm.host.migration ? queryMigrate(ctx.vm.host.migration) : {} } }),
  real: { engines: ['qemu'], run: async (ctx) => ({ qmp: await ctx.qmp({ execute: 'query-migrate' }) }) },
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
