// The time namespace: a container with its own boot and monotonic clocks, offset as the spec asks.
import test from 'ava';
import { existsSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeBundle } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { berthRunc, runtimeRoot, uniqueId } from './helpers.ts';

// A kernel built without CONFIG_TIME_NS has no time namespace to give.
const noTimeNs = existsSync('/proc/self/ns/time') ? '' : ' (skipped: this kernel has no time namespaces)';
const withTimeNs = noTimeNs ? test.skip : test;

withTimeNs(`a time namespace with a boottime offset: the container's uptime starts ten days later${noTimeNs}`, (t) => {
  const root = runtimeRoot(t);
  const bundle = makeBundle(join(tempDir(t), 'b'), {
    args: ['/bin/sh', '-c', 'cut -d" " -f1 /proc/uptime; readlink /proc/self/ns/time'],
    edit: (s) => { s.linux.namespaces.push({ type: 'time' }); s.linux.timeOffsets = { boottime: { secs: 864000, nanosecs: 0 }, monotonic: { secs: 3600 } }; },
  });
  const r = berthRunc(root, ['run', '--bundle', bundle.dir, uniqueId('tns')]);
  t.is(r.status, 0, r.stderr);
  const [uptime, ns] = r.stdout.trim().split('\n');
  t.true(Number(uptime) >= 864000, `uptime ${uptime}`);
  t.not(ns, readlinkSync('/proc/self/ns/time'), 'a namespace of its own');
});

test('time offsets without a time namespace, or for another clock, are refused naming the field', (t) => {
  const root = runtimeRoot(t);
  const cases: [(s: any) => void, RegExp][] = [
    [(s) => { s.linux.timeOffsets = { boottime: { secs: 1 } }; }, /linux\.timeOffsets: needs a time namespace/],
    [(s) => { s.linux.namespaces.push({ type: 'time' }); s.linux.timeOffsets = { realtime: { secs: 1 } }; }, /linux\.timeOffsets\.realtime: only monotonic and boottime/],
    [(s) => { s.linux.namespaces.push({ type: 'time' }); s.linux.timeOffsets = { boottime: { secs: 1, nanosecs: 2e9 } }; }, /linux\.timeOffsets\.boottime: want/],
  ];
  for (const [edit, message] of cases) {
    const bundle = makeBundle(join(tempDir(t), 'b'), { edit });
    const r = berthRunc(root, ['create', '--bundle', bundle.dir, uniqueId('tbad')]);
    t.not(r.status, 0);
    t.regex(r.stderr, message);
  }
});

withTimeNs(`exec joins the container's time namespace${noTimeNs}`, (t) => {
  const root = runtimeRoot(t);
  const id = uniqueId('tex');
  const bundle = makeBundle(join(tempDir(t), 'b'), {
    args: ['/bin/sleep', '100'],
    edit: (s) => { s.linux.namespaces.push({ type: 'time' }); s.linux.timeOffsets = { boottime: { secs: 864000 } }; },
  });
  t.is(berthRunc(root, ['run', '-d', '--bundle', bundle.dir, id]).status, 0);
  const r = berthRunc(root, ['exec', id, '/bin/sh', '-c', 'cut -d" " -f1 /proc/uptime']);
  t.is(r.status, 0, r.stderr);
  t.true(Number(r.stdout.trim()) >= 864000, r.stdout);
  berthRunc(root, ['delete', '--force', id]);
});
