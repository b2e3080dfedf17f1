/**
 * The HTTP door's own ceiling: the same stack as the API (Node http, express 5, our JSON body reader with its
 * limits and checks) on a route that parses the payment's JSON and echoes it, with no ledger behind it.
 * Prints `LISTENING <port>` when ready.
 */
import express from 'express';
import { DEFAULT_API_LIMITS, readJsonBody } from '../api';

const app = express();
app.disable('x-powered-by');
app.disable('etag');
app.post('/echo', async (request, response) => {
  try {
    response.status(201).json(await readJsonBody(request, DEFAULT_API_LIMITS.maxBodyBytes));
  } catch {
    response.status(400).json({ code: 'validation_failed', message: 'bad body', details: {} });
  }
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`LISTENING ${typeof address === 'object' && address ? address.port : 0}\n`);
});
server.keepAliveTimeout = 5_000;
process.on('SIGTERM', () => server.close(() => process.exit(0)));
