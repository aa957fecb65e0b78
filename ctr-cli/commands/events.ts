// berth events: stream the daemon's events (all namespaces) until interrupted.
import { registerCommand } from '../command.ts';
import { fromTimestamp, unpackAny } from '../../api/proto.ts';

registerCommand({
  path: ['events'],
  aliases: ['event'],
  summary: 'print events as they happen',
  args: '[<filter>, ...]',
  flags: [{ name: 'json', type: 'bool', usage: 'one JSON object per event' }],
  async run(ctx, flags, args) {
    for await (const e of ctx.client().stream<any>('containerd.services.events.v1.Events', 'Subscribe', { filters: args })) {
      let payload: unknown;
      try { payload = unpackAny(e.event); } catch { payload = { typeUrl: e.event?.typeUrl }; }
      const at = fromTimestamp(e.timestamp).toISOString();
      if (flags.json) ctx.out.line(JSON.stringify({ timestamp: at, namespace: e.namespace, topic: e.topic, event: payload }));
      else ctx.out.line(`${at} ${e.namespace} ${e.topic} ${JSON.stringify(payload)}`);
    }
  },
});
