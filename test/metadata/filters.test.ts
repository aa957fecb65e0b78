import test from 'ava';
import { parseFilter, parseFilters, fieldsAdaptor } from '../../api/filters.ts';
import { codeOf, ErrorCode } from '../../api/errdefs.ts';

const image = fieldsAdaptor(
  { name: 'docker.io/library/busybox:latest', 'target.mediatype': undefined },
  { 'io.x.role': 'base', env: 'prod', 'a,b': 'c d' },
);
const matches = (f: string | string[]) => (Array.isArray(f) ? parseFilters(f) : parseFilter(f)).match(image);

test('equality, inequality, presence and regex', (t) => {
  t.true(matches('name==docker.io/library/busybox:latest'));
  t.false(matches('name==busybox'));
  t.true(matches('name!=busybox'));
  t.true(matches('labels.env'));
  t.false(matches('labels.missing'));
  t.true(matches('labels.missing!=x'), '!= holds for an absent field, as containerd');
  t.true(matches('name~=^docker\\.io/.*busybox'));
  t.true(matches('name~=/busy(box|cat)/'));
  t.false(matches('name~=alpine'));
  t.true(matches('labels.missing~=^$'), 'an absent field is matched as empty, as containerd');
  t.false(matches('labels.missing~=.'));
});

test('quoted field paths with dots and quoted values', (t) => {
  t.true(matches('labels."io.x.role"==base'));
  t.true(matches('labels."a,b"=="c d"'));
  t.true(matches('labels.io.x.role==base'), 'unquoted dotted key joins the rest of the path');
  t.true(matches('labels."env"=="pr\\x6fd"'));
});

test('comma is AND, several strings are OR, empty matches all', (t) => {
  t.true(matches('labels.env==prod,name~=busybox'));
  t.false(matches('labels.env==prod,name~=alpine'));
  t.true(matches(['name==nope', 'labels.env==prod']));
  t.false(matches(['name==nope', 'labels.env==dev']));
  t.true(matches(''));
  t.true(matches([]));
  t.true(matches(' name == docker.io/library/busybox:latest , labels.env '));
});

test('dotted field paths reach nested fields', (t) => {
  const adaptor = fieldsAdaptor({ 'target.digest': 'sha256:x', 'runtime.name': 'io.containerd.runc.v2' });
  t.true(parseFilter('target.digest==sha256:x,runtime.name~=runc').match(adaptor));
  t.false(parseFilter('target==sha256:x').match(adaptor));
});

for (const bad of ['name=x', 'name===x', '==x', 'name==', 'labels."unterminated==x', 'name~=(', 'name==x,', 'a..b', 'name==x y', 'labels."\\q"==x']) {
  test(`bad filter ${JSON.stringify(bad)} is an invalid argument naming the input`, (t) => {
    const err = t.throws(() => parseFilter(bad));
    t.is(codeOf(err), ErrorCode.InvalidArgument);
    t.true(err!.message.includes(JSON.stringify(bad)), err!.message);
  });
}
