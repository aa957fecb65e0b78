// Every OciRuntime backend; each registers itself when imported.
import './fast.ts';
import './cli.ts';
import './runsc.ts';
import './vm.ts';
