// berthd's command line, as containerd's: -c/--config, -a/--address, --root, --state, -l/--log-level.
// SIGINT/SIGTERM stop it cleanly.
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { BerthError } from '../api/errdefs.ts';
import { checkLevel, DEFAULT_CONFIG, finishConfig, loadConfigFile, type DaemonConfig } from './config.ts';
import { Berthd } from './server.ts';
import { BERTH_VERSION } from './version.ts';

const USAGE = `usage: berthd [options]

  -c, --config FILE      TOML config (default /etc/berth/config.toml if present)
  -a, --address PATH     gRPC socket (default ${DEFAULT_CONFIG.address})
      --root DIR         persistent state (default ${DEFAULT_CONFIG.root})
      --state DIR        runtime state (default ${DEFAULT_CONFIG.state})
  -l, --log-level LEVEL  trace, debug, info, warn, error, fatal (default info)
  -v, --version          print the version
  -h, --help             this help`;

function config(argv: string[]): DaemonConfig | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      address: { type: 'string', short: 'a' },
      root: { type: 'string' },
      state: { type: 'string' },
      'log-level': { type: 'string', short: 'l' },
      version: { type: 'boolean', short: 'v' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) { console.log(USAGE); return undefined; }
  if (values.version) { console.log(`berthd ${BERTH_VERSION}`); return undefined; }
  const path = values.config ?? '/etc/berth/config.toml';
  const file = loadConfigFile(path, values.config !== undefined);
  const c: DaemonConfig = { ...DEFAULT_CONFIG, ...file, configFile: existsSync(path) ? path : '' };
  if (values.address) c.address = values.address;
  if (values.root) c.root = values.root;
  if (values.state) c.state = values.state;
  if (values['log-level']) c.logLevel = checkLevel(values['log-level']);
  return finishConfig(c);
}

async function main(): Promise<void> {
  const c = config(process.argv.slice(2));
  if (!c) return;
  const daemon = await Berthd.start(c);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    daemon.log.info({ signal }, 'shutting down');
    daemon.stop().then(() => process.exit(0), (err) => { daemon.log.error({ err }, 'shutdown failed'); process.exit(1); });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // Reloads the runtime classes and the policy; a bad new file keeps the policy in force (and says why).
  process.on('SIGHUP', () => { daemon.ctx.policy.reload(); });
}

main().catch((err) => {
  const msg = err instanceof BerthError || (err as Error)?.name === 'TypeError' ? (err as Error).message : String((err as Error)?.stack ?? err);
  process.stderr.write(`berthd: ${msg}\n`);
  process.exit(1);
});
