/**
 * What the balloon device saw, summed up from its trace (host/virtio_balloon.ts
 * BalloonTraceEvent): PFNs per inflate and deflate buffer, `actual` writes, stats
 * buffers and their tags, the free-page-hint rounds (the guest's command ids and the
 * ranges between them), page reports. The differential reports compare these between
 * a model guest and a real one driving the same device.
 */
import type { BalloonDevice, BalloonTraceEvent } from '../host/virtio_balloon.js';
import { FREE_PAGE_HINT_STATUS_NAMES } from '../host/virtio_balloon.js';
import { BALLOON_FEATURE_NAMES, VIRTIO_BALLOON_CMD_ID_STOP, VIRTIO_BALLOON_CMD_ID_DONE } from '../virtio/virtio_balloon.js';
import { hasFeature, VIRTIO_CONFIG_S_NEEDS_RESET } from '../virtio/transport.js';
import { TARGET_PAGE_SIZE } from '../virtio/guest_memory.js';

export type Distribution = { count: number; total: number; min: number; median: number; max: number };

export function distribution(xs: number[]): Distribution {
  if (xs.length === 0) return { count: 0, total: 0, min: 0, median: 0, max: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { count: s.length, total: s.reduce((a, b) => a + b, 0), min: s[0]!, median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, max: s[s.length - 1]! };
}

/** One free-page-hint round as the device saw it: the guest's command ids and the ranges it hinted. */
export type HintRound = {
  /** Command ids the guest sent, in order: the round's id (its START echo), then STOP (0). */
  echoed: number[];
  /** The guest sent STOP. */
  stop: boolean;
  /** Hinted ranges in the order they came: guest-physical address and pages. */
  ranges: Array<{ addr: number; pages: number }>;
};

export type TraceSummary = {
  inflate: Distribution;
  deflate: Distribution;
  /** `actual` writes the device saw (one per round of the driver's balloon work). */
  actual_updates: number;
  stats_buffers: number;
  /** Every tag any stats buffer carried. */
  stats_tags: number[];
  /** Every command id the guest sent on the free-page queue, in order (START echoes, STOP = 0). */
  hint_ids_echoed: number[];
  hint_ranges: Distribution;
  hint_rounds: HintRound[];
  reports: { buffers: number; blocks: number; pages: number };
};

/** Splits the trace's free-page-queue traffic into rounds: an id >= 2 opens one, STOP closes it. */
export function hintRoundsOf(trace: readonly BalloonTraceEvent[]): HintRound[] {
  const rounds: HintRound[] = [];
  let cur: HintRound | null = null;
  for (const e of trace) {
    if (e.kind === 'hint-cmd') {
      if (e.id !== VIRTIO_BALLOON_CMD_ID_STOP && e.id !== VIRTIO_BALLOON_CMD_ID_DONE) {
        cur = { echoed: [e.id], stop: false, ranges: [] };
        rounds.push(cur);
      } else if (cur) {
        cur.echoed.push(e.id);
        if (e.id === VIRTIO_BALLOON_CMD_ID_STOP) cur.stop = true;
        cur = null;
      }
    } else if (e.kind === 'hint' && cur) cur.ranges.push({ addr: e.addr, pages: e.pages });
  }
  return rounds;
}

export function summariseTrace(trace: readonly BalloonTraceEvent[]): TraceSummary {
  const inf: number[] = [], def: number[] = [], hint: number[] = [], ids: number[] = [];
  const tags = new Set<number>();
  let actual = 0, stats = 0;
  const reports = { buffers: 0, blocks: 0, pages: 0 };
  for (const e of trace) {
    switch (e.kind) {
      case 'inflate': inf.push(e.pfns); break;
      case 'deflate': def.push(e.pfns); break;
      case 'actual': actual++; break;
      case 'stats': stats++; for (const t of e.tags) tags.add(t); break;
      case 'hint-cmd': ids.push(e.id); break;
      case 'hint': hint.push(e.pages); break;
      case 'report': reports.buffers++; reports.blocks += e.blocks; reports.pages += e.pages; break;
    }
  }
  return {
    inflate: distribution(inf), deflate: distribution(def), actual_updates: actual, stats_buffers: stats,
    stats_tags: [...tags].sort((a, b) => a - b), hint_ids_echoed: ids, hint_ranges: distribution(hint), hint_rounds: hintRoundsOf(trace), reports,
  };
}

/** The device's view at the end of a run: features, errors, counters, sizes, the trace summed up. */
export type DeviceView = {
  features: string[];
  needs_reset: string | null;
  counters: BalloonDevice['counters'];
  /** query-balloon's actual and the target, as the guest's logical size in bytes. */
  actual_bytes: number;
  target_bytes: number;
  free_page_hint_status: string;
  /** The trace from the device's creation (a real guest's starts at its driver's probe). */
  trace: TraceSummary;
  /** The trace from the timeline's start on: the same window on both sides of a differential run. */
  timeline_trace: TraceSummary;
};

/** `from`: the trace index where the timeline started. */
export function deviceView(dev: BalloonDevice, from = 0): DeviceView {
  const features: string[] = [];
  for (const [bit, name] of Object.entries(BALLOON_FEATURE_NAMES)) if (hasFeature(dev.t.driverFeatures, Number(bit))) features.push(name);
  const trace = dev.trace ?? [];
  return {
    features,
    needs_reset: dev.t.status & VIRTIO_CONFIG_S_NEEDS_RESET ? dev.t.error ?? 'NEEDS_RESET' : dev.t.error,
    counters: { ...dev.counters },
    actual_bytes: dev.ramSize - dev.actual * TARGET_PAGE_SIZE,
    target_bytes: dev.ramSize - dev.numPages * TARGET_PAGE_SIZE,
    free_page_hint_status: FREE_PAGE_HINT_STATUS_NAMES[dev.freePageHintStatus]!,
    trace: summariseTrace(trace),
    timeline_trace: summariseTrace(trace.slice(from)),
  };
}
