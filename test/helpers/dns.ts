// DNS messages for tests of the vm backend's DNS relay: a question, and a server's answer to one from a table of
// names (A records; a known name without an address of the asked type gets an empty NOERROR, others NXDOMAIN).

export function dnsQuery(id: number, name: string, type = 1): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x0100, 2); // recursion desired
  head.writeUInt16BE(1, 4);
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(1, 3);
  return Buffer.concat([head, ...labels, tail]);
}

/** The question of a query: its name and type. */
export function dnsQuestion(query: Buffer): { id: number; name: string; type: number; end: number } {
  const labels: string[] = [];
  let off = 12;
  while (query[off]) {
    labels.push(query.subarray(off + 1, off + 1 + query[off]!).toString());
    off += 1 + query[off]!;
  }
  return { id: query.readUInt16BE(0), name: labels.join('.'), type: query.readUInt16BE(off + 1), end: off + 5 };
}

export function dnsAnswer(query: Buffer, names: Record<string, string>): Buffer {
  const q = dnsQuestion(query);
  const ip = names[q.name];
  const head = Buffer.from(query.subarray(0, q.end));
  const answered = q.type === 1 && ip !== undefined;
  head.writeUInt16BE(0x8180 | (ip === undefined ? 3 : 0), 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(answered ? 1 : 0, 6);
  head.writeUInt32BE(0, 8);
  if (!answered) return head;
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); // the name, as a pointer to the question's
  rr.writeUInt16BE(1, 2);
  rr.writeUInt16BE(1, 4);
  rr.writeUInt32BE(60, 6);
  rr.writeUInt16BE(4, 10);
  ip!.split('.').forEach((b, i) => { rr[12 + i] = Number(b); });
  return Buffer.concat([head, rr]);
}

/** The A records' addresses in an answer. */
export function dnsAddresses(answer: Buffer): string[] {
  const q = dnsQuestion(answer);
  const count = answer.readUInt16BE(6);
  const out: string[] = [];
  let off = q.end;
  for (let i = 0; i < count; i++) {
    off += (answer[off]! & 0xc0) === 0xc0 ? 2 : answer.indexOf(0, off) + 1 - off;
    const type = answer.readUInt16BE(off);
    const len = answer.readUInt16BE(off + 8);
    if (type === 1 && len === 4) out.push([...answer.subarray(off + 10, off + 14)].join('.'));
    off += 10 + len;
  }
  return out;
}
