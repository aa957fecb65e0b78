import '../../snapshotters/index.ts';
import { openSnapshotter } from '../../snapshotters/registry.ts';
import { snapshotterConformance } from './conformance.ts';

snapshotterConformance('native', (root) => openSnapshotter('native', root));
