/**
 * Actions on the balloon through the host's control, as QMP has them: the target (the
 * guest's logical size, as QEMU's `balloon` takes it), query-balloon, guest-stats and
 * its polling interval, and the free-page-hint cycle by hand (what migration drives).
 */
import { defineAction, ActionError, type ModelContext, type RealContext } from './action.js';
import { oneOf, size, str, time } from './fields.js';
import { PAGE_SIZE } from '../guest/mm/memmap.js';
import { type QmpResponse, qmpExecute, balloonQomPath, BALLOON_QOM_PATH } from '../host/qmp.js';
import { BALLOON_DEVICE_ID } from '../host/vm.js';
import {
  type BalloonDevice, virtioBalloonFreePageStart, virtioBalloonFreePageStop, virtioBalloonFreePageDone, FREE_PAGE_HINT_STATUS_NAMES,
  FreePageHintStatus,
} from '../host/virtio_balloon.js';

/** The VM's balloon device (the one with QOM id `id`; without, the first), or an error saying the scenario has none. */
export function needBalloon(ctx: ModelContext, id?: string): BalloonDevice {
  const dev = ctx.vm.host.balloon;
  if (!dev) throw new ActionError('the machine has no balloon device (the scenario says balloon: false)');
  if (id === undefined) return dev;
  const b = ctx.vm.host.balloons.find((x) => x.id === id);
  if (!b) throw new ActionError(`device: no balloon device "${id}" (the machine has ${ctx.vm.host.balloons.map((x) => x.id).join(', ')})`);
  return b.dev;
}

/** The `device` field of the balloon actions: a balloon device's id. */
const deviceField = str('The balloon device\'s id (balloon.devices; default: the first). QEMU has one balloon device, so on a real guest only the first\'s id', { optional: true });

/** A real guest runs QEMU's one balloon device: refuse another id. */
function realDevice(id: string | undefined): void {
  if (id !== undefined && id !== BALLOON_DEVICE_ID) throw new ActionError(`device: QEMU supports one balloon device (qemu_add_balloon_handler), "${BALLOON_DEVICE_ID}"; "${id}" is for the model`);
}

/** `arguments` with the device's id when one was named (the model's QMP takes `id`). */
function withId(args: Record<string, unknown>, id: string | undefined): Record<string, unknown> {
  return id === undefined ? args : { ...args, id };
}

/** A QMP command against the model VM's host; the answer exactly as QEMU writes it. */
function qmp(ctx: ModelContext, execute: string, args?: Record<string, unknown>): QmpResponse {
  return qmpExecute(ctx.vm.host, args ? { execute, arguments: args } : { execute });
}

/** A QMP answer that is an error becomes the action's error (a real VMM refused the command). */
function qmpOk(r: QmpResponse, what: string): QmpResponse {
  if ('error' in r) throw new ActionError(`${what}: ${r.error.class}: ${r.error.desc}`);
  return r;
}

async function queryActual(ctx: RealContext): Promise<number> {
  const r = qmpOk(await ctx.qmp({ execute: 'query-balloon' }), 'query-balloon');
  return (r as { return: { actual: number } }).return.actual;
}

export const balloon = defineAction({
  name: 'balloon',
  doc: 'QMP balloon: sets the guest\'s logical size (RAM minus the balloon) as QEMU takes it; with wait, later actions wait until query-balloon reports it',
  fields: {
    value: size('The guest\'s logical size (QMP `value`): RAM minus the balloon'),
    wait: time('Wait until query-balloon reports the target, up to this long; later actions start after', { optional: true }),
    device: deviceField,
  },
  model: (ctx, a) => {
    const dev = needBalloon(ctx, a.device);
    const r = qmp(ctx, 'balloon', withId({ value: a.value }, a.device));
    const out = { qmp: r, target_pages: dev.numPages };
    if (a.wait === undefined) return out;
    return { ...out, wait: ctx.hold(() => dev.actual === dev.numPages, a.wait) };
  },
  real: {
    engines: ['v86', 'qemu'],
    run: async (ctx, a) => {
      realDevice(a.device);
      const r = await ctx.qmp({ execute: 'balloon', arguments: { value: a.value } });
      const target = 'error' in r ? ctx.balloonTargetPages ?? 0 : Math.floor((ctx.ramSize - Math.min(a.value, ctx.ramSize)) / PAGE_SIZE);
      ctx.balloonTargetPages = target;
      const out = { qmp: r, target_pages: target };
      if (a.wait === undefined || 'error' in r) return out;
      const want = ctx.ramSize - target * PAGE_SIZE;
      return { ...out, wait: await ctx.waitUntil(async () => (await queryActual(ctx)) === want, a.wait) };
    },
  },
});

export const queryBalloon = defineAction({
  name: 'query_balloon',
  doc: 'QMP query-balloon: records the answer (actual = the guest\'s logical size)',
  fields: { device: deviceField },
  model: (ctx, a) => { needBalloon(ctx, a.device); return { qmp: a.device === undefined ? qmp(ctx, 'query-balloon') : qmp(ctx, 'query-balloon', { id: a.device }) }; },
  real: { engines: ['v86', 'qemu'], run: async (ctx, a) => { realDevice(a.device); return { qmp: await ctx.qmp({ execute: 'query-balloon' }) }; } },
});

function guestStatsCmd(id?: string) {
  return { execute: 'qom-get', arguments: { path: id === undefined ? BALLOON_QOM_PATH : balloonQomPath(id), property: 'guest-stats' } };
}

export const guestStats = defineAction({
  name: 'guest_stats',
  doc: 'qom-get guest-stats: records the stats the guest last sent and their last-update',
  fields: { device: deviceField },
  model: (ctx, a) => { needBalloon(ctx, a.device); return { qmp: qmpExecute(ctx.vm.host, guestStatsCmd(a.device)) }; },
  real: { engines: ['v86', 'qemu'], run: async (ctx, a) => { realDevice(a.device); return { qmp: await ctx.qmp(guestStatsCmd()) }; } },
});

function pollIntervalCmd(ns: number, id?: string) {
  return { execute: 'qom-set', arguments: { path: id === undefined ? BALLOON_QOM_PATH : balloonQomPath(id), property: 'guest-stats-polling-interval', value: ns / 1e9 } };
}

export const statsPollingInterval = defineAction({
  name: 'stats_polling_interval',
  doc: 'qom-set guest-stats-polling-interval: the host asks for fresh stats every interval (whole seconds; 0 stops)',
  fields: { interval: time('The polling interval, whole seconds (QEMU takes seconds)'), device: deviceField },
  refine: (a) => (a.interval % 1e9 !== 0 ? { field: 'interval', message: `must be whole seconds (QEMU takes seconds), got ${a.interval} ns` } : null),
  model: (ctx, a) => { needBalloon(ctx, a.device); return { qmp: qmpExecute(ctx.vm.host, pollIntervalCmd(a.interval, a.device)) }; },
  real: { engines: ['v86', 'qemu'], run: async (ctx, a) => { realDevice(a.device); return { qmp: await ctx.qmp(pollIntervalCmd(a.interval)) }; } },
});

export const freePageHint = defineAction({
  name: 'free_page_hint',
  doc: 'Drives the free-page-hint state machine by hand (what migration does): start a round, stop it, or release the hints (done)',
  fields: {
    command: oneOf('start: a new command id; stop; done: the guest frees what it holds', ['start', 'stop', 'done']),
    wait: time('With start: wait until the guest sends STOP (its round ends), up to this long; later actions start after', { optional: true }),
  },
  refine: (a) => (a.wait !== undefined && a.command !== 'start' ? { field: 'wait', message: 'only a start waits (for the guest\'s STOP)' } : null),
  model: (ctx, a) => {
    const dev = needBalloon(ctx);
    if (a.command === 'start') {
      if (!virtioBalloonFreePageStart(dev)) throw new ActionError('FREE_PAGE_HINT was not negotiated (set balloon.free_page_hint: true)');
    } else if (a.command === 'stop') virtioBalloonFreePageStop(dev);
    else virtioBalloonFreePageDone(dev);
    const out = { command: a.command, status: FREE_PAGE_HINT_STATUS_NAMES[dev.freePageHintStatus]!, cmd_id: dev.freePageHintCmdId, hinted_pages: dev.counters.hintedPages };
    if (a.wait === undefined) return out;
    return { ...out, wait: ctx.hold(() => dev.freePageHintStatus === FreePageHintStatus.stop, a.wait) };
  },
  real: {
    // QEMU has no command for this (its migration drives the cycle); the v86 bridge does.
    engines: ['v86'],
    run: async (ctx, a) => {
      const cmd = `x-balloonlab-free-page-hint-${a.command}`;
      qmpOk(await ctx.qmp({ execute: cmd }), cmd);
      const query = async () => (qmpOk(await ctx.qmp({ execute: 'x-balloonlab-query-free-page-hint' }), 'x-balloonlab-query-free-page-hint') as { return: { status: string; 'cmd-id': number; 'hinted-pages': number } }).return;
      const q = await query();
      const out = { command: a.command, status: q.status, cmd_id: q['cmd-id'], hinted_pages: q['hinted-pages'] };
      if (a.wait === undefined) return out;
      return { ...out, wait: await ctx.waitUntil(async () => (await query()).status === 'stop', a.wait) };
    },
  },
});
