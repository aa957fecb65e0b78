import test from 'ava';
import { familiarReference, formatReference, parseNormalizedReference, parseReference } from '../../api/reference.ts';

const D = 'sha256:' + 'ab'.repeat(32);

test('normalization like docker and containerd', (t) => {
  const cases: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['user/app', 'docker.io/user/app:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/a/b:tag', 'localhost:5000/a/b:tag'],
    ['host.example:5000/a/b/c:v1.2-rc_3', 'host.example:5000/a/b/c:v1.2-rc_3'],
    ['127.0.0.1:5000/a', '127.0.0.1:5000/a:latest'],
    ['[::1]:5000/a/b:t', '[::1]:5000/a/b:t'],
    ['[fe80::1%25eth0]/a', '[fe80::1%25eth0]/a:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`quay.io/a/b:tag@${D}`, `quay.io/a/b:tag@${D}`],
    ['a-b__c/d.e', 'docker.io/a-b__c/d.e:latest'],
  ];
  for (const [input, want] of cases) t.is(formatReference(parseNormalizedReference(input)), want, input);
  t.deepEqual(parseNormalizedReference('host:5000/a/b:tag'), { domain: 'host:5000', path: 'a/b', tag: 'tag' });
  t.is(familiarReference(parseNormalizedReference('busybox')), 'busybox:latest');
  t.is(familiarReference(parseNormalizedReference('user/app:1')), 'user/app:1');
  t.is(familiarReference(parseNormalizedReference('localhost:5000/a')), 'localhost:5000/a:latest');
});

test('fully qualified parsing defaults nothing', (t) => {
  t.deepEqual(parseReference('docker.io/library/busybox'), { domain: 'docker.io', path: 'library/busybox' });
  t.throws(() => parseReference('busybox:latest'), { message: /not fully qualified: missing registry host/ });
});

test('invalid references are refused naming the problem', (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty reference/],
    ['Busybox', /repository name must be lowercase/],
    ['host:5000/Upper/x', /repository name must be lowercase/],
    ['a//b', /empty path component/],
    ['a/b:', /invalid tag ""/],
    ['a:b c', /invalid tag "b c"/],
    [`a:${'x'.repeat(129)}`, /invalid tag/],
    ['a@sha256:abc', /malformed sha256 hex/],
    ['a@md5:' + 'a'.repeat(32), /unsupported algorithm md5/],
    ['-a/b', /invalid path component "-a"/],
    ['a/b_', /invalid path component "b_"/],
    ['host:99999/a', /invalid registry host "host:99999"/],
    ['ho_st.com/a', /invalid path component "ho_st.com"|invalid registry host/],
    ['[::1]:5000', /missing repository name after registry host/],
    ['ab'.repeat(32), /64-character hexadecimal/],
    [`host.example/${'a'.repeat(250)}`, /longer than 255 characters/],
  ];
  for (const [input, message] of cases) t.throws(() => parseNormalizedReference(input), { message }, input);
});
