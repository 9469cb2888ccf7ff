import { createServer } from 'node:http';
import { Agent } from 'undici';

/**
 * The floor for any Node proxy: node:http + undici, nothing else (no headers hygiene, no errors,
 * no metrics). `npm run bench` measures it beside the gateway so the gateway's own cost is visible.
 * It sends three fixed request headers and answers with the content type alone. With
 * BARE_FORWARD_HEADERS=1 it forwards every header both ways instead (less the hop-by-hop ones), the
 * least a faithful proxy does: what forwarding costs node and undici, apart from the gateway's own work.
 * With BARE_GATEWAY_V8=1 it runs with the gateway's V8 settings (src/v8-heap.ts: the interrupt budget
 * from the first request, the collector on one CPU...): the gateway's own work apart from its runtime tuning.
 *   node dist/benchmarks/bare-proxy.js <upstream-url> <port>
 */
const [upstream, port] = process.argv.slice(2);
if (upstream === undefined || port === undefined) throw new Error('usage: bare-proxy <upstream-url> <port>');
if (process.env.BARE_GATEWAY_V8 === '1') await import('../src/v8-heap.js');
const forwardsHeaders = process.env.BARE_FORWARD_HEADERS === '1';
const withoutHopByHop = <T extends Record<string, unknown>>(headers: T): T => {
  delete headers.connection;
  delete headers['keep-alive'];
  delete headers['transfer-encoding'];
  delete headers.host;
  delete headers['content-length'];
  return headers;
};
// No connection cap (undici's default): every request is live upstream, as in the gateway's default.
const agent = new Agent();
createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const headers = forwardsHeaders
      ? withoutHopByHop({ ...req.headers })
      : { 'content-type': 'application/json', 'x-api-key': String(req.headers['x-api-key']), 'anthropic-version': '2023-06-01' };
    agent
      .request({ origin: upstream, path: req.url ?? '/', method: 'POST', headers, body: Buffer.concat(chunks) })
      .then(async (r) => {
        res.writeHead(r.statusCode, forwardsHeaders ? withoutHopByHop(r.headers) : { 'content-type': String(r.headers['content-type']) });
        for await (const c of r.body) res.write(c as Buffer);
        res.end();
      })
      .catch(() => res.destroy());
  });
}).listen(Number(port), '127.0.0.1');
