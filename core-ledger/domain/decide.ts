import { decodeCode, isValidCardNumber } from '../account-codes';
import { ACCOUNT_KINDS, isAccountKind, PLATFORM_ACCOUNTS } from '../chart-of-accounts';
import type { Amount, AssetCode } from '../money';
import { amountOf, atScale, formatAmount, parseAmount, ZERO } from '../money';
import type {
  AuthorizeTransfer,
  CaptureTransfer,
  ChangeAccountStatus,
  ExpireAuthorization,
  LedgerCommand,
  MarkTransferSettled,
  OpenAccount,
  PostingDirection,
  PostTransfer,
  ReplaceCard,
  ReverseTransfer,
  VoidTransfer,
} from './commands';
import { TRANSFER_TYPES } from './commands';
import type { AccountEvent, AccountStatus, PostingLine, StreamEvent, TransferEvent } from './events';
import { accountStreamId, transferStreamId } from './events';
import type { Refusal } from './refusals';
import { refuse } from './refusals';
import { requestHashOf } from './request-hash';
import type { AccountState, TransferState } from './state';
import { availableBalance } from './state';

/** Bounds on what one command may carry (TIGER_STYLE: a limit on everything). */
export const COMMAND_LIMITS = {
  maxPostings: 64,
  maxIdLength: 64,
  maxIdempotencyKeyLength: 128,
  maxReasonLength: 256,
  maxReferenceLength: 64,
} as const;

/** The states a decision reads. The application loads them; the decider never does I/O. */
export interface DecisionState {
  account(accountId: string): AccountState | undefined;
  transfer(transferId: string): TransferState | undefined;
}

export type CommandResult = Readonly<Record<string, string | null>>;

export type Decision =
  | { readonly outcome: 'accepted'; readonly events: readonly StreamEvent[]; readonly result: CommandResult }
  | { readonly outcome: 'replayed'; readonly result: CommandResult }
  | { readonly outcome: 'refused'; readonly refusal: Refusal };

/**
 * The streams a command reads. Some depend on what is loaded already (an authorization's accounts are known only
 * once its transfer is): the application calls this again after loading until it asks for nothing new.
 */
export interface StreamsToLoad {
  readonly accountIds: readonly string[];
  /** Transfers the command refers to: they must be loaded. */
  readonly transferIds: readonly string[];
  /** Transfers the command creates: assumed absent, appended with `no_stream`; a conflict means a replay. */
  readonly newTransferIds: readonly string[];
}

export function streamsToLoad(command: LedgerCommand, state: DecisionState): StreamsToLoad {
  switch (command.type) {
    case 'OpenAccount':
    case 'FreezeAccount':
    case 'UnfreezeAccount':
    case 'ReportAccountLost':
    case 'CloseAccount':
    case 'ReplaceCard':
      return { accountIds: [command.accountId], transferIds: [], newTransferIds: [] };
    case 'PostTransfer':
      return {
        accountIds: command.postings.map((p) => p.accountId),
        transferIds: [],
        newTransferIds: [command.transferId],
      };
    case 'AuthorizeTransfer':
      return {
        accountIds: [command.debitAccountId, command.creditAccountId],
        transferIds: [],
        newTransferIds: [command.transferId],
      };
    case 'CaptureTransfer':
    case 'VoidTransfer':
    case 'ExpireAuthorization': {
      const authorization = state.transfer(command.transferId)?.authorization;
      return {
        accountIds: authorization ? [authorization.debitAccountId, authorization.creditAccountId] : [],
        transferIds: [command.transferId],
        newTransferIds: [],
      };
    }
    case 'ReverseTransfer': {
      const original = state.transfer(command.transferId);
      return {
        accountIds: original ? original.postings.map((p) => p.accountId) : [],
        transferIds: [command.transferId],
        newTransferIds: [command.reversalTransferId],
      };
    }
    case 'MarkTransferSettled':
      return { accountIds: [], transferIds: [command.transferId], newTransferIds: [] };
  }
}

export function decide(command: LedgerCommand, state: DecisionState): Decision {
  switch (command.type) {
    case 'OpenAccount':
      return decideOpenAccount(command, state);
    case 'FreezeAccount':
    case 'UnfreezeAccount':
    case 'ReportAccountLost':
    case 'CloseAccount':
      return decideStatusChange(command, state);
    case 'ReplaceCard':
      return decideReplaceCard(command, state);
    case 'PostTransfer':
      return decidePostTransfer(command, state);
    case 'AuthorizeTransfer':
      return decideAuthorize(command, state);
    case 'CaptureTransfer':
      return decideCapture(command, state);
    case 'VoidTransfer':
    case 'ExpireAuthorization':
      return decideRelease(command, state);
    case 'ReverseTransfer':
      return decideReverse(command, state);
    case 'MarkTransferSettled':
      return decideMarkSettled(command, state);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Accounts

function decideOpenAccount(command: OpenAccount, state: DecisionState): Decision {
  const invalid =
    checkText('accountId', command.accountId, COMMAND_LIMITS.maxIdLength) ??
    checkText('ownerId', command.ownerId, COMMAND_LIMITS.maxIdLength);
  if (invalid) return refused(invalid);
  if (!isAccountKind(command.kind))
    return refused(refuse('validation_failed', `unknown account kind ${String(command.kind)}`));
  const definition = ACCOUNT_KINDS[command.kind];
  if (definition.t7AccountType === undefined) {
    const platform = PLATFORM_ACCOUNTS.find((p) => p.accountId === command.accountId);
    if (!platform || platform.kind !== command.kind) {
      return refused(
        refuse('validation_failed', `${command.accountId} is not a platform account of kind ${command.kind}`),
      );
    }
  } else {
    const decoded = decodeCode(command.accountId);
    if (!decoded.ok || decoded.value.kind !== 'account_id') {
      return refused(
        refuse(
          'validation_failed',
          `account id must be a 16-digit T7 code (86 · class · type · area · sequence): ${decoded.ok ? 'this is a card number' : decoded.reason}`,
        ),
      );
    }
    if (decoded.value.accountType !== definition.t7AccountType) {
      return refused(
        refuse(
          'validation_failed',
          `account type digit ${decoded.value.accountType} does not match kind ${command.kind} (${definition.t7AccountType})`,
        ),
      );
    }
    if (!definition.t7CustomerClasses?.includes(decoded.value.customerClass)) {
      return refused(
        refuse('validation_failed', `customer class ${decoded.value.customerClass} is not allowed for ${command.kind}`),
      );
    }
  }
  if (command.cardNumber !== undefined && !isValidCardNumber(command.cardNumber)) {
    return refused(refuse('validation_failed', 'card number must be a T6 card number with a valid Luhn check digit'));
  }
  if (command.accountNumber !== undefined && !/^\d{11,12}$/.test(command.accountNumber)) {
    return refused(refuse('validation_failed', 'account number must be 11 or 12 digits (T5)'));
  }
  const existing = state.account(command.accountId);
  if (existing) {
    const same = existing.kind === command.kind && existing.ownerId === command.ownerId;
    return same
      ? { outcome: 'replayed', result: { accountId: existing.accountId, status: existing.status } }
      : refused(refuse('account_exists', `account ${command.accountId} exists with other attributes`));
  }
  const event: AccountEvent = {
    type: 'AccountOpened',
    data: {
      accountId: command.accountId,
      kind: command.kind,
      asset: definition.asset,
      ownerId: command.ownerId,
      cardNumber: command.cardNumber ?? null,
      accountNumber: command.accountNumber ?? null,
      at: command.at,
    },
  };
  return accepted([accountEvent(command.accountId, event)], { accountId: command.accountId, status: 'open' });
}

const STATUS_TRANSITIONS: Readonly<
  Record<
    ChangeAccountStatus['type'],
    { action: 'freeze' | 'unfreeze' | 'report_loss' | 'close'; from: readonly AccountStatus[]; to: AccountStatus }
  >
> = {
  FreezeAccount: { action: 'freeze', from: ['open', 'lost'], to: 'frozen' },
  UnfreezeAccount: { action: 'unfreeze', from: ['frozen'], to: 'open' },
  ReportAccountLost: { action: 'report_loss', from: ['open'], to: 'lost' },
  CloseAccount: { action: 'close', from: ['open', 'frozen', 'lost'], to: 'closed' },
};

function decideStatusChange(command: ChangeAccountStatus, state: DecisionState): Decision {
  const invalid = checkText('reason', command.reason, COMMAND_LIMITS.maxReasonLength);
  if (invalid) return refused(invalid);
  const account = state.account(command.accountId);
  if (!account) return refused(refuse('account_not_found', `account ${command.accountId} does not exist`));
  const transition = STATUS_TRANSITIONS[command.type];
  if (account.status === transition.to)
    return { outcome: 'replayed', result: { accountId: account.accountId, status: account.status } };
  if (!transition.from.includes(account.status)) {
    return refused(
      refuse(
        account.status === 'closed' ? 'account_closed' : 'validation_failed',
        `cannot ${transition.action} an account that is ${account.status}`,
      ),
    );
  }
  if (
    command.type === 'CloseAccount' &&
    !(account.posted.isZero() && account.pendingDebits.isZero() && account.pendingCredits.isZero())
  ) {
    return refused(
      refuse('balance_not_zero', `account ${account.accountId} can be closed only at a zero balance`, {
        balance: formatAmount(account.asset, account.posted),
      }),
    );
  }
  const event: AccountEvent = {
    type: 'AccountStatusChanged',
    data: {
      accountId: account.accountId,
      action: transition.action,
      status: transition.to,
      reason: command.reason,
      at: command.at,
    },
  };
  return accepted([accountEvent(account.accountId, event)], { accountId: account.accountId, status: transition.to });
}

function decideReplaceCard(command: ReplaceCard, state: DecisionState): Decision {
  if (!isValidCardNumber(command.newCardNumber))
    return refused(refuse('validation_failed', 'card number must be a T6 card number with a valid Luhn check digit'));
  const account = state.account(command.accountId);
  if (!account) return refused(refuse('account_not_found', `account ${command.accountId} does not exist`));
  if (account.cardNumber === command.newCardNumber)
    return { outcome: 'replayed', result: { accountId: account.accountId, cardNumber: account.cardNumber } };
  if (account.status === 'closed') return refused(refuse('account_closed', `account ${account.accountId} is closed`));
  const event: AccountEvent = {
    type: 'CardReplaced',
    data: {
      accountId: account.accountId,
      oldCardNumber: account.cardNumber,
      newCardNumber: command.newCardNumber,
      reason: command.reason,
      at: command.at,
    },
  };
  return accepted([accountEvent(account.accountId, event)], {
    accountId: account.accountId,
    cardNumber: command.newCardNumber,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Transfers

/** A validated posting: the account it moves and the amount, as a decimal and as its text at the account's scale. */
interface CheckedPosting {
  readonly account: AccountState;
  readonly direction: PostingDirection;
  readonly amount: Amount;
  /** `formatAmount(account.asset, amount)`, written once for the transfer's line and the journal's. */
  readonly amountText: string;
}

function decidePostTransfer(command: PostTransfer, state: DecisionState): Decision {
  const invalid = checkTransferHeader(command);
  if (invalid) return refused(invalid);
  const requestHash = requestHashOf(command);
  const existing = state.transfer(command.transferId);
  if (existing) return replayOrConflict(existing, command.idempotencyKey, requestHash);
  if (!TRANSFER_TYPES.includes(command.transferType))
    return refused(refuse('validation_failed', `unknown transfer type ${String(command.transferType)}`));
  if (command.transferType === 'adjustment' && !command.reason)
    return refused(refuse('validation_failed', 'an adjustment needs a reason'));
  const checked = checkPostings(command.postings, state);
  if (!checked.ok) return refused(checked.refusal);
  const lines: PostingLine[] = checked.postings.map((p) => ({
    accountId: p.account.accountId,
    asset: p.account.asset,
    direction: p.direction,
    amount: p.amountText,
  }));
  const transferEvent: TransferEvent = {
    type: 'TransferPosted',
    data: {
      transferId: command.transferId,
      transferType: command.transferType,
      idempotencyKey: command.idempotencyKey,
      requestHash,
      postings: lines,
      reason: command.reason ?? null,
      reference: command.reference ?? null,
      reverses: null,
      businessDate: command.businessDate,
      at: command.at,
    },
  };
  const events = [
    transferEventOf(command.transferId, transferEvent),
    ...journalLines(checked.postings, command.transferId, command.at),
  ];
  return accepted(events, { transferId: command.transferId, status: 'posted' });
}

function checkPostings(
  postings: readonly PostTransfer['postings'][number][],
  state: DecisionState,
): { ok: true; postings: CheckedPosting[] } | { ok: false; refusal: Refusal } {
  if (!Array.isArray(postings) || postings.length < 2 || postings.length > COMMAND_LIMITS.maxPostings) {
    return {
      ok: false,
      refusal: refuse('validation_failed', `a transfer has 2..${COMMAND_LIMITS.maxPostings} postings`),
    };
  }
  const seen = new Set<string>();
  const checked: CheckedPosting[] = [];
  const netByAsset = new Map<AssetCode, Amount>();
  for (const posting of postings) {
    if (posting.direction !== 'debit' && posting.direction !== 'credit') {
      return { ok: false, refusal: refuse('validation_failed', 'posting direction must be debit or credit') };
    }
    if (seen.has(posting.accountId)) {
      return {
        ok: false,
        refusal: refuse('validation_failed', `account ${posting.accountId} appears twice in one transfer`),
      };
    }
    seen.add(posting.accountId);
    const account = state.account(posting.accountId);
    if (!account)
      return { ok: false, refusal: refuse('account_not_found', `account ${posting.accountId} does not exist`) };
    const parsed = parseAmount(account.asset, posting.amount, { positive: true });
    if (!parsed.ok) {
      return {
        ok: false,
        refusal: refuse(
          'validation_failed',
          `amount ${JSON.stringify(posting.amount)} for ${account.asset}: ${parsed.error.kind.replace(/_/g, ' ')}`,
        ),
      };
    }
    // The text itself when already at scale (most are): no Decimal printed again.
    const amountText = atScale(account.asset, posting.amount as string);
    checked.push({ account, direction: posting.direction, amount: parsed.amount, amountText });
    const signed = posting.direction === 'credit' ? parsed.amount : parsed.amount.neg();
    netByAsset.set(account.asset, (netByAsset.get(account.asset) ?? ZERO).plus(signed));
  }
  for (const [asset, net] of netByAsset) {
    if (!net.isZero())
      return {
        ok: false,
        refusal: refuse('unbalanced', `debits and credits in ${asset} differ by ${net.abs().toString()}`),
      };
  }
  for (const posting of checked) {
    const refusal = checkAccountMayMove(posting.account, posting.direction, posting.amount);
    if (refusal) return { ok: false, refusal };
  }
  return { ok: true, postings: checked };
}

/** The one place that says whether an account may take a debit or credit of an amount. */
function checkAccountMayMove(account: AccountState, direction: PostingDirection, amount: Amount): Refusal | undefined {
  if (account.status === 'closed') return refuse('account_closed', `account ${account.accountId} is closed`);
  if (direction === 'credit') return undefined;
  if (account.status === 'frozen') return refuse('account_frozen', `account ${account.accountId} is frozen`);
  if (account.status === 'lost')
    return refuse('account_reported_lost', `account ${account.accountId} is reported lost`);
  if (!account.mayGoNegative && availableBalance(account).lt(amount)) {
    return refuse('insufficient_funds', `account ${account.accountId} has insufficient funds`, {
      available: formatAmount(account.asset, availableBalance(account)),
      requested: formatAmount(account.asset, amount),
    });
  }
  return undefined;
}

function journalLines(postings: readonly CheckedPosting[], transferId: string, at: string): StreamEvent[] {
  return postings.map((p) => {
    const balance = p.direction === 'credit' ? p.account.posted.plus(p.amount) : p.account.posted.minus(p.amount);
    const event: AccountEvent = {
      type: 'AccountPosted',
      data: {
        accountId: p.account.accountId,
        transferId,
        direction: p.direction,
        amount: p.amountText,
        balance: formatAmount(p.account.asset, balance),
        at,
      },
    };
    return accountEvent(p.account.accountId, event);
  });
}

function decideAuthorize(command: AuthorizeTransfer, state: DecisionState): Decision {
  const invalid = checkTransferHeader(command) ?? checkInstant('expiresAt', command.expiresAt);
  if (invalid) return refused(invalid);
  const requestHash = requestHashOf(command);
  const existing = state.transfer(command.transferId);
  if (existing) return replayOrConflict(existing, command.idempotencyKey, requestHash);
  if (!TRANSFER_TYPES.includes(command.transferType))
    return refused(refuse('validation_failed', `unknown transfer type ${String(command.transferType)}`));
  if (Date.parse(command.expiresAt) <= Date.parse(command.at))
    return refused(refuse('validation_failed', 'expiresAt must be in the future'));
  const checked = checkPostings(
    [
      { accountId: command.debitAccountId, direction: 'debit', amount: command.amount },
      { accountId: command.creditAccountId, direction: 'credit', amount: command.amount },
    ],
    state,
  );
  if (!checked.ok) return refused(checked.refusal);
  const [debit, credit] = checked.postings as [CheckedPosting, CheckedPosting];
  const amount = debit.amountText;
  const transferEvent: TransferEvent = {
    type: 'TransferAuthorized',
    data: {
      transferId: command.transferId,
      transferType: command.transferType,
      idempotencyKey: command.idempotencyKey,
      requestHash,
      debitAccountId: debit.account.accountId,
      creditAccountId: credit.account.accountId,
      asset: debit.account.asset,
      amount,
      expiresAt: command.expiresAt,
      reference: command.reference ?? null,
      businessDate: command.businessDate,
      at: command.at,
    },
  };
  const holds = [debit, credit].map((p) =>
    accountEvent(p.account.accountId, {
      type: 'HoldPlaced',
      data: {
        accountId: p.account.accountId,
        transferId: command.transferId,
        direction: p.direction,
        amount,
        at: command.at,
      },
    }),
  );
  return accepted([transferEventOf(command.transferId, transferEvent), ...holds], {
    transferId: command.transferId,
    status: 'pending',
  });
}

function decideCapture(command: CaptureTransfer, state: DecisionState): Decision {
  const invalid = checkText('idempotencyKey', command.idempotencyKey, COMMAND_LIMITS.maxIdempotencyKeyLength);
  if (invalid) return refused(invalid);
  const transfer = state.transfer(command.transferId);
  if (!transfer?.authorization)
    return refused(refuse('transfer_not_found', `authorization ${command.transferId} does not exist`));
  if (transfer.status === 'captured' && transfer.captureKey === command.idempotencyKey) {
    return { outcome: 'replayed', result: { transferId: transfer.transferId, status: 'captured' } };
  }
  if (transfer.status !== 'pending')
    return refused(refuse('invalid_transfer_state', `authorization ${transfer.transferId} is ${transfer.status}`));
  if (Date.parse(command.at) >= Date.parse(transfer.authorization.expiresAt)) {
    return refused(
      refuse(
        'authorization_expired',
        `authorization ${transfer.transferId} expired at ${transfer.authorization.expiresAt}`,
      ),
    );
  }
  const asset = transfer.asset as AssetCode;
  const authorized = amountOf(asset, transfer.authorization.amount);
  let captured = authorized;
  if (command.amount !== undefined) {
    const parsed = parseAmount(asset, command.amount, { positive: true });
    if (!parsed.ok)
      return refused(refuse('validation_failed', `capture amount: ${parsed.error.kind.replace(/_/g, ' ')}`));
    if (parsed.amount.gt(authorized)) {
      return refused(
        refuse(
          'amount_exceeds_authorization',
          `capture of ${command.amount} exceeds the authorized ${transfer.authorization.amount}`,
        ),
      );
    }
    captured = parsed.amount;
  }
  const debitAccount = state.account(transfer.authorization.debitAccountId);
  const creditAccount = state.account(transfer.authorization.creditAccountId);
  if (!debitAccount || !creditAccount)
    return refused(refuse('account_not_found', 'an account of the authorization does not exist'));
  const creditRefusal = checkAccountMayMove(creditAccount, 'credit', captured);
  if (creditRefusal) return refused(creditRefusal);
  if (debitAccount.status === 'closed')
    return refused(refuse('account_closed', `account ${debitAccount.accountId} is closed`));
  const capturedText = formatAmount(asset, captured);
  const releasedText = formatAmount(asset, authorized.minus(captured));
  const lines: PostingLine[] = [
    { accountId: debitAccount.accountId, asset, direction: 'debit', amount: capturedText },
    { accountId: creditAccount.accountId, asset, direction: 'credit', amount: capturedText },
  ];
  const releases = holdReleases(transfer, command.at);
  // The hold already reserved the funds: a capture releases it first, then posts, so the debit never fails.
  const releasedDebit = { ...debitAccount, pendingDebits: debitAccount.pendingDebits.minus(authorized) };
  const releasedCredit = { ...creditAccount, pendingCredits: creditAccount.pendingCredits.minus(authorized) };
  const postings = journalLines(
    [
      { account: releasedDebit, direction: 'debit', amount: captured, amountText: capturedText },
      { account: releasedCredit, direction: 'credit', amount: captured, amountText: capturedText },
    ],
    transfer.transferId,
    command.at,
  );
  const event: TransferEvent = {
    type: 'AuthorizationCaptured',
    data: {
      transferId: transfer.transferId,
      captureKey: command.idempotencyKey,
      capturedAmount: capturedText,
      releasedAmount: releasedText,
      postings: lines,
      at: command.at,
    },
  };
  return accepted([transferEventOf(transfer.transferId, event), ...releases, ...postings], {
    transferId: transfer.transferId,
    status: 'captured',
  });
}

function decideRelease(command: VoidTransfer | ExpireAuthorization, state: DecisionState): Decision {
  const transfer = state.transfer(command.transferId);
  if (!transfer?.authorization)
    return refused(refuse('transfer_not_found', `authorization ${command.transferId} does not exist`));
  const finalStatus = command.type === 'VoidTransfer' ? 'voided' : 'expired';
  if (transfer.status === finalStatus)
    return { outcome: 'replayed', result: { transferId: transfer.transferId, status: finalStatus } };
  if (transfer.status !== 'pending')
    return refused(refuse('invalid_transfer_state', `authorization ${transfer.transferId} is ${transfer.status}`));
  let event: TransferEvent;
  if (command.type === 'VoidTransfer') {
    const invalid = checkText('reason', command.reason, COMMAND_LIMITS.maxReasonLength);
    if (invalid) return refused(invalid);
    event = {
      type: 'AuthorizationVoided',
      data: {
        transferId: transfer.transferId,
        releasedAmount: transfer.authorization.amount,
        reason: command.reason,
        at: command.at,
      },
    };
  } else {
    if (Date.parse(command.at) < Date.parse(transfer.authorization.expiresAt)) {
      return refused(
        refuse(
          'authorization_not_expired',
          `authorization ${transfer.transferId} expires at ${transfer.authorization.expiresAt}`,
        ),
      );
    }
    event = {
      type: 'AuthorizationExpired',
      data: { transferId: transfer.transferId, releasedAmount: transfer.authorization.amount, at: command.at },
    };
  }
  for (const accountId of [transfer.authorization.debitAccountId, transfer.authorization.creditAccountId]) {
    if (!state.account(accountId)) return refused(refuse('account_not_found', `account ${accountId} does not exist`));
  }
  return accepted([transferEventOf(transfer.transferId, event), ...holdReleases(transfer, command.at)], {
    transferId: transfer.transferId,
    status: finalStatus,
  });
}

function holdReleases(transfer: TransferState, at: string): StreamEvent[] {
  const authorization = transfer.authorization!;
  return (
    [
      [authorization.debitAccountId, 'debit'],
      [authorization.creditAccountId, 'credit'],
    ] as const
  ).map(([accountId, direction]) =>
    accountEvent(accountId, {
      type: 'HoldReleased',
      data: { accountId, transferId: transfer.transferId, direction, amount: authorization.amount, at },
    }),
  );
}

function decideReverse(command: ReverseTransfer, state: DecisionState): Decision {
  const invalid =
    checkText('reversalTransferId', command.reversalTransferId, COMMAND_LIMITS.maxIdLength) ??
    checkText('idempotencyKey', command.idempotencyKey, COMMAND_LIMITS.maxIdempotencyKeyLength) ??
    checkText('reason', command.reason, COMMAND_LIMITS.maxReasonLength) ??
    checkBusinessDate(command.businessDate);
  if (invalid) return refused(invalid);
  const requestHash = requestHashOf(command);
  const reversal = state.transfer(command.reversalTransferId);
  if (reversal) return replayOrConflict(reversal, command.idempotencyKey, requestHash);
  const original = state.transfer(command.transferId);
  if (!original) return refused(refuse('transfer_not_found', `transfer ${command.transferId} does not exist`));
  if (original.transferType === 'reversal')
    return refused(refuse('invalid_transfer_state', 'a reversal cannot itself be reversed; post an adjustment'));
  if (original.reversedBy !== null)
    return refused(
      refuse('already_reversed', `transfer ${original.transferId} was reversed by ${original.reversedBy}`),
    );
  if (original.settlementId !== null)
    return refused(
      refuse(
        'already_settled',
        `transfer ${original.transferId} is settled (${original.settlementId}); post an adjustment`,
      ),
    );
  if (original.status !== 'posted' && original.status !== 'captured') {
    return refused(
      refuse(
        'invalid_transfer_state',
        `transfer ${original.transferId} is ${original.status}; void an authorization instead`,
      ),
    );
  }
  const mirrored: CheckedPosting[] = [];
  for (const line of original.postings) {
    const account = state.account(line.accountId);
    if (!account) return refused(refuse('account_not_found', `account ${line.accountId} does not exist`));
    const direction: PostingDirection = line.direction === 'debit' ? 'credit' : 'debit';
    const amount = amountOf(line.asset, line.amount);
    // A reversal must go through even on a frozen account (it undoes a movement), but never overdraw one.
    if (account.status === 'closed') return refused(refuse('account_closed', `account ${account.accountId} is closed`));
    if (direction === 'debit' && !account.mayGoNegative && availableBalance(account).lt(amount)) {
      return refused(refuse('insufficient_funds', `account ${account.accountId} no longer holds the funds to reverse`));
    }
    mirrored.push({ account, direction, amount, amountText: formatAmount(line.asset, amount) });
  }
  const lines: PostingLine[] = mirrored.map((p) => ({
    accountId: p.account.accountId,
    asset: p.account.asset,
    direction: p.direction,
    amount: p.amountText,
  }));
  const posted: TransferEvent = {
    type: 'TransferPosted',
    data: {
      transferId: command.reversalTransferId,
      transferType: 'reversal',
      idempotencyKey: command.idempotencyKey,
      requestHash,
      postings: lines,
      reason: command.reason,
      reference: null,
      reverses: original.transferId,
      businessDate: command.businessDate,
      at: command.at,
    },
  };
  const marked: TransferEvent = {
    type: 'TransferReversed',
    data: {
      transferId: original.transferId,
      reversalTransferId: command.reversalTransferId,
      reason: command.reason,
      at: command.at,
    },
  };
  return accepted(
    [
      transferEventOf(command.reversalTransferId, posted),
      transferEventOf(original.transferId, marked),
      ...journalLines(mirrored, command.reversalTransferId, command.at),
    ],
    { transferId: command.reversalTransferId, status: 'posted', reverses: original.transferId },
  );
}

function decideMarkSettled(command: MarkTransferSettled, state: DecisionState): Decision {
  const invalid = checkText('settlementId', command.settlementId, COMMAND_LIMITS.maxIdLength);
  if (invalid) return refused(invalid);
  const transfer = state.transfer(command.transferId);
  if (!transfer) return refused(refuse('transfer_not_found', `transfer ${command.transferId} does not exist`));
  if (transfer.settlementId === command.settlementId)
    return { outcome: 'replayed', result: { transferId: transfer.transferId, settlementId: transfer.settlementId } };
  if (transfer.settlementId !== null)
    return refused(refuse('already_settled', `transfer ${transfer.transferId} is settled by ${transfer.settlementId}`));
  if (transfer.reversedBy !== null)
    return refused(refuse('already_reversed', `transfer ${transfer.transferId} was reversed`));
  if (transfer.status !== 'posted' && transfer.status !== 'captured')
    return refused(refuse('invalid_transfer_state', `transfer ${transfer.transferId} is ${transfer.status}`));
  const event: TransferEvent = {
    type: 'TransferSettled',
    data: { transferId: transfer.transferId, settlementId: command.settlementId, at: command.at },
  };
  return accepted([transferEventOf(transfer.transferId, event)], {
    transferId: transfer.transferId,
    settlementId: command.settlementId,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

function replayOrConflict(existing: TransferState, idempotencyKey: string, requestHash: string): Decision {
  if (existing.idempotencyKey === idempotencyKey && existing.requestHash === requestHash) {
    const result: Record<string, string | null> = { transferId: existing.transferId, status: firstStatus(existing) };
    if (existing.reverses !== null) result['reverses'] = existing.reverses;
    return { outcome: 'replayed', result };
  }
  return refused(refuse('idempotency_conflict', `idempotency key ${idempotencyKey} was used with another request`));
}

/** The status the first response reported, so that a replay answers the same. */
function firstStatus(transfer: TransferState): string {
  return transfer.authorization !== null ? 'pending' : 'posted';
}

function checkTransferHeader(command: PostTransfer | AuthorizeTransfer): Refusal | undefined {
  return (
    checkText('transferId', command.transferId, COMMAND_LIMITS.maxIdLength) ??
    checkText('idempotencyKey', command.idempotencyKey, COMMAND_LIMITS.maxIdempotencyKeyLength) ??
    (command.reference !== undefined
      ? checkText('reference', command.reference, COMMAND_LIMITS.maxReferenceLength)
      : undefined) ??
    ('reason' in command && command.reason !== undefined
      ? checkText('reason', command.reason, COMMAND_LIMITS.maxReasonLength)
      : undefined) ??
    checkBusinessDate(command.businessDate)
  );
}

function checkText(field: string, value: unknown, maxLength: number): Refusal | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    return refuse('validation_failed', `${field} must be a string of 1..${maxLength} characters`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value))
    return refuse('validation_failed', `${field} must not contain control characters`);
  return undefined;
}

function checkBusinessDate(value: unknown): Refusal | undefined {
  if (
    typeof value !== 'string' ||
    !/^\d{4}-\d{2}-\d{2}$/.test(value) ||
    Number.isNaN(Date.parse(`${value}T00:00:00Z`))
  ) {
    return refuse('validation_failed', 'businessDate must be a date YYYY-MM-DD');
  }
  return undefined;
}

function checkInstant(field: string, value: unknown): Refusal | undefined {
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value)))
    return refuse('validation_failed', `${field} must be an ISO-8601 instant`);
  return undefined;
}

function accepted(events: StreamEvent[], result: CommandResult): Decision {
  return { outcome: 'accepted', events, result };
}

function refused(refusal: Refusal): Decision {
  return { outcome: 'refused', refusal };
}

function accountEvent(accountId: string, event: AccountEvent): StreamEvent {
  return { streamId: accountStreamId(accountId), kind: 'account', accountId, event };
}

function transferEventOf(transferId: string, event: TransferEvent): StreamEvent {
  return { streamId: transferStreamId(transferId), kind: 'transfer', transferId, event };
}
