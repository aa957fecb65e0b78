import test from 'ava';
import { createHash } from 'node:crypto';
import { chainIds, childGcLabels, distributionSourceLabel } from '../../daemon/images/image.ts';
import { checkLayersMatchConfig, parseConfig, parseIndex, parseManifest } from '../../daemon/images/manifest.ts';
import { MediaType, layerCompressionOf } from '../../daemon/images/mediatypes.ts';
import { formatPlatform, hostPlatform, normalizePlatform, onlyPlatform, parsePlatform } from '../../daemon/images/platforms.ts';

const d = (c: string) => 'sha256:' + c.repeat(64);
const desc = (mediaType: string, c: string, size = 1) => ({ mediaType, digest: d(c), size });
const config = desc(MediaType.OciConfig, 'c');
const layer = desc(MediaType.OciLayerGzip, 'a');

test('manifest validation: good documents parse, bad ones name the problem', (t) => {
  t.is(parseManifest(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] })).layers.length, 1);
  t.is(parseManifest(JSON.stringify({ schemaVersion: 2, config, layers: [] }), MediaType.OciManifest).layers.length, 0);
  const cases: [string, string | undefined, RegExp][] = [
    ['{', undefined, /invalid image manifest: malformed JSON/],
    ['[]', undefined, /invalid image manifest: not a JSON object/],
    [JSON.stringify({ schemaVersion: 1 }), undefined, /schema1 manifests are not supported/],
    [JSON.stringify({ schemaVersion: '2', config, layers: [] }), undefined, /schemaVersion "2", want 2/],
    [JSON.stringify({ schemaVersion: 2, layers: [] }), undefined, /missing config/],
    [JSON.stringify({ schemaVersion: 2, config }), undefined, /missing layers array/],
    [JSON.stringify({ schemaVersion: 2, config: { ...config, digest: 'sha256:xyz' }, layers: [] }), undefined, /invalid digest "sha256:xyz"/],
    [JSON.stringify({ schemaVersion: 2, config: { ...config, size: -1 }, layers: [] }), undefined, /invalid size -1/],
    [JSON.stringify({ schemaVersion: 2, config, layers: [{ digest: d('a'), size: 1 }] }), undefined, /descriptor without mediaType/],
    [JSON.stringify({ schemaVersion: 2, config, layers: [{ ...layer, mediaType: 'text/plain' }] }), undefined, /unknown layer media type "text\/plain"/],
    [JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, config, layers: [] }), undefined, /mediaType .* is not one of/],
    [JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [] }), MediaType.DockerManifest, /differs from its descriptor/],
    [JSON.stringify({ schemaVersion: 2, config, layers: [] }), MediaType.DockerManifest, /Docker schema2 manifest without mediaType/],
  ];
  for (const [doc, mt, message] of cases) t.throws(() => parseManifest(doc, mt), { message }, doc);
});

test('index and config validation', (t) => {
  t.is(parseIndex(JSON.stringify({ schemaVersion: 2, manifests: [desc(MediaType.OciManifest, 'b')] })).manifests.length, 1);
  t.throws(() => parseIndex(JSON.stringify({ schemaVersion: 2 })), { message: /invalid image index: missing manifests array/ });
  const good = { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [d('1')] } };
  t.is(parseConfig(JSON.stringify(good)).rootfs.diff_ids.length, 1);
  t.throws(() => parseConfig(JSON.stringify({ ...good, os: undefined })), { message: /invalid image config: missing os/ });
  t.throws(() => parseConfig(JSON.stringify({ ...good, rootfs: { type: 'x', diff_ids: [] } })), { message: /rootfs.type "x", want "layers"/ });
  t.throws(() => parseConfig(JSON.stringify({ ...good, rootfs: { type: 'layers', diff_ids: ['nope'] } })), { message: /invalid diff_id "nope"/ });
  const manifest = parseManifest(JSON.stringify({ schemaVersion: 2, config, layers: [layer, layer] }));
  t.throws(() => checkLayersMatchConfig(manifest, parseConfig(JSON.stringify(good)), d('f')), { message: new RegExp(`image manifest ${d('f')}: 2 layers but the config lists 1 diff_ids`) });
  t.is(layerCompressionOf(MediaType.DockerLayerGzip), 'gzip');
  t.throws(() => layerCompressionOf('application/x-tar'), { message: /unknown layer media type/ });
});

test('platform parsing, normalization and matching as containerd', (t) => {
  t.deepEqual(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64' });
  t.deepEqual(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' });
  t.deepEqual(parsePlatform('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
  t.deepEqual(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' });
  t.deepEqual(parsePlatform('linux/arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.deepEqual(parsePlatform('linux/arm/6'), { os: 'linux', architecture: 'arm', variant: 'v6' });
  t.deepEqual(parsePlatform('linux/armhf'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  t.deepEqual(parsePlatform('arm64'), { os: 'linux', architecture: 'arm64' });
  t.deepEqual(parsePlatform('linux'), hostPlatform());
  t.is(formatPlatform(normalizePlatform({ os: 'Linux', architecture: 'armel' })), 'linux/arm/v6');
  t.throws(() => parsePlatform('plan10/amd64'), { message: /unknown operating system "plan10"/ });
  t.throws(() => parsePlatform('linux/z80'), { message: /unknown architecture "z80"/ });
  t.throws(() => parsePlatform('linux/amd64/v2/x'), { message: /want <os>/ });
  t.throws(() => parsePlatform('linux/am d64'), { message: /invalid component/ });
  t.throws(() => parsePlatform('frobnicate'), { message: /unknown operating system or architecture/ });

  const arm64 = onlyPlatform({ os: 'linux', architecture: 'arm64' });
  t.true(arm64.match({ os: 'linux', architecture: 'arm64', variant: 'v8' }));
  t.true(arm64.match({ os: 'linux', architecture: 'arm', variant: 'v7' }));
  t.true(arm64.rank({ os: 'linux', architecture: 'arm64' }) < arm64.rank({ os: 'linux', architecture: 'arm', variant: 'v7' }));
  t.true(arm64.rank({ os: 'linux', architecture: 'arm', variant: 'v7' }) < arm64.rank({ os: 'linux', architecture: 'arm', variant: 'v5' }));
  t.false(arm64.match({ os: 'linux', architecture: 'amd64' }));
  const armv6 = onlyPlatform(parsePlatform('linux/arm/v6'));
  t.true(armv6.match({ os: 'linux', architecture: 'arm', variant: 'v5' }));
  t.false(armv6.match({ os: 'linux', architecture: 'arm', variant: 'v7' }));
  t.false(onlyPlatform(parsePlatform('linux/amd64')).match({ os: 'windows', architecture: 'amd64' }));
});

test('GC labels, distribution source and chain IDs as containerd computes them', (t) => {
  t.deepEqual(childGcLabels([config, layer, desc(MediaType.OciLayer, 'b')]), {
    'containerd.io/gc.ref.content.config': config.digest,
    'containerd.io/gc.ref.content.l.0': layer.digest,
    'containerd.io/gc.ref.content.l.1': d('b'),
  });
  t.deepEqual(childGcLabels([desc(MediaType.DockerManifest, '1'), desc(MediaType.OciManifest, '2'), desc('application/x-other', '3')]), {
    'containerd.io/gc.ref.content.m.0': d('1'),
    'containerd.io/gc.ref.content.m.1': d('2'),
    'containerd.io/gc.ref.content.0': d('3'),
  });
  t.deepEqual(distributionSourceLabel('127.0.0.1:5000', 'b/c', 'a,z'), ['containerd.io/distribution.source.127.0.0.1', 'a,b/c,z']);
  t.deepEqual(distributionSourceLabel('[::1]:5000', 'a'), ['containerd.io/distribution.source.::1', 'a']);
  const sha = (s: string) => 'sha256:' + createHash('sha256').update(s).digest('hex');
  t.deepEqual(chainIds([d('1'), d('2'), d('3')]), [d('1'), sha(`${d('1')} ${d('2')}`), sha(`${sha(`${d('1')} ${d('2')}`)} ${d('3')}`)]);
  t.deepEqual(chainIds([]), []);
});
