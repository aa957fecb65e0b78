// Docker Engine (Debian's dockerd 20.10) on berthd with Docker's containers in VMs, as a platform team would set it
// up: Docker always asks for io.containerd.runc.v2 with runc's options, and berthd's policy puts every container of
// Docker's namespace (`moby`) in the vm class. What a user checks: the kernel seen is the guest's, exit codes come
// through, `docker stop` ends a sleeping container, and a container on a user-defined bridge network has Docker's
// address in the guest: the host and its neighbours reach it there; with --network none it has loopback only.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vmImage } from '../../runtimes/vm/initramfs.ts';
import { REPO } from '../daemon/helpers.ts';
import { writeBusyboxDockerArchive } from '../helpers/docker-archive.ts';
import { DaemonProcess, Dockerd, type RunResult } from '../helpers/docker.ts';
import { removeTree } from '../helpers/tmp.ts';

const IMAGE = 'busybox:berth-vm';
// The README's configuration for Docker in VMs, as written there.
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const DOCKER_IN_VMS = README.slice(README.indexOf('[[policy.rules]]\nname = "docker-in-vms"'), README.indexOf('```', README.indexOf('name = "docker-in-vms"')));

const hasDockerd = (() => { try { execFileSync('dockerd', ['--version'], { stdio: 'ignore' }); return true; } catch { return false; } })();

interface Env { berthd: DaemonProcess; dockerd: Dockerd; dir: string }
let env: Promise<Env> | undefined;

async function start(): Promise<Env> {
  const dir = mkdtempSync(join(process.env.BERTH_TEST_TMP ?? tmpdir(), 'docker-vm-'));
  writeFileSync(join(dir, 'config.toml'), DOCKER_IN_VMS);
  const address = join(dir, 'berthd.sock');
  const berthd = new DaemonProcess('berthd', [process.execPath, join(REPO, 'dist', 'berthd.mjs'), '-c', join(dir, 'config.toml'),
    '--root', join(dir, 'root'), '--state', join(dir, 'state'), '--address', address, '-l', 'info'], address);
  await berthd.start();
  const dockerd = await Dockerd.start(address);
  const archive = join(dir, 'busybox.tar');
  await writeBusyboxDockerArchive(archive, IMAGE);
  const loaded = await dockerd.docker('load', '-i', archive);
  if (loaded.code !== 0) throw new Error(`docker load: ${loaded.stderr}`);
  return { berthd, dockerd, dir };
}

const docker = async (t: ExecutionContext) => {
  env ??= start();
  const e = await env;
  t.teardown(() => { if (!t.passed) t.log(`berthd: ${e.berthd.output().slice(-4000)}\ndockerd: ${e.dockerd.output().slice(-4000)}`); });
  return e.dockerd;
};

test.after.always(async () => {
  const e = await env?.catch(() => undefined);
  // The network's bridge is a host device: it goes with the network, not with dockerd.
  for (const name of ['web', 'web-client', 'web6']) await e?.dockerd.docker('rm', '-f', name);
  for (const network of [NETWORK, NETWORK6]) await e?.dockerd.docker('network', 'rm', network);
  await e?.dockerd.stop();
  await e?.berthd.stop();
  if (e) removeTree(e.dir);
});

function ok(t: ExecutionContext, r: RunResult, code = 0): string {
  t.is(r.code, code, `exit ${r.code}; stdout: ${r.stdout} stderr: ${r.stderr}`);
  return r.stdout;
}

const maybe = hasDockerd ? test.serial : test.serial.skip;
// The reason a group is skipped, as a skipped test's title (a passing placeholder would count as a check).
if (!hasDockerd) test.skip('dockerd is not installed (scripts/setup.sh installs docker.io): Docker-on-vm tests skipped', () => undefined);

maybe('docker run: uname -r prints the guest kernel\'s release, not the host\'s; exit codes come through', async (t) => {
  const d = await docker(t);
  const release = ok(t, await d.docker('run', '--rm', '--network', 'none', IMAGE, 'uname', '-r'));
  t.is(release, `${vmImage().kernelRelease}\n`);
  t.not(release.trim(), readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
  ok(t, await d.docker('run', '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'exit 3'), 3);
});

maybe('docker stop ends a sleeping container in a VM; Docker\'s network sandbox is the VM\'s, not the host\'s', async (t) => {
  const d = await docker(t);
  ok(t, await d.docker('run', '-d', '--name', 'sleeper', '--network', 'none', IMAGE, 'sleep', '1000'));
  // Docker's network hook got the sandbox's network namespace (its QEMU's), not the host's.
  const key = ok(t, await d.docker('inspect', '-f', '{{.NetworkSettings.SandboxKey}}', 'sleeper')).trim();
  t.not(statSync(key).ino, statSync('/proc/self/ns/net').ino, `Docker's sandbox ${key} is not the host's network namespace`);
  const began = Date.now();
  ok(t, await d.docker('stop', '-t', '2', 'sleeper'));
  t.log(`docker stop took ${Date.now() - began} ms`);
  t.is(ok(t, await d.docker('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'sleeper')).trim(), 'exited 137');
  ok(t, await d.docker('rm', 'sleeper'));
});

const NETWORK = 'berth-vmnet';
const SUBNET = '10.213.7.0/24';
const WEB_IP = '10.213.7.10';

/** What this host may lack for a VM's network: a tap device, and tc's ingress redirect (sch_ingress, cls_u32,
 * act_mirred), tried in a scratch network namespace. */
const netSkip = (() => {
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun: QEMU cannot make its tap';
  try {
    execFileSync('unshare', ['--net', 'sh', '-c', 'tc qdisc add dev lo ingress && tc filter add dev lo parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev lo'], { stdio: 'pipe' });
  } catch (err) {
    return `tc cannot redirect between interfaces here (sch_ingress, cls_u32, act_mirred): ${(err as { stderr?: Buffer }).stderr?.toString().trim()}`;
  }
  return undefined;
})();
const maybeNet = hasDockerd && !netSkip ? test.serial : test.serial.skip;
if (hasDockerd && netSkip) test.skip(`VM networking tests skipped: ${netSkip}`, () => undefined);

/** GETs url from the host until it answers (the container's server may not listen yet), or fails after timeoutMs. */
async function fetchFromHost(url: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = get(url, { timeout: 5000 }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c) => { body += c; }).on('end', () => resolve(body)).on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('timed out'))).on('error', reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`GET ${url}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** The DNS forwarders (berth-dns-forward) of shims serving the berthd whose files are under `dir`. */
function dnsForwardersOf(dir: string): number[] {
  const cmdline = (pid: string | number) => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; } };
  const parent = (pid: string) => { try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]!; } catch { return ''; } };
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p))
    .filter((p) => cmdline(p).split('\0')[0]!.endsWith('/berth-dns-forward') && cmdline(parent(p)).includes(dir)).map(Number);
}

maybeNet('a VM container on a user-defined bridge network has Docker\'s address in the guest; the host and a neighbour VM fetch a page from it, by address and by name', async (t) => {
  const d = await docker(t);
  ok(t, await d.docker('network', 'create', '--subnet', SUBNET, NETWORK));
  ok(t, await d.docker('run', '-d', '--name', 'web', '--network', NETWORK, '--ip', WEB_IP, IMAGE,
    'sh', '-c', 'mkdir -p /www && echo served-from-the-vm > /www/index.html && exec httpd -f -p 80 -h /www'));
  const began = Date.now();
  t.is(await fetchFromHost(`http://${WEB_IP}/index.html`, 30_000), 'served-from-the-vm\n', 'the host fetched the page from the container\'s address');
  t.log(`the host's first answer from the VM's httpd came ${Date.now() - began} ms after docker run returned`);

  // Inside: the guest's kernel, Docker's address and MAC on eth0, Docker's default route.
  t.is(ok(t, await d.docker('exec', 'web', 'uname', '-r')), `${vmImage().kernelRelease}\n`);
  const mac = ok(t, await d.docker('inspect', '-f', `{{(index .NetworkSettings.Networks "${NETWORK}").MacAddress}}`, 'web')).trim();
  const addr = ok(t, await d.docker('exec', 'web', 'ip', 'addr', 'show', 'eth0'));
  t.regex(addr, new RegExp(`inet ${WEB_IP.replace(/\./g, '\\.')}/24 `), addr);
  t.true(addr.includes(`link/ether ${mac} `), `eth0 has Docker's MAC ${mac}: ${addr}`);
  t.regex(ok(t, await d.docker('exec', 'web', 'ip', 'route')), /^default via 10\.213\.7\.1 dev eth0/m);
  t.regex(ok(t, await d.docker('exec', 'web', 'cat', '/proc/net/fib_trie')), /10\.213\.7\.10\n\s+\/32 host LOCAL/);

  // A second VM container on the network reaches the first, and the first reaches it back.
  t.is(ok(t, await d.docker('run', '--rm', '--network', NETWORK, IMAGE, 'wget', '-qO-', `http://${WEB_IP}/index.html`)), 'served-from-the-vm\n');
  ok(t, await d.docker('run', '-d', '--name', 'web-client', '--network', NETWORK, IMAGE,
    'sh', '-c', 'mkdir -p /www && echo the-neighbour > /www/index.html && exec httpd -f -p 8080 -h /www'));
  const neighbour = ok(t, await d.docker('inspect', '-f', `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`, 'web-client')).trim();
  let back = '';
  for (const deadline = Date.now() + 30_000; Date.now() < deadline && back !== 'the-neighbour\n'; await new Promise((r) => setTimeout(r, 250))) {
    back = (await d.docker('exec', 'web', 'wget', '-qO-', `http://${neighbour}:8080/index.html`)).stdout;
  }
  t.is(back, 'the-neighbour\n', `web fetched from the neighbour at ${neighbour}`);

  // Names on the network resolve through Docker's embedded resolver, which listens in QEMU's network namespace
  // (127.0.0.11): the guest's relay reaches it, for a running container and for a new one.
  t.regex(ok(t, await d.docker('exec', 'web', 'cat', '/etc/resolv.conf')), /^nameserver 127\.0\.0\.11$/m);
  const looked = ok(t, await d.docker('exec', 'web', 'nslookup', 'web-client'));
  t.regex(looked, new RegExp(`Address:\\s+${neighbour.replace(/\./g, '\\.')}`), looked);
  t.is(ok(t, await d.docker('exec', 'web', 'wget', '-qO-', 'http://web-client:8080/index.html')), 'the-neighbour\n');
  t.is(ok(t, await d.docker('run', '--rm', '--network', NETWORK, IMAGE, 'wget', '-qO-', 'http://web/index.html')), 'served-from-the-vm\n');

  // A relay's forwarder that is killed is started again: names still resolve.
  const forwarders = dnsForwardersOf((await env!).dir);
  t.true(forwarders.length >= 2, `a forwarder per VM container on the network: ${forwarders.join(', ')}`);
  for (const pid of forwarders) process.kill(pid, 'SIGKILL');
  let again = '';
  for (const deadline = Date.now() + 10_000; Date.now() < deadline && !again.includes(neighbour); await new Promise((r) => setTimeout(r, 250))) {
    again = (await d.docker('exec', 'web', 'nslookup', 'web-client')).stdout;
  }
  t.regex(again, new RegExp(`Address:\\s+${neighbour.replace(/\./g, '\\.')}`), again);
  t.false(dnsForwardersOf((await env!).dir).some((pid) => forwarders.includes(pid)));
  ok(t, await d.docker('rm', '-f', 'web', 'web-client'));
});

const NETWORK6 = 'berth-vmnet6';
const WEB6 = 'fd00:b3:7::10';

maybeNet('on a dual-stack network a VM container has Docker\'s IPv6 address and route too; the host fetches a page from it over IPv6', async (t) => {
  const d = await docker(t);
  ok(t, await d.docker('network', 'create', '--ipv6', '--subnet', '10.213.8.0/24', '--subnet', 'fd00:b3:7::/64', NETWORK6));
  ok(t, await d.docker('run', '-d', '--name', 'web6', '--network', NETWORK6, '--ip6', WEB6, IMAGE,
    'sh', '-c', 'mkdir -p /www && echo served-over-ipv6 > /www/index.html && exec httpd -f -p 80 -h /www'));
  t.is(await fetchFromHost(`http://[${WEB6}]/index.html`, 30_000), 'served-over-ipv6\n');
  const addr = ok(t, await d.docker('exec', 'web6', 'ip', '-6', 'addr', 'show', 'eth0'));
  t.regex(addr, /inet6 fd00:b3:7::10\/64 scope global/, addr);
  t.regex(ok(t, await d.docker('exec', 'web6', 'ip', '-6', 'route')), /^default via fd00:b3:7::1 dev eth0/m);
  ok(t, await d.docker('rm', '-f', 'web6'));
});

maybeNet('a VM container with --network none has loopback only', async (t) => {
  const d = await docker(t);
  const dev = ok(t, await d.docker('run', '--rm', '--network', 'none', IMAGE, 'cat', '/proc/net/dev'));
  t.deepEqual(dev.split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]), ['lo']);
});
