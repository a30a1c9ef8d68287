import { connect } from 'node:net';

export interface RawRequest {
  readonly method: string;
  /** Sent as it is: no client parses, resolves or re-encodes it. */
  readonly target: string;
  /** Default HTTP/1.1 (with Host and `Connection: close`); HTTP/1.0 is sent without Host. */
  readonly version?: 'HTTP/1.1' | 'HTTP/1.0';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface RawResponse {
  readonly status: number;
  /** Lower-cased names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * One HTTP request written byte for byte over a new TCP connection, read until the server closes
 * it. For request targets a client library would normalise first (`/v%31/x`, `/a/../b`,
 * `http://host/x`, `#fragments`).
 */
export function rawRequest(port: number, req: RawRequest): Promise<RawResponse> {
  const version = req.version ?? 'HTTP/1.1';
  const lines = [`${req.method} ${req.target} ${version}`];
  if (version === 'HTTP/1.1') lines.push('Host: 127.0.0.1', 'Connection: close');
  for (const [name, value] of Object.entries(req.headers ?? {})) lines.push(`${name}: ${value}`);
  if (req.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(req.body)}`);
  const head = `${lines.join('\r\n')}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect(port, '127.0.0.1', () => socket.end(head + (req.body ?? '')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      try {
        // latin1: one character per byte, so chunk sizes count characters; the body is UTF-8.
        resolve(parseResponse(Buffer.concat(chunks).toString('latin1'), req.method === 'HEAD'));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

function parseResponse(text: string, head: boolean): RawResponse {
  const split = text.indexOf('\r\n\r\n');
  if (split === -1) throw new Error(`no complete response: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine = '', ...headerLines] = text.slice(0, split).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = head ? '' : text.slice(split + 4);
  if (headers['transfer-encoding'] === 'chunked') body = unchunk(body);
  return { status, headers, body: Buffer.from(body, 'latin1').toString('utf8') };
}

function unchunk(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = text.indexOf('\r\n', at);
    const size = parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}
