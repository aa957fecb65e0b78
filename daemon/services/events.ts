// containerd.services.events.v1.Events: Publish (in the caller's namespace), Forward (envelope kept as it
// is), Subscribe (a stream that lasts until the client goes away).
import { errInvalidArgument } from '../../api/errdefs.ts';
import { namespaceOf, serverStream, unary } from '../../api/grpc.ts';
import { fromTimestamp, toTimestamp } from './convert.ts';
import { registerService } from './service.ts';

registerService({
  name: 'containerd.services.events.v1.Events',
  plugin: { type: 'io.containerd.grpc.v1', id: 'events' },
  create: (ctx) => ({
    Publish: unary((req, call) => {
      if (!req.event?.typeUrl) throw errInvalidArgument('publish: an event (google.protobuf.Any) is required');
      ctx.events.publishAny(namespaceOf(call), req.topic, req.event);
      return {};
    }),
    Forward: unary((req) => {
      const env = req.envelope;
      if (!env?.event?.typeUrl) throw errInvalidArgument('forward: an envelope with an event is required');
      if (!env.namespace) throw errInvalidArgument('forward: the envelope has no namespace');
      ctx.events.forward({ timestamp: fromTimestamp(env.timestamp), namespace: env.namespace, topic: env.topic, event: env.event });
      return {};
    }),
    Subscribe: serverStream(async (req, call) => {
      const sub = ctx.events.subscribe(req.filters);
      call.on('cancelled', () => sub.close());
      call.on('close', () => sub.close());
      for await (const env of sub) {
        const ok = call.write({ timestamp: toTimestamp(env.timestamp), namespace: env.namespace, topic: env.topic, event: env.event });
        if (!ok) await new Promise((resolve) => call.once('drain', resolve));
      }
    }),
  }),
});
