import type { IncomingMessage } from 'node:http';
import { ApiError } from './errors';

/**
 * Reads a command's body: `application/json` in UTF-8 only, at most `maxBytes`, one JSON object. JSON.parse
 * already enforces Appendix A of the interface rules (lowercase literals, no octal or hex numbers); invalid UTF-8
 * is refused rather than replaced, so what we store is what the client signed.
 */
export async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  return parseJsonBody(await readRawBody(request, maxBytes));
}

/** The body's bytes as sent (signatures cover exactly these), after the media type and size checks. */
export async function readRawBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const contentType = request.headers['content-type'];
  if (!isJsonUtf8(contentType)) {
    throw new ApiError('unsupported_media_type', 'the body must be application/json in UTF-8', {
      contentType: contentType?.slice(0, 100) ?? null,
    });
  }
  const declared = request.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    throw new ApiError('payload_too_large', `the body may be at most ${maxBytes} bytes`, { maxBytes });
  }
  return readAtMost(request, maxBytes);
}

export function parseJsonBody(raw: Buffer): unknown {
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    throw new ApiError('validation_failed', 'the body is not valid UTF-8', { in: 'body' });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError('validation_failed', `the body is not valid JSON: ${(error as Error).message.slice(0, 120)}`, {
      in: 'body',
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError('validation_failed', 'the body must be a JSON object', { in: 'body' });
  }
  return value;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function isJsonUtf8(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [mediaType, ...parameters] = contentType.split(';').map((part) => part.trim().toLowerCase());
  if (mediaType !== 'application/json') return false;
  return parameters.every((p) => !p.startsWith('charset=') || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

function readAtMost(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (error: Error | undefined, body?: Buffer): void => {
      if (done) return;
      done = true;
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('aborted', onAborted);
      if (error) {
        // Stop reading what we will not use; the connection closes after the answer.
        request.resume();
        reject(error);
      } else resolve(body!);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        finish(new ApiError('payload_too_large', `the body may be at most ${maxBytes} bytes`, { maxBytes }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => finish(undefined, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    const onError = (error: Error): void =>
      finish(new ApiError('validation_failed', `the body could not be read: ${error.message}`));
    const onAborted = (): void => finish(new ApiError('validation_failed', 'the client aborted the request'));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('aborted', onAborted);
  });
}
