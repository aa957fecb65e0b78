// The event exchange's window after a restart: task events are kept for clients that subscribe late (dockerd
// reconnects after its gRPC backoff), one exit per process passes, other topics are not kept.
import test from 'ava';
import { EventExchange, type Envelope } from '../../daemon/events/exchange.ts';
import { unpackAny } from '../../api/proto.ts';

async function take(sub: AsyncIterable<Envelope>, n: number): Promise<string[]> {
  const out: string[] = [];
  if (n === 0) return out;
  for await (const env of sub) {
    const e = unpackAny(env.event);
    out.push(`${env.topic} ${e.containerId ?? e.name}${e.exitStatus !== undefined ? ` ${e.exitStatus}` : ''}`);
    if (out.length === n) break;
  }
  return out;
}

const exit = (id: string, pid: number, status: number) => ({ containerId: id, id, pid, exitStatus: status, exitedAt: { seconds: 1, nanos: 0 } });

test('task events of a restart reach a late subscriber once; other topics and later subscribers after the window do not', async (t) => {
  const x = new EventExchange();
  x.keepTaskEventsFor(60_000);
  x.publish('moby', '/tasks/exit', 'containerd.events.TaskExit', exit('c1', 10, 7));   // berthd's report at restore
  x.publish('moby', '/namespaces/create', 'containerd.events.NamespaceCreate', { name: 'x' });
  x.publish('moby', '/tasks/exit', 'containerd.events.TaskExit', exit('c1', 10, 7));   // the shim's retried forward
  x.publish('moby', '/tasks/delete', 'containerd.events.TaskDelete', { containerId: 'c2', id: 'c2', pid: 11, exitStatus: 137 });
  const late = x.subscribe(['namespace==moby']);
  // A new task of the same container (docker restart) is another process: its exit passes.
  x.publish('moby', '/tasks/exit', 'containerd.events.TaskExit', exit('c1', 12, 0));
  t.deepEqual(await take(late, 3), ['/tasks/exit c1 7', '/tasks/delete c2 137', '/tasks/exit c1 0']);
  const filtered = x.subscribe(['topic=="/tasks/delete"']);
  x.publish('moby', '/tasks/start', 'containerd.events.TaskStart', { containerId: 'c3', pid: 13 });
  x.publish('moby', '/tasks/delete', 'containerd.events.TaskDelete', { containerId: 'c3', id: 'c3', pid: 13, exitStatus: 0 });
  t.deepEqual(await take(filtered, 2), ['/tasks/delete c2 137', '/tasks/delete c3 0'], 'the kept events pass the subscriber\'s filters');
  x.stopKeeping();
  const after = x.subscribe();
  x.publish('moby', '/tasks/exit', 'containerd.events.TaskExit', exit('c4', 14, 1));
  t.deepEqual(await take(after, 1), ['/tasks/exit c4 1'], 'nothing kept once the window closed');
});
