// process.terminal beside runc: `create --console-socket` sends the pty master to whoever listens there (here
// berth-monitor, as a shim uses it), the process has the pty as its controlling terminal and stdio, sized by
// process.consoleSize; input typed into the master reaches it, a resize through the master is seen. `exec
// --tty` the same. Refusals: a terminal with no console socket, a console socket with no terminal.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { consolePaths, sendControl, startMonitored } from '../../runtimes/monitor.ts';
import { makeBundle, type Json } from '../helpers/bundle.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runOnPty } from '../helpers/pty.ts';
import { berthRunc, CLI, cgroupDirsOf, runtimeRoot, uniqueId } from './helpers.ts';

const RUNTIMES: [string, string[]][] = [['runc', ['runc']], ['berth-runc', [process.execPath, CLI]]];

test.after.always(() => {
  for (const h of readdirSync('/sys/fs/cgroup')) { try { rmdirSync(join('/sys/fs/cgroup', h, 'tty')); } catch { /* in use or absent */ } }
});

const withTerminal = (spec: Json) => {
  spec.process.terminal = true;
  spec.process.consoleSize = { height: 33, width: 111 };
  spec.linux.cgroupsPath = `/tty/${uniqueId('t')}`;
};

/** create --console-socket under berth-monitor, start, type a line, resize, collect the screen and status. */
async function runWithPty(bin: string[], root: string, dir: string, script: string, edit?: (s: Json) => void): Promise<{ status: number; screen: string }> {
  makeBundle(dir, { args: ['sh', '-c', script], edit: (s) => { withTerminal(s); edit?.(s); } });
  const id = uniqueId('tty');
  const cons = consolePaths(dir, 'init');
  const [stdin, stdout, pidFile] = [join(dir, 'in'), join(dir, 'out'), join(dir, 'pid')];
  execFileSync('mkfifo', [stdin]);
  writeFileSync(stdout, '');
  const m = startMonitored({
    command: [...bin, '--root', root, 'create', '--bundle', dir, '--console-socket', cons.socket, '--pid-file', pidFile, id],
    exitFile: join(dir, 'exit'), pidFile, stdio: { stdin, stdout }, console: cons,
  });
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    await m.pid;
    execFileSync(bin[0]!, [...bin.slice(1), '--root', root, 'start', id]);
    const w = openSync(stdin, 'w');
    const shown = async (marker: string) => {
      for (let i = 0; i < 400 && !readFileSync(stdout, 'utf8').includes(marker); i++) await new Promise((r) => setTimeout(r, 25));
    };
    await shown('type-now');
    writeSync(w, 'typed line\n');
    await shown('resize-now');
    sendControl(cons.control, 'resize 120 50');
    const { status } = await m.exited;
    closeSync(w);
    execFileSync(bin[0]!, [...bin.slice(1), '--root', root, 'delete', '--force', id]);
    return { status, screen: readFileSync(stdout, 'utf8') };
  } finally {
    clearInterval(keepAlive);
  }
}

test.serial('create --console-socket: the same pty through runc and berth-runc', async (t) => {
  const screens: Record<string, string> = {};
  for (const [name, bin] of RUNTIMES) {
    const root = join(tempDir(t, `tty-${name}-`), 'root');
    const script = 'tty; stty size; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-stdio-on-the-tty; ' +
      'echo type-now; read line; echo got:$line; echo resize-now; ' +
      'for i in $(seq 1 100); do s=$(stty size); [ "$s" != "33 111" ] && break; sleep 0.05; done; echo $s; exit 5';
    const { status, screen } = await runWithPty(bin, root, tempDir(t, `tty-bundle-${name}-`), script);
    t.is(status, 5, `${name}: ${screen}`);
    screens[name] = screen;
  }
  t.regex(screens.runc!, /^\/dev\/pts\/0\r\n33 111\r\nall-stdio-on-the-tty\r\ntype-now\r\ntyped line\r\ngot:typed line\r\nresize-now\r\n50 120\r\n$/);
  t.is(screens['berth-runc'], screens.runc);
});

test.serial('the pty belongs to the process\'s user and keeps devpts\' group (tty, gid=5), as runc', async (t) => {
  const screens: Record<string, string> = {};
  for (const [name, bin] of RUNTIMES) {
    const root = join(tempDir(t, `ttyo-${name}-`), 'root');
    const script = 'stat -c "%u %g" $(tty); echo type-now; read line; echo resize-now';
    const { status, screen } = await runWithPty(bin, root, tempDir(t, `ttyo-bundle-${name}-`), script, (s) => { s.process.user = { uid: 1000, gid: 1000 }; });
    t.is(status, 0, `${name}: ${screen}`);
    screens[name] = screen;
  }
  t.regex(screens.runc!, /^1000 5\r\n/);
  t.is(screens['berth-runc'], screens.runc);
});

test.serial('exec --tty --console-socket: a second pty for the exec\'d process, through runc and berth-runc', async (t) => {
  for (const [name, bin] of RUNTIMES) {
    const root = join(tempDir(t, `ttyx-${name}-`), 'root');
    const dir = tempDir(t, `ttyx-bundle-${name}-`);
    makeBundle(dir, { args: ['sleep', '30'], edit: (s) => { s.linux.cgroupsPath = `/tty/${uniqueId('x')}`; } });
    const id = uniqueId('ttyx');
    execFileSync(bin[0]!, [...bin.slice(1), '--root', root, 'run', '--detach', '--bundle', dir, id], { stdio: 'ignore' });
    const cons = consolePaths(dir, 'exec');
    const out = join(dir, 'out');
    writeFileSync(out, '');
    const pidFile = join(dir, 'exec.pid');
    const m = startMonitored({
      command: [...bin, '--root', root, 'exec', '--tty', '--console-socket', cons.socket, '--pid-file', pidFile, '--detach', id, 'sh', '-c', 'tty; [ -t 0 ] && echo exec-on-a-tty; exit 2'],
      exitFile: join(dir, 'exec.exit'), pidFile, stdio: { stdout: out }, console: cons,
    });
    const keepAlive = setInterval(() => undefined, 1000);
    const { status } = await m.exited;
    clearInterval(keepAlive);
    execFileSync(bin[0]!, [...bin.slice(1), '--root', root, 'delete', '--force', id]);
    t.is(status, 2, name);
    t.regex(readFileSync(out, 'utf8'), /^\/dev\/pts\/\d+\r\nexec-on-a-tty\r\n$/, name);
  }
});

test('a terminal without --console-socket is refused, naming the flag; nothing is left behind', (t) => {
  const root = runtimeRoot(t);
  const dir = tempDir(t);
  makeBundle(dir, { edit: withTerminal });
  const id = uniqueId('nosock');
  const r = berthRunc(root, ['create', '--bundle', dir, id]);
  t.not(r.status, 0);
  t.regex(r.stderr, /process\.terminal is true: a --console-socket is needed/);
  t.is(berthRunc(root, ['list', '-q']).stdout, '');
  t.deepEqual(cgroupDirsOf(id), []);
});

test('a --console-socket for a process without a terminal is refused', (t) => {
  const root = runtimeRoot(t);
  const dir = tempDir(t);
  makeBundle(dir);
  const r = berthRunc(root, ['create', '--bundle', dir, '--console-socket', join(dir, 'nobody.sock'), uniqueId('noterm')]);
  t.not(r.status, 0);
  t.regex(r.stderr, /--console-socket given but process\.terminal is false/);
  t.is(berthRunc(root, ['list', '-q']).stdout, '');
});

test('a console socket nobody listens on is refused, naming it; nothing is left behind', (t) => {
  const root = runtimeRoot(t);
  const dir = tempDir(t);
  makeBundle(dir, { edit: withTerminal });
  const id = uniqueId('deadsock');
  const socket = join(dir, 'nobody.sock');
  const r = berthRunc(root, ['create', '--bundle', dir, '--console-socket', socket, id]);
  t.not(r.status, 0);
  t.true(r.stderr.includes(`connecting to the console socket ${socket}`), r.stderr);
  t.is(berthRunc(root, ['list', '-q']).stdout, '');
  t.deepEqual(cgroupDirsOf(id), []);
  t.false(existsSync(join(root, id)));
});

test.serial('run and exec --tty in the foreground (no console socket) relay the pty to our terminal, as runc', async (t) => {
  const screens: Record<string, string[]> = {};
  for (const [name, bin] of RUNTIMES) {
    const root = join(tempDir(t, `ttyfg-${name}-`), 'root');
    const dir = tempDir(t, `ttyfg-bundle-${name}-`);
    // runc sizes the pty to our window only once the process runs: wait until it has (berth-runc starts it so).
    makeBundle(dir, { args: ['sh', '-c', 'tty; for i in $(seq 1 100); do s=$(stty size); [ "$s" != "33 111" ] && break; sleep 0.02; done; echo $s; echo type-now; read line; echo got:$line; exit 4'], edit: withTerminal });
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: '' };
    const run = await runOnPty([...bin, '--root', root, 'run', '--bundle', dir, uniqueId('fg')], {
      cols: 90, rows: 25, env, typed: [{ when: /type-now/, text: 'typed\r' }],
    });
    t.is(run.code, 4, `${name}: ${run.screen}`);
    const id = uniqueId('fgx');
    makeBundle(join(dir, 'long'), { args: ['sleep', '30'], edit: (s) => { s.linux.cgroupsPath = `/tty/${uniqueId('l')}`; } });
    execFileSync(bin[0]!, [...bin.slice(1), '--root', root, 'run', '--detach', '--bundle', join(dir, 'long'), id], { stdio: 'ignore', env });
    // runc sizes an exec's pty after it starts too, and stty can find it unsized (then it fails): ask until it answers
    // (up to 10 s: on a loaded host runc took longer than 2 s).
    const exec = await runOnPty([...bin, '--root', root, 'exec', '--tty', id, 'sh', '-c',
      '[ -t 0 ] && echo exec-tty; for i in $(seq 1 500); do s=$(stty size 2>/dev/null) && [ "$s" != "0 0" ] && break; sleep 0.02; done; echo $s; exit 6'], { cols: 70, rows: 20, env });
    execFileSync(bin[0]!, [...bin.slice(1), '--root', root, 'delete', '--force', id], { env });
    t.is(exec.code, 6, `${name}: ${exec.screen}`);
    screens[name] = [run.screen, exec.screen];
  }
  t.regex(screens.runc![0]!, /^\/dev\/pts\/0\r\n25 90\r\ntype-now\r\ntyped\r\ngot:typed\r\n$/);
  t.deepEqual(screens['berth-runc'], screens.runc);
});
