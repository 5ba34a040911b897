/**
 * The QEMU side without QEMU: what checkQemuScenario refuses before boot (naming the
 * field or the entry), the QEMU command line a scenario becomes, the agent and QMP
 * protocols against a fake peer on a unix socket, and the CLI's exit 2 for a
 * model-only action with --engine qemu.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenarioText } from '../../src/scenario/runner.js';
import { ScenarioError } from '../../src/scenario/schema.js';
import { checkQemuScenario, qemuLaunch, qemuCmdline, guestSetupCommand, QemuContext, qemuScratchPlan } from '../../src/integrations/qemu/side.js';
import { qemuArgs, AgentClient, QmpClient, makeScratchImage, mke2fsArgs, type QemuImage, type QemuVm } from '../../src/integrations/qemu/qemu.js';
import { diffProbe, splitProbeOutput, DIFF_PROBE_COMMAND, DIFF_PROBE_COMMAND_SLAB, parseFreePagesByType, parseSlabinfo } from '../../src/report/proc_parse.js';
import { processFile } from '../../src/actions/process.js';
import { ActionError, type ActionInput } from '../../src/actions/action.js';
import { existsSync } from 'node:fs';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const sc = (text: string) => loadScenarioText(text, 't.yaml').base;
const base = (guest: string, balloon: string, timeline = '  - { at: 0s, action: snapshot }') =>
  sc(`name: t\nguest: { ${guest} }\nhost: { accel: tcg }\nballoon: { ${balloon} }\ntimeline:\n${timeline}\n`);

function refused(f: () => void): string {
  try { f(); } catch (e) { assert.ok(e instanceof ScenarioError, String(e)); return e.message; }
  assert.fail('expected a ScenarioError');
}

test('qemu scenarios: every bundled one passes the check; what the real guest cannot be is refused before boot, naming the field', () => {
  for (const f of readdirSync(join(root, 'scenarios/real')).filter((x) => x.startsWith('qemu-'))) {
    const file = `scenarios/real/${f}`;
    const sf = loadScenarioText(readFileSync(join(root, file), 'utf8'), file);
    for (const s of [sf.base, ...sf.variants.map((v) => v.scenario)]) checkQemuScenario(s, file);
  }
  const ok = 'stats_tags: v6.1';
  checkQemuScenario(base('memory: 1GiB', ok), 't.yaml');
  assert.match(refused(() => checkQemuScenario(sc('name: t\nguest: { memory: 1GiB }\nballoon: { stats_tags: v6.1 }\ntimeline: []\n'), 't.yaml')), /^t\.yaml: host\.accel: the qemu real guest runs under TCG/);
  assert.match(refused(() => checkQemuScenario(base('memory: 16GiB', ok), 't.yaml')), /^t\.yaml: guest\.memory: the qemu real guest takes 128MiB to 8GiB/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB, swap: 1GiB', ok), 't.yaml')), /guest\.swap: .*no swap device/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB, page_poison: true', ok), 't.yaml')), /guest\.page_poison: .*CONFIG_PAGE_POISONING/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB', 'stats_tags: v6.1, must_tell_host: true'), 't.yaml')), /balloon\.must_tell_host: QEMU's device never offers/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB', 'stats_tags: v6.1, page_type: balloon'), 't.yaml')), /balloon\.page_type: the real guest runs Linux 6\.1, whose balloon pages are PG_offline/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB', ''), 't.yaml')), /balloon\.stats_tags: .*v6\.1/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB', ok, '  - { at: 0s, action: drain_pcp }'), 't.yaml')), /^t\.yaml: timeline\[0\] \(drain_pcp at 0s\): runs only on model, not on the qemu real guest/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB', ok, '  - { at: 0s, action: free_page_hint, command: start }'), 't.yaml')), /runs only on model, v86, not on the qemu real guest/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB', ok, '  - { at: 0s, action: migrate }'), 't.yaml')), /timeline\[0\] \(migrate at 0s\): not on the qemu real guest as written: give wait:/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB', ok, '  - { at: 0s, action: alloc_pages, count: 1, owner: slab_reclaimable }'), 't.yaml')), /owner slab_reclaimable: the real module's blocks are plain kernel allocations/);
  assert.match(refused(() => checkQemuScenario(base('memory: 1GiB', ok, '  - { at: 0s, action: alloc_pages, count: 1 }\n  - { at: 0s, action: free_pages }'), 't.yaml')), /timeline\[1\] \(free_pages at 0s\): .*pick random/);
});

test('the QEMU command line: memory, vcpus, the device\'s properties with an iothread for free-page-hint, the kernel command line, the guest setup', () => {
  const s = base('memory: 2GiB, vcpus: 2, kaslr: false, init_on_alloc: false, thp: madvise, min_free_kbytes: 8192', 'stats_tags: v6.1, deflate_on_oom: true, free_page_hint: true');
  const img: QemuImage = {
    dir: '/c', manifest: { kernel: { release: 'r', image: 'bzImage' }, qemu: { version: 'v', binary: 'q', datadir: 'd', env: { LD_LIBRARY_PATH: [], QEMU_MODULE_DIR: 'm' }, args: [], pdeathsig: 'p' } },
    bzImage: '/c/bzImage', initrd: '/c/initrd.cpio', qemu: '/c/q', pdeathsig: '/c/p', env: {}, args: ['-L', '/c/share'],
  };
  const a = qemuArgs(img, qemuLaunch(s), '/d');
  const at = (flag: string) => a[a.indexOf(flag) + 1];
  assert.equal(at('-m'), '2048M');
  assert.equal(at('-smp'), '2');
  assert.equal(at('-accel'), 'tcg');
  assert.equal(at('-device'), 'virtio-balloon-pci,id=balloon0,deflate-on-oom=on,free-page-hint=on,free-page-reporting=off,page-poison=on,iothread=iot0');
  assert.equal(at('-object'), 'iothread,id=iot0');
  assert.equal(at('-append'), 'console=ttyS0 panic=-1 nokaslr init_on_alloc=0 init_on_free=0');
  assert.deepEqual(qemuCmdline(base('memory: 1GiB', 'stats_tags: v6.1')), ['init_on_alloc=1', 'init_on_free=0']);
  assert.equal(guestSetupCommand(s), 'echo madvise > /sys/kernel/mm/transparent_hugepage/enabled && echo madvise > /sys/kernel/mm/transparent_hugepage/defrag && echo 8192 > /proc/sys/vm/min_free_kbytes');
  assert.ok(!qemuArgs(img, qemuLaunch(sc('name: t\nguest: { memory: 1GiB }\nballoon: false\ntimeline: []\n')), '/d').includes('-device'), 'balloon: false: no device');
});

test('the agent protocol: RUN/OUT framing with binary-safe output, ERR, PING/PONG; QMP: greeting, capabilities, ids, events kept apart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'balloonlab-qemu-test-'));
  try {
    const agentPath = join(dir, 'agent.sock');
    const srv = createServer((c) => {
      c.write('READY\n');
      let buf = Buffer.alloc(0);
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        for (;;) {
          const nl = buf.indexOf(10);
          if (nl < 0) return;
          const h = buf.subarray(0, nl).toString();
          const run = /^RUN (\S+) (\d+)$/.exec(h);
          if (run) {
            const n = Number(run[2]);
            if (buf.length < nl + 1 + n) return;
            const cmd = buf.subarray(nl + 1, nl + 1 + n).toString();
            buf = buf.subarray(nl + 1 + n);
            if (cmd === 'bad') { c.write(`ERR ${run[1]} no\n`); continue; }
            const out = Buffer.from(`${cmd}\nline two\n\u00e9`);
            // the reply split in two writes, the body across them
            c.write(`OUT ${run[1]} 3 ${out.length}\n${out.subarray(0, 5).toString('latin1')}`, 'latin1');
            setTimeout(() => c.write(out.subarray(5)), 10);
            continue;
          }
          buf = buf.subarray(nl + 1);
          const ping = /^PING (\S+)$/.exec(h);
          if (ping) c.write(`PONG ${ping[1]}\n`);
        }
      });
    });
    await new Promise<void>((r) => srv.listen(agentPath, r));
    const agent = await AgentClient.open(agentPath, 'test agent', () => null, 5000);
    await agent.ready(5000);
    const r = await agent.run('echo hi', 5000);
    assert.deepEqual(r, { output: 'echo hi\nline two\n\u00e9', status: 3 });
    await agent.ping(5000);
    await assert.rejects(agent.run('bad', 5000), /the agent refused "bad": no/);
    const [x, y] = await Promise.all([agent.run('one', 5000), agent.run('two', 5000)]);
    assert.equal(x.output.split('\n')[0], 'one');
    assert.equal(y.output.split('\n')[0], 'two');
    agent.close();
    srv.close();

    const qmpPath = join(dir, 'qmp.sock');
    const q = createServer((c) => {
      c.write('{"QMP": {"version": {}, "capabilities": []}}\n');
      let buf = '';
      c.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id: string };
          buf = buf.slice(nl + 1);
          c.write('{"event": "BALLOON_CHANGE", "data": {"actual": 1}}\n');
          c.write(msg.execute === 'nope' ? `{"error": {"class": "CommandNotFound", "desc": "x"}, "id": "${msg.id}"}\n` : `{"return": {"cmd": "${msg.execute}"}, "id": "${msg.id}"}\n`);
        }
      });
    });
    await new Promise<void>((r) => q.listen(qmpPath, r));
    const qmp = await QmpClient.open(qmpPath, 'test qmp', () => null, 5000);
    assert.deepEqual(await qmp.execute({ execute: 'query-balloon' }), { return: { cmd: 'query-balloon' } });
    assert.deepEqual(await qmp.execute({ execute: 'nope' }), { error: { class: 'CommandNotFound', desc: 'x' } });
    assert.ok(qmp.events.length >= 2 && qmp.events.every((e) => e.event === 'BALLOON_CHANGE'));
    qmp.close();
    q.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the diff probe reads the model\'s and the real guest\'s /proc the same way (the reference 6.1 guest\'s files)', () => {
  const dir = join(root, 'test/fixtures/linux-6.1-guest-1GiB-boot');
  const ref = (f: string) => readFileSync(join(dir, f), 'utf8');
  const files = { meminfo: ref('meminfo'), vmstat: ref('vmstat'), buddyinfo: ref('buddyinfo'), pagetypeinfo: ref('pagetypeinfo'), zoneinfo: ref('zoneinfo') };
  // what the agent returns for DIFF_PROBE_COMMAND: each file after its marker
  assert.equal(DIFF_PROBE_COMMAND, "echo '@@ meminfo'; cat /proc/meminfo; echo '@@ vmstat'; cat /proc/vmstat; echo '@@ buddyinfo'; cat /proc/buddyinfo; echo '@@ pagetypeinfo'; cat /proc/pagetypeinfo; echo '@@ zoneinfo'; cat /proc/zoneinfo");
  const p = diffProbe(splitProbeOutput(Object.entries(files).map(([k, v]) => `@@ ${k}\n${v}`).join('')));
  assert.ok(p.MemTotal! > 0 && p.MemFree! > 0);
  const free = parseFreePagesByType(files.pagetypeinfo);
  const total = Object.values(free).reduce((a, b) => a + b, 0);
  // free pages by type add up to the free blocks of buddyinfo, in pages
  let fromBuddy = 0;
  for (let o = 0; o < 11; o++) fromBuddy += p[`order.${o}`]! * 2 ** o;
  assert.equal(total, fromBuddy);
  assert.equal(p['free.Movable'], free.Movable);
  assert.ok(p['vmstat.pgfree']! > 0 && p['blocks.Movable']! > 0);
  // zoneinfo: the reference guest's DMA and DMA32 watermarks and managed pages; the empty Normal zone is left out
  assert.deepEqual([p['zone.DMA.min'], p['zone.DMA.low'], p['zone.DMA.high'], p['zone.DMA.managed']], [175, 218, 261, 3840]);
  assert.deepEqual([p['zone.DMA32.free'], p['zone.DMA32.min'], p['zone.DMA32.managed']], [235605, 11088, 245316]);
  assert.equal(p['zone.Normal.free'], undefined);
});

test('the CLI: --engine qemu refuses a model-only action with exit 2, naming it, before looking for the image', () => {
  const dir = mkdtempSync(join(tmpdir(), 'balloonlab-qemu-cli-'));
  try {
    const f = join(dir, 's.yaml');
    const yaml = 'name: s\nguest: { memory: 1GiB }\nhost: { accel: tcg }\nballoon: { stats_tags: v6.1 }\ntimeline:\n  - { at: 0s, action: kernel_build, units: 10 }\n';
    writeFileSync(f, yaml);
    const r = spawnSync(process.execPath, [join(root, 'bin/balloonlab.js'), 'real-guest', f, '--engine', 'qemu', '--cache-dir', join(dir, 'none')], { encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /timeline\[0\] \(kernel_build at 0s\): runs only on model, not on the qemu real guest/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const bad = spawnSync(process.execPath, [join(root, 'bin/balloonlab.js'), 'real-guest', f, '--engine', 'kvm'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--engine: unknown engine "kvm" \(allowed: v86, qemu\)/);
    // a runnable scenario with no image: exit 2 naming the build script
    writeFileSync(f, 'name: s\nguest: { memory: 1GiB }\nhost: { accel: tcg }\nballoon: { stats_tags: v6.1 }\ntimeline:\n  - { at: 0s, action: snapshot }\n');
    const none = spawnSync(process.execPath, [join(root, 'bin/balloonlab.js'), 'real-guest', f, '--engine', 'qemu', '--cache-dir', join(dir, 'none')], { encoding: 'utf8' });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /qemu real guest image missing .*run scripts\/real-guest\/build-qemu-image\.sh first/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const fakeImage = (scratch?: { mke2fs: string; e2fsck: string }): QemuImage => ({
  dir: '/c',
  manifest: {
    kernel: { release: 'r', image: 'bzImage' }, qemu: { version: 'v', binary: 'q', datadir: 'd', env: { LD_LIBRARY_PATH: [], QEMU_MODULE_DIR: 'm' }, args: [], pdeathsig: 'p' },
    ...(scratch ? { scratch: { modules: ['virtio_blk'], mount: '/mnt/scratch', e2fsprogs: 'host', ...scratch } } : {}),
  },
  bzImage: '/c/bzImage', initrd: '/c/initrd.cpio', qemu: '/c/q', pdeathsig: '/c/p', env: {}, args: [],
});

test('the scratch disk: only for a timeline with process_file; a virtio-blk disk after the balloon, bl.scratch=1; what it cannot take is refused before boot', () => {
  const ok = 'stats_tags: v6.1';
  const none = base('memory: 1GiB', ok);
  assert.equal(qemuLaunch(none).scratch, undefined);
  assert.ok(!qemuArgs(fakeImage(), qemuLaunch(none), '/d').includes('-drive'));
  const s = base('memory: 1GiB', ok, '  - { at: 0s, action: process_file, pid: 1, size: 64MiB, file_size: 16KiB, dirty: true }\n  - { at: 0s, action: process_file, pid: 2, size: 1MiB }');
  checkQemuScenario(s, 't.yaml');
  const l = qemuLaunch(s);
  assert.equal(l.scratch?.bytes, 2 ** 30);
  assert.deepEqual(l.scratch?.prepared, [{ name: 'p2.0', off: 0, pages: 256 }]);
  assert.deepEqual(qemuCmdline(s), ['init_on_alloc=1', 'init_on_free=0', 'bl.scratch=1']);
  const a = qemuArgs(fakeImage(), l, '/d');
  assert.equal(a[a.indexOf('-drive') + 1], 'file=/d/scratch.img,if=none,format=raw,id=d0,cache=unsafe');
  const devices = a.flatMap((x, i) => (x === '-device' ? [a[i + 1]!.split(',')[0]] : []));
  assert.deepEqual(devices, ['virtio-balloon-pci', 'virtio-blk-pci'], 'the balloon stays virtio0');
  assert.deepEqual(mke2fsArgs(l.scratch!, '/d/scratch.img', null).slice(0, 9), ['-q', '-F', '-t', 'ext4', '-b', '4096', '-m', '0', '-N']);
  const entry = (e: string) => base('memory: 1GiB', ok, `  - { at: 0s, action: ${e} }`);
  assert.match(refused(() => checkQemuScenario(entry('process_file, pid: 1, size: 8GiB, file_size: 4KiB'), 't.yaml')), /timeline\[0\] \(process_file at 0s\): not on the qemu real guest as written: at most 1048576 files an entry/);
  assert.match(refused(() => checkQemuScenario(entry('process_file, pid: 1, size: 17GiB'), 't.yaml')), /at most 16 GiB an entry/);
  const many = base('memory: 1GiB', ok, Array.from({ length: 5 }, () => '  - { at: 0s, action: process_file, pid: 1, size: 15GiB, dirty: true }').join('\n'));
  assert.match(refused(() => checkQemuScenario(many, 't.yaml')), /^t\.yaml: timeline: the process_file entries need a .* scratch disk; the qemu real guest makes at most 64GiB/);
  const mig = base('memory: 1GiB', ok, '  - { at: 0s, action: process_file, pid: 1, size: 1MiB }\n  - { at: 1s, action: migrate, wait: 60s }');
  assert.match(refused(() => checkQemuScenario(mig, 't.yaml')), /timeline\[1\] \(migrate\): not with process_file on the qemu real guest \(its scratch disk is not migrated\)/);
});

test('process_file on the qemu side: bl-file is told where each call starts in the process\'s files; a failure is the entry\'s error', async () => {
  const s = base('memory: 1GiB', 'stats_tags: v6.1', '  - { at: 0s, action: process_file, pid: 7, size: 1MiB }');
  const ctx = new QemuContext({} as QemuVm, fakeImage(), qemuLaunch(s), 2 ** 30);
  const sent: string[] = [];
  let status = 0;
  ctx.shell = async (cmd: string) => { sent.push(cmd); const pages = /(\d+) \d+$/.exec(cmd)![1]; return { status, output: status ? 'bl-file: short read' : `files=1 created=1 pages=${pages} bytes=0 ms=1.0\n` }; };
  const run = (a: Omit<ActionInput<'process_file', typeof processFile.fields>, 'at' | 'action'>) => processFile.real!.run(ctx, { at: 0, action: 'process_file', ...a });
  assert.deepEqual(await run({ pid: 7, size: 40960, dirty: true, file_size: 16384 }), { pid: 7, requested_pages: 10, cached_pages: 10 });
  assert.deepEqual(await run({ pid: 7, size: 4097, dirty: false, file_size: 16384 }), { pid: 7, requested_pages: 2, cached_pages: 2 });
  await run({ pid: 8, size: 4096, dirty: false, file_size: undefined });
  assert.deepEqual(sent, ['bl-file write /mnt/scratch p7 0 0 10 4', 'bl-file read /mnt/scratch p7 2 2 2 4', 'bl-file read /mnt/scratch p8 0 0 1 0']);
  status = 1;
  await assert.rejects(run({ pid: 7, size: 4096, dirty: false, file_size: 16384 }), (e: unknown) => e instanceof ActionError && /bl-file read failed in the real guest \(exit 1\): bl-file: short read/.test(e.message));
  // the failed call did not move the stream
  status = 0;
  await run({ pid: 7, size: 4096, dirty: false, file_size: 16384 });
  assert.equal(sent.at(-1), 'bl-file read /mnt/scratch p7 3 0 1 4');
  const bare = new QemuContext({} as QemuVm, fakeImage(), qemuLaunch(base('memory: 1GiB', 'stats_tags: v6.1')), 2 ** 30);
  await assert.rejects(processFile.real!.run(bare, { at: 0, action: 'process_file', pid: 1, size: 4096, dirty: true, file_size: undefined }), /no scratch file system/);
});

const MKE2FS = '/usr/sbin/mke2fs', E2FSCK = '/usr/sbin/e2fsck', DEBUGFS = '/usr/sbin/debugfs';
test('makeScratchImage: an ext4 with the pages the reads will read in place, holes where the timeline writes first', { skip: [MKE2FS, E2FSCK, DEBUGFS].every(existsSync) ? false : 'no e2fsprogs on this host' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'balloonlab-scratch-test-'));
  try {
    const plan = qemuScratchPlan(sc(`name: t\nguest: { memory: 1GiB }\ntimeline:\n${[
      '  - { at: 0s, action: process_file, pid: 100, size: 8KiB, file_size: 16KiB, dirty: true }',
      '  - { at: 0s, action: process_file, pid: 100, size: 24KiB, file_size: 16KiB }',
    ].join('\n')}\n`))!;
    const image = makeScratchImage(fakeImage({ mke2fs: MKE2FS, e2fsck: E2FSCK }), plan, dir);
    assert.deepEqual(readdirSync(dir), ['scratch.img'], 'the host files it was made from are gone');
    const stat = (f: string) => spawnSync(DEBUGFS, ['-R', `stat /${f}`, image], { encoding: 'utf8' }).stdout;
    assert.match(stat('p100.0'), /Size: 16384\b/);
    assert.match(stat('p100.0'), /EXTENTS:\s*\(2-3\)/, 'pages 0-1 are a hole: the timeline writes them');
    assert.match(stat('p100.1'), /Size: 16384\b/);
    assert.match(stat('p100.1'), /EXTENTS:\s*\(0-3\)/);
    const sb = spawnSync(DEBUGFS, ['-R', 'stats', image], { encoding: 'utf8' }).stdout;
    assert.match(sb, /Block size:\s+4096/);
    assert.match(sb, /Filesystem UUID:\s+6c1f2b7e-0000-4000-8000-000000000001/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the qemu probe reads the page cache\'s slab caches from /proc/slabinfo (the reference 6.1 guest\'s file)', () => {
  const text = readFileSync(join(root, 'test/fixtures/linux-6.1-slabinfo-boot.txt'), 'utf8');
  assert.deepEqual(parseSlabinfo(text).dentry, { active: 10647, total: 10647 });
  assert.equal(DIFF_PROBE_COMMAND_SLAB, `${DIFF_PROBE_COMMAND}; echo '@@ slabinfo'; grep -E '^(dentry|ext4_inode_cache|inode_cache|lsm_inode_cache|ext4_extent_status|buffer_head|radix_tree_node) ' /proc/slabinfo`);
  const lines = text.split('\n').filter((l) => /^(dentry|ext4_inode_cache|inode_cache|lsm_inode_cache|ext4_extent_status|buffer_head|radix_tree_node) /.test(l)).join('\n');
  const p = diffProbe(splitProbeOutput(`@@ meminfo\nMemTotal: 1 kB\n@@ slabinfo\n${lines}\n`));
  assert.equal(p['slab.dentry'], 10647);
  assert.equal(p['slab.radix_tree_node'], 252);
  assert.equal(p['slab.buffer_head'], 0);
  assert.equal(diffProbe(splitProbeOutput('@@ meminfo\nMemTotal: 1 kB\n'))['slab.dentry'], undefined, 'no slabinfo, no slab keys (the v86 probe)');
});
