#!/usr/bin/env node
// Turns the raw measurements of gcc-kernel-units.sh into
//   <out>/results.json   every figure, per unit and per process
//   <out>/table.md       the per-unit table and the distribution summaries of docs/workloads.md
//   <repo>/src/workloads/gcc_profile.ts   the data module (when a repo path is given)
//
//   node scripts/measure/analyze-strace.mjs OUT_DIR UNITS_FILE [REPO_DIR]
//
// OUT_DIR has one directory per unit (slashes in the unit's path replaced by '_') holding
// cmd.txt, sub.time and total.time (/usr/bin/time -v of cc1 and as, and of the whole
// compile), object.bytes, and st.<pid> (strace -f -ff -ttt -s 0 of the compile, one file per
// process). A directory may instead hold only st.<pid> files (a run in the 6.1 guest).
import { readFileSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const PAGE = 4096;
const HUGE = 2 * 1024 * 1024;
const MiB = 1024 * 1024;
/** Op codes of the compact operation sequences in gcc_profile.ts. */
const OP = { mmap: 0, munmap: 1, brk: 2, madviseDontneed: 3, mremap: 4 };

// ------------------------------------------------------------------ strace parsing

/** Splits a syscall's argument text at top-level commas. */
function splitArgs(s) {
  const out = [];
  let depth = 0, cur = '', q = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) { cur += c; if (c === '\\') { cur += s[++i] ?? ''; } else if (c === '"') q = false; continue; }
    if (c === '"') { q = true; cur += c; continue; }
    if (c === '[' || c === '{' || c === '(') depth++;
    if (c === ']' || c === '}' || c === ')') depth--;
    if (c === ',' && depth === 0) { out.push(cur.trim()); cur = ''; continue; }
    cur += c;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

const LINE = /^(\d+\.\d+) (\w+)\((.*)\)\s+= (-?\w+)(?: (\w+))?/;

function num(s) {
  if (s === 'NULL') return 0;
  return s.startsWith('0x') ? Number.parseInt(s, 16) : Number.parseInt(s, 10);
}

/** One process's trace, after its last successful execve. */
function parseProcess(text) {
  const lines = text.split('\n');
  let prog = null;
  let calls = [];
  for (const line of lines) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, ts, name, argText, ret, errno] = m;
    const call = { t: Number(ts), name, args: splitArgs(argText), ret: ret === '?' ? NaN : num(ret), errno: errno ?? null };
    if (name === 'execve' && call.ret === 0) {
      prog = JSON.parse(call.args[0]);
      calls = [];
    }
    calls.push(call);
  }
  return { prog, calls };
}

// ------------------------------------------------------------------ interval helpers

/** Live intervals [s, e) sorted by s; each carries the id of the mapping that made it. */
function removeRange(list, s, e) {
  const out = [];
  let removed = 0;
  for (const iv of list) {
    if (iv.e <= s || iv.s >= e) { out.push(iv); continue; }
    removed += Math.min(iv.e, e) - Math.max(iv.s, s);
    if (iv.s < s) out.push({ ...iv, e: s });
    if (iv.e > e) out.push({ ...iv, s: e });
  }
  out.sort((a, b) => a.s - b.s);
  return { list: out, removed };
}

/** Union of intervals (adjacent ones merged: one VMA when their flags match, as all of cc1's anonymous mappings' do). */
function merged(list) {
  const out = [];
  for (const iv of list) {
    const last = out[out.length - 1];
    if (last && iv.s <= last.e) last.e = Math.max(last.e, iv.e);
    else out.push({ s: iv.s, e: iv.e });
  }
  return out;
}

/** 2 MiB-aligned 2 MiB ranges wholly inside one interval. */
function hugeBlocks(ivs) {
  let n = 0;
  for (const iv of ivs) {
    const a = Math.ceil(iv.s / HUGE), b = Math.floor(iv.e / HUGE);
    if (b > a) n += b - a;
  }
  return n;
}

// ------------------------------------------------------------------ per-process analysis

function analyzeMemory(calls) {
  let live = []; // live anonymous mappings of the mmap area
  let brk0 = null, brkCur = null, brkMax = null;
  let brkSteps = 0, brkShrinks = 0, brkGrowBytes = 0;
  let first = null; // address of the first anonymous mmap
  let prev = null; // previous anonymous mmap {s, e}
  const mm = { count: 0, bytes: 0, exact2M: 0, aligned2M: 0, exact2MAligned: 0, adjPrev: 0, adjLive: 0, fixed: 0, sizes: {} };
  const un = { count: 0, bytes: 0, whole: 0, partial: 0, file: 0 };
  const mad = { count: 0, bytes: 0, dontneed: 0, byAdvice: {} };
  const mre = { count: 0 };
  let fileMmaps = 0, mprotects = 0;
  let mappedNow = 0, mappedMax = 0, hugeMax = 0, hugeBrkMax = 0, vmasMax = 0, hugeAtEnd = 0;
  const ops = [];
  const timeline = []; // [t, anon bytes mapped (mmap area + brk heap)]
  const pg = (x) => Math.round(x / PAGE);
  const off = (a) => (first === null ? 0 : pg(a - first));
  const after = (t) => {
    const heap = brk0 === null ? 0 : brkCur - brk0;
    const m = merged(live);
    mappedNow = live.reduce((s, iv) => s + (iv.e - iv.s), 0) + heap;
    mappedMax = Math.max(mappedMax, mappedNow);
    const h = hugeBlocks(m);
    hugeMax = Math.max(hugeMax, h);
    hugeAtEnd = h;
    if (brk0 !== null) hugeBrkMax = Math.max(hugeBrkMax, hugeBlocks([{ s: brk0, e: brkCur }]));
    vmasMax = Math.max(vmasMax, m.length);
    timeline.push([t, mappedNow]);
  };
  for (const c of calls) {
    const { name, args, ret, t } = c;
    if (name === 'mmap') {
      if (ret < 0 || Number.isNaN(ret)) continue;
      const len = Math.ceil(num(args[1]) / PAGE) * PAGE;
      const flags = args[3];
      if (!flags.includes('MAP_ANONYMOUS')) { fileMmaps++; continue; }
      const s = ret, e = ret + len;
      if (first === null) first = s;
      mm.count++; mm.bytes += len;
      mm.sizes[len] = (mm.sizes[len] ?? 0) + 1;
      if (flags.includes('MAP_FIXED')) mm.fixed++;
      if (len === HUGE) mm.exact2M++;
      if (s % HUGE === 0) { mm.aligned2M++; if (len === HUGE) mm.exact2MAligned++; }
      if (prev && (e === prev.s || prev.e === s)) mm.adjPrev++;
      if (live.some((iv) => iv.e === s || iv.s === e)) mm.adjLive++;
      // MAP_FIXED replaces what was there
      live = removeRange(live, s, e).list;
      live.push({ s, e, id: mm.count });
      live.sort((a, b) => a.s - b.s);
      prev = { s, e };
      ops.push(OP.mmap, pg(len), off(s));
      after(t);
    } else if (name === 'munmap') {
      if (ret !== 0) continue;
      const s = num(args[0]), len = Math.ceil(num(args[1]) / PAGE) * PAGE, e = s + len;
      const hit = live.filter((iv) => iv.s < e && iv.e > s);
      if (hit.length === 0) { un.file++; continue; }
      un.count++; un.bytes += len;
      if (hit.length === 1 && hit[0].s === s && hit[0].e === e) un.whole++; else un.partial++;
      live = removeRange(live, s, e).list;
      ops.push(OP.munmap, pg(len), off(s));
      after(t);
    } else if (name === 'mremap') {
      if (ret < 0 || Number.isNaN(ret)) continue;
      const os = num(args[0]), olen = Math.ceil(num(args[1]) / PAGE) * PAGE, nlen = Math.ceil(num(args[2]) / PAGE) * PAGE;
      mre.count++;
      live = removeRange(live, os, os + olen).list;
      live.push({ s: ret, e: ret + nlen, id: -1 });
      live.sort((a, b) => a.s - b.s);
      ops.push(OP.mremap, pg(nlen), off(ret));
      after(t);
    } else if (name === 'madvise') {
      if (ret !== 0) continue;
      const s = num(args[0]), len = num(args[1]), adv = args[2];
      mad.count++; mad.bytes += len;
      mad.byAdvice[adv] = (mad.byAdvice[adv] ?? 0) + 1;
      if (adv === 'MADV_DONTNEED') { mad.dontneed++; ops.push(OP.madviseDontneed, pg(len), off(s)); }
    } else if (name === 'brk') {
      if (Number.isNaN(ret)) continue;
      if (brk0 === null) { brk0 = ret; brkCur = ret; brkMax = ret; continue; }
      if (ret !== brkCur) {
        const d = ret - brkCur;
        if (d > 0) { brkSteps++; brkGrowBytes += d; } else brkShrinks++;
        brkCur = ret;
        brkMax = Math.max(brkMax, ret);
        ops.push(OP.brk, pg(d), pg(ret - brk0));
        after(t);
      }
    } else if (name === 'mprotect') {
      mprotects++;
    }
  }
  return {
    firstAnonMod2MPages: first === null ? null : pg(first % HUGE),
    mmap: mm, munmap: un, madvise: mad, mremap: mre, fileMmaps, mprotects,
    brk: { steps: brkSteps, shrinks: brkShrinks, growBytes: brkGrowBytes, peakBytes: brk0 === null ? 0 : brkMax - brk0, endBytes: brk0 === null ? 0 : brkCur - brk0 },
    peakAnonMappedBytes: mappedMax, huge2MMax: hugeMax, huge2MAtEnd: hugeAtEnd, huge2MBrkMax: hugeBrkMax, anonVmasMax: vmasMax,
    ops, timeline,
  };
}

function analyzeFiles(calls) {
  const fds = new Map();
  const rd = new Map(); // path -> bytes read
  const wr = new Map();
  let opens = 0, opensFailed = 0, reads = 0;
  for (const c of calls) {
    const { name, args, ret } = c;
    if (name === 'openat' || name === 'open') {
      const pathArg = name === 'openat' ? args[1] : args[0];
      const flags = name === 'openat' ? args[2] : args[1];
      if (ret < 0) { opensFailed++; continue; }
      opens++;
      const path = JSON.parse(pathArg);
      fds.set(ret, { path, write: /O_WRONLY|O_RDWR/.test(flags) });
      if (!/O_WRONLY/.test(flags) && !rd.has(path)) rd.set(path, 0);
    } else if (name === 'close') {
      fds.delete(num(args[0]));
    } else if ((name === 'read' || name === 'pread64') && ret > 0) {
      const f = fds.get(num(args[0]));
      if (!f) continue;
      reads++;
      rd.set(f.path, (rd.get(f.path) ?? 0) + ret);
    } else if (name === 'write' && ret > 0) {
      const f = fds.get(num(args[0]));
      if (!f) continue;
      wr.set(f.path, (wr.get(f.path) ?? 0) + ret);
    }
  }
  let srcFiles = 0, srcBytes = 0, otherFiles = 0, otherBytes = 0;
  for (const [p, b] of rd) {
    if (p.startsWith('/')) { otherFiles++; otherBytes += b; } else { srcFiles++; srcBytes += b; }
  }
  const written = [...wr].map(([path, bytes]) => ({ path, bytes }));
  return { opens, opensFailed, reads, srcFiles, srcBytes, otherFiles, otherBytes, written };
}

/** /usr/bin/time -v output: one record per "Command being timed". */
function parseTime(text) {
  const recs = [];
  let cur = null;
  for (const line of text.split('\n')) {
    const m = /^\s*([^:]+(?:\([^)]*\))?[^:]*): (.*)$/.exec(line);
    if (!m) continue;
    const [, k, v] = m;
    if (k.trim() === 'Command being timed') { cur = { cmd: v.replace(/^"|"$/g, '') }; recs.push(cur); continue; }
    if (!cur) { cur = { cmd: '' }; recs.push(cur); }
    cur[k.trim()] = v.trim();
  }
  return recs.map((r) => {
    const el = r['Elapsed (wall clock) time (h:mm:ss or m:ss)'] ?? '0:0';
    const parts = el.split(':').map(Number);
    const elapsed = parts.reduce((a, b) => a * 60 + b, 0);
    return {
      cmd: r.cmd,
      user: Number(r['User time (seconds)']), sys: Number(r['System time (seconds)']), elapsed,
      maxRssKiB: Number(r['Maximum resident set size (kbytes)']),
      minflt: Number(r['Minor (reclaiming a frame) page faults']),
      majflt: Number(r['Major (requiring I/O) page faults']),
      fsIn: Number(r['File system inputs']), fsOut: Number(r['File system outputs']),
    };
  });
}

// ------------------------------------------------------------------ per unit

function kindOf(prog) {
  if (prog === null) return null;
  if (prog.endsWith('/cc1')) return 'cc1';
  if (prog.endsWith('/as')) return 'as';
  if (/\/(x86_64-linux-gnu-)?gcc(-12)?$/.test(prog)) return 'gcc';
  return null;
}

function analyzeUnit(dir, unit) {
  const procs = {};
  for (const f of readdirSync(dir).filter((n) => /^st\.\d+$/.test(n)).sort()) {
    const { prog, calls } = parseProcess(readFileSync(join(dir, f), 'utf8'));
    const k = kindOf(prog);
    if (k === null) continue;
    const mem = analyzeMemory(calls);
    const files = analyzeFiles(calls);
    const t0 = calls[0]?.t ?? 0, t1 = calls[calls.length - 1]?.t ?? 0;
    procs[k] = { prog, tracedSeconds: t1 - t0, t0, mem, files };
  }
  const out = { unit, procs };
  if (existsSync(join(dir, 'sub.time'))) {
    const subs = parseTime(readFileSync(join(dir, 'sub.time'), 'utf8'));
    const total = parseTime(readFileSync(join(dir, 'total.time'), 'utf8'))[0];
    const cc1 = subs.find((s) => /\/cc1 /.test(s.cmd));
    const as = subs.find((s) => /^as /.test(s.cmd));
    out.time = {
      cc1, as, total,
      // the driver by difference: the whole compile less cc1 and as (and the two time processes)
      driver: {
        user: +(total.user - cc1.user - as.user).toFixed(2), sys: +(total.sys - cc1.sys - as.sys).toFixed(2),
        minflt: total.minflt - cc1.minflt - as.minflt,
      },
    };
    out.objectBytes = existsSync(join(dir, 'object.bytes')) ? Number(readFileSync(join(dir, 'object.bytes'), 'utf8')) : null;
    out.loadavg = existsSync(join(dir, 'loadavg.before')) ? readFileSync(join(dir, 'loadavg.before'), 'utf8').split(' ').slice(0, 3).map(Number) : [NaN];
  }
  return out;
}

// ------------------------------------------------------------------ summaries

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

function summary(xs) {
  return { median: quantile(xs, 0.5), p10: quantile(xs, 0.1), p90: quantile(xs, 0.9), min: Math.min(...xs), max: Math.max(...xs) };
}

const r1 = (x) => Math.round(x * 10) / 10;
const r2 = (x) => Math.round(x * 100) / 100;

/** One unit's row (host run): the record of gcc_profile.ts. */
function record(u) {
  const c = u.procs.cc1, t = u.time;
  const m = c.mem, f = c.files;
  const asm = f.written.find((w) => w.path.endsWith('.s'));
  /** Anonymous memory mapped at each tenth of cc1's traced run, MiB. */
  const deciles = [];
  const tl = m.timeline, t0 = c.t0, span = c.tracedSeconds;
  for (let i = 1; i <= 10; i++) {
    const at = t0 + (span * i) / 10;
    let v = 0;
    for (const [tt, b] of tl) { if (tt <= at) v = b; else break; }
    deciles.push(r1(v / MiB));
  }
  return {
    unit: u.unit,
    cc1: {
      userS: t.cc1.user, sysS: t.cc1.sys, elapsedS: t.cc1.elapsed, peakRssMiB: r1(t.cc1.maxRssKiB / 1024), minorFaults: t.cc1.minflt,
      anonMmaps: m.mmap.count, anonMmapMiB: r1(m.mmap.bytes / MiB), mmaps2MiB: m.mmap.exact2M, mmapsAligned2MiB: m.mmap.aligned2M,
      mmaps2MiBAligned: m.mmap.exact2MAligned, mmapsAdjacentPrev: m.mmap.adjPrev, mmapsAdjacentLive: m.mmap.adjLive,
      brkMiB: r1(m.brk.peakBytes / MiB), brkSteps: m.brk.steps, brkShrinks: m.brk.shrinks,
      munmaps: m.munmap.count, munmapsWhole: m.munmap.whole, munmapsPartial: m.munmap.partial, munmapMiB: r1(m.munmap.bytes / MiB),
      madvise: m.madvise.count, madviseDontneed: m.madvise.dontneed, mremaps: m.mremap.count,
      peakAnonMappedMiB: r1(m.peakAnonMappedBytes / MiB), huge2MMax: m.huge2MMax, huge2MBrkMax: m.huge2MBrkMax, anonVmasMax: m.anonVmasMax,
      firstAnonMod2MPages: m.firstAnonMod2MPages,
      filesRead: f.srcFiles, bytesRead: f.srcBytes, otherFilesRead: f.otherFiles, otherBytesRead: f.otherBytes,
      opens: f.opens, opensFailed: f.opensFailed, asmBytes: asm ? asm.bytes : 0, mappedMiBByTenth: deciles,
    },
    as: { userS: t.as.user, sysS: t.as.sys, peakRssMiB: r1(t.as.maxRssKiB / 1024), minorFaults: t.as.minflt, anonMmaps: u.procs.as.mem.mmap.count, brkMiB: r1(u.procs.as.mem.brk.peakBytes / MiB) },
    driver: { userS: t.driver.user, sysS: t.driver.sys, minorFaults: t.driver.minflt, anonMmaps: u.procs.gcc.mem.mmap.count, brkMiB: r1(u.procs.gcc.mem.brk.peakBytes / MiB) },
    objectBytes: u.objectBytes,
    loadavg1: u.loadavg[0],
  };
}

function tableMd(recs) {
  const head = ['unit', 'cc1 CPU s', 'peak RSS MiB', 'minor faults', 'anon mmaps', 'anon MiB', '=2MiB', '2MiB-aligned', 'adj. prev', 'brk MiB', 'munmaps (whole/partial)', 'madvise', 'files read', 'bytes read', 'object bytes'];
  const rows = recs.map((r) => {
    const c = r.cc1;
    return [r.unit, r2(c.userS + c.sysS), c.peakRssMiB, c.minorFaults, c.anonMmaps, c.anonMmapMiB, c.mmaps2MiB, c.mmapsAligned2MiB, c.mmapsAdjacentPrev,
      c.brkMiB, `${c.munmaps} (${c.munmapsWhole}/${c.munmapsPartial})`, c.madvise, c.filesRead, c.bytesRead, r.objectBytes];
  });
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((x) => `| ${x.join(' | ')} |`)];
  return lines.join('\n');
}

function summariesMd(recs) {
  const cols = {
    'cc1 CPU s (user+sys)': recs.map((r) => r.cc1.userS + r.cc1.sysS),
    'cc1 elapsed s': recs.map((r) => r.cc1.elapsedS),
    'cc1 peak RSS MiB': recs.map((r) => r.cc1.peakRssMiB),
    'cc1 minor faults': recs.map((r) => r.cc1.minorFaults),
    'cc1 anon mmaps': recs.map((r) => r.cc1.anonMmaps),
    'cc1 anon mmap MiB': recs.map((r) => r.cc1.anonMmapMiB),
    'cc1 exactly-2MiB mmaps': recs.map((r) => r.cc1.mmaps2MiB),
    'cc1 brk MiB': recs.map((r) => r.cc1.brkMiB),
    'cc1 peak anon mapped MiB (mmap+brk)': recs.map((r) => r.cc1.peakAnonMappedMiB),
    'cc1 max 2MiB-aligned 2MiB ranges inside anon VMAs': recs.map((r) => r.cc1.huge2MMax),
    'cc1 munmaps': recs.map((r) => r.cc1.munmaps),
    'cc1 files read (kernel tree)': recs.map((r) => r.cc1.filesRead),
    'cc1 bytes read (kernel tree) KiB': recs.map((r) => r.cc1.bytesRead / 1024),
    'cc1 .s written KiB': recs.map((r) => r.cc1.asmBytes / 1024),
    'object bytes KiB': recs.map((r) => r.objectBytes / 1024),
    'as CPU s': recs.map((r) => r.as.userS + r.as.sysS),
    'as peak RSS MiB': recs.map((r) => r.as.peakRssMiB),
    'driver CPU s (by difference)': recs.map((r) => r.driver.userS + r.driver.sysS),
  };
  const lines = ['| quantity | median | p10 | p90 | min | max |', '|---|---|---|---|---|---|'];
  for (const [k, xs] of Object.entries(cols)) {
    const s = summary(xs);
    lines.push(`| ${k} | ${r2(s.median)} | ${r2(s.p10)} | ${r2(s.p90)} | ${r2(s.min)} | ${r2(s.max)} |`);
  }
  return lines.join('\n');
}

// ------------------------------------------------------------------ the data module

/** The numeric fields of one host unit, in the order of gcc_profile.ts's rows, with their doc. */
const FIELDS = [
  ['userS', 'cc1 user CPU seconds (/usr/bin/time -v)'], ['sysS', 'cc1 system CPU seconds'], ['elapsedS', 'cc1 wall seconds'],
  ['peakRssMiB', 'cc1 maximum resident set size, MiB'], ['minorFaults', 'cc1 minor page faults'],
  ['anonMmaps', 'cc1 anonymous mmaps (all, ld.so\'s and glibc\'s included)'], ['anonMmapMiB', 'their total size, MiB'],
  ['mmaps2MiB', 'of them exactly 2 MiB long'], ['mmapsAligned2MiB', 'at a 2 MiB-aligned address (any length)'],
  ['mmaps2MiBAligned', 'exactly 2 MiB long and 2 MiB-aligned'],
  ['mmapsAdjacentPrev', 'directly below or above the previous anonymous mmap'],
  ['mmapsAdjacentLive', 'directly next to some live anonymous mapping (one VMA with it)'],
  ['brkMiB', 'highest brk above the initial break, MiB'], ['brkSteps', 'brk growth calls'], ['brkShrinks', 'brk shrink calls'],
  ['munmaps', 'munmaps of anonymous memory'], ['munmapsWhole', 'of them exactly one whole mapping'],
  ['munmapsPartial', 'of them part of one mapping or several'], ['munmapMiB', 'MiB unmapped'],
  ['madvise', 'madvise calls'], ['mremaps', 'mremap calls'],
  ['peakAnonMappedMiB', 'most anonymous memory mapped at once (mmap area plus brk heap), MiB'],
  ['huge2MMax', 'most 2 MiB-aligned 2 MiB ranges wholly inside the merged anonymous mappings of the mmap area at once'],
  ['huge2MBrkMax', 'the same inside the brk heap'], ['anonVmasMax', 'most separate anonymous regions of the mmap area at once'],
  ['filesRead', 'kernel-tree files cc1 read (distinct paths)'], ['bytesRead', 'bytes cc1 read from them (re-reads included)'],
  ['opens', 'cc1 successful opens'], ['opensFailed', 'cc1 failed opens (include path search)'],
  ['asmBytes', 'assembly cc1 wrote (the .s as reads)'], ['objectBytes', 'object as wrote (before objtool)'],
  ['asUserS', 'as user CPU seconds'], ['asSysS', 'as system CPU seconds'], ['asPeakRssMiB', 'as maximum resident set size, MiB'],
  ['asMinorFaults', 'as minor faults'],
  ['driverUserS', 'gcc driver user CPU seconds (the whole compile\'s less cc1\'s and as\'s)'], ['driverSysS', 'gcc driver system CPU seconds (likewise)'],
  ['driverMinorFaults', 'gcc driver minor faults (likewise)'],
  ['loadavg1', '1-minute load average of the machine when the unit was timed'],
];

function row(r) {
  const c = r.cc1;
  const v = {
    ...c, objectBytes: r.objectBytes, asUserS: r.as.userS, asSysS: r.as.sysS, asPeakRssMiB: r.as.peakRssMiB, asMinorFaults: r.as.minorFaults,
    driverUserS: r.driver.userS, driverSysS: r.driver.sysS, driverMinorFaults: r.driver.minorFaults, loadavg1: r.loadavg1,
  };
  return [...FIELDS.map(([k]) => v[k]), ...c.mappedMiBByTenth];
}

function tsModule(recs, meta, guest, small) {
  const names = recs.map((r) => JSON.stringify(r.unit)).join(', ');
  const rows = recs.map((r) => `  [${row(r).join(',')}],`).join('\n');
  const fieldDocs = FIELDS.map(([k, d]) => `  /** ${d} */\n  '${k}',`).join('\n');
  const gbody = guest.map((g) => `  ${JSON.stringify(g)},`).join('\n');
  const sbody = small.map((g) => `  ${JSON.stringify(g)},`).join('\n');
  return `/**
 * Measured memory behaviour of GCC compiling units of a Linux 6.1 x86_64_defconfig build:
 * data for re-deriving the \`kernel-build\` workload (kernel_build.ts) from measurements.
 *
 * Generated by scripts/measure/analyze-strace.mjs from the runs of
 * scripts/measure/gcc-kernel-units.sh (host) and gcc-kernel-units-guest.sh (Linux 6.1 guest);
 * method, tables, and what GCC's and glibc's source say about the pattern: docs/workloads.md.
 * Do not edit by hand.
 *
 * Host: ${meta.host}
 * Every figure is measured. Times are of a shared 2-core machine (see loadavg1).
 */

/** Op codes of {@link GccGuestProfile.ops}. */
export const GCC_OP = { mmap: ${OP.mmap}, munmap: ${OP.munmap}, brk: ${OP.brk}, madviseDontneed: ${OP.madviseDontneed}, mremap: ${OP.mremap} } as const;

/** The numeric figures of a host unit, in the order of the rows below. */
export const GCC_UNIT_FIELDS = [
${fieldDocs}
] as const;

export type GccUnitField = (typeof GCC_UNIT_FIELDS)[number];

/** One compilation unit measured on the host: cc1 (the compiler proper), as, the gcc driver. */
export type GccUnitProfile = { readonly [K in GccUnitField]: number } & {
  /** Kbuild target (the object's path in the tree). */
  readonly unit: string;
  /** Anonymous memory cc1 had mapped at 10%, 20% ... 100% of its run under strace, MiB. */
  readonly mappedMiBByTenth: readonly number[];
};

const UNIT_NAMES: readonly string[] = [${names}];

/** GCC_UNIT_FIELDS' values, then mappedMiBByTenth's ten. */
const UNIT_ROWS: readonly (readonly number[])[] = [
${rows}
];

function toProfile(unit: string, r: readonly number[]): GccUnitProfile {
  const figures = {} as Record<GccUnitField, number>;
  GCC_UNIT_FIELDS.forEach((f, i) => { figures[f] = r[i] ?? Number.NaN; });
  return { ...figures, unit, mappedMiBByTenth: r.slice(GCC_UNIT_FIELDS.length) };
}

/** The ${recs.length} units measured on the host, one record each. */
export const GCC_KERNEL_UNITS: readonly GccUnitProfile[] = UNIT_NAMES.map((u, i) => toProfile(u, UNIT_ROWS[i] ?? []));

/**
 * Units' cc1 (the command \`gcc -###\` gives for kbuild's) run under strace in Debian's
 * Linux 6.1 (linux-image-6.1.0-57-cloud-amd64, the kernel the model follows) under QEMU: where
 * 6.1 places the mappings. Fields as the host's of the same name; thpAnonHugeMaxKiB is the
 * highest AnonHugePages of cc1's smaps_rollup sampled every 0.2 s (that kernel's THP is "always").
 */
export type GccGuestProfile = {
  readonly unit: string; readonly kernel: string; readonly anonMmaps: number; readonly anonMmapMiB: number; readonly mmaps2MiB: number;
  readonly mmapsAligned2MiB: number; readonly mmaps2MiBAligned: number; readonly mmapsAdjacentPrev: number; readonly mmapsAdjacentLive: number;
  readonly munmaps: number; readonly madvise: number; readonly brkMiB: number; readonly brkSteps: number; readonly peakAnonMappedMiB: number;
  readonly huge2MMax: number; readonly huge2MBrkMax: number; readonly anonVmasMax: number;
  /** The first anonymous mmap's address modulo 2 MiB, in pages (ASLR: random per run). */
  readonly firstAnonMod2MPages: number | null;
  readonly thpAnonHugeMaxKiB: number | null;
  /**
   * cc1's anonymous memory operations in order, as flat triples [op, pages, offset] (op: GCC_OP):
   * mmap, munmap, madvise(MADV_DONTNEED), mremap (new size and address): size in 4 KiB pages and
   * address in pages relative to cc1's first anonymous mmap (negative: below it, where top-down
   * placement puts nearly all); brk: signed change in pages, and the new break in pages above
   * the initial break (the brk heap is far from the mmap area).
   */
  readonly ops: readonly number[];
};

export const GCC_KERNEL_UNITS_GUEST_6_1: readonly GccGuestProfile[] = [
${gbody}
];

/**
 * Two units compiled on the host with the GC parameters GCC's heuristics give a 512 MiB
 * machine (--param=ggc-min-heapsize=65536 --param=ggc-min-expand=65) instead of this machine's
 * (131072 and 100, the caps, reached from 1 GiB of RAM on): GCC's collector then runs, and
 * releases pages (munmap, madvise MADV_DONTNEED).
 */
export type GccSmallRamProfile = {
  readonly unit: string; readonly peakRssMiB: number; readonly userS: number; readonly anonMmaps: number; readonly munmaps: number;
  readonly munmapsWhole: number; readonly munmapsPartial: number; readonly munmapMiB: number; readonly madviseDontneed: number;
  readonly madviseMiB: number; readonly peakAnonMappedMiB: number;
};

export const GCC_KERNEL_UNITS_SMALL_RAM: readonly GccSmallRamProfile[] = [
${sbody}
];
`;
}

function guestRecord(u, kernel, dir) {
  const m = u.procs.cc1.mem;
  let thp = null;
  if (existsSync(join(dir, 'thp.samples'))) {
    for (const l of readFileSync(join(dir, 'thp.samples'), 'utf8').split('\n')) {
      const x = /AnonHugePages:\s+(\d+)/.exec(l);
      if (x) thp = Math.max(thp ?? 0, Number(x[1]));
    }
  }
  return {
    unit: u.unit, kernel, anonMmaps: m.mmap.count, anonMmapMiB: r1(m.mmap.bytes / MiB), mmaps2MiB: m.mmap.exact2M, mmapsAligned2MiB: m.mmap.aligned2M,
    mmaps2MiBAligned: m.mmap.exact2MAligned, mmapsAdjacentPrev: m.mmap.adjPrev, mmapsAdjacentLive: m.mmap.adjLive, munmaps: m.munmap.count,
    madvise: m.madvise.count, brkMiB: r1(m.brk.peakBytes / MiB), brkSteps: m.brk.steps, peakAnonMappedMiB: r1(m.peakAnonMappedBytes / MiB),
    huge2MMax: m.huge2MMax, huge2MBrkMax: m.huge2MBrkMax, anonVmasMax: m.anonVmasMax, firstAnonMod2MPages: m.firstAnonMod2MPages,
    thpAnonHugeMaxKiB: thp, ops: m.ops,
  };
}

function smallRecord(u) {
  const m = u.procs.cc1.mem, t = u.time.cc1;
  return {
    unit: u.unit, peakRssMiB: r1(t.maxRssKiB / 1024), userS: t.user, anonMmaps: m.mmap.count, munmaps: m.munmap.count,
    munmapsWhole: m.munmap.whole, munmapsPartial: m.munmap.partial, munmapMiB: r1(m.munmap.bytes / MiB),
    madviseDontneed: m.madvise.dontneed, madviseMiB: r1(m.madvise.bytes / MiB), peakAnonMappedMiB: r1(m.peakAnonMappedBytes / MiB),
  };
}

// ------------------------------------------------------------------ main

const [outDir, unitsFile, repo] = process.argv.slice(2);
if (!outDir || !unitsFile) {
  console.error('usage: analyze-strace.mjs OUT_DIR UNITS_FILE [REPO_DIR]');
  process.exit(2);
}
const units = readFileSync(unitsFile, 'utf8').split('\n').map((s) => s.trim()).filter((s) => s && !s.startsWith('#'));
const analyzed = [];
for (const unit of units) {
  const dir = join(outDir, unit.replaceAll('/', '_'));
  if (!existsSync(join(dir, 'sub.time'))) { console.error(`skip ${unit}: not measured`); continue; }
  analyzed.push(analyzeUnit(dir, unit));
}
const recs = analyzed.map(record);
// the 6.1 guest's runs, when there are any (gcc-kernel-units-guest.sh)
const guestDir = join(outDir, 'guest61');
const guest = [];
let guestKernel = '';
if (existsSync(guestDir)) {
  guestKernel = existsSync(join(guestDir, 'uname.txt')) ? readFileSync(join(guestDir, 'uname.txt'), 'utf8').trim() : '6.1';
  for (const unit of units) {
    const dir = join(guestDir, unit.replaceAll('/', '_'));
    if (!existsSync(dir)) continue;
    const u = analyzeUnit(dir, unit);
    if (!u.procs.cc1) continue;
    analyzed.push({ ...u, set: 'guest61' });
    guest.push(guestRecord(u, guestKernel, dir));
  }
}
// the host runs with a small machine's GC parameters
const smallDir = join(outDir, 'smallram');
const small = [];
if (existsSync(smallDir)) {
  for (const unit of units) {
    const dir = join(smallDir, unit.replaceAll('/', '_'));
    if (!existsSync(join(dir, 'sub.time'))) continue;
    const u = analyzeUnit(dir, unit);
    analyzed.push({ ...u, set: 'smallram' });
    small.push(smallRecord(u));
  }
}
const machine = existsSync(join(outDir, 'machine.txt')) ? readFileSync(join(outDir, 'machine.txt'), 'utf8') : '';
const host = machine.split('\n').filter((l) => /^(uname|gcc|libc|linux-source) /.test(l)).join('; ');
writeFileSync(join(outDir, 'results.json'), JSON.stringify({ machine, analyzed: analyzed.map((u) => ({ ...u, procs: Object.fromEntries(Object.entries(u.procs).map(([k, p]) => [k, { ...p, mem: { ...p.mem, timeline: undefined } }])) })) }, null, 1));
const gTable = ['| unit | anon mmaps | anon MiB | =2MiB | 2MiB-aligned | =2MiB and aligned | adj. prev | adj. live | brk MiB | munmaps | madvise | peak anon MiB | max aligned 2MiB ranges in VMAs (mmap / brk) | max separate anon regions | AnonHugePages max KiB |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...guest.map((g) => `| ${g.unit} | ${g.anonMmaps} | ${g.anonMmapMiB} | ${g.mmaps2MiB} | ${g.mmapsAligned2MiB} | ${g.mmaps2MiBAligned} | ${g.mmapsAdjacentPrev} | ${g.mmapsAdjacentLive} | ${g.brkMiB} | ${g.munmaps} | ${g.madvise} | ${g.peakAnonMappedMiB} | ${g.huge2MMax} / ${g.huge2MBrkMax} | ${g.anonVmasMax} | ${g.thpAnonHugeMaxKiB ?? ''} |`)].join('\n');
const hostSame = ['| unit (host) | =2MiB and aligned | adj. prev | adj. live | max aligned 2MiB ranges in VMAs (mmap / brk) | max separate anon regions |', '|---|---|---|---|---|---|',
  ...recs.filter((r) => guest.some((g) => g.unit === r.unit)).map((r) => `| ${r.unit} | ${r.cc1.mmaps2MiBAligned} | ${r.cc1.mmapsAdjacentPrev} | ${r.cc1.mmapsAdjacentLive} | ${r.cc1.huge2MMax} / ${r.cc1.huge2MBrkMax} | ${r.cc1.anonVmasMax} |`)].join('\n');
const sTable = ['| unit | peak RSS MiB | user s | anon mmaps | munmaps (whole/partial) | munmap MiB | madvise DONTNEED | madvise MiB | peak anon MiB |', '|---|---|---|---|---|---|---|---|---|',
  ...small.map((g) => `| ${g.unit} | ${g.peakRssMiB} | ${g.userS} | ${g.anonMmaps} | ${g.munmaps} (${g.munmapsWhole}/${g.munmapsPartial}) | ${g.munmapMiB} | ${g.madviseDontneed} | ${g.madviseMiB} | ${g.peakAnonMappedMiB} |`)].join('\n');
writeFileSync(join(outDir, 'table.md'), `${tableMd(recs)}\n\n${summariesMd(recs)}\n\n${gTable}\n\n${hostSame}\n\n${sTable}\n`);
if (repo) {
  const ts = tsModule(recs, { host }, guest, small);
  writeFileSync(join(repo, 'src/workloads/gcc_profile.ts'), ts);
  console.log(`wrote src/workloads/gcc_profile.ts (${ts.length} bytes)`);
}
console.log(`analysed ${recs.length} units${guest.length ? `, ${guest.length} in the guest` : ''}; ${join(outDir, 'table.md')}`);
