// containerd.services.version.v1.Version
import { unary } from '../../api/grpc.ts';
import { BERTH_REVISION, BERTH_VERSION } from '../version.ts';
import { registerService } from './service.ts';

registerService({
  name: 'containerd.services.version.v1.Version',
  plugin: { type: 'io.containerd.grpc.v1', id: 'version' },
  create: () => ({
    Version: unary(() => ({ version: BERTH_VERSION, revision: BERTH_REVISION })),
  }),
});
