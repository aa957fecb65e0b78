// berth's entry point (see cli.ts for the command line itself).
import { runCli } from './cli.ts';

runCli(process.argv.slice(2));
