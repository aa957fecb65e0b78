// berth images ls | pull | rm | tag | label
import { createReadStream, createWriteStream } from 'node:fs';
import { errInvalidArgument } from '../../api/errdefs.ts';
import { registerCommand, requireArgs, type FlagSpec } from '../command.ts';
import { formatLabels, humanSize, parseLabelArgs } from '../output.ts';
import { PullProgress, type ProgressMessage } from '../progress.ts';
import { imageSummary } from '../remote-content.ts';
import { registerLabelCommand } from './label.ts';

const IMAGES = 'containerd.services.images.v1.Images';
const TRANSFER = 'berth.services.transfer.v1.Transfer';

const REGISTRY_FLAGS: FlagSpec[] = [
  { name: 'plain-http', type: 'bool', usage: 'use plain HTTP for the registry' },
  { name: 'user', alias: 'u', type: 'string', usage: 'registry credentials, user[:password]' },
];

registerCommand({
  path: ['images', 'ls'],
  aliases: ['list'],
  summary: 'list images',
  args: '[<filter>, ...]',
  flags: [{ name: 'quiet', alias: 'q', type: 'bool', usage: 'print only image names' }, { name: 'json', type: 'bool', usage: 'print JSON' }],
  async run(ctx, flags, args) {
    const { images } = await ctx.client().call(IMAGES, 'List', { filters: args });
    if (flags.quiet) { for (const i of images) ctx.out.line(i.name); return; }
    const rows = [];
    const json = [];
    for (const i of images) {
      const { size, platforms } = await imageSummary(ctx.client(), i.target);
      json.push({ ...i, size, platforms });
      rows.push([i.name, i.target.mediaType, i.target.digest, humanSize(size), platforms.join(',') || '-', formatLabels(i.labels)]);
    }
    if (flags.json) return ctx.out.json(json);
    ctx.out.table(['REF', 'TYPE', 'DIGEST', 'SIZE', 'PLATFORMS', 'LABELS'], rows);
  },
});

function parsePlatform(s: string) {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw errInvalidArgument(`invalid platform ${JSON.stringify(s)}: want os/arch[/variant]`);
  return { os, architecture, variant: variant ?? '' };
}

registerCommand({
  path: ['images', 'pull'],
  summary: 'pull an image from a registry (berthd fetches, verifies and unpacks it)',
  args: '<ref>',
  flags: [
    ...REGISTRY_FLAGS,
    { name: 'platform', type: 'strings', usage: 'pull this platform (repeatable); default the host\'s' },
    { name: 'all-platforms', type: 'bool', usage: 'pull every platform' },
    { name: 'snapshotter', type: 'string', usage: 'snapshotter to unpack with (default the daemon\'s)' },
    { name: 'skip-unpack', type: 'bool', usage: 'fetch only, do not unpack' },
    { name: 'label', type: 'strings', usage: 'label the image, key=value (repeatable)' },
    { name: 'max-concurrent-downloads', type: 'string', usage: 'layers downloaded at once' },
    { name: 'json', type: 'bool', usage: 'print the resulting image as JSON' },
  ],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth images pull [flags] <ref>');
    const [username, ...pw] = ((flags.user as string | undefined) ?? '').split(':');
    const req = {
      ref: args[0], platforms: (flags.platform as string[]).map(parsePlatform), allPlatforms: !!flags['all-platforms'],
      skipUnpack: !!flags['skip-unpack'], snapshotter: flags.snapshotter ?? '', plainHttp: !!flags['plain-http'],
      username: username ?? '', password: pw.join(':'), labels: parseLabelArgs(flags.label as string[]),
      maxConcurrentDownloads: Number(flags['max-concurrent-downloads'] ?? 0),
    };
    const progress = new PullProgress(ctx.out.isTTY && !flags.json, (s) => process.stderr.write(s), args[0]!);
    let image: any;
    for await (const m of ctx.client().stream<any>(TRANSFER, 'Pull', req)) {
      if (m.stage === 'done') image = m.image;
      else progress.update(m);
    }
    progress.finish();
    if (flags.json) ctx.out.json(image);
    else ctx.out.line(`${image.name} ${image.target.digest}`);
  },
});

registerCommand({
  path: ['images', 'rm'],
  aliases: ['remove', 'delete', 'del'],
  summary: 'remove one or more images by reference',
  args: '<ref> [<ref>, ...]',
  flags: [{ name: 'sync', type: 'bool', usage: 'wait for garbage collection to finish' }],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth images rm [--sync] <ref> [<ref>, ...]');
    let failed = 0;
    for (const name of args) {
      try {
        await ctx.client().call(IMAGES, 'Delete', { name, sync: !!flags.sync });
        ctx.out.line(name);
      } catch (err) {
        failed++;
        ctx.out.error(`berth: ${(err as Error).message}`);
      }
    }
    return failed ? 1 : 0;
  },
});

registerCommand({
  path: ['images', 'tag'],
  summary: 'give an image another name',
  args: '<source_ref> <target_ref> [<target_ref>, ...]',
  flags: [{ name: 'force', type: 'bool', usage: 'replace a target that exists' }],
  async run(ctx, flags, args) {
    requireArgs(args, 2, 'berth images tag <source_ref> <target_ref> [<target_ref>, ...]');
    const { image } = await ctx.client().call(IMAGES, 'Get', { name: args[0] });
    for (const name of args.slice(1)) {
      try {
        await ctx.client().call(IMAGES, 'Create', { image: { name, target: image.target, labels: image.labels } });
      } catch (err) {
        if (!flags.force || !/already exists/.test((err as Error).message)) throw err;
        await ctx.client().call(IMAGES, 'Update', { image: { name, target: image.target, labels: image.labels } });
      }
      ctx.out.line(name);
    }
  },
});

registerLabelCommand({ group: 'images', idName: 'ref', service: IMAGES, field: 'image', idField: 'name' });

registerCommand({
  path: ['images', 'import'],
  summary: 'import an OCI image-layout or docker-save archive (berthd stores, verifies and unpacks it)',
  args: '<file | ->',
  flags: [
    { name: 'base-name', type: 'string', usage: 'name for images whose archive gives only a tag' },
    { name: 'skip-unpack', type: 'bool', usage: 'store only, do not unpack' },
    { name: 'snapshotter', type: 'string', usage: 'snapshotter to unpack with (default the daemon\'s)' },
  ],
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth images import [flags] <file | ->');
    const input = args[0] === '-' ? process.stdin : createReadStream(args[0]!, { highWaterMark: 1 << 20 });
    const call = ctx.client().open(TRANSFER, 'Import');
    call.send({ baseName: flags['base-name'] ?? '', skipUnpack: !!flags['skip-unpack'], snapshotter: flags.snapshotter ?? '' });
    const sending = (async () => {
      for await (const chunk of input) call.send({ data: chunk });
      call.end();
    })();
    const progress = new PullProgress(ctx.out.isTTY, (s) => process.stderr.write(s), args[0]!);
    const names: string[] = [];
    for await (const m of call) {
      if (m.stage === 'done') names.push(`${m.image.name} ${m.image.target.digest}`);
      else progress.update(m as ProgressMessage);
    }
    await sending;
    progress.finish();
    for (const n of names) ctx.out.line(n);
  },
});

registerCommand({
  path: ['images', 'push'],
  summary: 'push an image to a registry (berthd uploads it)',
  args: '<remote ref> [<local name>]',
  flags: REGISTRY_FLAGS,
  async run(ctx, flags, args) {
    requireArgs(args, 1, 'berth images push [flags] <remote ref> [<local name>]');
    const [username, ...pw] = ((flags.user as string | undefined) ?? '').split(':');
    const req = { name: args[1] ?? args[0], ref: args[0], plainHttp: !!flags['plain-http'], username: username ?? '', password: pw.join(':') };
    for await (const m of ctx.client().stream<any>(TRANSFER, 'Push', req)) {
      if (m.stage === 'done') ctx.out.line(`${m.image.name} ${m.image.target.digest}`);
      else process.stderr.write(`${m.digest.replace(/^sha256:/, '').slice(0, 12)}: ${m.status}\n`);
    }
  },
});

registerCommand({
  path: ['images', 'export'],
  summary: 'export images as an OCI image-layout archive (or docker save\'s format with --format docker)',
  args: '<out.tar | -> <name> [<name>, ...]',
  flags: [{ name: 'format', type: 'string', usage: 'oci or docker', default: 'oci' }],
  async run(ctx, flags, args) {
    requireArgs(args, 2, 'berth images export [--format oci|docker] <out.tar | -> <name> [<name>, ...]');
    if (flags.format !== 'oci' && flags.format !== 'docker') throw errInvalidArgument(`--format ${flags.format}: want oci or docker`);
    const out = args[0] === '-' ? process.stdout : createWriteStream(args[0]!);
    for await (const m of ctx.client().stream<any>(TRANSFER, 'Export', { names: args.slice(1), format: flags.format })) {
      if (!out.write(m.data)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    if (out !== process.stdout) await new Promise<void>((resolve) => (out as import('node:fs').WriteStream).end(() => resolve()));
  },
});
