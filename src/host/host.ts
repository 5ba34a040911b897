/**
 * The host: one Linux machine running many VMs (QEMU processes), whose RAM all the
 * guests share. Each VM's guest RAM is QEMU's anonymous memory (ram.ts): backed from
 * the guest's first write until the host discards it (balloon inflate, free page
 * reporting). When the guests' resident sets together leave too little free memory,
 * the host kernel reclaims, and since guest RAM is anonymous memory that means swapping
 * guest pages out; past its swap the host's OOM killer kills a QEMU process — the whole
 * VM stops and its memory comes back.
 *
 * What the host kernel does, much simplified (docs/model-limits.md):
 * - watermarks as mm/page_alloc.c computes them for one zone of the host's RAM
 *   (calculate_min_free_kbytes, __setup_per_zone_wmarks with watermark_scale_factor 10);
 * - kswapd woken below the low watermark reclaims until free memory is back at the high
 *   one; a guest write that finds free memory below the min watermark reclaims
 *   SWAP_CLUSTER_MAX pages itself first (direct reclaim; its vCPU waits);
 * - which pages: an approximation of the LRU — a CLOCK over each VM's pages (the
 *   referenced byte ram.ts sets on every write is the accessed bit), each VM scanned in
 *   proportion to its resident set as get_scan_count shares scanning between LRU lists;
 * - no swap left and free memory still below min: out_of_memory() kills the QEMU with
 *   the largest oom_badness (resident pages plus swap entries; every QEMU has
 *   oom_score_adj 0).
 *
 * It knows guests only as HostVms (their RAM and balloon device); what a kill does to
 * the guest (its clock stops) is the machine's business (machine/host_machine.ts).
 * Plain data and free functions; the host's time is `nowNs`, set by whoever runs the
 * VMs' clocks (scenario/host_runner.ts).
 */
import { type Sim, simAt } from '../sim/clock.js';
import type { CostTable } from '../sim/cost.js';
import { type HostVm } from './vm.js';
import { type RamBacking, type RamPool, RamPageState, ramSwapOut } from './ram.js';
import { TARGET_PAGE_SIZE } from '../virtio/guest_memory.js';

/** mm/vmscan.c SWAP_CLUSTER_MAX: the pages one direct reclaim pass tries to free. */
export const SWAP_CLUSTER_MAX = 32;
/** vm.watermark_scale_factor's default (mm/page_alloc.c): 10 / 10000 of the zone. */
export const WATERMARK_SCALE_FACTOR = 10;

export type HostConfig = {
  /** The host's RAM in bytes (MemTotal). */
  memoryBytes: number;
  /** The host's swap device in bytes (0: none; then reclaim cannot touch guest RAM and the OOM killer comes sooner). */
  swapBytes: number;
  /** What the host's own kernel, daemons and QEMUs' own allocations hold, bytes (not guest RAM). */
  reservedBytes: number;
};

/** One VM as the host sees it: a QEMU process and its guest RAM. */
export type HostGuest = {
  name: string;
  vm: HostVm;
  /** False once the OOM killer killed it. */
  running: boolean;
  killedAtNs: number | null;
  /** RSS and swap at the kill, pages. */
  killedRssPages: number;
  killedSwapPages: number;
  /** The reclaim scanner's CLOCK hand over this VM's guest-physical pages. */
  hand: number;
};

/** A host OOM kill. */
export type HostOomKill = { t_ns: number; vm: string; rss_bytes: number; swap_bytes: number };

export type Host = {
  config: HostConfig;
  /** The host's own clock (kswapd, policies); the VMs have theirs. */
  sim: Sim;
  costs: CostTable;
  /** Virtual time now, ns (set by the runner as it steps the VMs' clocks). */
  nowNs: number;
  totalPages: number;
  reservedPages: number;
  swapPages: number;
  /** The zone watermarks, pages (min, low, high). */
  wmarkMin: number;
  wmarkLow: number;
  wmarkHigh: number;
  /** Sums over every VM's RAM (ram.ts keeps them). */
  pool: RamPool;
  guests: HostGuest[];
  /** A kswapd run is scheduled. */
  kswapdPending: boolean;
  counters: {
    /** Pages the reclaim scanner looked at and swapped out (all VMs). */
    pgscan: number;
    pswpout: number;
    kswapdRuns: number;
    /** Direct reclaim passes taken in a guest's write, and the vCPU time they cost. */
    directReclaims: number;
    directReclaimNs: number;
    oomKills: number;
  };
  oomKills: HostOomKill[];
  /** The machine stops a VM the OOM killer chose (null: nobody listens). */
  onOomKill: ((index: number) => void) | null;
};

/** Integer square root, as the kernel's int_sqrt. */
function intSqrt(x: number): number {
  return Math.floor(Math.sqrt(x));
}

/**
 * @kernel mm/page_alloc.c calculate_min_free_kbytes, __setup_per_zone_wmarks
 * min_free_kbytes = sqrt(lowmem KiB x 16) clamped to [128, 262144]; the min watermark
 * is that many pages, low and high each add max(min/4, managed x
 * watermark_scale_factor / 10000).
 */
export function hostWatermarks(totalPages: number): { min: number; low: number; high: number } {
  const minFreeKbytes = Math.min(Math.max(intSqrt(totalPages * 4 * 16), 128), 262144);
  const min = Math.floor(minFreeKbytes / 4);
  const step = Math.max(Math.floor(min / 4), Math.floor((totalPages * WATERMARK_SCALE_FACTOR) / 10000));
  return { min, low: min + step, high: min + 2 * step };
}

export function createHost(config: HostConfig, sim: Sim, costs: CostTable): Host {
  const totalPages = Math.floor(config.memoryBytes / TARGET_PAGE_SIZE);
  const w = hostWatermarks(totalPages);
  return {
    config, sim, costs, nowNs: 0, totalPages, reservedPages: Math.ceil(config.reservedBytes / TARGET_PAGE_SIZE), swapPages: Math.floor(config.swapBytes / TARGET_PAGE_SIZE),
    wmarkMin: w.min, wmarkLow: w.low, wmarkHigh: w.high,
    pool: { residentPages: 0, swappedPages: 0 }, guests: [], kswapdPending: false,
    counters: { pgscan: 0, pswpout: 0, kswapdRuns: 0, directReclaims: 0, directReclaimNs: 0, oomKills: 0 },
    oomKills: [], onOomKill: null,
  };
}

/** Starts a VM on the host: its RAM joins the host's pool (what it has backed so far counts at once). Returns its index. */
export function hostAddVm(host: Host, name: string, vm: HostVm): number {
  const ram = vm.ram;
  if (ram.pool !== null) throw new RangeError(`${name}: this VM's RAM already belongs to a host`);
  ram.pool = host.pool;
  ram.referenced = new Uint8Array(ram.maxPhysPfn);
  host.pool.residentPages += ram.residentPages;
  host.pool.swappedPages += ram.swappedPages;
  host.guests.push({ name, vm, running: true, killedAtNs: null, killedRssPages: 0, killedSwapPages: 0, hand: 0 });
  return host.guests.length - 1;
}

/** Free host memory, pages (MemFree): what neither the host itself nor guest RAM holds. May go below 0 transiently; never past the OOM check. */
export function hostFreePages(host: Host): number {
  return host.totalPages - host.reservedPages - host.pool.residentPages;
}

/** Host swap in use, pages. */
export function hostSwapUsedPages(host: Host): number {
  return host.pool.swappedPages;
}

/**
 * What a management daemon reads on the host, bytes, with /proc/meminfo's names
 * (MemAvailable is MemFree here: guest RAM is anonymous memory and the model has no
 * host page cache), and /proc/zoneinfo's sums ChromeOS's concierge and resourced take:
 * the low watermarks, and totalreserve (high watermarks; the lowmem reserves of a
 * one-zone host are 0).
 */
export type HostMeminfo = {
  MemTotal: number; MemFree: number; MemAvailable: number; SwapTotal: number; SwapFree: number; AnonPages: number;
  zoneLowSum: number; totalreserve: number;
};

export function hostMeminfo(host: Host): HostMeminfo {
  const free = Math.max(0, hostFreePages(host)) * TARGET_PAGE_SIZE;
  return {
    MemTotal: host.totalPages * TARGET_PAGE_SIZE, MemFree: free, MemAvailable: free,
    SwapTotal: host.swapPages * TARGET_PAGE_SIZE, SwapFree: (host.swapPages - host.pool.swappedPages) * TARGET_PAGE_SIZE,
    AnonPages: host.pool.residentPages * TARGET_PAGE_SIZE,
    zoneLowSum: host.wmarkLow * TARGET_PAGE_SIZE, totalreserve: host.wmarkHigh * TARGET_PAGE_SIZE,
  };
}

/**
 * Swaps out up to `want` pages of one VM's RAM, moving its CLOCK hand: a resident page
 * whose referenced byte is set gets it cleared (a second chance), one without is
 * swapped out. Gives up after two turns of the hand. Returns [scanned, reclaimed].
 * NOTE: one pass over typed arrays, no allocation.
 */
function shrinkGuest(g: HostGuest, want: number, swapLeft: number): [number, number] {
  const ram: RamBacking = g.vm.ram;
  const st = ram.state, ref = ram.referenced!;
  const n = ram.maxPhysPfn;
  const limit = Math.min(want, swapLeft);
  let p = g.hand, scanned = 0, got = 0;
  for (let seen = 0; seen < 2 * n && got < limit; seen++) {
    if (st[p] === RamPageState.resident) {
      scanned++;
      if (ref[p] !== 0) ref[p] = 0;
      else { ramSwapOut(ram, p); got++; }
    }
    if (++p === n) p = 0;
  }
  g.hand = p;
  return [scanned, got];
}

/**
 * @kernel mm/vmscan.c shrink_node (the anonymous LRU only)
 * Reclaims up to `want` pages from the running VMs, each in proportion to its resident
 * set. Returns [scanned, reclaimed]; reclaims nothing once host swap is full.
 */
export function hostShrink(host: Host, want: number): [number, number] {
  let scanned = 0, reclaimed = 0;
  let resident = 0;
  for (const g of host.guests) if (g.running) resident += g.vm.ram.residentPages;
  if (resident <= 0 || want <= 0) return [0, 0];
  for (const g of host.guests) {
    if (!g.running) continue;
    const swapLeft = host.swapPages - host.pool.swappedPages;
    if (swapLeft <= 0) break;
    const share = Math.ceil((want * g.vm.ram.residentPages) / resident);
    if (share <= 0) continue;
    const [s, r] = shrinkGuest(g, share, swapLeft);
    scanned += s;
    reclaimed += r;
  }
  host.counters.pgscan += scanned;
  host.counters.pswpout += reclaimed;
  return [scanned, reclaimed];
}

/** @kernel mm/vmscan.c balance_pgdat: kswapd reclaims until free memory is at the high watermark. */
function kswapd(host: Host): void {
  host.kswapdPending = false;
  host.counters.kswapdRuns++;
  for (;;) {
    const need = host.wmarkHigh - hostFreePages(host);
    if (need <= 0) break;
    const [, got] = hostShrink(host, need);
    if (got === 0) break;
  }
}

/**
 * A guest's write faulted pages in on the host: the host's allocation path
 * (__alloc_pages with the zone watermarks). Below low, kswapd is woken; below min, the
 * faulting thread (the guest's vCPU) reclaims SWAP_CLUSTER_MAX pages itself, again
 * while free memory stays below min; when nothing can be reclaimed (host swap full),
 * the OOM killer picks a QEMU. Returns the vCPU time the direct reclaim took, ns.
 * NOTE: called from the guest's page-write seam; two compares when memory is plentiful.
 */
export function hostAllocCheck(host: Host): number {
  const free = hostFreePages(host);
  if (free >= host.wmarkLow) return 0;
  if (!host.kswapdPending) {
    host.kswapdPending = true;
    simAt(host.sim, host.nowNs, () => kswapd(host));
  }
  if (free >= host.wmarkMin) return 0;
  let ns = 0;
  while (hostFreePages(host) < host.wmarkMin) {
    const [scanned, got] = hostShrink(host, SWAP_CLUSTER_MAX);
    host.counters.directReclaims++;
    ns += scanned * host.costs.reclaimScanPage + got * host.costs.pageoutSubmit;
    if (got === 0) {
      if (!hostOomKill(host)) break;
    }
  }
  host.counters.directReclaimNs += ns;
  return ns;
}

/**
 * @kernel mm/oom_kill.c out_of_memory, oom_badness
 * Kills the running VM with the most resident and swapped pages (ties: the first
 * started). Its QEMU process exits: all its guest RAM and swap come back at once and
 * its RAM leaves the pool. Returns false when no VM is left to kill.
 */
export function hostOomKill(host: Host): boolean {
  let victim = -1, worst = -1;
  host.guests.forEach((g, i) => {
    if (!g.running) return;
    const badness = g.vm.ram.residentPages + g.vm.ram.swappedPages;
    if (badness > worst) { worst = badness; victim = i; }
  });
  if (victim < 0) return false;
  const g = host.guests[victim]!, ram = g.vm.ram;
  g.running = false;
  g.killedAtNs = host.nowNs;
  g.killedRssPages = ram.residentPages;
  g.killedSwapPages = ram.swappedPages;
  host.pool.residentPages -= ram.residentPages;
  host.pool.swappedPages -= ram.swappedPages;
  // the process's memory is gone; what its guest goes on writing before its clock stops counts nowhere
  ram.pool = null;
  ram.referenced = null;
  host.counters.oomKills++;
  host.oomKills.push({ t_ns: host.nowNs, vm: g.name, rss_bytes: g.killedRssPages * TARGET_PAGE_SIZE, swap_bytes: g.killedSwapPages * TARGET_PAGE_SIZE });
  host.onOomKill?.(victim);
  return true;
}

/**
 * Checks the host's accounting: the pool is the sum of the running VMs' resident and
 * swapped pages, host swap holds no more than the device, and guest RAM fits in host
 * memory plus swap. Returns null when all holds.
 */
export function checkHost(host: Host): string | null {
  let res = 0, sw = 0;
  for (const g of host.guests) {
    if (!g.running) continue;
    const ram = g.vm.ram;
    res += ram.residentPages;
    sw += ram.swappedPages;
  }
  const problems: string[] = [];
  if (res !== host.pool.residentPages) problems.push(`pool resident ${host.pool.residentPages}, VMs ${res}`);
  if (sw !== host.pool.swappedPages) problems.push(`pool swapped ${host.pool.swappedPages}, VMs ${sw}`);
  if (sw > host.swapPages) problems.push(`${sw} pages in host swap, the device holds ${host.swapPages}`);
  if (res + host.reservedPages > host.totalPages) problems.push(`guest RAM resident ${res} + reserved ${host.reservedPages} pages exceeds host memory ${host.totalPages}`);
  return problems.length ? problems.join('; ') : null;
}
