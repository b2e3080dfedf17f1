import http from 'node:http';

/** A keep-alive HTTP/1.1 client for the load generator: one socket per client, no fetch overhead. */
export class JsonClient {
  private readonly agent: http.Agent;

  constructor(
    private readonly host: string,
    private readonly port: number,
    sockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets });
  }

  get(path: string, headers: Record<string, string> = {}): Promise<number> {
    return this.request('GET', path, undefined, headers);
  }

  post(path: string, body: string, headers: Record<string, string> = {}): Promise<number> {
    return this.request('POST', path, body, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(body)),
      ...headers,
    });
  }

  private request(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: this.host,
          port: this.port,
          path,
          method,
          agent: this.agent,
          headers,
        },
        (response) => {
          response.on('data', () => undefined);
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', reject);
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
