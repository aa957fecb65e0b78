// Docker Engine (Debian's dockerd 20.10) on berthd with Docker's containers in VMs, as a platform team would set it
// up: Docker always asks for io.containerd.runc.v2 with runc's options, and berthd's policy puts every container of
// Docker's namespace (`moby`) in the vm class. What a user checks: the kernel seen is the guest's, exit codes come
// through, `docker stop` ends a sleeping container.
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
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
  await e?.dockerd.stop();
  await e?.berthd.stop();
  if (e) removeTree(e.dir);
});

function ok(t: ExecutionContext, r: RunResult, code = 0): string {
  t.is(r.code, code, `exit ${r.code}; stdout: ${r.stdout} stderr: ${r.stderr}`);
  return r.stdout;
}

const maybe = hasDockerd ? test.serial : test.serial.skip;
if (!hasDockerd) test('dockerd is not installed (scripts/setup.sh installs docker.io): Docker-on-vm tests skipped', (t) => t.pass());

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
