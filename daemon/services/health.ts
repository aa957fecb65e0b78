// grpc.health.v1.Health, as containerd serves it (its healthcheck plugin, gRPC's standard health server): the
// server as a whole ("") and every service berthd serves answer SERVING; other names are unknown. dockerd
// asks Check after its event stream broke (a daemon restart) and subscribes again only once it answers.
import { errNotFound } from '../../api/errdefs.ts';
import { serverStream, unary } from '../../api/grpc.ts';
import { registeredServices, registerService } from './service.ts';

const HEALTH = 'grpc.health.v1.Health';

/** What gRPC's health server answers for a service name: '' (the server) and each served service are serving. */
function statusOf(service: string): 'SERVING' | undefined {
  if (service === '' || service === HEALTH || registeredServices().some((s) => s.name === service)) return 'SERVING';
  return undefined;
}

registerService({
  name: HEALTH,
  plugin: { type: 'io.containerd.grpc.v1', id: 'healthcheck' },
  create: () => ({
    Check: unary((req) => {
      const status = statusOf(req.service ?? '');
      if (!status) throw errNotFound(`unknown service ${JSON.stringify(req.service)}`);
      return { status };
    }),
    // The status now, then the call stays open for changes (none while berthd serves) until the client leaves
    // or the daemon stops, as gRPC's health server does; an unknown service is reported, not refused.
    Watch: serverStream(async (req, call) => {
      call.write({ status: statusOf(req.service ?? '') ?? 'SERVICE_UNKNOWN' });
      await new Promise<void>((resolve) => { call.once('cancelled', resolve); call.once('close', resolve); });
    }),
  }),
});
