/**
 * The field types of scenario actions: each is a zod schema (what the scenario file
 * accepts and what it becomes) together with the facts `balloonlab actions` and
 * docs/CLI.md print about it (kind, unit, default, bounds, allowed values, one line of
 * documentation). Actions declare their fields with these builders only, so every
 * field is validated and documented the same way.
 */
import { z } from 'zod';
import { parseSize, parseTime, formatSize, formatTime, UnitError, SIZE_UNIT_NAMES, TIME_UNIT_NAMES } from '../scenario/units.js';
import { GFP_BY_NAME, gfpName } from '../guest/mm/gfp.js';

export type FieldKind = 'size' | 'time' | 'int' | 'number' | 'boolean' | 'enum' | 'string' | 'gfp' | 'scalar';

/** What `balloonlab actions --json` says about a field. */
export type FieldInfo = {
  kind: FieldKind;
  doc: string;
  /** The unit the value is held in after parsing (sizes in bytes, times in ns). */
  unit: 'bytes' | 'ns' | null;
  required: boolean;
  /** The default, as held (bytes, ns, the number, the name); undefined when required or optional without one. */
  default?: number | boolean | string;
  /** The default as a scenario would write it (4GiB, 300ms, GFP_KERNEL). */
  default_text?: string;
  min?: number;
  max?: number;
  values?: readonly string[];
};

/** A field: its schema and what is documented about it. */
export type Field<T> = { schema: z.ZodType<T, unknown>; info: FieldInfo };
export type Fields = Record<string, Field<unknown>>;
/** The parsed value of every field of an action. */
export type FieldValues<F extends Fields> = { [K in keyof F]: F[K] extends Field<infer T> ? T : never };

type Opt<T> = { default?: T; optional?: boolean };

/** A value with units (sizes, times): one message naming what is expected, or the parser's own. */
function unitSchema(parse: (v: string | number) => number, example: string, units: string) {
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

/** A size such as 4GiB (bytes), as scenario files write sizes. */
export const sizeSchema = unitSchema(parseSize, 'a size such as 4GiB', SIZE_UNIT_NAMES);
/** A time such as 10s (ns). */
export const timeSchema = unitSchema(parseTime, 'a time such as 10s', TIME_UNIT_NAMES);

/** A GFP mask written as kernel names joined by '|', e.g. `GFP_KERNEL|__GFP_NORETRY`. */
export const gfpSchema = z.string().transform((v, ctx): number => {
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

function withDefault<T>(schema: z.ZodType<T, unknown>, o: Opt<T> | undefined): z.ZodType<T, unknown> {
  if (o?.default !== undefined) return schema.default(o.default as never) as unknown as z.ZodType<T, unknown>;
  if (o?.optional) return schema.optional() as unknown as z.ZodType<T, unknown>;
  return schema;
}

function info(kind: FieldKind, doc: string, unit: FieldInfo['unit'], o: Opt<unknown> | undefined, text?: (v: never) => string): FieldInfo {
  const out: FieldInfo = { kind, doc, unit, required: o?.default === undefined && !o?.optional };
  if (o?.default !== undefined) {
    out.default = o.default as number | boolean | string;
    out.default_text = text ? text(o.default as never) : String(o.default);
  }
  return out;
}

type Bounds = { min?: number; max?: number };

/** A unit field's bounds, with messages in the field's own units. */
function bounded(schema: z.ZodType<number, unknown>, b: Bounds | undefined, fmt: (v: number) => string): z.ZodType<number, unknown> {
  if (b?.min === undefined && b?.max === undefined) return schema;
  return schema.superRefine((v, ctx) => {
    if (b.min !== undefined && v < b.min) ctx.addIssue({ code: 'custom', message: `must be at least ${fmt(b.min)}, got ${fmt(v)}` });
    else if (b.max !== undefined && v > b.max) ctx.addIssue({ code: 'custom', message: `must be at most ${fmt(b.max)}, got ${fmt(v)}` });
  });
}

function withBounds(i: FieldInfo, b: Bounds | undefined): FieldInfo {
  if (b?.min !== undefined) i.min = b.min;
  if (b?.max !== undefined) i.max = b.max;
  return i;
}

export function size(doc: string, o: Bounds & { default: number }): Field<number>;
export function size(doc: string, o: Bounds & { optional: true }): Field<number | undefined>;
export function size(doc: string, o?: Bounds): Field<number>;
export function size(doc: string, o?: Bounds & Opt<number>): Field<number | undefined> {
  return { schema: withDefault(bounded(sizeSchema, o, formatSize), o), info: withBounds(info('size', doc, 'bytes', o, formatSize), o) };
}

/** A size, or the word `unlimited` (held as Infinity): a bandwidth with no limit. */
export function sizeOrUnlimited(doc: string, o: Bounds & { default: number }): Field<number> {
  const inner = bounded(sizeSchema, o, formatSize);
  const schema = z.unknown().transform((v, ctx): number => {
    if (v === 'unlimited') return Infinity;
    const r = inner.safeParse(v);
    if (!r.success) { for (const i of r.error.issues) ctx.addIssue({ code: 'custom', message: `${i.message} (or unlimited)` }); return z.NEVER; }
    return r.data;
  });
  return { schema: withDefault(schema, o), info: withBounds(info('size', doc, 'bytes', o, formatSize), o) };
}

export function time(doc: string, o: Bounds & { default: number }): Field<number>;
export function time(doc: string, o: Bounds & { optional: true }): Field<number | undefined>;
export function time(doc: string, o?: Bounds): Field<number>;
export function time(doc: string, o?: Bounds & Opt<number>): Field<number | undefined> {
  return { schema: withDefault(bounded(timeSchema, o, formatTime), o), info: withBounds(info('time', doc, 'ns', o, formatTime), o) };
}

export function int(doc: string, o: Bounds & { default: number }): Field<number>;
export function int(doc: string, o: Bounds & { optional: true }): Field<number | undefined>;
export function int(doc: string, o: Bounds): Field<number>;
export function int(doc: string, o: Bounds & Opt<number>): Field<number | undefined> {
  let s = z.number().int();
  if (o.min !== undefined) s = s.min(o.min);
  if (o.max !== undefined) s = s.max(o.max);
  const i = info('int', doc, null, o);
  if (o.min !== undefined) i.min = o.min;
  if (o.max !== undefined) i.max = o.max;
  return { schema: withDefault(s, o), info: i };
}

export function num(doc: string, o: Bounds & { default: number }): Field<number>;
export function num(doc: string, o: Bounds): Field<number>;
export function num(doc: string, o: Bounds & Opt<number>): Field<number | undefined> {
  let s = z.number();
  if (o.min !== undefined) s = s.min(o.min);
  if (o.max !== undefined) s = s.max(o.max);
  const i = info('number', doc, null, o);
  if (o.min !== undefined) i.min = o.min;
  if (o.max !== undefined) i.max = o.max;
  return { schema: withDefault(s, o), info: i };
}

export function bool(doc: string, o: { default: boolean }): Field<boolean> {
  return { schema: withDefault(z.boolean(), o), info: info('boolean', doc, null, o) };
}

export function oneOf<const V extends readonly [string, ...string[]]>(doc: string, values: V, o: { default: V[number] }): Field<V[number]>;
export function oneOf<const V extends readonly [string, ...string[]]>(doc: string, values: V, o: { optional: true }): Field<V[number] | undefined>;
export function oneOf<const V extends readonly [string, ...string[]]>(doc: string, values: V): Field<V[number]>;
export function oneOf<const V extends readonly [string, ...string[]]>(doc: string, values: V, o?: Opt<V[number]>): Field<V[number] | undefined> {
  const i = info('enum', doc, null, o);
  i.values = values;
  return { schema: withDefault(z.enum(values) as unknown as z.ZodType<V[number], unknown>, o), info: i };
}

export function str(doc: string, o: { default: string }): Field<string>;
export function str(doc: string, o: { optional: true }): Field<string | undefined>;
export function str(doc: string): Field<string>;
export function str(doc: string, o?: Opt<string>): Field<string | undefined> {
  return { schema: withDefault(z.string().min(1), o), info: info('string', doc, null, o) };
}

/**
 * A number or a word, as written to a /proc or /sys file (`echo V > ...`); what is
 * allowed depends on the rest of the entry, which the action's refine checks.
 */
export function scalar(doc: string): Field<number | string> {
  return { schema: z.union([z.number(), z.string().min(1)], { error: () => 'expected a number or a word' }), info: info('scalar', doc, null, undefined) };
}

/** A GFP mask by kernel names; the default is given as a mask. */
export function gfp(doc: string, o: { default: number }): Field<number> {
  return { schema: withDefault(gfpSchema, o), info: info('gfp', doc, null, o, gfpName) };
}
