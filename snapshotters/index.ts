// Every snapshotter berth has; each registers itself when imported.
import './overlayfs.ts';
import './native.ts';
