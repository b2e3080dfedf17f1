import type { Amount } from '../core-ledger';
import { Money } from '../core-ledger';

/**
 * The bank-channel port (C7, T9): a top-up is asked of a bank or payment channel, which answers later, at least once,
 * through a callback. Real channels (a bank's payment gateway, UnionPay, WeChat Pay, Alipay) implement this port in
 * their adapters; the simulator below stands in for them in tests and demos.
 */
export interface TopUpCallback {
  readonly topUpId: string;
  readonly result: 'success' | 'failed';
  readonly channelTradeNo: string;
}

export interface BankChannel {
  readonly name: string;
  /** Hands a top-up to the channel; the outcome arrives later as a {@link TopUpCallback}. */
  submitTopUp(request: {
    readonly topUpId: string;
    readonly amount: Amount;
  }): Promise<{ readonly channelTradeNo: string }>;
}

export interface SimulatorOptions {
  /** Milliseconds before the first callback. */
  readonly delayMs: number;
  /** Each outcome is delivered this many times (channels deliver at least once; 1 or more). */
  readonly deliveries: number;
  /** Amounts above this are declined (a card's limit), so the failure path can be shown. */
  readonly declineAbove: string;
}

export const DEFAULT_SIMULATOR_OPTIONS: SimulatorOptions = { delayMs: 50, deliveries: 2, declineAbove: '50000.00' };

/**
 * `bank_sim`: accepts every request, then calls back — success, or failure above the decline limit — `deliveries`
 * times, as a real channel retrying its notification would. Trade numbers are `SIM` + a sequence.
 */
export class BankChannelSimulator implements BankChannel {
  readonly name = 'bank_sim';
  private sequence = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly deliver: (callback: TopUpCallback) => Promise<unknown>,
    private readonly options: SimulatorOptions = DEFAULT_SIMULATOR_OPTIONS,
    private readonly onDeliveryError: (error: unknown) => void = () => undefined,
  ) {
    if (!Number.isInteger(options.deliveries) || options.deliveries < 1)
      throw new RangeError('a channel delivers each outcome at least once');
  }

  async submitTopUp(request: {
    readonly topUpId: string;
    readonly amount: Amount;
  }): Promise<{ channelTradeNo: string }> {
    this.sequence += 1;
    const channelTradeNo = `SIM${String(this.sequence).padStart(12, '0')}`;
    const result = request.amount.gt(new Money(this.options.declineAbove)) ? 'failed' : 'success';
    for (let i = 0; i < this.options.deliveries; i++) {
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          this.deliver({ topUpId: request.topUpId, result, channelTradeNo }).catch(this.onDeliveryError);
        },
        this.options.delayMs * (i + 1),
      );
      this.timers.add(timer);
    }
    return { channelTradeNo };
  }

  /** Callbacks not yet delivered are dropped (shutdown). */
  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  get pendingCallbacks(): number {
    return this.timers.size;
  }
}
