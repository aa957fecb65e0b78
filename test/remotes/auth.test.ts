import test from 'ava';
import { join } from 'node:path';
import { LocalContentStore } from '../../content/local.ts';
import { parseChallenges } from '../../daemon/remotes/auth.ts';
import { pullImage } from '../../daemon/remotes/pull.ts';
import { pushImage } from '../../daemon/remotes/push.ts';
import { busyboxImage, writeImageToStore } from '../helpers/image.ts';
import { startRegistry } from '../helpers/registry.ts';
import { tempDir } from '../helpers/tmp.ts';

test('WWW-Authenticate parsing: several challenges, quoted values with commas and escapes', (t) => {
  t.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
  ]);
  t.deepEqual(parseChallenges('Basic realm="x \\"y\\"", Bearer realm=https://t/token'), [
    { scheme: 'basic', params: { realm: 'x "y"' } },
    { scheme: 'bearer', params: { realm: 'https://t/token' } },
  ]);
  t.deepEqual(parseChallenges(''), []);
});

for (const auth of ['basic', 'token'] as const) {
  test(`${auth} auth: anonymous and wrong credentials refused, right ones push and pull`, async (t) => {
    const reg = await startRegistry(t, { auth });
    const image = await busyboxImage({ tag: auth });
    const ref = `${reg.host}/private/img:1`;
    const src = await LocalContentStore.open(join(tempDir(t), 'src'));
    await writeImageToStore(src, image);

    await t.throwsAsync(pushImage(ref, { store: src, target: image.target }), { message: /unexpected status 401/ });
    const wrong = { credentials: () => ({ username: reg.username!, password: 'wrong' }) };
    await t.throwsAsync(pushImage(ref, { store: src, target: image.target, ...wrong }), { message: auth === 'basic' ? /unexpected status 401/ : /token server .* refused user berth/ });

    const good = { credentials: (host: string) => (host === reg.host ? { username: reg.username!, password: reg.password! } : undefined) };
    await pushImage(ref, { store: src, target: image.target, ...good });
    const dst = await LocalContentStore.open(join(tempDir(t), 'dst'));
    const pulled = await pullImage(ref, { store: dst, ...good });
    t.is(pulled.image.target.digest, image.target.digest);
    await t.throwsAsync(pullImage(ref, { store: await LocalContentStore.open(join(tempDir(t), 'anon')) }), { message: /401/ });
    if (auth === 'token') t.true(reg.tokenRequests.some((r) => r.user === reg.username && r.scopes.includes('repository:private/img:pull,push')));
  });
}
