// berth.services.policy.v1.Policy: what the runtime policy is and what it would decide (daemon/policy/).
import { namespaceOf, unary } from '../../api/grpc.ts';
import { packAny } from '../../api/proto.ts';
import { errInvalidArgument } from '../../api/errdefs.ts';
import { DEFAULT_CAPS } from '../../api/oci-defaults/capabilities.ts';
import { backendOf } from '../policy/classes.ts';
import { namespaceLabels } from '../policy/enforce.ts';
import { RUNC_OPTIONS } from '../runtime/runtime-map.ts';
import { specFacts } from '../policy/request.ts';
import { registerService } from './service.ts';

const HOST_NAMESPACES = ['pid', 'network', 'ipc', 'uts', 'mount'];

registerService({
  name: 'berth.services.policy.v1.Policy',
  plugin: { type: 'io.containerd.grpc.v1', id: 'policy' },
  create: (ctx) => ({
    Runtimes: unary(() => {
      const classes = ctx.policy.current.classes;
      return {
        classes: classes.list().map((c) => ({
          name: c.name, runtimeType: c.runtimeType, isolation: c.isolation, unusable: c.unusable ?? '', default: c.name === classes.defaultClass,
          options: Object.fromEntries(Object.entries(c.options).map(([k, v]) => [k, String(v)])),
          ...(backendOf(c.runtimeType, packAny(RUNC_OPTIONS, c.options)) === 'vm' ? { warmPool: ctx.tasks.vmWarmPoolOfShims() } : {}),
        })),
      };
    }),
    Show: unary(() => {
      const p = ctx.policy.current;
      return {
        source: p.source,
        rules: p.rules.map((r) => ({
          name: r.name, action: r.action, isolation: r.isolation ?? '', runtimeClass: r.class ?? '', onWeaker: r.action === 'require' ? r.onWeaker : '',
          forbid: r.forbid, force: r.force, match: JSON.stringify(r.match), source: r.source ?? '', reason: r.reason ?? '',
        })),
      };
    }),
    Explain: unary(async (req, call) => {
      const ns = req.namespace || namespaceOf(call);
      if (!/^[A-Za-z0-9][\w.-]*$/.test(ns)) throw errInvalidArgument(`explain: invalid namespace ${JSON.stringify(ns)}`);
      // The container as `berth run` would make it: containerd's default capabilities and namespaces, plus the flags.
      const caps = req.privileged ? [...DEFAULT_CAPS, 'CAP_SYS_ADMIN'] : DEFAULT_CAPS;
      const spec = {
        process: { capabilities: { bounding: caps, effective: caps, permitted: caps } },
        linux: { namespaces: HOST_NAMESPACES.filter((n) => !(req.hostNetwork && n === 'network')).map((type) => ({ type })) },
        annotations: req.annotations ?? {},
      };
      const d = ctx.policy.current.decide({
        namespace: ns, namespaceLabels: await namespaceLabels(ctx.db, ns), image: req.image ?? '', labels: req.labels ?? {},
        facts: specFacts(spec), runtime: req.runtime ?? '', options: undefined,
      });
      const cls = d.verdict === 'refuse' ? undefined : d.class;
      return { verdict: d.verdict, rule: d.rule, runtimeClass: cls?.name ?? (d.verdict === 'refuse' ? '' : d.runtime), isolation: cls?.isolation ?? '', reason: d.why };
    }),
  }),
});
