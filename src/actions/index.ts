/**
 * The action table: every scenario action, declared once in its subsystem's file.
 * The scenario schema (scenario/schema.ts), the model runner (scenario/runner.ts), the
 * real-guest runner (integrations/real), `balloonlab actions` and docs/CLI.md's action
 * list are derived from it. Adding an action: declare it with defineAction in a file
 * here (fields from fields.ts, a model run, a real run if real guests can do it), add
 * it to ACTIONS, and test it (docs/architecture.md).
 */
import { type ActionDef, type ActionInput, type EventBase, type Side, actionSides } from './action.js';
import type { Fields, FieldInfo } from './fields.js';
import { snapshot, allocPagesAction, freePagesAction, drainPcp, compactMemoryAction, check, dropCaches } from './mm.js';
import { processFault, processFree, processExit, processFile, processWrite, processLayoutAction } from './process.js';
import { balloon, queryBalloon, guestStats, statsPollingInterval, freePageHint } from './balloon.js';
import { migrate, queryMigrateAction, balloonFreePageHint, type MigrationCompletedEvent } from './migration.js';
import { kernelBuild, stressHighalloc, balloonCycle, idle, type KernelBuildDoneEvent, type StressHighallocDoneEvent } from './workloads.js';
import { shell } from './shell.js';
import { sysctl } from './sysctl.js';

export const ACTIONS = [
  snapshot, allocPagesAction, freePagesAction, processFault, processFree, processLayoutAction, processExit, processFile, compactMemoryAction, drainPcp, check,
  balloon, queryBalloon, guestStats, statsPollingInterval, freePageHint, processWrite, migrate, balloonFreePageHint, queryMigrateAction,
  kernelBuild, stressHighalloc, balloonCycle, idle, shell, dropCaches, sysctl,
] as const;

type Defs = (typeof ACTIONS)[number];
export type ActionName = Defs['name'];

type InputOf<D> = D extends ActionDef<infer N, infer F, infer _E> ? ActionInput<N, F> : never;
type EventOf<D> = D extends ActionDef<infer N, infer _F, infer E> ? EventBase & { kind: N } & E : never;

/** A parsed timeline entry, discriminated by `action`. */
export type Action = InputOf<Defs>;
/** The event of a timeline entry, discriminated by `kind` (= the action's name). */
export type ActionEvent = EventOf<Defs>;
/** An entry this side cannot run, recorded instead of run (the model side of a differential run). */
export type SkippedEvent = EventBase & { kind: 'skipped'; action: string; reason: string };
/** Every event a result document holds: the entries' own, and those that come later from what they started. */
export type ResultEvent = ActionEvent | KernelBuildDoneEvent | StressHighallocDoneEvent | MigrationCompletedEvent | SkippedEvent;
export type ResultEventKind = ResultEvent['kind'];
/** The events of one kind, typed. */
export type EventOfKind<K extends ResultEventKind> = Extract<ResultEvent, { kind: K }>;

/** The events of a kind (optionally with a label), in order. */
export function eventsOfKind<K extends ResultEventKind>(events: readonly ResultEvent[], kind: K, label?: string): EventOfKind<K>[] {
  return events.filter((e): e is EventOfKind<K> => e.kind === kind && (label === undefined || e.label === label));
}
export type { KernelBuildDoneEvent, StressHighallocDoneEvent, MigrationCompletedEvent };

export const ACTION_NAMES: readonly ActionName[] = ACTIONS.map((d) => d.name);

/** The declaration of an action by name. */
export function actionDef(name: string): ActionDef<string, Fields, object> | undefined {
  return (ACTIONS as readonly ActionDef<string, Fields, object>[]).find((d) => d.name === name);
}

/** What `balloonlab actions --json` prints about one action. */
export type ActionInfo = {
  name: string;
  doc: string;
  sides: Side[];
  fields: Array<{ name: string } & FieldInfo>;
};

/** The fields every entry has, before its own. */
const ENTRY_FIELDS: Array<{ name: string } & FieldInfo> = [
  { name: 'at', kind: 'time', doc: 'When the action runs (virtual time on the model; time since the timeline started on a real guest)', unit: 'ns', required: true },
  { name: 'label', kind: 'string', doc: 'A name for the event in reports', unit: null, required: false },
];

/** Every action with its fields, units, defaults and sides. */
export function actionsInfo(): ActionInfo[] {
  return (ACTIONS as readonly ActionDef<string, Fields, object>[]).map((d) => ({
    name: d.name,
    doc: d.doc,
    sides: actionSides(d),
    fields: [...ENTRY_FIELDS, ...Object.entries(d.fields).map(([name, f]) => ({ name, ...f.info }))],
  }));
}

function fieldText(f: { name: string } & FieldInfo): string {
  const type = f.kind === 'enum' ? (f.values ?? []).join(' \\| ') : f.kind;
  const bounds = f.min !== undefined || f.max !== undefined ? ` ${f.min ?? ''}..${f.max ?? ''}` : '';
  const dflt = f.required ? ', required' : f.default_text !== undefined ? `, default ${f.default_text}` : ', optional';
  return `\`${f.name}\` (${type}${bounds}${dflt})`;
}

/** docs/CLI.md's action list: one row per action (a test keeps the document equal to this). */
export function actionsMarkdown(): string {
  const rows = actionsInfo().map((a) => {
    const own = a.fields.filter((f) => f.name !== 'at' && f.name !== 'label');
    return `| \`${a.name}\` | ${a.doc.replace(/\|/g, '\\|')} | ${own.length ? own.map(fieldText).join('; ') : '—'} | ${a.sides.join(', ')} |`;
  });
  return ['| action | what it does | fields | sides |', '| --- | --- | --- | --- |', ...rows].join('\n') + '\n';
}
