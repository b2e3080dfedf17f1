import { randomBytes } from 'node:crypto';
import { ERROR_STATUS } from '../../api';
import type { Role } from '../../security';
import { signRequest } from '../../security';
import type { TestApi } from '../support/api-server';
import { startTestApi } from '../support/api-server';

/** C11 "control by … IP address": a role's callers only from its ranges; a client's only from its own. */
test('per-role and per-client IP allow-lists: refused from elsewhere with ip_not_allowed, allowed from inside', async () => {
  const secret = randomBytes(32);
  const client = (clientId: string, role: Role, allowedIps?: string[]): Record<string, unknown> => ({
    clientId,
    role,
    method: 'hmac-sm3',
    secretHex: secret.toString('hex'),
    ...(allowedIps ? { allowedIps } : {}),
  });
  const t: TestApi = await startTestApi('memory', {
    auth: 'required',
    clients: [
      client('auditor-svc', 'auditor'),
      client('operator-svc', 'operator'),
      client('fenced-auditor', 'auditor', ['127.0.0.0/8']),
    ] as never,
    roleAllowedIps: { auditor: ['10.0.0.0/8', '192.168.0.0/16'], operator: ['127.0.0.0/8', '::1'] },
  });
  const get = async (clientId: string): Promise<{ status: number; code: unknown }> => {
    const path = '/v1/trial-balance';
    const headers = signRequest(
      { clientId, method: 'hmac-sm3', secret },
      {
        method: 'GET',
        pathWithQuery: path,
        timestamp: String(t.clock.getTime()),
        nonce: randomBytes(12).toString('hex'),
        body: Buffer.alloc(0),
      },
    );
    const response = await fetch(`${t.base}${path}`, { headers });
    return { status: response.status, code: ((await response.json()) as Record<string, unknown>)['code'] };
  };
  try {
    expect(await get('auditor-svc')).toEqual({ status: ERROR_STATUS.ip_not_allowed, code: 'ip_not_allowed' });
    // The client's own list lets it in, but its role's list still applies.
    expect(await get('fenced-auditor')).toEqual({ status: ERROR_STATUS.ip_not_allowed, code: 'ip_not_allowed' });
    // Operators may call from loopback; the trial balance is not theirs to read, so the next refusal is the role's.
    expect(await get('operator-svc')).toEqual({ status: ERROR_STATUS.forbidden, code: 'forbidden' });
  } finally {
    await t.close();
  }
});
