// HPACK (RFC 7541), as much as an HTTP/2 client needs: a full decoder (static and dynamic tables, Huffman
// strings) and an encoder that writes every field as a literal without indexing, so it keeps no state.
export type HeaderList = [string, string][];

export class HpackError extends Error {}

/** A header list over the decoder's limit; the block was decoded in full all the same, so the table is in step. */
export class HeaderListTooLarge extends Error {}

/** RFC 7541 Appendix A: index 1 is the first entry. */
const STATIC_TABLE: [string, string][] = [
  [':authority', ''], [':method', 'GET'], [':method', 'POST'], [':path', '/'], [':path', '/index.html'],
  [':scheme', 'http'], [':scheme', 'https'], [':status', '200'], [':status', '204'], [':status', '206'],
  [':status', '304'], [':status', '400'], [':status', '404'], [':status', '500'], ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'], ...[
    'accept-language', 'accept-ranges', 'accept', 'access-control-allow-origin', 'age', 'allow', 'authorization',
    'cache-control', 'content-disposition', 'content-encoding', 'content-language', 'content-length',
    'content-location', 'content-range', 'content-type', 'cookie', 'date', 'etag', 'expect', 'expires', 'from',
    'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified',
    'link', 'location', 'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'refresh',
    'retry-after', 'server', 'set-cookie', 'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary',
    'via', 'www-authenticate',
  ].map((name): [string, string] => [name, '']),
];

// RFC 7541 Appendix B. The code is canonical (codes follow in order of length, then symbol), so the length of
// each symbol's code (0-255, then EOS) is all the table there is; written as runs "<length>x<count>".
const CODE_LENGTHS = ('13 23 28x7 24 30 28x2 30 28x8 30 28x9 6 10x2 12 13 6 8 11 10x2 8 11 8 6x3 5x3 6x7 7 8 15 6 12 10 13 6 ' +
  '7x22 8 7 8 13 19 13 14 6 15 5 6 5 6 5 6x3 5 7x2 6x3 5 6 7 6 5x2 6 7x5 15 11 14 13 28 20 22 20x2 22x3 23 22 23x5 24 23 ' +
  '24x2 22 23 24 23x4 21 22 23 22 23x2 24 22 21 20 22x2 23x2 21 23 22x2 24 21 22 23x2 21x2 22 21 23 22 23x2 20 22x3 23 ' +
  '22x2 23 26x2 20 19 22 23 22 25 26x3 27x2 26 24 25 19 21 26 27x2 26 27 24 21x2 26x2 28 27x3 20 24 20 21 22 21x2 23 ' +
  '22x2 25x2 24x2 26 23 26 27 26x2 27x5 28 27x5 26 30').split(' ').flatMap((run) => {
  const [length, count = '1'] = run.split('x');
  return Array<number>(Number(count)).fill(Number(length));
});
const EOS = 256;

/** Per code length: the first code, where its symbols start in `bySymbolOrder`, and how many there are. */
const huffman = (() => {
  const bySymbolOrder = [...CODE_LENGTHS.keys()].sort((a, b) => CODE_LENGTHS[a]! - CODE_LENGTHS[b]! || a - b);
  const first: number[] = [], start: number[] = [], count: number[] = [];
  let code = 0, length = 0;
  bySymbolOrder.forEach((symbol, i) => {
    const l = CODE_LENGTHS[symbol]!;
    if (i > 0) code = (code + 1) * 2 ** (l - length);
    if (count[l] === undefined) { first[l] = code; start[l] = i; count[l] = 0; }
    count[l]!++;
    length = l;
  });
  return { bySymbolOrder, first, start, count };
})();

function huffmanDecode(data: Buffer): string {
  const out: number[] = [];
  let code = 0, length = 0;
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      length++;
      const n = huffman.count[length];
      if (n === undefined || code - huffman.first[length]! >= n) {
        if (length > 30) throw new HpackError('invalid Huffman code');
        continue;
      }
      const symbol = huffman.bySymbolOrder[huffman.start[length]! + code - huffman.first[length]!]!;
      if (symbol === EOS) throw new HpackError('EOS inside a Huffman string');
      out.push(symbol);
      code = 0;
      length = 0;
    }
  }
  // Padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (length >= 8 || code !== 2 ** length - 1) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out).toString('latin1');
}

export class HpackDecoder {
  private readonly dynamic: [string, string][] = [];
  private size = 0;
  private maxSize: number;

  /** `limit`: our SETTINGS_HEADER_TABLE_SIZE (4096 unless we said otherwise). */
  constructor(private readonly limit = 4096) {
    this.maxSize = limit;
  }

  /** `listLimit`: the most the list may hold, counted as RFC 9113 does (name, value and 32 octets per field). */
  decode(block: Buffer, listLimit = Infinity): HeaderList {
    const headers: HeaderList = [];
    let listSize = 0;
    // Past the limit, fields are still decoded (the dynamic table must follow) but no longer kept.
    const keep = (field: [string, string]): void => {
      listSize += field[0].length + field[1].length + 32;
      if (listSize <= listLimit) headers.push(field);
    };
    let pos = 0;
    const integer = (prefixBits: number): number => {
      if (pos >= block.length) throw new HpackError('header block ends inside an integer');
      const mask = 2 ** prefixBits - 1;
      let value = block[pos++]! & mask;
      if (value < mask) return value;
      for (let scale = 1; ; scale *= 128) {
        if (pos >= block.length || scale > 2 ** 28) throw new HpackError('integer too long');
        const b = block[pos++]!;
        value += (b & 127) * scale;
        if (!(b & 128)) return value;
      }
    };
    const string = (): string => {
      if (pos >= block.length) throw new HpackError('header block ends before a string');
      const huffmanCoded = (block[pos]! & 0x80) !== 0;
      const length = integer(7);
      if (pos + length > block.length) throw new HpackError('string runs past the header block');
      const raw = block.subarray(pos, pos + length);
      pos += length;
      return huffmanCoded ? huffmanDecode(raw) : raw.toString('latin1');
    };
    const entry = (index: number): [string, string] => {
      const e = index >= 1 && index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.dynamic[index - STATIC_TABLE.length - 1];
      if (!e) throw new HpackError(`header table index ${index} does not exist`);
      return e;
    };
    while (pos < block.length) {
      const b = block[pos]!;
      if (b & 0x80) {
        const [name, value] = entry(integer(7));
        keep([name, value]);
      } else if (b & 0x40) {
        const index = integer(6);
        const field: [string, string] = [index ? entry(index)[0] : string(), ''];
        field[1] = string();
        keep([field[0], field[1]]);
        this.insert(field);
      } else if (b & 0x20) {
        const size = integer(5);
        if (size > this.limit) throw new HpackError(`table size update to ${size} exceeds ${this.limit}`);
        this.maxSize = size;
        this.evict(0);
      } else {
        const index = integer(4);
        const name = index ? entry(index)[0] : string();
        keep([name, string()]);
      }
    }
    if (listSize > listLimit) throw new HeaderListTooLarge(`a header list of ${listSize} octets, over the ${listLimit} allowed`);
    return headers;
  }

  private insert(field: [string, string]): void {
    const size = field[0].length + field[1].length + 32;
    this.evict(size);
    if (size <= this.maxSize) {
      this.dynamic.unshift(field);
      this.size += size;
    }
  }

  /** Drops the oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.dynamic.length && this.size + room > this.maxSize) {
      const [name, value] = this.dynamic.pop()!;
      this.size -= name.length + value.length + 32;
    }
  }
}

function encodeInteger(out: number[], first: number, prefixBits: number, value: number): void {
  const mask = 2 ** prefixBits - 1;
  if (value < mask) { out.push(first | value); return; }
  out.push(first | mask);
  for (value -= mask; value >= 128; value = Math.floor(value / 128)) out.push((value % 128) | 128);
  out.push(value);
}

/** Each field as a literal without indexing (names from the static table where they are there). */
export function encodeHeaders(headers: HeaderList): Buffer {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const staticName = STATIC_TABLE.findIndex(([n]) => n === name) + 1;
    encodeInteger(out, 0, 4, staticName);
    for (const s of staticName ? [value] : [name, value]) {
      const bytes = Buffer.from(s, 'latin1');
      encodeInteger(out, 0, 7, bytes.length);
      for (const byte of bytes) out.push(byte);
    }
  }
  return Buffer.from(out);
}
