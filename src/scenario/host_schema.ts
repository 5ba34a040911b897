/**
 * The scenario file's host with many guests: `host:` gains the machine's RAM, swap and
 * auto-balloon policy, and `vms:` lists the guests, each a guest config, balloon options
 * and its own timeline (merged over the file's top-level `guest:` and `balloon:`, which
 * become every VM's defaults). A file without `vms:` is the single-guest scenario it
 * always was, untouched.
 *
 *   host: { memory: 24GiB, swap: 8GiB, reserved: 1GiB, policy: { name: mom } }
 *   guest: { memory: 4GiB, vcpus: 2 }
 *   vms:
 *     - { name: web, count: 4, min_memory: 1GiB, timeline: [ { at: 0s, action: idle } ] }
 *     - { name: build, guest: { vcpus: 4 }, timeline: [ ... ] }
 *
 * Each VM is validated as a scenario of its own (every action, field and time rule
 * applies, errors name `vms[1] (build): timeline[0]...`).
 */
import { z } from 'zod';
import { sizeSchema, timeSchema } from '../actions/fields.js';
import { createSplitmix64, splitmix64Mod } from '../sim/rng.js';
import { POLICY_NAMES } from '../host/policies/index.js';

const num = (min: number, max: number) => z.number().min(min).max(max);

/** Each policy's options (snake_case as written; host_runner.ts maps them to the policy's names). */
const POLICY_OPTIONS: Record<string, z.ZodRawShape> = {
  none: {},
  reporting: {},
  mom: {
    pressure_threshold: num(0, 1).optional(), pressure_critical: num(0, 1).optional(), min_guest_free_percent: num(0, 1).optional(),
    max_balloon_change_percent: num(0, 1).optional(), min_balloon_change_percent: num(0, 1).optional(),
    policy_interval: timeSchema.optional(), monitor_interval: timeSchema.optional(), sample_history_length: z.number().int().min(1).max(1000).optional(),
  },
  proxmox: { ballooning_target: num(1, 100).optional(), max_change: sizeSchema.optional(), update_time: timeSchema.optional(), stats_polling_interval: z.number().int().min(1).max(3600).optional() },
  'chromeos-limit-cache': { reclaim_target_cache: sizeSchema.optional(), critical_target_cache: sizeSchema.optional(), moderate_target_cache: sizeSchema.optional() },
  'chromeos-balance-available': { guest_available_bias: sizeSchema.optional() },
};

/** `policy:` as written: a name, or { name, ...its options }. */
export type PolicySpec = { name: string; options: Record<string, number> };

const policySchema = z.union([z.string(), z.record(z.string(), z.unknown())]).transform((v, ctx): PolicySpec => {
  const obj: Record<string, unknown> = typeof v === 'string' ? { name: v } : v;
  const name = obj.name;
  if (typeof name !== 'string' || !POLICY_NAMES.includes(name)) {
    ctx.addIssue({ code: 'custom', path: ['name'], message: `unknown or missing policy ${JSON.stringify(name)} (allowed: ${POLICY_NAMES.join(', ')})` });
    return z.NEVER;
  }
  const { name: _n, ...rest } = obj;
  const r = z.strictObject(POLICY_OPTIONS[name] ?? {}).safeParse(rest);
  if (!r.success) {
    const iss = r.error.issues[0]!;
    const msg = iss.code === 'unrecognized_keys' ? `unknown option${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} for policy ${name} (allowed: ${Object.keys(POLICY_OPTIONS[name] ?? {}).join(', ') || 'none'})` : iss.message;
    ctx.addIssue({ code: 'custom', path: iss.path, message: msg });
    return z.NEVER;
  }
  const options: Record<string, number> = {};
  for (const [k, x] of Object.entries(r.data)) if (typeof x === 'number') options[k] = x;
  return { name, options };
});

/** The host fields `host:` takes besides QEMU's options: all optional, so a single-guest file parses as it always did. */
export const HOST_MACHINE_FIELDS = {
  /** The host's RAM (required with vms:). */
  memory: sizeSchema.optional(),
  /** The host's swap device (default none). */
  swap: sizeSchema.optional(),
  /** Host memory the host itself holds (kernel, daemons, QEMU's own allocations); default 0. */
  reserved: sizeSchema.optional(),
  /** The auto-balloon policy (default none). */
  policy: policySchema.optional(),
  /** How often the host's figures are sampled for the result's series (default 10s). */
  series_interval: timeSchema.optional(),
};

/** One VM of the host, validated: its own scenario (guest, balloon, timeline), and what the management layer knows of it. */
export type HostVmSpec<S> = {
  name: string;
  /** Its own scenario (schema.ts's Scenario). */
  scenario: S;
  /** Proxmox's `balloon` minimum / oVirt's guaranteed memory, bytes (0: none). */
  min_memory: number;
  /** Proxmox's shares (default 1000). */
  shares: number;
};

const vmSpecSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a name of letters, digits, _ . - (a QEMU -name)'),
  /** Start this many VMs alike, named name-1 ... name-N. */
  count: z.number().int().min(1).max(256).default(1),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  guest: z.record(z.string(), z.unknown()).optional(),
  balloon: z.union([z.literal(false), z.record(z.string(), z.unknown())]).optional(),
  min_memory: sizeSchema.default(0),
  shares: z.number().int().min(0).max(50000).default(1000),
  timeline: z.array(z.unknown()).nullish(),
});

type Plain = Record<string, unknown>;
function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function mergeDeep(base: unknown, over: unknown): unknown {
  if (!isPlain(base) || !isPlain(over)) return over;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeDeep(base[k], v) : v;
  return out;
}

/** The seed of the k-th VM (in start order) of a scenario with `seed`: splitmix64's k+1-th output below 2^31. */
export function vmSeed(seed: number, k: number): number {
  const g = createSplitmix64(seed);
  let v = 0;
  for (let i = 0; i <= k; i++) v = splitmix64Mod(g, 2 ** 31);
  return v;
}


/**
 * Validates `vms:` of a parsed scenario document `raw` whose other fields gave `s`;
 * `validate` checks one VM's scenario (schema.ts validateScenario, passed in to keep the
 * modules acyclic). Throws `fail(message)` for what is wrong.
 */
export function validateVms<S extends { name: string; seed: number; timeline: unknown[]; host: { memory?: number | undefined } }>(raw: Plain, s: S, where: string, validate: (raw: unknown, where: string) => S, fail: (msg: string) => Error): HostVmSpec<S>[] {
  const list = raw.vms;
  if (!Array.isArray(list) || list.length === 0) throw fail(`${where}: vms: expected a list of VMs ({ name, guest?, balloon?, timeline, ... })`);
  if (s.host.memory === undefined) throw fail(`${where}: host.memory: required with vms: (the host's RAM, e.g. 32GiB)`);
  if (s.timeline.length > 0) throw fail(`${where}: timeline: with vms: each VM has its own timeline (vms[i].timeline); the top level has none`);
  const out: HostVmSpec<S>[] = [];
  const seen = new Set<string>();
  list.forEach((v, i) => {
    const r = vmSpecSchema.safeParse(v);
    if (!r.success) {
      const iss = r.error.issues[0]!;
      const field = iss.path.length ? iss.path.join('.') : '(the entry)';
      const msg = iss.code === 'unrecognized_keys' ? `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')} (allowed: ${Object.keys(vmSpecSchema.shape).join(', ')})` : iss.message;
      throw fail(`${where}: vms[${i}].${field}: ${msg}`);
    }
    const spec = r.data;
    for (let j = 1; j <= spec.count; j++) {
      const name = spec.count > 1 ? `${spec.name}-${j}` : spec.name;
      if (seen.has(name)) throw fail(`${where}: vms[${i}].name: duplicate VM name "${name}"`);
      seen.add(name);
      const k = out.length;
      const host = isPlain(raw.host) ? raw.host : {};
      const single: Plain = {
        name: `${s.name}/${name}`,
        seed: spec.seed !== undefined ? spec.seed + j - 1 : vmSeed(s.seed, k),
        guest: mergeDeep(raw.guest, spec.guest ?? {}),
        balloon: spec.balloon === false || raw.balloon === false ? (spec.balloon ?? raw.balloon) : mergeDeep(raw.balloon ?? {}, spec.balloon ?? {}),
        timeline: spec.timeline ?? [],
      };
      if (host.mem_prealloc !== undefined) single.host = { mem_prealloc: host.mem_prealloc, ...(host.accel !== undefined ? { accel: host.accel } : {}) };
      else if (host.accel !== undefined) single.host = { accel: host.accel };
      if (raw.costs !== undefined) single.costs = raw.costs;
      if (raw.duration !== undefined) single.duration = raw.duration;
      out.push({ name, scenario: validate(single, `${where}: vms[${i}] (${name})`), min_memory: spec.min_memory, shares: spec.shares });
    }
  });
  return out;
}
