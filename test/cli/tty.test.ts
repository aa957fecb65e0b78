// Terminals as an operator meets them: `berth run -t` and `berth tasks exec -t` on a real pty (ptyrun), with
// typed input, ^C, a window resize, the exit status, and the operator's terminal settings restored afterwards.
// Each runtime backend gets the same pty.
import test from 'ava';
import { join } from 'node:path';
import { busyboxImage } from '../helpers/image.ts';
import { runOnPty } from '../helpers/pty.ts';
import { registryWithImage } from '../helpers/registry.ts';
import { REPO, startDaemon, type TestDaemon } from '../daemon/helpers.ts';
import { berth, loadImage } from './helpers.ts';


const BERTH = join(REPO, 'dist', 'berth');

async function daemonWithImage(t: Parameters<typeof startDaemon>[0]): Promise<TestDaemon> {
  const d = await startDaemon(t);
  await loadImage(t, d.client('default'), 'busybox:tty', await busyboxImage({ tag: 'tty' }));
  return d;
}

const envFor = (d: TestDaemon) => ({ ...process.env, BERTH_ADDRESS: d.address, NODE_EXTRA_CA_CERTS: '' });

test.serial('berth run -t: the process has a pty sized like the terminal, input and ^C reach it, status and terminal settings come back', async (t) => {
  const d = await daemonWithImage(t);
  const script = [
    'stty -g',
    `${BERTH} run --rm -t busybox:tty tty1 sh -c 'tty; stty size; echo TERM=$TERM; [ -t 0 ] && echo stdin-is-a-tty; ` +
      `echo type-now; read line; echo got:$line; trap "echo interrupted; exit 7" INT; echo trap-set; sleep 20'`,
    'echo status=$?',
    'stty -g',
  ].join('; ');
  const res = await runOnPty(['sh', '-c', script], {
    cols: 101, rows: 37, env: envFor(d),
    typed: [{ when: /type-now/, text: 'hello there\r' }, { when: /trap-set/, text: '\x03' }],
  });
  const lines = res.screen.split('\r\n');
  t.is(res.code, 0, res.screen);
  t.regex(res.screen, /\/dev\/pts\/\d+\r\n37 101\r\nTERM=xterm\r\nstdin-is-a-tty\r\n/, 'a pty of the window\'s size, TERM set');
  t.regex(res.screen, /hello there\r\ngot:hello there\r\n/, 'typed input echoed by the container\'s pty and read');
  t.regex(res.screen, /\^Cinterrupted\r\nstatus=7\r\n/, '^C became SIGINT inside; run exited with the container\'s status');
  t.notRegex(res.screen, /\r\r\n/, 'output is not processed twice (our terminal was raw)');
  const settings = lines.filter((l) => /^[0-9a-f]+(:[0-9a-f]+){10,}$/.test(l));
  t.is(settings.length, 2, res.screen);
  t.is(settings[0], settings[1], 'the terminal\'s settings are restored');
  t.is((await berth(d.address, ['containers', 'ls', '-q'])).stdout, '');
});

test.serial('berth run -t: a window resize reaches the container (SIGWINCH → ResizePty)', async (t) => {
  const d = await daemonWithImage(t);
  const res = await runOnPty([BERTH, 'run', '--rm', '-t', 'busybox:tty', 'tty2', 'sh', '-c',
    'stty size; echo resize-now; for i in $(seq 1 100); do s=$(stty size); [ "$s" != "24 80" ] && break; sleep 0.1; done; echo $s'], {
    cols: 80, rows: 24, resize: { cols: 132, rows: 43, when: /resize-now/ }, env: envFor(d),
  });
  t.is(res.code, 0, res.screen);
  t.regex(res.screen, /^24 80\r\nresize-now\r\n43 132\r\n$/);
});

for (const runtime of ['runc', 'berth-runc', 'runsc']) {
  test.serial(`berth run -t --runc-binary ${runtime}: the same pty through a runtime CLI and its --console-socket`, async (t) => {
    const d = await daemonWithImage(t);
    const binary = runtime === 'berth-runc' ? join(REPO, 'dist', 'berth-runc.mjs') : runtime;
    const res = await runOnPty([BERTH, 'run', '--rm', '-t', '--runc-binary', binary, 'busybox:tty', `tty-${runtime}`, 'sh', '-c',
      '[ -t 0 ] && [ -t 1 ] && echo on-a-tty; for i in $(seq 1 50); do s=$(stty size 2>/dev/null) && [ "$s" != "0 0" ] && break; s=; sleep 0.1; done; ' +
      'echo $s; echo type-now; read line; echo got:$line; exit 3'], {
      cols: 90, rows: 30, env: envFor(d), typed: [{ when: /type-now/, text: 'typed\r' }],
    });
    t.is(res.code, 3, res.screen);
    // gVisor takes the window size from a ResizePty that races its sandbox's start: on a loaded machine it can
    // miss, so for runsc only the pty, input and status are checked.
    const size = runtime === 'runsc' ? '(30 90)?' : '30 90';
    t.regex(res.screen, new RegExp(`on-a-tty\\r\\n${size}\\r\\ntype-now\\r\\n(typed\\r\\n)?got:typed\\r\\n`));
  });
}

test.serial('berth tasks exec -t: an interactive shell in a running container', async (t) => {
  const d = await daemonWithImage(t);
  t.is((await berth(d.address, ['run', '-d', 'busybox:tty', 'tty3', 'sleep', '60'])).code, 0);
  t.teardown(async () => { await berth(d.address, ['tasks', 'delete', '-f', 'tty3']); await berth(d.address, ['containers', 'rm', 'tty3']); });
  const res = await runOnPty([BERTH, 'tasks', 'exec', '-t', '--exec-id', 'sh1', 'tty3', 'sh'], {
    cols: 100, rows: 30, env: envFor(d),
    typed: [{ when: /# /, text: 'echo pid=$$ size=$(stty size)\r' }, { when: /size=.*\r\n.*# /, text: 'exit 6\r' }],
  });
  t.is(res.code, 6, res.screen);
  t.regex(res.screen, /pid=\d+ size=30 100\r\n/);
  t.notRegex(res.screen, /pid=1 /, 'a new process beside the container\'s init');
});

test.serial('berth run without -t: stdin is piped to the container and ends with ours', async (t) => {
  const d = await daemonWithImage(t);
  const res = await berth(d.address, ['run', '--rm', 'busybox:tty', 'stdin1', 'sh', '-c', 'while read l; do echo "<$l>"; done; echo eof'], { input: 'one\ntwo\n' });
  t.is(res.code, 0, res.stderr);
  t.is(res.stdout, '<one>\n<two>\neof\n');
});

test.serial('berth images pull on a terminal: one redrawn bar per layer and a total, in place; the final screen shows every layer done', async (t) => {
  const image = await busyboxImage({ tag: 'pty-pull' });
  const { ref } = await registryWithImage(t, image, 'pty/busybox:1');
  const d = await startDaemon(t);
  const res = await runOnPty([BERTH, 'images', 'pull', ref], { cols: 120, rows: 30, env: envFor(d) });
  t.is(res.code, 0, res.screen);
  t.regex(res.screen, /\x1b\[\d+A/, 'the block is redrawn in place (cursor up)');
  t.regex(res.screen, /\r\x1b\[2K/, 'each line is cleared before it is rewritten');
  // What a person sees at the end: the last drawing, every layer done with a full bar, then the summary.
  const finalLines = res.screen.split(/\x1b\[\d+A/).at(-1)!.split('\r\n').map((l) => l.replace(/\r?\x1b\[2K/g, ''));
  for (const l of image.manifests[0]!.layers) {
    t.true(finalLines.some((line) => line.startsWith(l.descriptor.digest.slice(7, 19)) && /(done|unpacked)\s+\|█{24}\|/.test(line)), `layer ${l.descriptor.digest} finished with a full bar:\n${finalLines.join('\n')}`);
  }
  t.true(finalLines.some((line) => /^total\s+\S+ \w+\/\S+ \w+\s+\S+ \w+\/s/.test(line)), 'a total line with the speed');
  t.regex(res.screen, /done: .* in \d+\.\d s\r\n/);
  t.regex(res.screen, new RegExp(`${ref.replace(/[.]/g, '\\.')} ${image.target.digest}\\r\\n`));
});
