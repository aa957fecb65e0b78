import test from 'ava';
import { join } from 'node:path';
import { parseNormalizedReference } from '../../api/reference.ts';
import { LocalContentStore } from '../../content/local.ts';
import { pullImage } from '../../daemon/remotes/pull.ts';
import { pushImage } from '../../daemon/remotes/push.ts';
import { Repository, isLoopbackHost } from '../../daemon/remotes/registry.ts';
import { busyboxImage, writeImageToStore } from '../helpers/image.ts';
import { startRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/tmp.ts';

test('plain HTTP only for loopback and insecure hosts; docker.io goes to registry-1.docker.io over HTTPS', (t) => {
  const url = (ref: string, opts = {}) => new Repository(parseNormalizedReference(ref), opts).baseUrl;
  t.is(url('busybox'), 'https://registry-1.docker.io/v2/library/busybox/');
  t.is(url('registry.example:5000/a/b'), 'https://registry.example:5000/v2/a/b/');
  t.is(url('registry.example:5000/a/b', { insecureHosts: ['registry.example:5000'] }), 'http://registry.example:5000/v2/a/b/');
  t.is(url('registry.example/a', { plainHttp: true }), 'http://registry.example/v2/a/');
  t.is(url('127.0.0.1:5000/a'), 'http://127.0.0.1:5000/v2/a/');
  t.is(url('127.0.0.1:5000/a', { plainHttp: false }), 'https://127.0.0.1:5000/v2/a/');
  t.is(url('localhost:5000/a'), 'http://localhost:5000/v2/a/');
  t.is(url('[::1]:5000/a'), 'http://[::1]:5000/v2/a/');
  t.true(isLoopbackHost('127.1.2.3'));
  t.false(isLoopbackHost('128.0.0.1:5000'));
  t.false(isLoopbackHost('localhost.example.com'));
});

test('HTTPS registry: trusted through the given CA, refused with a clear error without it', async (t) => {
  const reg = await startRegistry(t, { tls: true });
  const image = await busyboxImage({ tag: 'tls' });
  const src = await LocalContentStore.open(join(tempDir(t), 'src'));
  await writeImageToStore(src, image);
  const ref = `${reg.host}/secure/img:1`;
  await t.throwsAsync(pushImage(ref, { store: src, target: image.target, plainHttp: false }), { message: /HEAD https:\/\/127\.0\.0\.1:\d+\/v2\/secure\/img\/blobs\/sha256:[0-9a-f]+: .*self.signed.* \(TLS: pass the registry CA/i });
  await pushImage(ref, { store: src, target: image.target, plainHttp: false, ca: reg.ca });
  const pulled = await pullImage(ref, { store: await LocalContentStore.open(join(tempDir(t), 'dst')), plainHttp: false, ca: reg.ca });
  t.is(pulled.image.target.digest, image.target.digest);
  // Speaking plain HTTP to a TLS port gets an answer that is no registry's.
  await t.throwsAsync(pullImage(ref, { store: await LocalContentStore.open(join(tempDir(t), 'plain')) }), { message: /unexpected status 400/ });
});
