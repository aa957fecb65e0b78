// containerd's list filter syntax (filters/parser.go): `name==x`, `labels."a.b"==v`, `labels.k` (presence),
// `name~=regex`, `!=`; comma joins selectors with AND, several filter strings are ORed. A filter is matched
// against an adaptor that maps a field path to the object's value (undefined = field absent).
import { errInvalidArgument } from './errdefs.ts';

/** Looks up a field path (`["labels", "a.b"]`) on one object; undefined when the field is absent. */
export type Adaptor = (fieldpath: string[]) => string | undefined;

export interface Filter {
  match(adaptor: Adaptor): boolean;
}

type Operator = 'present' | '==' | '!=' | '~=';

interface Selector {
  fieldpath: string[];
  operator: Operator;
  value: string;
  regex?: RegExp;
}

export const always: Filter = { match: () => true };

/** Parses one filter string (selectors joined by commas, all must match). The empty string matches all. */
export function parseFilter(input: string): Filter {
  if (input === '') return always;
  const selectors = new Parser(input).selectors();
  return { match: (adaptor) => selectors.every((s) => matchSelector(s, adaptor)) };
}

/** Parses several filter strings; the result matches when any of them does (none given = match all). */
export function parseFilters(inputs: readonly string[] = []): Filter {
  if (inputs.length === 0) return always;
  const filters = inputs.map(parseFilter);
  if (filters.includes(always)) return always;
  return { match: (adaptor) => filters.some((f) => f.match(adaptor)) };
}

/**
 * An adaptor over string fields named by their dotted path (`name`, `target.digest`) plus a `labels` map
 * (`labels.<key>`, the key may itself hold dots).
 */
export function fieldsAdaptor(fields: Record<string, string | undefined>, labels?: Record<string, string>): Adaptor {
  return (path) => {
    if (path.length === 0) return undefined;
    if (path[0] === 'labels') {
      if (!labels || path.length < 2) return undefined;
      return labels[path.slice(1).join('.')];
    }
    return Object.hasOwn(fields, path.join('.')) ? fields[path.join('.')] : undefined;
  };
}

function matchSelector(s: Selector, adaptor: Adaptor): boolean {
  const value = adaptor(s.fieldpath);
  switch (s.operator) {
    case 'present': return value !== undefined;
    case '==': return value !== undefined && value === s.value;
    case '!=': return value !== s.value;
    case '~=': return s.regex!.test(value ?? ''); // an absent field matches as the empty string, as containerd
  }
}

const quoteChars = new Set(['"', '/', '|']);
const isFieldChar = (c: string) => /^[A-Za-z0-9_-]$/.test(c);
const isSpace = (c: string) => /^\s$/.test(c);

class Parser {
  private pos = 0;
  constructor(private readonly input: string) {}

  selectors(): Selector[] {
    const out = [this.selector()];
    for (;;) {
      this.skipSpace();
      if (this.pos >= this.input.length) return out;
      if (this.input[this.pos] !== ',') this.fail(this.pos, `unexpected input ${JSON.stringify(this.input[this.pos])}`);
      this.pos++;
      out.push(this.selector());
    }
  }

  private selector(): Selector {
    const fieldpath = this.fieldpath();
    this.skipSpace();
    if (this.pos >= this.input.length || this.input[this.pos] === ',') return { fieldpath, operator: 'present', value: '' };
    const opStart = this.pos;
    while (this.pos < this.input.length && '=!~'.includes(this.input[this.pos]!)) this.pos++;
    const op = this.input.slice(opStart, this.pos);
    if (op === '') this.fail(opStart, 'expected an operator ("==", "!=" or "~=")');
    if (op !== '==' && op !== '!=' && op !== '~=') this.fail(opStart, `unsupported operator ${JSON.stringify(op)}`);
    const value = this.value();
    const selector: Selector = { fieldpath, operator: op, value };
    if (op === '~=') {
      try { selector.regex = new RegExp(value); } catch (err) {
        this.fail(opStart, `invalid regular expression ${JSON.stringify(value)}: ${(err as Error).message}`);
      }
    }
    return selector;
  }

  private fieldpath(): string[] {
    const path = [this.field()];
    while (this.input[this.pos] === '.') {
      this.pos++;
      path.push(this.field());
    }
    return path;
  }

  private field(): string {
    this.skipSpace();
    const start = this.pos;
    const c = this.input[this.pos];
    if (c !== undefined && quoteChars.has(c)) return this.quoted();
    while (this.pos < this.input.length && isFieldChar(this.input[this.pos]!)) this.pos++;
    if (this.pos === start) this.fail(start, 'expected a field name or a quoted string');
    return this.input.slice(start, this.pos);
  }

  private value(): string {
    this.skipSpace();
    const start = this.pos;
    const c = this.input[this.pos];
    if (c !== undefined && quoteChars.has(c)) return this.quoted();
    while (this.pos < this.input.length && this.input[this.pos] !== ',' && !isSpace(this.input[this.pos]!)) this.pos++;
    if (this.pos === start) this.fail(start, 'expected a value or a quoted string');
    return this.input.slice(start, this.pos);
  }

  /** `"..."` takes Go string escapes; `/.../` and `|...|` (for regexes) keep backslashes except before the quote. */
  private quoted(): string {
    const start = this.pos;
    const quote = this.input[this.pos++]!;
    let out = '';
    for (;;) {
      if (this.pos >= this.input.length || this.input[this.pos] === '\n') this.fail(start, 'quoted string not terminated');
      const c = this.input[this.pos++]!;
      if (c === quote) return out;
      if (c !== '\\') { out += c; continue; }
      const e = this.input[this.pos++];
      if (e === undefined) this.fail(start, 'quoted string not terminated');
      if (e === quote) { out += quote; continue; }
      if (quote !== '"') { out += '\\' + e; continue; }
      out += this.escape(e, start);
    }
  }

  private escape(e: string, start: number): string {
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\' };
    if (e in simple) return simple[e]!;
    const digits = (n: number, radix: number, from: number) => {
      const text = this.input.slice(from, from + n);
      const valid = radix === 8 ? /^[0-7]+$/ : /^[0-9a-fA-F]+$/;
      if (text.length !== n || !valid.test(text)) this.fail(start, 'illegal numeric escape sequence');
      this.pos = from + n;
      return String.fromCodePoint(parseInt(text, radix));
    };
    if (e >= '0' && e <= '7') return digits(3, 8, this.pos - 1);
    if (e === 'x') return digits(2, 16, this.pos);
    if (e === 'u') return digits(4, 16, this.pos);
    if (e === 'U') return digits(8, 16, this.pos);
    return this.fail(start, `illegal escape sequence \\${e}`);
  }

  private skipSpace(): void {
    while (this.pos < this.input.length && isSpace(this.input[this.pos]!)) this.pos++;
  }

  private fail(pos: number, msg: string): never {
    const at = Math.min(pos, this.input.length);
    throw errInvalidArgument(`invalid filter ${JSON.stringify(this.input)} at offset ${at}: ${msg}`);
  }
}
