/**
 * Sizes and times as users write them: `4GiB`, `512MiB`, `4096KiB`, a plain number of
 * bytes; `250ms`, `60s`, `5m`, a plain number of nanoseconds. Binary units only for
 * sizes (a kernel engineer's GiB), so `4GB` is refused with the allowed list.
 */
import { InputError } from '../sim/errors.js';

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4,
};
const TIME_UNITS: Readonly<Record<string, number>> = {
  ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};

export const SIZE_UNIT_NAMES = Object.keys(SIZE_UNITS).join(', ');
export const TIME_UNIT_NAMES = Object.keys(TIME_UNITS).join(', ');

/** Thrown for a value that is not a size or time; the message says what is allowed. */
export class UnitError extends InputError {}

function parseWithUnits(text: string, units: Readonly<Record<string, number>>, what: string, names: string): number {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) throw new UnitError(`"${text}" is not a ${what} (write a number with a unit: ${names})`);
  const value = Number(m[1]);
  const unit = m[2] || (what === 'size' ? 'B' : 'ns');
  const mult = units[unit];
  if (mult === undefined) throw new UnitError(`unknown unit "${unit}" in "${text}" (allowed: ${names})`);
  if (value < 0) throw new UnitError(`${what} must not be negative (got "${text}")`);
  const result = value * mult;
  if (!Number.isSafeInteger(Math.round(result))) throw new UnitError(`${what} "${text}" is too large`);
  return Math.round(result);
}

/** Parses a size into bytes. */
export function parseSize(v: string | number): number {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0) throw new UnitError(`size must be a whole, non-negative number of bytes (got ${v})`);
    return v;
  }
  return parseWithUnits(v, SIZE_UNITS, 'size', SIZE_UNIT_NAMES);
}

/** Parses a time into nanoseconds. */
export function parseTime(v: string | number): number {
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || v < 0) throw new UnitError(`time must be a non-negative number of nanoseconds (got ${v})`);
    return Math.round(v);
  }
  return parseWithUnits(v, TIME_UNITS, 'time', TIME_UNIT_NAMES);
}

/** Formats bytes with the largest binary unit that divides them (for messages). */
export function formatSize(bytes: number): string {
  for (const [u, m] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= m && bytes % m === 0) return `${bytes / m}${u}`;
  }
  return `${bytes}B`;
}

/** Formats nanoseconds compactly (for messages and tables). */
export function formatTime(ns: number): string {
  if (ns === 0) return '0s';
  if (ns >= 60e9 && ns % 60e9 === 0) return `${ns / 60e9}m`;
  if (ns >= 1e9) return `${+(ns / 1e9).toFixed(3)}s`;
  if (ns >= 1e6) return `${+(ns / 1e6).toFixed(3)}ms`;
  if (ns >= 1e3) return `${+(ns / 1e3).toFixed(3)}us`;
  return `${ns}ns`;
}
