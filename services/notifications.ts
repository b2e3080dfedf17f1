import type { Transport } from './outbox';
import type { WalletService } from './wallets';

/**
 * Notifications (T12): payment results, refunds, top-ups, one-time codes and initial random passwords (T4) go to a
 * messaging gateway through the outbox. Templates are data; a message carries no personal data beyond what it needs
 * (the last four digits of the account, never a name or a card number), and the phone number is looked up only when
 * the message is sent, so the outbox holds none.
 */
export const NOTIFICATION_TEMPLATES = {
  payment_succeeded: '【碳普惠】您尾号{accountTail}的钱包支付{amount}元成功，订单{orderId}。',
  refund_succeeded: '【碳普惠】您尾号{accountTail}的钱包收到退款{amount}元，订单{orderId}。',
  top_up_confirmed: '【碳普惠】您尾号{accountTail}的钱包充值{amount}元已到账。',
  initial_password: '【碳普惠】您的钱包已开立，初始支付密码{secret}，请尽快修改。',
  one_time_code: '【碳普惠】验证码{secret}，5分钟内有效，请勿告诉他人。',
} as const;

export type NotificationTemplate = keyof typeof NOTIFICATION_TEMPLATES;

export function isNotificationTemplate(value: unknown): value is NotificationTemplate {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(NOTIFICATION_TEMPLATES, value);
}

/** Fills a template; a placeholder without a value is a bug (assertion), never sent as `{name}`. */
export function renderNotification(
  template: NotificationTemplate,
  values: Readonly<Record<string, string | undefined>>,
): string {
  return NOTIFICATION_TEMPLATES[template].replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`assertion: notification ${template} lacks ${name}`);
    return value;
  });
}

/** The messaging-gateway port (an SMS provider in production). */
export interface SmsGateway {
  send(message: { readonly to: string; readonly text: string; readonly messageId: string }): Promise<void>;
}

/** Stands in for the SMS provider in tests and demos: keeps what it was asked to send; can be made to fail. */
export class SmsSimulator implements SmsGateway {
  readonly sent: { readonly to: string; readonly text: string; readonly messageId: string }[] = [];
  failing = false;

  /** Keeps the latest `maxKept` messages (a demo server runs for long). */
  constructor(private readonly maxKept = 1_000) {}

  async send(message: { readonly to: string; readonly text: string; readonly messageId: string }): Promise<void> {
    if (this.failing) throw new Error('sms gateway unavailable');
    this.sent.push(message);
    if (this.sent.length > this.maxKept) this.sent.splice(0, this.sent.length - this.maxKept);
  }
}

/** Delivers `sms:<walletId>` messages: renders the template and sends it to the wallet's account number. */
export function smsTransport(wallets: WalletService, gateway: SmsGateway): Transport {
  return async (message) => {
    const walletId = message.receiver.slice('sms:'.length);
    const wallet = await wallets.getWallet(walletId);
    if (!wallet) throw new Error(`wallet ${walletId} does not exist`);
    const template = message.payload['template'];
    if (!isNotificationTemplate(template)) throw new Error(`unknown notification template ${String(template)}`);
    const values: Record<string, string | undefined> = {
      accountTail: wallet.accountNumber.slice(-4),
      secret: message.secret,
    };
    for (const [name, value] of Object.entries(message.payload)) if (typeof value === 'string') values[name] = value;
    await gateway.send({
      to: wallet.accountNumber,
      text: renderNotification(template, values),
      messageId: message.messageId,
    });
  };
}
