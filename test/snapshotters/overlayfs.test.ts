import '../../snapshotters/index.ts';
import { openSnapshotter } from '../../snapshotters/registry.ts';
import { snapshotterConformance } from './conformance.ts';

snapshotterConformance('overlayfs', (root) => openSnapshotter('overlayfs', root));
