/**
 * The balloon's control in QMP's shape (QEMU's qapi/machine.json and the balloon
 * device's QOM properties): commands in, JSON out exactly as QEMU writes it, so
 * scripts written against a real QEMU read balloonlab's answers unchanged.
 *
 *   { "execute": "balloon", "arguments": { "value": 1073741824 } }   -> { "return": {} }
 *   { "execute": "query-balloon" }                                  -> { "return": { "actual": 1073741824 } }
 *   { "execute": "qom-get", "arguments": { "path": "/machine/peripheral/balloon0", "property": "guest-stats" } }
 *   { "execute": "qom-set", "arguments": { "path": ..., "property": "guest-stats-polling-interval", "value": 2 } }
 *
 * `value` and `actual` are the guest's *logical* size (RAM minus the balloon), not the
 * balloon's size — QEMU's interface, kept as it is.
 */
import { type HostVm, hostMigrate } from './vm.js';
import { queryMigrate } from './migration.js';
import {
  type BalloonDevice, virtioBalloonToTarget, virtioBalloonStat, balloonStatsGetAll, balloonStatsSetPollInterval,
} from './virtio_balloon.js';

export type QmpCommand = { execute: string; arguments?: Record<string, unknown> };
export type QmpError = { error: { class: string; desc: string } };
export type QmpResponse = { return: unknown } | QmpError;

/** The QOM path libvirt gives the balloon (-device virtio-balloon,id=balloon0). */
export const BALLOON_QOM_PATH = '/machine/peripheral/balloon0';

function err(cls: string, desc: string): QmpError {
  return { error: { class: cls, desc } };
}

/**
 * The balloon's own QMP commands (balloon, query-balloon, and the balloon QOM
 * properties) against a device, or null when `cmd` is not one of them. The device
 * may serve a model guest or a real one (src/integrations/v86/bridge.ts).
 */
export function qmpBalloonExecute(dev: BalloonDevice | null, cmd: QmpCommand, qomPath: string = BALLOON_QOM_PATH): QmpResponse | null {
  const args = cmd.arguments ?? {};
  switch (cmd.execute) {
    case 'balloon': {
      if (!dev) return err('DeviceNotActive', 'No balloon device has been activated');
      const v = args.value;
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) return err('GenericError', "Invalid parameter type for 'value', expected: integer");
      if (v <= 0) return err('GenericError', "Parameter 'target' expects a size");
      virtioBalloonToTarget(dev, v);
      return { return: {} };
    }
    case 'query-balloon':
      if (!dev) return err('DeviceNotActive', 'No balloon device has been activated');
      return { return: { actual: virtioBalloonStat(dev) } };
    case 'qom-get': {
      if (!dev || args.path !== qomPath) return err('DeviceNotFound', `Device '${String(args.path)}' not found`);
      if (args.property === 'guest-stats') return { return: balloonStatsGetAll(dev) };
      if (args.property === 'guest-stats-polling-interval') return { return: Math.round(dev.opts.statsPollingIntervalNs / 1e9) };
      return err('GenericError', `Property '${String(args.property)}' not found`);
    }
    case 'qom-set': {
      if (!dev || args.path !== qomPath) return err('DeviceNotFound', `Device '${String(args.path)}' not found`);
      if (args.property !== 'guest-stats-polling-interval') return err('GenericError', `Property '${String(args.property)}' not found`);
      const v = args.value;
      if (typeof v !== 'number' || !Number.isInteger(v)) return err('GenericError', "Invalid parameter type for 'value', expected: integer");
      if (v < 0 || v > 0xffffffff) return err('GenericError', 'timer value is too big');
      balloonStatsSetPollInterval(dev, v * 1e9);
      return { return: {} };
    }
    default:
      return null;
  }
}

/** An error reply for a command nobody knows. */
export function qmpCommandNotFound(cmd: QmpCommand): QmpError {
  return err('CommandNotFound', `The command ${cmd.execute} has not been found`);
}

/** The QOM path of the balloon device with id `id`. */
export function balloonQomPath(id: string): string {
  return `/machine/peripheral/${id}`;
}

/**
 * The device a balloon command addresses: with several devices, `balloon` and
 * `query-balloon` take an `id` argument (balloonlab's extension: QEMU has one balloon
 * handler and no such argument), QOM commands their device's path; without, the first
 * device, as QEMU. Returns the device's entry, null for none, or a QMP error.
 */
function balloonFor(vm: HostVm, cmd: QmpCommand): { id: string; dev: BalloonDevice } | null | QmpError {
  const args = cmd.arguments ?? {};
  if (cmd.execute === 'balloon' || cmd.execute === 'query-balloon') {
    if (args.id === undefined) return vm.balloons[0] ?? null;
    if (typeof args.id !== 'string') return err('GenericError', "Invalid parameter type for 'id', expected: string");
    return vm.balloons.find((b) => b.id === args.id) ?? err('DeviceNotFound', `Device '${args.id}' not found`);
  }
  if (cmd.execute === 'qom-get' || cmd.execute === 'qom-set') return vm.balloons.find((b) => balloonQomPath(b.id) === args.path) ?? vm.balloons[0] ?? null;
  return vm.balloons[0] ?? null;
}

/** Runs one QMP command against a VM's host side, as its QEMU would. Never throws: bad commands get QMP errors. */
export function qmpExecute(vm: HostVm, cmd: QmpCommand): QmpResponse {
  const args = cmd.arguments ?? {};
  const target = balloonFor(vm, cmd);
  if (target !== null && 'error' in target) return target;
  const balloon = qmpBalloonExecute(target?.dev ?? null, cmd, target ? balloonQomPath(target.id) : BALLOON_QOM_PATH);
  if (balloon) return balloon;
  switch (cmd.execute) {
    case 'query-migrate':
      return { return: vm.migration ? queryMigrate(vm.migration) : {} };
    case 'migrate': {
      // The destination is implicit (the model keeps what it receives); parameters come from migrate-set-parameters.
      try {
        hostMigrate(vm, vm.migrationParams);
      } catch (e) {
        return err('GenericError', e instanceof Error ? e.message : String(e));
      }
      return { return: {} };
    }
    case 'migrate-set-parameters': {
      const bad = (name: string) => err('GenericError', `Parameter '${name}' expects an integer`);
      const p = { ...vm.migrationParams };
      for (const [k, v] of Object.entries(args)) {
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return bad(k);
        if (k === 'max-bandwidth') p.maxBandwidth = v;
        else if (k === 'downtime-limit') p.downtimeLimitMs = v;
        else return err('GenericError', `Parameter '${k}' is unexpected`);
      }
      vm.migrationParams = p;
      return { return: {} };
    }
    case 'query-migrate-parameters':
      return { return: { 'max-bandwidth': vm.migrationParams.maxBandwidth, 'downtime-limit': vm.migrationParams.downtimeLimitMs } };
    default:
      return qmpCommandNotFound(cmd);
  }
}
