import type {
  AccountState,
  CommandContext,
  CommandOutcome,
  Ledger,
  LedgerCommand,
  TransferState,
  TransferStatus,
  TransferType,
} from '../core-ledger';
import { businessDateOf, formatAmount, sha256 } from '../core-ledger';
import type { ReadModelQueries } from '../projections';
import type { OperatorDirectory, Role } from '../security';
import { mask, maskAccountNumber, mayUnmask } from '../security';
import { QueryError } from '../projections';
import type { Principal } from './auth';
import { asApiError } from './auth';
import { ApiError } from './errors';
import type { IdempotencyRecords } from './idempotency';
import { requestHashOf } from './idempotency';

/** What a handler receives: everything already validated against the document. */
export interface OperationInput {
  readonly parameters: Readonly<Record<string, string>>;
  readonly body: Readonly<Record<string, unknown>>;
  readonly idempotencyKey: string | undefined;
  readonly context: CommandContext;
  readonly now: Date;
  readonly principal: Principal;
  /** The bearer token of an operator's request (logout ends it). */
  readonly sessionToken: string | undefined;
}

export interface OperationResult {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HandlerDependencies {
  readonly ledger: Ledger;
  readonly queries: ReadModelQueries;
  readonly idempotency: IdempotencyRecords;
  readonly operators: OperatorDirectory | undefined;
  /** Records that personal data was shown unmasked (who, to whom, which account). */
  readonly recordUnmask: (use: {
    actor: string;
    role: Role | null;
    subject: string;
    context: CommandContext;
  }) => Promise<void>;
  /** Hour (0..23, China Standard Time) at which the business date turns. */
  readonly cutoffHourLocal: number;
}

export type Handler = (input: OperationInput) => Promise<OperationResult>;

export const REPLAY_HEADER = 'Idempotent-Replayed';

/** One handler per operationId of the document. */
export function createHandlers(deps: HandlerDependencies): Record<string, Handler> {
  const { ledger, queries } = deps;
  // A transfer keeps its key in its own stream, so a retry comes back from the ledger as `replayed`.
  const execute = async (
    input: OperationInput,
    successStatus: number,
    command: LedgerCommand,
  ): Promise<OperationResult> => commandResult(await ledger.execute(command, input.context), successStatus);
  const businessDate = (input: OperationInput): string =>
    (input.body['businessDate'] as string | undefined) ?? businessDateOf(input.now, deps.cutoffHourLocal);

  const accountCommand =
    (type: 'FreezeAccount' | 'UnfreezeAccount' | 'CloseAccount'): Handler =>
    (input) =>
      withStoredResponse(deps, input, type, async () => {
        const command: LedgerCommand = {
          type,
          accountId: input.parameters['accountId']!,
          reason: input.body['reason'] as string,
          at: input.now.toISOString(),
        };
        return execute(input, 200, command);
      });

  return {
    login: async ({ body, now }) => {
      if (!deps.operators) throw new ApiError('not_found', 'operator logins are not configured', {});
      try {
        const session = await deps.operators.login({
          username: body['username'] as string,
          password: body['password'] as string,
          ...(body['totp'] !== undefined ? { totp: body['totp'] as string } : {}),
          now,
        });
        return {
          status: 200,
          body: {
            token: session.token,
            operatorId: session.principal.operatorId,
            role: session.principal.role,
            idleExpiresAt: session.idleExpiresAt.toISOString(),
            absoluteExpiresAt: session.absoluteExpiresAt.toISOString(),
          },
        };
      } catch (error) {
        throw asApiError(error);
      }
    },
    logout: async ({ sessionToken, now }) => {
      if (!deps.operators || sessionToken === undefined) {
        throw new ApiError('validation_failed', 'logout ends an operator session; this request carries none', {
          in: 'header',
          field: 'Authorization',
        });
      }
      await deps.operators.logout(sessionToken, now);
      return { status: 200, body: { status: 'logged_out' } };
    },
    openAccount: (input) =>
      withStoredResponse(deps, input, 'OpenAccount', async () => {
        const body = input.body;
        const command: LedgerCommand = {
          type: 'OpenAccount',
          accountId: body['accountId'] as string,
          kind: body['kind'] as never,
          ownerId: body['ownerId'] as string,
          ...(body['cardNumber'] !== undefined ? { cardNumber: body['cardNumber'] as string } : {}),
          ...(body['accountNumber'] !== undefined ? { accountNumber: body['accountNumber'] as string } : {}),
          at: input.now.toISOString(),
        };
        return execute(input, 201, command);
      }),
    freezeAccount: accountCommand('FreezeAccount'),
    unfreezeAccount: accountCommand('UnfreezeAccount'),
    closeAccount: accountCommand('CloseAccount'),

    getAccount: async ({ parameters, principal, context }) => {
      const account = await ledger.getAccount(parameters['accountId']!);
      if (!account) throw notFound('account', parameters['accountId']!);
      const unmasked = mayUnmask(principal.role);
      if (unmasked && (account.cardNumber !== null || account.accountNumber !== null)) {
        await deps.recordUnmask({ actor: principal.id, role: principal.role, subject: account.accountId, context });
      }
      return { status: 200, body: accountBody(account, unmasked) };
    },
    getBalance: async ({ parameters }) => {
      const accountId = parameters['accountId']!;
      const asOf = parameters['asOf'];
      if (asOf === undefined) {
        const account = await ledger.getAccount(accountId);
        if (!account) throw notFound('account', accountId);
        const body = {
          accountId,
          asset: account.asset,
          balance: formatAmount(account.asset, account.posted),
          asOf: null,
          revision: account.revision,
        };
        return { status: 200, body };
      }
      const balance = await query(() => queries.getBalance(accountId, asOf));
      if (!balance) throw notFound('account', accountId);
      return { status: 200, body: balance };
    },
    getStatement: async ({ parameters }) => {
      const accountId = parameters['accountId']!;
      if (!(await ledger.getAccount(accountId))) throw notFound('account', accountId);
      return {
        status: 200,
        body: await query(() => queries.getStatement(accountId, pageOptions(parameters, ['from', 'to']))),
      };
    },

    createTransfer: (input) => {
      const body = input.body;
      const key = input.idempotencyKey!;
      return execute(input, 201, {
        type: 'PostTransfer',
        transferId: (body['transferId'] as string | undefined) ?? transferIdFor('transfer', key),
        idempotencyKey: key,
        transferType: body['transferType'] as TransferType,
        postings: body['postings'] as never,
        ...(body['reason'] !== undefined ? { reason: body['reason'] as string } : {}),
        ...(body['reference'] !== undefined ? { reference: body['reference'] as string } : {}),
        businessDate: businessDate(input),
        at: input.now.toISOString(),
      });
    },
    authorizeTransfer: (input) => {
      const body = input.body;
      const key = input.idempotencyKey!;
      return execute(input, 201, {
        type: 'AuthorizeTransfer',
        transferId: (body['transferId'] as string | undefined) ?? transferIdFor('authorization', key),
        idempotencyKey: key,
        transferType: body['transferType'] as TransferType,
        debitAccountId: body['debitAccountId'] as string,
        creditAccountId: body['creditAccountId'] as string,
        amount: body['amount'] as string,
        expiresAt: new Date(body['expiresAt'] as string).toISOString(),
        ...(body['reference'] !== undefined ? { reference: body['reference'] as string } : {}),
        businessDate: businessDate(input),
        at: input.now.toISOString(),
      });
    },
    captureTransfer: (input) =>
      execute(input, 200, {
        type: 'CaptureTransfer',
        transferId: input.parameters['transferId']!,
        idempotencyKey: input.idempotencyKey!,
        ...(input.body['amount'] !== undefined ? { amount: input.body['amount'] as string } : {}),
        at: input.now.toISOString(),
      }),
    voidTransfer: (input) =>
      withStoredResponse(deps, input, 'VoidTransfer', async () => {
        const command: LedgerCommand = {
          type: 'VoidTransfer',
          transferId: input.parameters['transferId']!,
          reason: input.body['reason'] as string,
          at: input.now.toISOString(),
        };
        return execute(input, 200, command);
      }),
    reverseTransfer: (input) => {
      const key = input.idempotencyKey!;
      return execute(input, 201, {
        type: 'ReverseTransfer',
        transferId: input.parameters['transferId']!,
        reversalTransferId: (input.body['reversalTransferId'] as string | undefined) ?? transferIdFor('reversal', key),
        idempotencyKey: key,
        reason: input.body['reason'] as string,
        businessDate: businessDate(input),
        at: input.now.toISOString(),
      });
    },
    getTransfer: async ({ parameters }) => {
      const transfer = await ledger.getTransfer(parameters['transferId']!);
      if (!transfer) throw notFound('transfer', parameters['transferId']!);
      return { status: 200, body: transferBody(transfer) };
    },
    listTransfers: async ({ parameters }) => ({
      status: 200,
      body: await query(() =>
        queries.listTransfers({
          ...pageOptions(parameters, ['businessDate']),
          ...(parameters['transferType'] ? { transferType: parameters['transferType'] as TransferType } : {}),
          ...(parameters['status'] ? { status: parameters['status'] as TransferStatus } : {}),
        }),
      ),
    }),
    getJournal: async ({ parameters }) => ({
      status: 200,
      body: await query(() =>
        queries.getJournal({
          ...pageOptions(parameters, ['businessDateFrom', 'businessDateTo', 'accountId', 'transferId']),
          ...(parameters['transferType'] ? { transferType: parameters['transferType'] as TransferType } : {}),
        }),
      ),
    }),
    getTrialBalance: async ({ parameters }) => ({
      status: 200,
      body: {
        assets: await query(() =>
          queries.getTrialBalance(parameters['businessDateTo'] ? { businessDateTo: parameters['businessDateTo'] } : {}),
        ),
      },
    }),
    getAuditTrail: async ({ parameters }) => ({
      status: 200,
      body: await query(() => queries.getAuditTrail(pageOptions(parameters, ['from', 'to', 'actor', 'command']))),
    }),
  };
}

function commandResult(outcome: CommandOutcome, successStatus: number): OperationResult {
  switch (outcome.status) {
    case 'accepted':
      return { status: successStatus, body: outcome.result, headers: { 'X-Log-Position': outcome.position } };
    case 'replayed':
      return { status: successStatus, body: outcome.result, headers: { [REPLAY_HEADER]: 'true' } };
    case 'refused': {
      const { code, message, details } = outcome.refusal;
      throw new ApiError(code, message, details ?? {});
    }
  }
}

/**
 * Commands the ledger keys by state, not by idempotency key: the first answer (success or refusal) is stored
 * under the key and given again, with the replay header, to any retry with the same request.
 */
export async function withStoredResponse(
  deps: HandlerDependencies,
  input: OperationInput,
  operationTag: string,
  run: () => Promise<OperationResult>,
): Promise<OperationResult> {
  const key = input.idempotencyKey!;
  const requestHash = requestHashOf(operationTag, input.parameters, input.body);
  const stored = await deps.idempotency.find(key);
  if (stored) return replayOf(stored, requestHash);
  let result: OperationResult;
  try {
    result = await run();
  } catch (error) {
    // Refusals are answers too; `conflict` and our own failures are not (the client should retry).
    if (error instanceof ApiError && error.code !== 'conflict' && error.status < 500) {
      await deps.idempotency.remember(key, {
        operationId: operationTag,
        requestHash,
        status: error.status,
        body: error.body(),
      });
    }
    throw error;
  }
  await deps.idempotency.remember(key, {
    operationId: operationTag,
    requestHash,
    status: result.status,
    body: result.body,
  });
  const winner = await deps.idempotency.find(key);
  if (winner && winner.requestHash !== requestHash) return replayOf(winner, requestHash);
  return result;
}

function replayOf(
  stored: { requestHash: string; status: number; body: unknown },
  requestHash: string,
): OperationResult {
  if (stored.requestHash !== requestHash) {
    throw new ApiError('idempotency_conflict', 'this Idempotency-Key was used for another request', {});
  }
  if (stored.status >= 400) {
    const body = stored.body as { code: never; message: string; details: Record<string, unknown> };
    throw Object.assign(new ApiError(body.code, body.message, body.details), { replayed: true });
  }
  return { status: stored.status, body: stored.body, headers: { [REPLAY_HEADER]: 'true' } };
}

/** A transfer id derived from the key, so a client that leaves it out still retries onto the same transfer. */
function transferIdFor(kind: string, idempotencyKey: string): string {
  return `${kind.slice(0, 2)}-${sha256(`${kind}\n${idempotencyKey}`).toString('base64url').slice(0, 32)}`;
}

async function query<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof QueryError)
      throw new ApiError('validation_failed', error.message, { in: 'parameters', field: error.field });
    throw error;
  }
}

function pageOptions(
  parameters: Readonly<Record<string, string>>,
  passThrough: readonly string[],
): Record<string, string | number> {
  const options: Record<string, string | number> = {};
  for (const name of passThrough) if (parameters[name] !== undefined) options[name] = parameters[name];
  if (parameters['cursor'] !== undefined) options['cursor'] = parameters['cursor'];
  if (parameters['limit'] !== undefined) options['limit'] = Number(parameters['limit']);
  return options;
}

function notFound(what: 'account' | 'transfer', id: string): ApiError {
  return new ApiError(what === 'account' ? 'account_not_found' : 'transfer_not_found', `no ${what} ${id}`, {
    [`${what}Id`]: id,
  });
}

function accountBody(account: AccountState, unmasked: boolean): Record<string, unknown> {
  const { asset } = account;
  const cardNumber =
    account.cardNumber === null || unmasked ? account.cardNumber : mask('bank_card', account.cardNumber);
  const accountNumber =
    account.accountNumber === null || unmasked ? account.accountNumber : maskAccountNumber(account.accountNumber);
  return {
    accountId: account.accountId,
    kind: account.kind,
    asset,
    ownerId: account.ownerId,
    cardNumber,
    accountNumber,
    status: account.status,
    balance: formatAmount(asset, account.posted),
    available: formatAmount(asset, account.posted.minus(account.pendingDebits)),
    heldDebits: formatAmount(asset, account.pendingDebits),
    heldCredits: formatAmount(asset, account.pendingCredits),
    revision: account.revision,
  };
}

function transferBody(transfer: TransferState): Record<string, unknown> {
  return {
    transferId: transfer.transferId,
    transferType: transfer.transferType,
    status: transfer.status,
    asset: transfer.asset,
    postings: transfer.postings.map((p) => ({
      accountId: p.accountId,
      direction: p.direction,
      amount: p.amount,
      asset: p.asset,
    })),
    authorization: transfer.authorization,
    reverses: transfer.reverses,
    reversedBy: transfer.reversedBy,
    settlementId: transfer.settlementId,
    businessDate: transfer.businessDate,
    revision: transfer.revision,
  };
}
