/**
 * Field 39 response codes, as data (research §1.5). Codes 13, 14 and 75 are not in the research notes: they are the
 * ISO 8583:1987 meanings that the CUP table shares; marked as such in `source`.
 */

export type TerminalAction = 'none' | 'fail' | 'retry_later' | 're_enter_pin' | 're_sign_on' | 'reverse';

export interface ResponseCode {
  readonly code: string;
  readonly meaning: string;
  readonly meaningZh: string;
  readonly terminalAction: TerminalAction;
  readonly source: string;
}

const NOTES = 'research/iso8583.md §1.5';
const ISO = 'ISO 8583:1987 response code (not in the research notes; confirm with the acquirer table)';

export const RESPONSE_CODES = {
  approved: { code: '00', meaning: 'approved', meaningZh: '承兑或交易成功', terminalAction: 'none', source: NOTES },
  invalidTransaction: {
    code: '12',
    meaning: 'invalid transaction (e.g. void or reversal of a non-approved original)',
    meaningZh: '无效交易',
    terminalAction: 'fail',
    source: NOTES,
  },
  invalidAmount: { code: '13', meaning: 'invalid amount', meaningZh: '无效金额', terminalAction: 'fail', source: ISO },
  invalidCardNumber: {
    code: '14',
    meaning: 'invalid card number',
    meaningZh: '无效卡号',
    terminalAction: 'fail',
    source: ISO,
  },
  originalNotFound: {
    code: '25',
    meaning: 'original transaction not found',
    meaningZh: '找不到原始交易',
    terminalAction: 'fail',
    source: NOTES,
  },
  formatError: { code: '30', meaning: 'format error', meaningZh: '格式错误', terminalAction: 'fail', source: NOTES },
  insufficientFunds: {
    code: '51',
    meaning: 'insufficient funds',
    meaningZh: '余额不足',
    terminalAction: 'fail',
    source: NOTES,
  },
  incorrectPin: {
    code: '55',
    meaning: 'incorrect PIN',
    meaningZh: '密码错',
    terminalAction: 're_enter_pin',
    source: NOTES,
  },
  pinTriesExceeded: {
    code: '75',
    meaning: 'allowable number of PIN tries exceeded',
    meaningZh: '密码错误次数超限',
    terminalAction: 'fail',
    source: ISO,
  },
  batchMismatch: {
    code: '77',
    meaning: 'batch number mismatch, sign on again',
    meaningZh: '批次号不符，请重新签到',
    terminalAction: 're_sign_on',
    source: NOTES,
  },
  duplicateTransaction: {
    code: '94',
    meaning: 'duplicate transaction',
    meaningZh: '重复交易',
    terminalAction: 'fail',
    source: NOTES,
  },
  systemMalfunction: {
    code: '96',
    meaning: 'system malfunction',
    meaningZh: '系统异常、失效',
    terminalAction: 'retry_later',
    source: NOTES,
  },
  terminalNotRegistered: {
    code: '97',
    meaning: 'terminal not registered',
    meaningZh: '终端未登记',
    terminalAction: 'fail',
    source: NOTES,
  },
  noIssuerResponse: {
    code: '98',
    meaning: 'no issuer response (also the reason code of a reversal after a time-out)',
    meaningZh: '接收不到发卡方应答',
    terminalAction: 'reverse',
    source: NOTES,
  },
  pinFormatError: {
    code: '99',
    meaning: 'PIN format error, sign on again',
    meaningZh: 'PIN格式错，可重新签到',
    terminalAction: 're_sign_on',
    source: NOTES,
  },
  macError: {
    code: 'A0',
    meaning: 'MAC verification failed, sign on again for fresh keys',
    meaningZh: 'MAC校验错，请重新签到',
    terminalAction: 're_sign_on',
    source: NOTES,
  },
} as const satisfies Record<string, ResponseCode>;

export type ResponseCodeName = keyof typeof RESPONSE_CODES;

const BY_CODE: ReadonlyMap<string, ResponseCode> = new Map(
  Object.values(RESPONSE_CODES).map((entry: ResponseCode) => [entry.code, entry]),
);

export function describeResponseCode(code: string): ResponseCode | undefined {
  return BY_CODE.get(code);
}
