/**
 * Host scenarios side by side (compare.ts's mmtests layout) and the `run` summary of
 * one: what a fleet engineer asks of an overcommitted host — how far it overcommitted,
 * what the host paid (swap, OOM kills), what the guests paid (stalls, OOM kills, host
 * swap-ins, slower workloads) and what the policy did (balloon churn, how long balloons
 * lagged their targets).
 */
import type { CompareRow } from './compare.js';
import type { HostResultDocument } from '../scenario/host_runner.js';

const MiB = 2 ** 20;

function sum(doc: HostResultDocument, f: (v: HostResultDocument['vms'][number]) => number): number {
  let s = 0;
  for (const v of doc.vms) s += f(v);
  return s;
}

/** Elapsed seconds of every finished process_fault (a burst's faulting) in the document. */
function faultElapsed(doc: HostResultDocument): number[] {
  const out: number[] = [];
  for (const v of doc.vms) for (const e of v.events) {
    if (e.kind !== 'process_fault') continue;
    const x = (e as { elapsed_ns?: number }).elapsed_ns;
    if (typeof x === 'number') out.push(x / 1e9);
  }
  return out;
}

function builds(doc: HostResultDocument): Array<{ elapsed_s: number | null; user_s: number; jobs: number }> {
  return doc.vms.flatMap((v) => v.workloads?.kernel_build ?? []);
}

/** The rows of `balloonlab compare` for host scenarios. */
export function hostCompareRows(): CompareRow<HostResultDocument>[] {
  const mem = (d: HostResultDocument) => d.host.memory_bytes;
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined);
  return [
    { label: 'VMs started', value: (d) => d.vms.length },
    { label: 'Overcommit nominal (RAM/host)', decimals: 2, value: (d) => (d.host.series[0] ? d.host.series[0][3] / mem(d) : undefined) },
    { label: 'Overcommit logical mean', decimals: 2, value: (d) => mean(d.host.series.map((s) => s[4] / mem(d))) },
    { label: 'Overcommit logical min', decimals: 2, value: (d) => (d.host.series.length ? Math.min(...d.host.series.map((s) => s[4] / mem(d))) : undefined) },
    { label: 'Host free min (MiB)', decimals: 1, value: (d) => d.host.min_free_bytes / MiB },
    { label: 'Host free mean (MiB)', decimals: 1, value: (d) => mean(d.host.series.map((s) => s[1] / MiB)) },
    { label: 'Host swap peak (MiB)', decimals: 1, value: (d) => d.host.peak_swap_used_bytes / MiB },
    { label: 'Host swap-ins (pages)', value: (d) => d.host.pswpin },
    { label: 'Host swap-outs (pages)', value: (d) => d.host.pswpout },
    { label: 'Host swap-in stall (s)', decimals: 3, value: (d) => sum(d, (v) => v.host_swap_in_s) },
    { label: 'Host direct reclaim stall (s)', decimals: 3, value: (d) => sum(d, (v) => v.host_reclaim_s) },
    { label: 'Host OOM kills (VMs)', value: (d) => d.host.oom_kills.length },
    { label: 'Guest OOM kills', value: (d) => sum(d, (v) => v.oom_kill) },
    { label: 'Guest allocstall', value: (d) => sum(d, (v) => v.allocstall) },
    { label: 'Guest reclaim stall (s)', decimals: 3, value: (d) => sum(d, (v) => Math.max(0, v.stall_s - v.host_swap_in_s - v.host_reclaim_s)) },
    { label: 'Guest swap-ins (pages)', value: (d) => sum(d, (v) => v.vmstat.pswpin ?? 0) },
    { label: 'Time inflating behind (VM-s)', value: (d) => sum(d, (v) => v.behind_target_s.inflate) },
    { label: 'Time deflating behind (VM-s)', value: (d) => sum(d, (v) => v.behind_target_s.deflate) },
    { label: 'Balloon churn (pages)', value: (d) => sum(d, (v) => v.balloon.inflated + v.balloon.deflated) },
    { label: 'Balloon commands', value: (d) => d.host.balloon_commands },
    { label: 'Free page reported (pages)', value: (d) => sum(d, (v) => v.reported_pages) },
    { label: 'Burst fault elapsed mean (s)', decimals: 3, value: (d) => mean(faultElapsed(d)) },
    { label: 'Burst fault elapsed max (s)', decimals: 3, value: (d) => { const x = faultElapsed(d); return x.length ? Math.max(...x) : undefined; } },
    { label: 'Workload entries failed', value: (d) => sum(d, (v) => v.events.filter((e) => e.kind === 'skipped' && String((e as { reason?: string }).reason).startsWith('failed')).length) },
    { label: 'Builds finished', value: (d) => (builds(d).length ? builds(d).filter((b) => b.elapsed_s !== null).length : undefined) },
    { label: 'Build elapsed mean (s)', decimals: 2, value: (d) => mean(builds(d).flatMap((b) => (b.elapsed_s === null ? [] : [b.elapsed_s]))) },
    // elapsed over the CPU time per job: 1.00 when the compilers never waited (the units each build draws differ between runs)
    { label: 'Build slowdown (elapsed/CPU)', decimals: 3, value: (d) => mean(builds(d).flatMap((b) => (b.elapsed_s === null || b.user_s <= 0 ? [] : [(b.elapsed_s * b.jobs) / b.user_s]))) },
    { label: 'Virtual time (s)', decimals: 1, value: (d) => d.duration_ns / 1e9 },
  ];
}

/** `balloonlab run`'s summary of a host scenario. */
export function hostSummary(doc: HostResultDocument, fmtTime: (ns: number) => string): string {
  const h = doc.host;
  const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  const lines: string[] = [];
  lines.push(`scenario ${doc.scenario}  seed ${doc.seed}  host ${mib(h.memory_bytes)} swap ${mib(h.swap_bytes)}  ${doc.vms.length} VMs  policy ${h.policy}`);
  lines.push(`simulated ${fmtTime(doc.duration_ns)} in ${doc.wall_ms.toFixed(0)} ms wall`);
  lines.push(`host free ${mib(h.free_bytes)} (min ${mib(h.min_free_bytes)})  used ${mib(h.used_bytes)}  swap ${mib(h.swap_used_bytes)} (peak ${mib(h.peak_swap_used_bytes)})  swap-ins ${h.pswpin}  swap-outs ${h.pswpout}  kswapd runs ${h.kswapd_runs}  direct reclaims ${h.direct_reclaims}`);
  for (const k of h.oom_kills) lines.push(`host OOM kill at ${fmtTime(k.t_ns)}: ${k.vm} (rss ${mib(k.rss_bytes)}, swap ${mib(k.swap_bytes)})`);
  lines.push(`policy ${h.policy}: ${h.policy_runs} runs, ${h.balloon_commands} balloon commands`);
  for (const v of doc.vms) {
    const state = v.running ? 'running' : `killed at ${fmtTime(v.killed_at_ns ?? 0)}`;
    lines.push(`  ${v.name.padEnd(14)} ${state.padEnd(18)} rss ${mib(v.rss_bytes).padStart(11)}  swap ${mib(v.swap_bytes).padStart(10)}  host swap-ins ${String(v.host_swap_ins).padStart(7)}  balloon ${mib(v.balloon.actual_pages * 4096).padStart(11)} (target ${mib(v.balloon.target_pages * 4096)})  allocstall ${v.allocstall}  oom_kill ${v.oom_kill}`);
  }
  return lines.join('\n') + '\n';
}
