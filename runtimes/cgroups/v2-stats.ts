// A cgroup v2 directory's statistics, from its files: the host's cgroupfs, or a guest's files returned raw by
// its agent (the vm backend).
import { errNotFound } from '../../api/errdefs.ts';
import { parseKeyed, parseValue, UNLIMITED } from './files.ts';
import type { BlkioEntry, CgroupStats } from './types.ts';
import { controllersOf } from './v2-apply.ts';
import type { CgroupDir } from './v2-dir.ts';

export function v2Stats(d: CgroupDir): CgroupStats {
  const required = (file: string) => {
    const text = d.read(file);
    if (text === undefined) throw errNotFound(`read ${d.path}/${file}: no such file or directory`);
    return parseValue(text.trim());
  };
  const optional = (file: string) => {
    const text = d.read(file);
    return text === undefined ? undefined : parseValue(text.trim());
  };
  const keyed = (file: string) => parseKeyed(d.read(file));
  const enabled = controllersOf(d);
  const out: CgroupStats = {};
  if (enabled.has('memory')) {
    const raw = keyed('memory.stat');
    out.memory = {
      usage: required('memory.current'),
      maxUsage: optional('memory.peak') ?? 0,
      limit: required('memory.max'),
      cache: raw.file ?? 0,
      rss: raw.anon ?? 0,
      swap: optional('memory.swap.current') ?? 0,
      swapLimit: optional('memory.swap.max') ?? 0,
      failcnt: keyed('memory.events').max ?? 0,
      raw,
    };
  }
  // cpu.stat's usage fields are core (present without the cpu controller); throttling needs the controller.
  const cpu = keyed('cpu.stat');
  out.cpu = {
    usageTotal: (cpu.usage_usec ?? 0) * 1000,
    usageUser: (cpu.user_usec ?? 0) * 1000,
    usageSystem: (cpu.system_usec ?? 0) * 1000,
    perCpu: [],
    throttling: { periods: cpu.nr_periods ?? 0, throttledPeriods: cpu.nr_throttled ?? 0, throttledTime: (cpu.throttled_usec ?? 0) * 1000 },
  };
  if (enabled.has('pids')) {
    const max = required('pids.max');
    out.pids = { current: required('pids.current'), limit: max === UNLIMITED ? 0 : max };
  }
  if (enabled.has('io')) out.blkio = ioStats(d.read('io.stat'));
  if (enabled.has('hugetlb')) {
    const hugetlb: NonNullable<CgroupStats['hugetlb']> = {};
    for (const name of d.list()) {
      const size = /^hugetlb\.(\w+)\.current$/.exec(name)?.[1];
      if (size) hugetlb[size] = { usage: required(name), maxUsage: 0, failcnt: keyed(`hugetlb.${size}.events`).max ?? 0 };
    }
    out.hugetlb = hugetlb;
  }
  return out;
}

function ioStats(text: string | undefined): { ioServiceBytes: BlkioEntry[]; ioServiced: BlkioEntry[] } {
  const bytes: BlkioEntry[] = [];
  const ios: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const [dev, ...fields] = line.split(' ');
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (!m) continue;
    const kv = Object.fromEntries(fields.map((f) => f.split('=')).map(([k, v]) => [k, Number(v)]));
    const major = Number(m[1]);
    const minor = Number(m[2]);
    bytes.push({ major, minor, op: 'Read', value: kv.rbytes ?? 0 }, { major, minor, op: 'Write', value: kv.wbytes ?? 0 });
    ios.push({ major, minor, op: 'Read', value: kv.rios ?? 0 }, { major, minor, op: 'Write', value: kv.wios ?? 0 });
  }
  return { ioServiceBytes: bytes, ioServiced: ios };
}
