/**
 * The scenario file: a guest, a seed, a timeline of actions at virtual times, and
 * variants for `balloonlab compare`. Validated with zod; every error names the field
 * (`timeline[2].order`) and what is allowed. Later capabilities add actions here.
 */
import { z } from 'zod';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { parseSize, parseTime, formatTime, UnitError, SIZE_UNIT_NAMES, TIME_UNIT_NAMES } from './units.js';
import { GFP_BY_NAME, GFP_KERNEL } from '../guest/mm/gfp.js';
import { MAX_ORDER } from '../guest/mm/memmap.js';

/** A value with units (sizes, times): one message naming what is expected, or the parser's own. */
function unitField(parse: (v: string | number) => number, example: string, units: string) {
  return z.unknown().transform((v, ctx): number => {
    if (v === undefined || v === null) { ctx.addIssue({ code: 'custom', message: `required: ${example} (units: ${units})` }); return z.NEVER; }
    if (typeof v !== 'string' && typeof v !== 'number') { ctx.addIssue({ code: 'custom', message: `expected ${example} (units: ${units})` }); return z.NEVER; }
    try {
      return parse(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: e instanceof UnitError ? e.message : String(e) });
      return z.NEVER;
    }
  });
}

export const sizeField = unitField(parseSize, 'a size such as 4GiB', SIZE_UNIT_NAMES);
export const timeField = unitField(parseTime, 'a time such as 10s', TIME_UNIT_NAMES);

/** A GFP mask written as kernel names joined by '|', e.g. `GFP_KERNEL|__GFP_NORETRY`. */
const gfpField = z.string().transform((v, ctx): number => {
  let mask = 0;
  for (const part of v.split('|').map((s) => s.trim())) {
    const bit = GFP_BY_NAME[part];
    if (bit === undefined) {
      ctx.addIssue({ code: 'custom', message: `unknown GFP flag "${part}" (allowed: ${Object.keys(GFP_BY_NAME).join(', ')})` });
      return z.NEVER;
    }
    mask |= bit;
  }
  return mask;
});

/** Owners an `alloc_pages` action may allocate for (what the pages stand for). */
export const ALLOC_OWNERS = ['kernel', 'slab_unreclaimable', 'slab_reclaimable', 'kernel_stack', 'page_table', 'anon', 'file', 'shmem'] as const;

const base = { at: timeField, label: z.string().optional() };

const snapshotAction = z.strictObject({
  ...base,
  action: z.literal('snapshot'),
});

const allocPagesAction = z.strictObject({
  ...base,
  action: z.literal('alloc_pages'),
  /** How many blocks to allocate. */
  count: z.number().int().min(1).max(1 << 26),
  order: z.number().int().min(0).max(MAX_ORDER - 1).default(0),
  gfp: gfpField.default(GFP_KERNEL),
  owner: z.enum(ALLOC_OWNERS).default('kernel'),
  /** Names this set of allocations so a later free_pages can release them. */
  tag: z.string().min(1).default('default'),
  cpu: z.number().int().min(0).default(0),
});

const freePagesAction = z.strictObject({
  ...base,
  action: z.literal('free_pages'),
  tag: z.string().min(1).default('default'),
  /** Share of the tag's blocks to free (0..1). */
  fraction: z.number().min(0).max(1).default(1),
  /** Which blocks: random (seeded), oldest first, newest first, or every other one (alternate). */
  pick: z.enum(['random', 'oldest', 'newest', 'alternate']).default('random'),
  cpu: z.number().int().min(0).default(0),
});

const pidField = z.number().int().min(1).max(65535);

const processFaultAction = z.strictObject({
  ...base,
  action: z.literal('process_fault'),
  /** Process id (1-65535); the process is created on its first fault. */
  pid: pidField,
  /** Anonymous memory to fault in, e.g. 3GiB. */
  size: sizeField,
  /** The memory is madvise(MADV_HUGEPAGE)d: THP with enabled=madvise, direct compaction with defrag=madvise. */
  madvise_hugepage: z.boolean().default(false),
});

const processFreeAction = z.strictObject({
  ...base,
  action: z.literal('process_free'),
  pid: pidField,
  /** Share of the process's anonymous pages to unmap (0..1). */
  fraction: z.number().min(0).max(1).default(0.5),
  /** alternate: every other page in physical order (fragments memory); random; lowest; highest. */
  pick: z.enum(['alternate', 'random', 'lowest', 'highest']).default('alternate'),
});

const processExitAction = z.strictObject({ ...base, action: z.literal('process_exit'), pid: pidField });

const processFileAction = z.strictObject({
  ...base,
  action: z.literal('process_file'),
  pid: pidField,
  /** Page cache to read (or write, with dirty: true) through the process's file, e.g. 512MiB. */
  size: sizeField,
  dirty: z.boolean().default(false),
});

/** echo 1 > /proc/sys/vm/compact_memory */
const compactMemoryAction = z.strictObject({ ...base, action: z.literal('compact_memory') });

const drainPcpAction = z.strictObject({ ...base, action: z.literal('drain_pcp') });
const checkAction = z.strictObject({ ...base, action: z.literal('check') });

/** QMP `balloon`: the guest's logical size (RAM minus the balloon), as QEMU takes it. */
const balloonAction = z.strictObject({ ...base, action: z.literal('balloon'), value: sizeField });
/** QMP `query-balloon`: records the answer. */
const queryBalloonAction = z.strictObject({ ...base, action: z.literal('query_balloon') });
/** qom-get guest-stats: records the answer. */
const guestStatsAction = z.strictObject({ ...base, action: z.literal('guest_stats') });
/** qom-set guest-stats-polling-interval (whole seconds; 0 stops polling). */
const statsPollingAction = z.strictObject({ ...base, action: z.literal('stats_polling_interval'), interval: timeField });
/** Drives the free-page-hint state machine by hand (what migration does): start a round, stop it, or release the hints. */
const freePageHintAction = z.strictObject({ ...base, action: z.literal('free_page_hint'), command: z.enum(['start', 'stop', 'done']) });

/** A process keeps writing its memory: `rate` bytes per second of random pages of its anonymous memory, for `duration`. */
const processWriteAction = z.strictObject({ ...base, action: z.literal('process_write'), pid: pidField, rate: sizeField, duration: timeField });

/** QMP `migrate` with its parameters (QEMU's names, snake_case). */
const migrateAction = z.strictObject({
  ...base,
  action: z.literal('migrate'),
  /** max-bandwidth in bytes per second (QEMU's default 128MiB; `migrate_set_speed 100G` = 100GiB). */
  max_bandwidth: sizeField.default(128 * 1024 * 1024),
  /** downtime-limit (QEMU's default 300ms). */
  downtime_limit: timeField.default(300_000_000),
  /** The network between source and destination, bytes per second (default 10 Gbit/s). */
  link_bandwidth: sizeField.default(1_250_000_000),
});
/** Whether migration uses the balloon's free page hints (the device must offer FREE_PAGE_HINT). */
const balloonFreePageHintAction = z.strictObject({ ...base, action: z.literal('balloon_free_page_hint'), value: z.enum(['on', 'off']) });
/** QMP `query-migrate`: records the answer. */
const queryMigrateAction = z.strictObject({ ...base, action: z.literal('query_migrate') });

/** make -jN of a Linux tree (src/workloads/kernel_build.ts has what each parameter stands for). */
const kernelBuildAction = z.strictObject({
  ...base,
  action: z.literal('kernel_build'),
  jobs: z.number().int().min(1).max(256).default(4),
  units: z.number().int().min(1).max(1_000_000).default(2400),
  source: sizeField.default(1024 ** 3),
  objects: sizeField.default(1024 ** 3),
  cc_heap_min: sizeField.default(16 * 1024 ** 2),
  cc_heap_max: sizeField.default(96 * 1024 ** 2),
  cc_cpu_min: timeField.default(200_000_000),
  cc_cpu_max: timeField.default(1_400_000_000),
  rewrite: z.number().min(0).max(100).default(0.5),
  untar: z.boolean().default(false),
});
/** mmtests' stress-highalloc (src/workloads/stress_highalloc.ts). */
const stressHighallocAction = z.strictObject({
  ...base,
  action: z.literal('stress_highalloc'),
  percent: z.number().min(1).max(100).default(95),
  mb_per_sec: z.number().min(0.001).max(1e6).default(16),
  warmup: timeField.default(300e9),
  cooldown: timeField.default(180e9),
  /** Parallel builds; default MemTotal/400MB + 1 as mmtests. */
  builds: z.number().int().min(0).max(64).optional(),
  build_units: z.number().int().min(1).default(100000),
  build_source: sizeField.default(430 * 1024 ** 2),
  build_objects: sizeField.default(400 * 1024 ** 2),
  cc_heap_min: sizeField.default(16 * 1024 ** 2),
  cc_heap_max: sizeField.default(96 * 1024 ** 2),
});
/** The host moves the balloon target on a schedule: `step` every `period`, down to `size` of balloon and back up, until `until`. */
const balloonCycleAction = z.strictObject({
  ...base,
  action: z.literal('balloon_cycle'),
  size: sizeField,
  step: sizeField,
  period: timeField.default(60e9),
  until: timeField.optional(),
});
/** Light daemon activity: every second a little slab and anonymous memory comes and goes. */
const idleAction = z.strictObject({ ...base, action: z.literal('idle'), until: timeField.optional() });

export const ACTION_NAMES = ['snapshot', 'alloc_pages', 'free_pages', 'process_fault', 'process_free', 'process_exit', 'process_file', 'compact_memory', 'drain_pcp', 'check',
  'balloon', 'query_balloon', 'guest_stats', 'stats_polling_interval', 'free_page_hint', 'process_write', 'migrate', 'balloon_free_page_hint', 'query_migrate',
  'kernel_build', 'stress_highalloc', 'balloon_cycle', 'idle'] as const;

const actionSchema = z.discriminatedUnion('action', [snapshotAction, allocPagesAction, freePagesAction, processFaultAction, processFreeAction, processExitAction, processFileAction, compactMemoryAction, drainPcpAction, checkAction,
  balloonAction, queryBalloonAction, guestStatsAction, statsPollingAction, freePageHintAction, processWriteAction, migrateAction,
  balloonFreePageHintAction, queryMigrateAction, kernelBuildAction, stressHighallocAction, balloonCycleAction, idleAction], {
  error: (iss) => iss.code === 'invalid_union'
    ? `unknown or missing action (allowed: ${ACTION_NAMES.join(', ')})`
    : undefined,
});

const guestSchema = z.strictObject({
  memory: sizeField,
  vcpus: z.number().int().min(1).max(256).default(1),
  /** Physical KASLR for the kernel image. */
  kaslr: z.boolean().default(true),
  /** Kernel image size (text to end of bss). */
  kernel_image: sizeField.optional(),
  /** vm.min_free_kbytes, or auto for the kernel's default. */
  min_free_kbytes: z.union([z.literal('auto'), z.number().int().min(128).max(1 << 22)]).default('auto'),
  /** transparent_hugepage/enabled (Debian's default: always). */
  thp: z.enum(['always', 'madvise', 'never']).default('always'),
  /** transparent_hugepage/defrag (Debian's default: madvise). */
  thp_defrag: z.enum(['always', 'defer', 'defer+madvise', 'madvise', 'never']).default('madvise'),
  /** Size of the swap device (0 = none, like the reference guest). */
  swap: sizeField.default(0),
  /** init_on_alloc (Debian's default: on): every allocation is zeroed, so the host sees it written. */
  init_on_alloc: z.boolean().default(true),
  /** init_on_free: freed pages are zeroed (the balloon then negotiates PAGE_POISON with poison_val 0). */
  init_on_free: z.boolean().default(false),
  /** page_poison: freed pages are filled with 0xaa (PAGE_POISON negotiated with poison_val 0xaaaaaaaa). */
  page_poison: z.boolean().default(false),
});

/** The virtio-balloon device (QEMU's properties and defaults) and the guest driver's build options. */
export const balloonSchema = z.strictObject({
  /** CONFIG_BALLOON_COMPACTION: balloon pages are movable and compaction migrates them (off: the pre-2012 kernel). */
  compaction: z.boolean().default(true),
  /** Device property deflate-on-oom. */
  deflate_on_oom: z.boolean().default(false),
  /** Device property free-page-hint. */
  free_page_hint: z.boolean().default(false),
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

const hostSchema = z.strictObject({
  /** -mem-prealloc: all of guest RAM is backed (resident) from the start. */
  mem_prealloc: z.boolean().default(false),
});

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(1),
  guest: guestSchema,
  /** The balloon device; `false` for a machine without one. Defaults to QEMU's device. */
  balloon: z.union([z.literal(false), balloonSchema]).default(() => balloonSchema.parse({})),
  host: hostSchema.default(() => hostSchema.parse({})),
  /** Virtual time to simulate; defaults to just past the last action. */
  duration: timeField.optional(),
  timeline: z.array(actionSchema).nullish().transform((v) => v ?? []),
});

export type Scenario = z.output<typeof scenarioSchema>;
export type Action = Scenario['timeline'][number];
export type AllocPagesAction = z.output<typeof allocPagesAction>;
export type FreePagesAction = z.output<typeof freePagesAction>;

/** A bad scenario: one clear message naming the field. */
export class ScenarioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioError';
  }
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${String(p)}` : String(p);
  return s || '(top level)';
}

/** Turns zod's first issue into one message: `where: field: what is wrong`. */
function issueMessage(err: z.ZodError, where: string): string {
  const iss = err.issues[0]!;
  let msg = iss.message;
  if (iss.code === 'unrecognized_keys') msg = `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${k}"`).join(', ')}`;
  if (iss.code === 'invalid_type' && /received undefined/.test(iss.message)) msg = `required field is missing (${iss.message.replace(/^Invalid input: /, '')})`;
  return `${where}: ${formatPath(iss.path)}: ${msg}`;
}

/** Validates one scenario object (already parsed from YAML). */
export function validateScenario(raw: unknown, where: string): Scenario {
  const r = scenarioSchema.safeParse(raw);
  if (!r.success) throw new ScenarioError(issueMessage(r.error, where));
  const s = r.data;
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

/** Parses YAML text (scenarios, real-guest scripts); a syntax error is a ScenarioError naming `where`. */
export function parseYamlText(text: string, where: string): unknown {
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true });
  } catch (e) {
    if (e instanceof YAMLParseError) throw new ScenarioError(`${where}: not valid YAML: ${e.message.split('\n')[0]}`);
    throw e;
  }
}
