/**
 * Smoke test of the real guest: Debian's i386 kernel in v86 with v86's OWN
 * virtio-balloon device. Run with `npm run test:real-guest` after
 * scripts/real-guest/build-image.sh.
 *
 * Node 20's `node --test dist/test/` runs every .js file under a directory
 * named test, whatever its name, so `npm test` loads this file too: it skips
 * unless BALLOONLAB_REAL_GUEST=1 (which test:real-guest sets).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bootRealGuest, guestMemory } from '../../src/integrations/v86/boot.js';

const MEMORY_BYTES = 128 * 2 ** 20;
const SKIP = process.env.BALLOONLAB_REAL_GUEST === '1' ? false : 'real guest: run `npm run test:real-guest` (sets BALLOONLAB_REAL_GUEST=1)';

test('real guest boots, binds virtio_balloon to v86\'s device, reports plausible memory', { timeout: 180_000, skip: SKIP }, async (t) => {
  const guest = await bootRealGuest({ memoryBytes: MEMORY_BYTES, v86Options: { virtio_balloon: true } });
  try {
    t.diagnostic(`boot to prompt: ${(guest.bootMs / 1000).toFixed(1)} s`);
    assert.equal(guestMemory(guest.emulator).length, MEMORY_BYTES);

    const meminfo = await guest.run('cat /proc/meminfo');
    const m = /^MemTotal:\s+(\d+) kB$/m.exec(meminfo);
    assert.ok(m, `no MemTotal in:\n${meminfo}`);
    const memTotalKiB = Number(m[1]);
    // The kernel keeps its image, reserved ranges and (32-bit) a little more.
    assert.ok(memTotalKiB > 0.7 * (MEMORY_BYTES / 1024) && memTotalKiB <= MEMORY_BYTES / 1024, `MemTotal ${memTotalKiB} kB`);
    t.diagnostic(`MemTotal ${memTotalKiB} kB of ${MEMORY_BYTES / 1024} kB`);

    const bound = await guest.exec('ls /sys/bus/virtio/drivers/virtio_balloon');
    assert.equal(bound.status, 0, bound.output);
    assert.match(bound.output, /\bvirtio\d+\b/);

    const failed = await guest.exec('false');
    assert.equal(failed.status, 1);
    assert.equal(await guest.run("echo 'a b' # comment"), 'a b\n');
  } finally {
    guest.stop();
  }
});
