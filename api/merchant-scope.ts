import type { Role } from '../security';
import { isMerchantBound, MERCHANT_OBJECTS } from '../security';
import type { Principal } from './auth';
import { ApiError } from './errors';

/** What the scope check reads: a merchant's own ledger accounts, a payment's merchant, a transfer's accounts. */
export interface MerchantScopeLookups {
  /** Undefined for an unknown merchant. */
  merchantAccounts(merchantId: string): Promise<readonly string[] | undefined>;
  paymentMerchant(paymentId: string): Promise<string | undefined>;
  transferAccounts(transferId: string): Promise<readonly string[] | undefined>;
}

/**
 * Object-level authorization of merchant-bound principals (security/permissions.ts `MERCHANT_OBJECTS`): after the
 * role check, before the handler. Another merchant's payment, account or transfer answers as one that does not exist
 * (the same code and message), so a merchant cannot learn which ids exist; another merchant's path is forbidden.
 */
export async function checkMerchantScope(
  lookups: MerchantScopeLookups,
  principal: Principal,
  operationId: string,
  parameters: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  if (!isMerchantBound(principal.role)) return;
  const own = principal.merchantId;
  if (own === undefined)
    throw new ApiError('forbidden', `this ${principal.role as Role} principal acts for no merchant`, { operationId });
  const object = (MERCHANT_OBJECTS as Readonly<Record<string, string | undefined>>)[operationId];
  switch (object) {
    case 'none':
      return;
    case 'merchant':
      if (parameters['merchantId'] !== own)
        throw new ApiError('forbidden', `this credential acts for merchant ${own} only`, { operationId });
      return;
    case 'payment': {
      const paymentId = parameters['paymentId'] ?? '';
      if ((await lookups.paymentMerchant(paymentId)) !== own)
        throw new ApiError('not_found', `payment ${paymentId} does not exist`, {});
      return;
    }
    case 'account': {
      const accountId = parameters['accountId'] ?? '';
      if (!(await lookups.merchantAccounts(own))?.includes(accountId))
        throw new ApiError('account_not_found', `no account ${accountId}`, { accountId });
      return;
    }
    case 'transfer': {
      const transferId = parameters['transferId'] ?? '';
      const [mine, touched] = await Promise.all([lookups.merchantAccounts(own), lookups.transferAccounts(transferId)]);
      if (mine === undefined || touched === undefined || !touched.some((account) => mine.includes(account)))
        throw new ApiError('transfer_not_found', `no transfer ${transferId}`, { transferId });
      return;
    }
    default:
      throw new ApiError('forbidden', `role ${principal.role as Role} may not ${operationId}`, { operationId });
  }
}
