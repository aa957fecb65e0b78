// A DNS server for tests, on port 53 of the address given, UDP and TCP: names from a JSON table (argv[3]) get
// A records; a name starting with "silent." gets no answer at all. Prints "ready" once it listens.
// usage: node --import tsx test/helpers/dns-server.ts ADDRESS '{"name":"10.1.2.3"}'
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { dnsAnswer, dnsQuestion } from './dns.ts';

const [address, table] = process.argv.slice(2) as [string, string];
const names = JSON.parse(table) as Record<string, string>;
const answer = (query: Buffer) => (dnsQuestion(query).name.startsWith('silent.') ? undefined : dnsAnswer(query, names));

const udp = createSocket(address.includes(':') ? 'udp6' : 'udp4');
udp.on('message', (msg, from) => { const a = answer(msg); if (a) udp.send(a, from.port, from.address); });
const tcp = createServer((conn) => {
  let buf = Buffer.alloc(0);
  conn.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const a = answer(buf.subarray(2, 2 + buf.readUInt16BE(0)));
      buf = buf.subarray(2 + buf.readUInt16BE(0));
      if (a) conn.write(Buffer.concat([Buffer.from([a.length >> 8, a.length & 0xff]), a]));
    }
  });
  conn.on('error', () => undefined);
});
udp.bind(53, address, () => tcp.listen(53, address, () => console.log('ready')));
