// The image-building test helpers others rely on: tars of every entry kind, deterministic builds, OCI layouts.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, busyboxImage, busyboxLayerTar, tarEntries, writeOciLayout } from '../helpers/image.ts';
import { tempDir } from '../helpers/tmp.ts';

test('tarEntries writes every entry kind a layer can hold, as GNU tar reads them', async (t) => {
  const dir = tempDir(t);
  const data = await tarEntries([
    { name: 'etc/', type: 'directory', mode: 0o750, uid: 1000, gid: 1000 },
    { name: 'etc/file', data: 'hello\n', mode: 0o640, uid: 1000, gid: 2000, xattrs: { 'user.berth': 'yes' } },
    { name: 'etc/hard', type: 'link', linkname: 'etc/file' },
    { name: 'etc/sym', type: 'symlink', linkname: '../etc/file' },
    { name: 'dev/', type: 'directory' },
    { name: 'dev/null0', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/fifo', type: 'fifo', mode: 0o600 },
    { name: 'var/.wh.gone', data: '' },
    { name: 'opaque/.wh..wh..opq', data: '' },
  ]);
  execFileSync('tar', ['-x', '--xattrs', '--xattrs-include=user.*', '--same-owner', '-p', '-C', dir], { input: data });
  const file = lstatSync(join(dir, 'etc/file'));
  t.is(readFileSync(join(dir, 'etc/file'), 'utf8'), 'hello\n');
  t.is(file.mode & 0o7777, 0o640);
  t.deepEqual([file.uid, file.gid], [1000, 2000]);
  t.is(file.mtimeMs, Date.parse('2020-01-01T00:00:00Z'));
  t.is(lstatSync(join(dir, 'etc')).mode & 0o7777, 0o750);
  t.is(lstatSync(join(dir, 'etc/hard')).ino, file.ino);
  t.is(readlinkSync(join(dir, 'etc/sym')), '../etc/file');
  const dev = lstatSync(join(dir, 'dev/null0'));
  t.true(dev.isCharacterDevice());
  t.is(dev.rdev, (1 << 8) | 3);
  t.true(lstatSync(join(dir, 'dev/fifo')).isFIFO());
  t.true(lstatSync(join(dir, 'var/.wh.gone')).isFile());
  t.true(lstatSync(join(dir, 'opaque/.wh..wh..opq')).isFile());
  t.is(execFileSync('python3', ['-c', 'import os,sys; print(os.getxattr(sys.argv[1], "user.berth").decode(), end="")', join(dir, 'etc/file')], { encoding: 'utf8' }), 'yes');
});

test('builds are deterministic and OCI layouts are readable by skopeo', async (t) => {
  const a = await busyboxImage({ tag: 'same' });
  const b = await busyboxImage({ tag: 'same' });
  t.deepEqual(a.target, b.target);
  t.true((await busyboxLayerTar()).length > 1 << 20);
  const zstd = buildImage({ layers: [await busyboxLayerTar()], compression: 'zstd', docker: true });
  t.is(zstd.manifests[0]!.layers[0]!.descriptor.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.zstd');

  const dir = join(tempDir(t), 'layout');
  writeOciLayout(dir, a, 'v1');
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${dir}:v1`], { encoding: 'utf8' }));
  t.is(inspect.Digest, a.target.digest);
  t.deepEqual(inspect.Layers, a.manifests[0]!.layers.map((l) => l.descriptor.digest));
  t.is(inspect.Architecture, 'amd64');
});
