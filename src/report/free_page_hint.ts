/**
 * The result document's `balloon.free_page_hint`: what free page hinting did and cost
 * in a run, whichever design ran (upstream's cmd_id protocol or the v33 series' buffer
 * walked under the zone lock), read from the driver's hint log and the device's hint
 * rounds. `compare` turns it into the hint rows (scenarios/hint-designs.yaml). A run
 * has it when its scenario names the design (`balloon.free_page_hint: upstream | v33`);
 * `true` leaves the document as it always was.
 */
import { type VirtioBalloon, hintLogDuring } from '../guest/drivers/virtio_balloon.js';
import type { BalloonDevice } from '../host/virtio_balloon.js';

export type FreePageHintSummary = {
  design: 'upstream' | 'v33';
  /** v33's buffer rule (null upstream). */
  buffer: 'fixed' | 'sized' | null;
  /** Reports the driver made, and requests the device sent. */
  reports: number;
  requests: number;
  /**
   * The first request the guest answered (in scenarios/hint-designs.yaml: the first
   * migration's first): when the host asked, how long until the guest's answer was
   * complete (upstream: the work of its last block done, or the host's stop at a bitmap
   * sync if that came first; v33: its buffer handed over), the guest's free memory when the
   * report began and the share of it hinted; v33's buffer and lock holds; the zeroing
   * it cost under init_on_alloc. Null when no request was answered.
   */
  first: {
    request_ns: number; latency_ns: number; free_pages: number; free_max_order_pages: number; hinted_pages: number; share_pct: number;
    buffer_pages: number; lock_hold_ns: number; max_lock_hold_ns: number; zeroed_pages: number; zero_ns: number; stopped_by_host: boolean;
  } | null;
  /** Every report together. */
  totals: {
    hinted_pages: number; lock_hold_ns: number; max_lock_hold_ns: number; zeroed_pages: number; zero_ns: number;
    buffer_alloc_failures: number; stale_buffers_dropped: number;
  };
  /**
   * While the guest hinted (from a report's start until it held nothing for the host:
   * upstream's DONE, v33's buffer handed over): its other allocations' waits for a zone
   * lock, direct reclaim stalls, OOM kills, and the held blocks the shrinker took back.
   */
  during_hinting: { ns: number; alloc_lock_waits: number; alloc_lock_wait_ns: number; allocstalls: number; oom_kills: number; blocks_shrunk: number };
};

/** The summary of a run's free page hinting (the driver's log, the device's rounds). */
export function freePageHintSummary(drv: VirtioBalloon, dev: BalloonDevice | null): FreePageHintSummary {
  const log = drv.hintLog, t = log.totals, d = hintLogDuring(drv);
  const v33 = drv.hint.name === 'v33';
  const rounds = dev?.hintRounds ?? [];
  const answered = rounds.findIndex((r) => r.endNs >= 0);
  let first: FreePageHintSummary['first'] = null;
  if (answered >= 0 && log.reports.length > 0) {
    const r = rounds[answered]!;
    // the driver's report that answered it: the first one that began at or after the request
    const rep = log.reports.find((x) => x.startNs >= r.requestNs) ?? log.reports[0]!;
    // until the guest's report was done (its last step's work included), or the host stopped it
    const end = r.byHost ? r.endNs : Math.max(r.endNs, rep.endNs);
    first = {
      request_ns: r.requestNs, latency_ns: end - r.requestNs, free_pages: rep.freePages, free_max_order_pages: rep.freeMaxOrderPages,
      hinted_pages: r.pages, share_pct: rep.freePages > 0 ? Math.round((r.pages / rep.freePages) * 10000) / 100 : 0,
      buffer_pages: rep.bufferPages, lock_hold_ns: rep.lockHoldNs, max_lock_hold_ns: rep.maxLockHoldNs,
      zeroed_pages: rep.zeroedPages, zero_ns: rep.zeroNs, stopped_by_host: r.byHost,
    };
  }
  return {
    design: drv.hint.name, buffer: v33 ? drv.opts.hintBuffer : null, reports: log.nReports, requests: rounds.length, first,
    totals: {
      hinted_pages: t.hintedPages, lock_hold_ns: t.lockHoldNs, max_lock_hold_ns: t.maxLockHoldNs, zeroed_pages: t.zeroedPages, zero_ns: t.zeroNs,
      buffer_alloc_failures: t.bufferAllocFailures, stale_buffers_dropped: dev?.hintStaleDropped ?? 0,
    },
    during_hinting: { ns: d.ns, alloc_lock_waits: d.lockWaits, alloc_lock_wait_ns: d.lockWaitNs, allocstalls: d.allocstalls, oom_kills: d.oomKills, blocks_shrunk: d.shrunkBlocks },
  };
}
