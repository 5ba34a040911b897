/**
 * Writeback: NR_FILE_DIRTY accounting, the flusher's periodic run (dirty_expire_centisecs
 * old pages every dirty_writeback_centisecs), background writeback past
 * dirty_background_ratio, and balance_dirty_pages pausing a writer past dirty_ratio.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createGuest, defaultGuestConfig } from '../../src/guest/guest.js';
import { getProcess, readFilePages } from '../../src/guest/mm/process.js';
import { dirtyThresholds } from '../../src/guest/mm/page_writeback.js';
import { globalDirtyLimits } from '../../src/guest/mm/vmstat.js';
import { truncateInodePages } from '../../src/guest/mm/filemap.js';
import { simRunUntil } from '../../src/sim/clock.js';
import { checkPgdat } from '../../src/guest/mm/check.js';
import { NodeStat } from '../../src/guest/mm/vmstat_items.js';

const MiB = 1024 * 1024;

test('dirty pages below the background threshold are written back once older than dirty_expire_centisecs, by the 5 s flusher', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 1024 * MiB }));
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  const { background, dirty } = dirtyThresholds(pg);
  assert.ok(background > 4000 && dirty > background, `thresholds ${background} / ${dirty}`);
  assert.deepEqual([background, dirty], globalDirtyLimits(pg), 'the thresholds /proc/vmstat prints (nr_dirty_background_threshold, nr_dirty_threshold)');
  readFilePages(pg, p, 4000, true);
  assert.equal(pg.nodeStat[NodeStat.nr_dirty], 4000);
  assert.equal(checkPgdat(pg), null);
  simRunUntil(g.sim, 29e9);
  assert.equal(pg.nodeStat[NodeStat.nr_dirty], 4000, 'not yet expired');
  simRunUntil(g.sim, 35.5e9);
  assert.equal(pg.nodeStat[NodeStat.nr_dirty], 0, 'the run after 30 s wrote them');
  assert.equal(pg.nodeStat[NodeStat.nr_written], 4000);
  assert.ok(pg.daemonNs > 0, 'the flusher\'s I/O is daemon time');
  assert.equal(checkPgdat(pg), null);
});

test('past dirty_background_ratio the flusher is woken at once; past dirty_ratio the writer pauses while the excess is written', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 1024 * MiB }));
  const pg = g.pgdat;
  const p = getProcess(g.procs, 1);
  const { background, dirty } = dirtyThresholds(pg);
  const io0 = pg.tasks.ioWaitNs;
  readFilePages(pg, p, dirty + 20000, true);
  const now = dirtyThresholds(pg).dirty;
  assert.ok(Math.abs(now - dirty) < dirty / 50, 'the threshold moved little as the writes filled memory');
  assert.ok(pg.nodeStat[NodeStat.nr_dirty]! <= now + 32, `the writer was held at the hard threshold (${pg.nodeStat[NodeStat.nr_dirty]} of ${now})`);
  assert.ok(pg.tasks.ioWaitNs - io0 >= 19000 * pg.costs.writebackPage, 'and paused (slept) for the device time of the excess');
  simRunUntil(g.sim, 1e6);
  assert.ok(pg.nodeStat[NodeStat.nr_dirty]! <= dirtyThresholds(pg).background, `background writeback brought it under ${background}`);
  assert.equal(checkPgdat(pg), null);
  // truncating the file cancels what is still dirty (no write)
  const w0 = pg.nodeStat[NodeStat.nr_written]!;
  truncateInodePages(pg, p);
  assert.equal(pg.nodeStat[NodeStat.nr_dirty], 0);
  assert.equal(pg.nodeStat[NodeStat.nr_written], w0);
  assert.equal(checkPgdat(pg), null);
});

test('vm.dirty_writeback_centisecs 0 stops the periodic flusher; the expired pages stay dirty', () => {
  const g = createGuest(defaultGuestConfig({ memoryBytes: 1024 * MiB }));
  const pg = g.pgdat;
  pg.sysctl.dirtyWritebackCentisecs = 0;
  readFilePages(pg, getProcess(g.procs, 1), 1000, true);
  simRunUntil(g.sim, 60e9);
  assert.equal(pg.nodeStat[NodeStat.nr_dirty], 1000);
});
