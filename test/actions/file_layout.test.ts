/**
 * The file streams of process_file (src/actions/file_layout.ts): the real QEMU side lays
 * a process's pages out in files as the model's file sets count them (dcache.ts
 * vfsFilePagesAdded), and the host prepares on the scratch disk exactly the pages the
 * reads will read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadScenarioText, runScenario } from '../../src/scenario/runner.js';
import { fileStep, NEW_STREAM, type FileStream } from '../../src/actions/file_layout.js';
import { qemuScratchPlan } from '../../src/integrations/qemu/side.js';

const sc = (timeline: string) => loadScenarioText(`name: t\nguest: { memory: 1GiB }\ntimeline:\n${timeline}\n`, 't.yaml').base;

test('fileStep: a call fills the last file up to file_size, then new files; without file_size one file grows', () => {
  const a = fileStep(NEW_STREAM, 10, 4);
  assert.deepEqual(a.chunks, [{ file: 0, off: 0, pages: 4 }, { file: 1, off: 0, pages: 4 }, { file: 2, off: 0, pages: 2 }]);
  assert.deepEqual(a.next, { files: 3, lastPages: 2 });
  const b = fileStep(a.next, 3, 4);
  assert.deepEqual([b.first, b.off], [2, 2]);
  assert.deepEqual(b.chunks, [{ file: 2, off: 2, pages: 2 }, { file: 3, off: 0, pages: 1 }]);
  // a full last file is not grown: the next call starts a new one
  const full = fileStep(NEW_STREAM, 8, 4).next;
  assert.deepEqual([fileStep(full, 1, 4).first, fileStep(full, 1, 4).off], [2, 0]);
  // one unbounded file, extended by every call; a later file_size fills it no further if it is past it
  const one = fileStep(fileStep(NEW_STREAM, 5, undefined).next, 3, undefined);
  assert.deepEqual(one.chunks, [{ file: 0, off: 5, pages: 3 }]);
  assert.deepEqual(fileStep(one.next, 2, 4).chunks, [{ file: 1, off: 0, pages: 2 }]);
  assert.deepEqual(fileStep(NEW_STREAM, 0, 4).next, NEW_STREAM);
});

test('fileStep replays the model\'s file sets: the same files and the same pages in the last file, call after call', () => {
  const entries: Array<[number, number, number | undefined, boolean]> = [
    [100, 10, 4, true], [100, 3, 4, false], [100, 7, undefined, true], [101, 33, undefined, false], [101, 5, 16, true], [100, 4, 4, true], [102, 1, 1, false],
  ];
  const s = sc(entries.map(([pid, pages, fp, dirty]) => `  - { at: 0s, action: process_file, pid: ${pid}, size: ${pages * 4096}, dirty: ${dirty}${fp ? `, file_size: ${fp * 4096}` : ''} }`).join('\n'));
  const r = runScenario(s);
  const streams = new Map<number, FileStream>();
  for (const [pid, pages, fp] of entries) streams.set(pid, fileStep(streams.get(pid) ?? NEW_STREAM, pages, fp).next);
  for (const [pid, st] of streams) {
    const set = r.guest.pgdat.slab.sb!.sets.get(pid)!;
    assert.equal(set.filesTotal, st.files, `pid ${pid}: files`);
    assert.equal(set.growPages, st.lastPages, `pid ${pid}: pages in the last file`);
  }
});

test('planScratch: no scratch disk without process_file; reads are prepared page for page, writes are not; the size has room', () => {
  assert.equal(qemuScratchPlan(sc('  - { at: 0s, action: snapshot }')), null);
  const p = qemuScratchPlan(sc([
    '  - { at: 0s, action: process_file, pid: 100, size: 8KiB, file_size: 16KiB, dirty: true }',
    '  - { at: 0s, action: process_file, pid: 100, size: 24KiB, file_size: 16KiB }',
    '  - { at: 0s, action: process_file, pid: 200, size: 1MiB }',
  ].join('\n')))!;
  assert.deepEqual(p.prepared, [{ name: 'p100.0', off: 2, pages: 2 }, { name: 'p100.1', off: 0, pages: 4 }, { name: 'p200.0', off: 0, pages: 256 }]);
  assert.equal(p.pages, 2 + 6 + 256);
  assert.equal(p.bytes, 2 ** 30);
  const big = qemuScratchPlan(sc('  - { at: 0s, action: process_file, pid: 1, size: 4GiB, dirty: true }'))!;
  assert.ok(big.bytes >= 4 * 2 ** 30 * 1.125 && big.bytes % (64 * 2 ** 20) === 0);
  assert.deepEqual(big.prepared, []);
});
