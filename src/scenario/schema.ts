/**
 * The scenario file: a guest, a seed, a timeline of actions at virtual times, and
 * variants for `balloonlab compare`. Validated with zod; every error names the field
 * (`timeline[2].order`) and what is allowed. Later capabilities add actions here.
 */
import { z } from 'zod';
import { parseDocument } from 'yaml';
import { formatTime } from './units.js';
import { guestMemoryProblem } from '../guest/mm/layout.js';

import { sizeSchema, timeSchema } from '../actions/fields.js';
import { ACTIONS, ACTION_NAMES, type Action } from '../actions/index.js';
import { entrySchema } from '../actions/action.js';
import { InputError } from '../sim/errors.js';
import { COST_NAMES, type CostName, type CostOverrides } from '../sim/cost.js';
import { HOST_MACHINE_FIELDS, type HostVmSpec, validateVms } from './host_schema.js';

/** Sizes and times in scenario files (actions' fields use the same, from actions/fields.ts). */
export const sizeField = sizeSchema;
export const timeField = timeSchema;

/** One timeline entry: the action's schema, chosen by `action` (the action table). */
const actionSchema = z.discriminatedUnion('action', ACTIONS.map((d) => entrySchema(d, timeSchema)) as unknown as [z.ZodObject, ...z.ZodObject[]], {
  error: (iss) => iss.code === 'invalid_union'
    ? `unknown or missing action (allowed: ${ACTION_NAMES.join(', ')})`
    : undefined,
});

const guestSchema = z.strictObject({
  memory: sizeField.superRefine((v, ctx) => {
    const bad = guestMemoryProblem(v);
    if (bad !== null) ctx.addIssue({ code: 'custom', message: bad });
  }),
  vcpus: z.number().int().min(1).max(256).default(1),
  /** The kernel the guest runs: Linux 6.1 (Debian 12's) or 3.6 (the 2012 balloon compaction experiment's); docs/kernel-eras.md. */
  kernel: z.enum(['6.1', '3.6']).default('6.1'),
  /** Physical KASLR for the kernel image. */
  kaslr: z.boolean().default(true),
  /** Kernel image size (text to end of bss). */
  kernel_image: sizeField.optional(),
  /** vm.min_free_kbytes, or auto for the kernel's default. */
  min_free_kbytes: z.union([z.literal('auto'), z.number().int().min(128).max(1 << 22)]).default('auto'),
  /** transparent_hugepage/enabled (Debian's default: always). */
  thp: z.enum(['always', 'madvise', 'never']).default('always'),
  /** transparent_hugepage/defrag (default: the kernel's, madvise on 6.1, always on 3.6; defer and defer+madvise arrived in 4.6). */
  thp_defrag: z.enum(['always', 'defer', 'defer+madvise', 'madvise', 'never']).optional(),
  /** Size of the swap device (0 = none, like the reference guest). */
  swap: sizeField.default(0),
  /** init_on_alloc (Debian's default: on; 3.6 has none, 5.3 added it): every allocation is zeroed, so the host sees it written. */
  init_on_alloc: z.boolean().optional(),
  /** init_on_free: freed pages are zeroed (the balloon then negotiates PAGE_POISON with poison_val 0). */
  init_on_free: z.boolean().default(false),
  /** page_poison: freed pages are filled with 0xaa (PAGE_POISON negotiated with poison_val 0xaaaaaaaa). */
  page_poison: z.boolean().default(false),
}).superRefine((g, ctx) => {
  // what the 3.6 kernel does not have (kernel_era.ts)
  if (g.kernel === '3.6') {
    if (g.init_on_alloc === true) ctx.addIssue({ code: 'custom', path: ['init_on_alloc'], message: 'Linux 3.6 has no init_on_alloc (added in 5.3)' });
    if (g.init_on_free) ctx.addIssue({ code: 'custom', path: ['init_on_free'], message: 'Linux 3.6 has no init_on_free (added in 5.3)' });
    if (g.thp_defrag === 'defer' || g.thp_defrag === 'defer+madvise') ctx.addIssue({ code: 'custom', path: ['thp_defrag'], message: `Linux 3.6's transparent_hugepage/defrag has no "${g.thp_defrag}" (added in 4.6 and 4.11): always, madvise or never` });
  }
});

/** The virtio-balloon device (QEMU's properties and defaults) and the guest driver's build options. */
const balloonFields = z.strictObject({
  /** CONFIG_BALLOON_COMPACTION: balloon pages are movable and compaction migrates them (off: the pre-2012 kernel). */
  compaction: z.boolean().default(true),
  /**
   * The page type of balloon pages: offline (PG_offline, Linux 4.20 on) or balloon
   * (PG_balloon, 3.x to 4.19): the same bit renamed. page-types prints o:offline or
   * o:balloon; makedumpfile (1.6.5 on) excludes PageOffline pages from a dump, and reads
   * PG_balloon ones like kernel data (proc mem-usage). Default: the kernel's (offline on
   * 6.1; Linux 3.6 has neither, so its balloon pages carry no page flag at all).
   */
  page_type: z.enum(['offline', 'balloon']).optional(),
  /** Device property deflate-on-oom. */
  deflate_on_oom: z.boolean().default(false),
  /**
   * Device property free-page-hint, and the design driver and device run: true or
   * upstream (Linux 5.0 / QEMU 4.0 on: the cmd_id protocol, blocks allocated and held
   * until DONE), v33 (the June 2018 series: free order-10 blocks' addresses copied into
   * a buffer under the zone lock, nothing held); false: off. docs/experiments.md compares them.
   */
  free_page_hint: z.union([z.boolean(), z.enum(['upstream', 'v33'])], { error: () => 'expected false, true (= upstream), upstream or v33' }).default(false),
  /** v33's hint buffer: fixed (16 pages, kmalloc'ed at probe, as posted) or sized (from totalram_pages, at most 1024 pages, allocated per report). Default fixed. */
  free_page_hint_buffer: z.enum(['fixed', 'sized']).optional(),
  /** Device property free-page-reporting. */
  free_page_reporting: z.boolean().default(false),
  /** Device property page-poison (QEMU: on). */
  page_poison: z.boolean().default(true),
  /** Offer MUST_TELL_HOST (QEMU never does; crosvm does). */
  must_tell_host: z.boolean().default(false),
  /** Offer STATS_VQ (QEMU always does). */
  stats_vq: z.boolean().default(true),
  /** guest-stats-polling-interval (0: off, QEMU's default). Whole seconds in QEMU. */
  stats_polling_interval: timeField.default(0),
  /** What the host does with hinted free pages: clear-bitmap (QEMU, for migration) or discard (Firecracker). */
  hint_action: z.enum(['clear-bitmap', 'discard']).default('clear-bitmap'),
  /** Send DONE as soon as the guest sends STOP (Firecracker); QEMU waits for migration to end. */
  hint_ack_on_stop: z.boolean().default(false),
  /** Who keeps `actual`: the driver writes it (spec, QEMU) or the device counts PFNs (v86). */
  actual: z.enum(['driver', 'device']).default('driver'),
  /** Ballooning inhibited on the host (VFIO, postcopy): the device acknowledges but changes nothing. */
  inhibited: z.boolean().default(false),
  /** Stats the guest driver sends: tags 0-9 (Linux 6.1) or 0-15 (Linux >= 6.12). */
  stats_tags: z.enum(['v6.1', 'v6.12']).default('v6.12'),
  /** The driver's oom_pages parameter: pages given back per OOM with deflate_on_oom. */
  oom_pages: z.number().int().min(1).max(1 << 20).default(256),
});

/** One entry of `balloon.devices`: a QOM id (QEMU's id syntax) and the device properties it sets (no defaults: what it leaves out is the balloon's). */
const balloonDeviceSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]*$/, 'a device id: a letter, then letters, digits, "-", "." or "_" (QEMU\'s id syntax)'),
  deflate_on_oom: balloonFields.shape.deflate_on_oom.unwrap().optional(),
  free_page_hint: balloonFields.shape.free_page_hint.unwrap().optional(),
  free_page_reporting: balloonFields.shape.free_page_reporting.unwrap().optional(),
  page_poison: balloonFields.shape.page_poison.unwrap().optional(),
  must_tell_host: balloonFields.shape.must_tell_host.unwrap().optional(),
  stats_vq: balloonFields.shape.stats_vq.unwrap().optional(),
  stats_polling_interval: balloonFields.shape.stats_polling_interval.unwrap().optional(),
  hint_action: balloonFields.shape.hint_action.unwrap().optional(),
  hint_ack_on_stop: balloonFields.shape.hint_ack_on_stop.unwrap().optional(),
  actual: balloonFields.shape.actual.unwrap().optional(),
  inhibited: balloonFields.shape.inhibited.unwrap().optional(),
});

/** The virtio-balloon device (QEMU's properties and defaults), the guest driver's build options, and more devices. */
export const balloonSchema = balloonFields.extend({
  /**
   * Several balloon devices (each its own transport, queues and balloon_dev_info in the
   * guest; QMP addresses each by id): every entry an `id` and the device properties
   * that differ from the ones above (free_page_hint and free_page_reporting are set
   * above and are the first device's only). Absent: one device, balloon0. QEMU itself takes
   * one balloon device, so real guests refuse more (docs/model-limits.md).
   */
  devices: z.array(balloonDeviceSchema).min(1).optional(),
}).superRefine((b, ctx) => {
  // v33 holds nothing and has no STOP: no buffer rule without it, no discarding or acknowledging with it
  if (b.free_page_hint_buffer !== undefined && b.free_page_hint !== 'v33') ctx.addIssue({ code: 'custom', path: ['free_page_hint_buffer'], message: `only with free_page_hint: v33 (the upstream driver has no hint buffer: it queues each block it allocates), got free_page_hint: ${String(b.free_page_hint)}` });
  if (b.free_page_hint === 'v33' && b.hint_action !== 'clear-bitmap') ctx.addIssue({ code: 'custom', path: ['hint_action'], message: 'v33\'s hinted blocks stay free in the guest: a host that discarded them would lose what the guest writes there next (clear-bitmap only)' });
  if (b.free_page_hint === 'v33' && b.hint_ack_on_stop) ctx.addIssue({ code: 'custom', path: ['hint_ack_on_stop'], message: 'v33 has no STOP to acknowledge' });
  const devs = b.devices ?? [];
  const seen = new Set<string>();
  devs.forEach((d, i) => {
    if (seen.has(d.id)) ctx.addIssue({ code: 'custom', path: ['devices', i, 'id'], message: `"${d.id}" is already the id of another balloon device` });
    seen.add(d.id);
    // free page hinting and reporting are set above, for the first device: the guest has one
    // page_reporting_dev_info (page_reporting_register returns -EBUSY for a second) and the
    // model's migration asks one device for hints
    if (d.free_page_reporting !== undefined) ctx.addIssue({ code: 'custom', path: ['devices', i, 'free_page_reporting'], message: i === 0 ? 'set free_page_reporting above, with the other balloon properties: it is the first device\'s' : 'only the first balloon device can report free pages: the kernel takes one page reporting device (page_reporting_register returns -EBUSY for a second)' });
    if (d.free_page_hint !== undefined) ctx.addIssue({ code: 'custom', path: ['devices', i, 'free_page_hint'], message: i === 0 ? 'set free_page_hint above, with the other balloon properties: it is the first device\'s' : 'only the first balloon device takes part in free page hinting (the model\'s migration asks one device for hints)' });
  });
});

/** Which free page hinting the balloon runs: off, upstream (true) or v33. */
export function freePageHintDesign(b: Scenario['balloon']): 'off' | 'upstream' | 'v33' {
  if (b === false || b.free_page_hint === false) return 'off';
  return b.free_page_hint === 'v33' ? 'v33' : 'upstream';
}

/** QEMU's own command line: options of the VMM process, not of the guest or a device. */
const hostSchema = z.strictObject({
  /** -mem-prealloc: all of guest RAM is backed (resident) from the start. */
  mem_prealloc: z.boolean().default(false),
  /** -accel: kvm (hardware virtualization, the default) or tcg (QEMU's emulator: dirty pages caught by the softmmu TLB, a slower guest). */
  accel: z.enum(['kvm', 'tcg']).default('kvm'),
  /** A host with many guests (`vms:`): its RAM, swap and policy (host_schema.ts). */
  ...HOST_MACHINE_FIELDS,
});

/**
 * `costs:`: cost-table entries (src/sim/cost.ts) overridden by name, in ns per unit of
 * work; a name the table does not have is an error naming it and listing the names.
 */
const costsSchema = z.record(z.string(), z.unknown()).superRefine((v, ctx) => {
  for (const [k, x] of Object.entries(v)) {
    if (!(COST_NAMES as readonly string[]).includes(k)) {
      ctx.addIssue({ code: 'custom', path: [k], message: `unknown cost "${k}" (allowed: ${COST_NAMES.join(', ')})` });
    } else if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) {
      ctx.addIssue({ code: 'custom', path: [k], message: `expected nanoseconds per unit, a finite number at least 0, got ${JSON.stringify(x)}` });
    }
  }
}).transform((v): CostOverrides => {
  const out: CostOverrides = {};
  for (const k of COST_NAMES) if (k in v) out[k as CostName] = v[k] as number;
  return out;
});

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(1),
  guest: guestSchema,
  /** The balloon device; `false` for a machine without one. Defaults to QEMU's device. */
  balloon: z.union([z.literal(false), balloonSchema], {
    error: (iss) => (iss.code === 'invalid_union' && (typeof iss.input !== 'object' || iss.input === null || Array.isArray(iss.input))
      ? `expected false (a machine without a balloon device) or a mapping of the device's options (${Object.keys(balloonSchema.shape).join(', ')}), got ${JSON.stringify(iss.input)}`
      : undefined),
  }).default(() => balloonSchema.parse({})),
  host: hostSchema.default(() => hostSchema.parse({})),
  /** Cost-table overrides by name (ns per unit); the rest keep src/sim/cost.ts's figures. */
  costs: costsSchema.optional(),
  /** Virtual time to simulate; defaults to just past the last action. */
  duration: timeField.optional(),
  /** The result's time series (`series`): how often to sample; default about 500 samples a run, at least 100ms apart. */
  sample: z.strictObject({ interval: timeField.refine((v) => v >= 1_000_000, 'at least 1ms') }).optional(),
  timeline: z.array(actionSchema).nullish().transform((v) => v ?? []),
  /** A host with many guests: each VM's guest, balloon and timeline (host_schema.ts validates them). */
  vms: z.array(z.unknown()).optional(),
});

/** A validated scenario; its timeline's entries are typed by the action table. */
export type Scenario = Omit<z.output<typeof scenarioSchema>, 'timeline' | 'vms'> & { timeline: Action[]; vms?: HostVmSpec<Scenario>[] };
export type { Action };

/** A bad scenario: one clear message naming the field. */
export class ScenarioError extends InputError {}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(top level)';
}

/**
 * A union that gave no message of its own (`balloon: false | { ... }` for a mapping)
 * stands for the option whose fields the input reached: its first issue, under the
 * union's path (`balloon.free_page_hint: ...`, not `balloon: Invalid input`).
 */
function unionIssue(iss: z.core.$ZodIssue): z.core.$ZodIssue {
  if (iss.code !== 'invalid_union' || iss.message !== 'Invalid input') return iss;
  for (const branch of iss.errors) {
    const inner = branch[0];
    if (inner !== undefined && inner.path.length > 0) return unionIssue({ ...inner, path: [...iss.path, ...inner.path] });
  }
  return iss;
}

/** Turns zod's first issue into one message: `where: field: what is wrong`. */
function issueMessage(err: z.ZodError, where: string): string {
  const iss = unionIssue(err.issues[0]!);
  let msg = iss.message;
  if (iss.code === 'unrecognized_keys') msg = `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}`;
  if (iss.code === 'invalid_type' && /received undefined/.test(iss.message)) msg = `required field is missing (${iss.message.replace(/^Invalid input: /, '')})`;
  return `${where}: ${formatPath(iss.path)}: ${msg}`;
}

/** Validates one scenario object (already parsed from YAML). */
export function validateScenario(raw: unknown, where: string): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) throw new ScenarioError(issueMessage(r.error, where));
  const s = r.data as Scenario;
  if (s.guest.kernel === '3.6' && s.balloon !== false && s.balloon.page_type !== undefined) {
    throw new ScenarioError(`${where}: balloon.page_type: Linux 3.6 has neither PG_balloon (4.0) nor PG_offline (4.20): its balloon pages carry no page flag, and page-types shows them as plain kernel pages; leave page_type out on 3.6`);
  }
  if (s.vms !== undefined) s.vms = validateVms(raw as Plain, s, where, validateScenario, (m) => new ScenarioError(m));
  for (let i = 1; i < s.timeline.length; i++) {
    const a = s.timeline[i]!, prev = s.timeline[i - 1]!;
    if (a.at < prev.at) throw new ScenarioError(`${where}: timeline[${i}].at: ${formatTime(a.at)} is before timeline[${i - 1}]'s ${formatTime(prev.at)}: entries run in the order written, so write them in time order`);
  }
  if (s.duration !== undefined) {
    const i = s.timeline.findIndex((a) => a.at > s.duration!);
    if (i >= 0) throw new ScenarioError(`${where}: timeline[${i}].at: ${formatTime(s.timeline[i]!.at)} is after the scenario's duration (${formatTime(s.duration)})`);
  }
  return s;
}

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep-merges a variant's overrides onto the base scenario (objects merge, the rest replaces). */
function mergeDeep(base: unknown, over: unknown): unknown {
  if (!isPlain(base) || !isPlain(over)) return over;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = k in base ? mergeDeep(base[k], v) : v;
  return out;
}

export type ScenarioFile = {
  /** The scenario as written (without its variants). */
  base: Scenario;
  /** Each variant merged onto the base and validated; empty when the file has none. */
  variants: { name: string; scenario: Scenario }[];
};

/**
 * Validates a parsed scenario document with optional `variants:` — a list of
 * `{ name, ...overrides }` deep-merged onto the rest of the file.
 */
export function validateScenarioFile(doc: unknown, where: string): ScenarioFile {
  if (!isPlain(doc)) throw new ScenarioError(`${where}: (top level): expected a mapping with name, guest and timeline`);
  const { variants: rawVariants, ...rest } = doc;
  const baseScenario = validateScenario(rest, where);
  const variants: ScenarioFile['variants'] = [];
  if (rawVariants !== undefined) {
    if (!Array.isArray(rawVariants)) throw new ScenarioError(`${where}: variants: expected a list of { name, ...overrides }`);
    const seen = new Set<string>();
    rawVariants.forEach((v, i) => {
      if (!isPlain(v) || typeof v.name !== 'string' || !v.name) throw new ScenarioError(`${where}: variants[${i}].name: required: a name for the variant`);
      if (seen.has(v.name)) throw new ScenarioError(`${where}: variants[${i}].name: duplicate variant name "${v.name}"`);
      seen.add(v.name);
      const { name, ...over } = v;
      const merged = mergeDeep(rest, over);
      variants.push({ name, scenario: validateScenario(merged, `${where}: variants[${i}] (${name})`) });
    });
  }
  return { base: baseScenario, variants };
}

/**
 * Parses YAML text (scenarios, real-guest scripts). Anything wrong with the text — a
 * syntax error, a warning such as an unknown tag or YAML version, an alias to no anchor,
 * too many aliases (a "billion laughs" document), nesting too deep — is a ScenarioError
 * naming `where`: the text is the user's input, never a bug.
 */
export function parseYamlText(text: string, where: string): unknown {
  const bad = (msg: string) => {
    const line = msg.split('\n')[0]!.replace(/:$/, '').replace(/^Maximum call stack size exceeded/, 'nested too deeply');
    return new ScenarioError(`${where}: not valid YAML: ${line}`);
  };
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    if (e instanceof Error) throw bad(e instanceof RangeError ? 'nested too deeply' : e.message);
    throw e;
  }
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw bad(problem.message);
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    if (e instanceof Error) throw bad(e instanceof RangeError ? 'nested too deeply' : e.message);
    throw e;
  }
}
