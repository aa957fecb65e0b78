// containerd.services.content.v1.Content over the namespaced content store. Write follows containerd's
// content server: the first message names the ingest ref; each message may STAT, WRITE at the current
// offset (offset 0 on a partial ingest restarts it) or COMMIT (verifying size and digest); every message
// gets one response with the writer's offset and digest so far.
import { errInvalidArgument, errAlreadyExists, BerthError, ErrorCode } from '../../api/errdefs.ts';
import { bidiStream, namespaceOf, serverStream, unary, type Metadata, type ServerCall } from '../../api/grpc.ts';
import type { ContentInfo, ContentStore, ContentWriter, IngestStatus } from '../../content/types.ts';
import { batches, fieldPaths, toTimestamp } from './convert.ts';
import { leaseOf, registerService, type DaemonContext } from './service.ts';

const READ_CHUNK = 1 << 20;

const infoToProto = (i: ContentInfo) => ({
  digest: i.digest, size: i.size, createdAt: toTimestamp(i.createdAt), updatedAt: toTimestamp(i.updatedAt), labels: i.labels,
});

const statusToProto = (s: IngestStatus) => ({
  ref: s.ref, offset: s.offset, total: s.total, expected: s.expected ?? '',
  startedAt: toTimestamp(s.startedAt), updatedAt: toTimestamp(s.updatedAt),
});

function store(ctx: DaemonContext, call: { metadata: Metadata }): ContentStore {
  const lease = leaseOf(call);
  return ctx.db.content(namespaceOf(call), lease ? { lease } : {});
}

type Req = Record<string, any>;

/** Reads the next client message, or undefined at the end of the client's stream. */
function reader(call: ServerCall): () => Promise<Req | undefined> {
  const it = call[Symbol.asyncIterator]();
  return async () => {
    const r = await it.next();
    return r.done ? undefined : (r.value as Req);
  };
}

async function write(ctx: DaemonContext, call: ServerCall): Promise<void> {
  const next = reader(call);
  let req = await next();
  if (!req) return;
  if (!req.ref) throw errInvalidArgument('content write: the first message must have a reference (ref)');
  const ns = namespaceOf(call);
  const cs = store(ctx, call);
  let total = Number(req.total) || 0;
  let expected: string | undefined = req.expected || undefined;
  const w: ContentWriter = await cs.writer({ ref: req.ref, expected: { ...(expected ? { digest: expected } : {}), ...(total ? { size: total } : {}) } });
  let committed: string | undefined;
  try {
    while (req) {
      const st = await w.status();
      const msg: Req = { action: req.action, offset: st.offset };
      if (req.expected) {
        expected = req.expected;
        const present = await cs.info(req.expected).then(() => true, () => false);
        if (present) {
          await w.close();
          await cs.abort(req.ref).catch(() => undefined);
          throw errAlreadyExists(`blob with expected digest ${req.expected} exists`);
        }
      }
      if (Number(req.total) > 0) total = Number(req.total);
      if (req.action === 'STAT') {
        Object.assign(msg, { digest: w.digest(), startedAt: toTimestamp(st.startedAt), updatedAt: toTimestamp(st.updatedAt), total });
      } else {
        const offset = Number(req.offset) || 0;
        if (offset > 0 && offset !== st.offset) {
          throw new BerthError(ErrorCode.OutOfRange, `write @${offset} must occur at current offset ${st.offset}`);
        }
        if (offset === 0 && st.offset > 0) {
          await w.truncate(0);
          msg.offset = 0;
        }
        const data: Buffer | undefined = req.data;
        if (data && data.length > 0) {
          await w.write(data);
          msg.offset += data.length;
        }
        if (req.action === 'COMMIT') {
          await w.commit(total, expected, { labels: req.labels ?? {} });
          committed = w.digest();
        }
        msg.digest = w.digest();
      }
      call.write(msg);
      if (committed) break;
      req = await next();
    }
  } finally {
    if (!committed) await w.close().catch(() => undefined);
  }
  if (committed) ctx.log.debug({ ns, ref: req?.ref, digest: committed }, 'content committed');
}

registerService({
  name: 'containerd.services.content.v1.Content',
  plugin: { type: 'io.containerd.grpc.v1', id: 'content' },
  create: (ctx) => ({
    Info: unary(async (req, call) => ({ info: infoToProto(await store(ctx, call).info(req.digest)) })),
    Update: unary(async (req, call) => {
      if (!req.info?.digest) throw errInvalidArgument('content update: info.digest is required');
      const info = await store(ctx, call).update({ digest: req.info.digest, labels: req.info.labels ?? {} }, fieldPaths(req.updateMask));
      return { info: infoToProto(info) };
    }),
    List: serverStream(async (req, call) => {
      const infos: ContentInfo[] = [];
      await store(ctx, call).walk((i) => { infos.push(i); }, req.filters);
      for (const batch of batches(infos)) call.write({ info: batch.map(infoToProto) });
    }),
    Delete: unary(async (req, call) => {
      const ns = namespaceOf(call);
      await store(ctx, call).delete(req.digest);
      ctx.publish(ns, '/content/delete', 'containerd.events.ContentDelete', { digest: req.digest });
      return {};
    }),
    Read: serverStream(async (req, call) => {
      const r = await store(ctx, call).reader(req.digest);
      try {
        const start = Number(req.offset) || 0;
        if (start < 0 || start > r.size) throw errInvalidArgument(`read offset ${start} out of range (size ${r.size})`);
        const size = Number(req.size) || 0;
        const end = size > 0 ? Math.min(r.size, start + size) : r.size;
        for (let off = start; off < end && !call.cancelled;) {
          const data = await r.read(off, Math.min(READ_CHUNK, end - off));
          if (data.length === 0) break;
          if (!call.write({ offset: off, data })) await new Promise((resolve) => call.once('drain', resolve));
          off += data.length;
        }
      } finally {
        await r.close();
      }
    }),
    Status: unary(async (req, call) => ({ status: statusToProto(await store(ctx, call).status(req.ref)) })),
    ListStatuses: unary(async (req, call) => ({ statuses: (await store(ctx, call).listStatuses(req.filters)).map(statusToProto) })),
    Write: bidiStream((call) => write(ctx, call)),
    Abort: unary(async (req, call) => {
      await store(ctx, call).abort(req.ref);
      return {};
    }),
  }),
});
