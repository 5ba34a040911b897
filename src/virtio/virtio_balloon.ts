/**
 * The virtio memory balloon on the wire (VIRTIO 1.2 §5.5 "Traditional Memory Balloon
 * Device"; Linux include/uapi/linux/virtio_balloon.h): feature bits, queue order,
 * the configuration layout, statistics tags and the free-page-hint command ids. Both
 * the guest's driver and the host's device read these; neither reads the other.
 */
import { hasFeature } from './transport.js';

/** Device ID of the traditional memory balloon. */
export const VIRTIO_ID_BALLOON = 5;

/** Feature bits (§5.5.3). Bit 5 is VIRTIO_BALLOON_F_PAGE_REPORTING in the spec, _REPORTING in Linux. */
export const VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
export const VIRTIO_BALLOON_F_STATS_VQ = 1;
export const VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
export const VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3;
export const VIRTIO_BALLOON_F_PAGE_POISON = 4;
export const VIRTIO_BALLOON_F_REPORTING = 5;

export const BALLOON_FEATURE_NAMES: Readonly<Record<number, string>> = {
  0: 'MUST_TELL_HOST', 1: 'STATS_VQ', 2: 'DEFLATE_ON_OOM', 3: 'FREE_PAGE_HINT', 4: 'PAGE_POISON', 5: 'REPORTING',
};

/** Balloon PFNs are always in 4 KiB units (VIRTIO_BALLOON_PFN_SHIFT), whatever the guest's page size. */
export const VIRTIO_BALLOON_PFN_SHIFT = 12;

/**
 * struct virtio_balloon_config (§5.5.4), little-endian even for legacy devices:
 *   le32 num_pages;              target, written by the device
 *   le32 actual;                 written by the driver
 *   le32 free_page_hint_cmd_id;  iff FREE_PAGE_HINT (read-only to the driver)
 *   le32 poison_val;             iff PAGE_POISON (written by the driver before DRIVER_OK)
 */
export const VIRTIO_BALLOON_CONFIG_NUM_PAGES = 0;
export const VIRTIO_BALLOON_CONFIG_ACTUAL = 4;
export const VIRTIO_BALLOON_CONFIG_FREE_PAGE_HINT_CMD_ID = 8;
export const VIRTIO_BALLOON_CONFIG_POISON_VAL = 12;
export const VIRTIO_BALLOON_CONFIG_SIZE = 16;

/** Free-page-hint command ids with a fixed meaning; a report uses ids from 2 up. */
export const VIRTIO_BALLOON_CMD_ID_STOP = 0;
export const VIRTIO_BALLOON_CMD_ID_DONE = 1;

/**
 * The v33 interface (Wei Wang, "[PATCH v33 2/4] virtio-balloon:
 * VIRTIO_BALLOON_F_FREE_PAGE_HINT", linux-mm 2018-06-15, Message-Id
 * <1529037793-35521-3-git-send-email-wei.w.wang@intel.com>; never merged): the same
 * feature bit and queue, but the config word at offset 8 is `__u32 host_cmd`, whose bit 0
 * asks for a report, and the driver answers with one output buffer holding
 * struct virtio_balloon_free_page_hints { __le32 num_hints; __le32 size; __le64 buf[]; }:
 * how many entries, the bytes each covers, then each free block's guest-physical address.
 */
export const VIRTIO_BALLOON_CONFIG_HOST_CMD = 8;
export const VIRTIO_BALLOON_HOST_CMD_FREE_PAGE_HINT = 1 << 0;
/** Bytes of struct virtio_balloon_free_page_hints before buf[] (num_hints, size), and of one entry. */
export const VIRTIO_BALLOON_FREE_PAGE_HINTS_HDR_BYTES = 8;
export const VIRTIO_BALLOON_FREE_PAGE_HINT_ENTRY_BYTES = 8;

/**
 * Statistics tags (§5.5.6.3 for 0-9; 10-15 are Linux's extensions since 6.12, which
 * QEMU and Firecracker accept but the spec does not yet define).
 */
export const enum BalloonStat {
  swapIn = 0,
  swapOut = 1,
  majflt = 2,
  minflt = 3,
  memfree = 4,
  memtot = 5,
  avail = 6,
  caches = 7,
  htlbPgalloc = 8,
  htlbPgfail = 9,
  oomKill = 10,
  allocStall = 11,
  asyncScan = 12,
  directScan = 13,
  asyncReclaim = 14,
  directReclaim = 15,
}
export const VIRTIO_BALLOON_S_NR = 16;
/** One stat on the wire: struct virtio_balloon_stat { le16 tag; le64 val; } __attribute__((packed)). */
export const VIRTIO_BALLOON_STAT_SIZE = 10;

/** The names QEMU's guest-stats property gives each tag (hw/virtio/virtio-balloon.c balloon_stat_names). */
export const BALLOON_STAT_NAMES: readonly string[] = [
  'stat-swap-in', 'stat-swap-out', 'stat-major-faults', 'stat-minor-faults', 'stat-free-memory', 'stat-total-memory',
  'stat-available-memory', 'stat-disk-caches', 'stat-htlb-pgalloc', 'stat-htlb-pgfail', 'stat-oom-kills',
  'stat-alloc-stalls', 'stat-async-scans', 'stat-direct-scans', 'stat-async-reclaims', 'stat-direct-reclaims',
];

/** The five queues in spec order; each exists only with its feature (inflate and deflate always). */
export const enum BalloonQueue {
  inflate = 0,
  deflate = 1,
  stats = 2,
  freePage = 3,
  reporting = 4,
}
export const BALLOON_QUEUE_NAMES: readonly string[] = ['inflate', 'deflate', 'stats', 'free_page', 'reporting'];
export const NR_BALLOON_QUEUES = 5;

/** Whether a queue exists under a feature set. */
export function balloonQueueExists(features: bigint, q: BalloonQueue): boolean {
  switch (q) {
    case BalloonQueue.inflate: case BalloonQueue.deflate: return true;
    case BalloonQueue.stats: return hasFeature(features, VIRTIO_BALLOON_F_STATS_VQ);
    case BalloonQueue.freePage: return hasFeature(features, VIRTIO_BALLOON_F_FREE_PAGE_HINT);
    case BalloonQueue.reporting: return hasFeature(features, VIRTIO_BALLOON_F_REPORTING);
  }
}

/**
 * Transport queue index of each balloon queue under a feature set, -1 where the queue
 * does not exist. Queues that exist are numbered densely in spec order: what Linux's
 * vp_find_vqs does (it skips absent queues without using an index), and what QEMU,
 * Firecracker and crosvm agree with whenever the driver accepts the queue features the
 * device offers (RESEARCH.md §1.3).
 */
export function balloonQueueIndices(features: bigint): Int32Array {
  const idx = new Int32Array(NR_BALLOON_QUEUES).fill(-1);
  let next = 0;
  for (let q = 0; q < NR_BALLOON_QUEUES; q++) if (balloonQueueExists(features, q)) idx[q] = next++;
  return idx;
}
